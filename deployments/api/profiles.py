"""REST API of deployment profiles: list, read, create, change, upload the onboarding package.

Reads need the viewer role, writes admin. Viewsets shape the input and call the services;
refused input answers 400 with messages by field, and by JSON path inside ``managed_settings``
and ``carried_exclusions``. No response ever carries the onboarding package's text.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import cron
from deployments import managed_settings as ms
from deployments.choices import Channel
from deployments.forms.profiles import ProfileFilterSet
from deployments.models import Profile
from deployments.onboarding import MAX_PACKAGE_BYTES
from deployments.services.profiles import (
    EDITABLE_FIELDS,
    ProfileInvalid,
    profile_adopt_recommendation,
    profile_create,
    profile_set_onboarding,
    profile_update,
)
from mdefleet.audit import Actor
from mdefleet.roles import ADMIN


class OnboardingSummarySerializer(serializers.Serializer):
    """What is known about the stored package: never its content."""

    filename = serializers.CharField()
    kind = serializers.CharField()
    org_id = serializers.CharField()
    sha256 = serializers.CharField()
    uploaded_at = serializers.DateTimeField(allow_null=True)


class RecommendationSerializer(serializers.Serializer):
    """One row of the diff against the recommended hardening."""

    id = serializers.CharField()
    title = serializers.CharField()
    why = serializers.CharField()
    path = serializers.CharField()
    current = serializers.JSONField(allow_null=True)
    recommended = serializers.JSONField()
    adopted = serializers.BooleanField()


class ProfileSerializer(serializers.ModelSerializer):
    """A profile as read: settings, exclusions, schedules, the package's summary and the traps."""

    onboarding = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()
    hardening = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Profile
        fields = [
            "id",
            "name",
            "description",
            "channel",
            "agent_version",
            "proxy",
            "managed_settings",
            "carried_exclusions",
            "scan_cron",
            "scan_type",
            "update_cron",
            "org_id",
            "onboarding",
            "hardening",
            "warnings",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OnboardingSummarySerializer(allow_null=True))
    def get_onboarding(self, profile: Profile) -> dict[str, Any] | None:
        if not profile.onboarding_sha256:
            return None
        return {
            "filename": profile.onboarding_filename,
            "kind": profile.onboarding_kind,
            "org_id": profile.org_id,
            "sha256": profile.onboarding_sha256,
            "uploaded_at": profile.onboarding_uploaded_at,
        }

    def get_warnings(self, profile: Profile) -> list[str]:
        return ms.profile_warnings(profile)

    @extend_schema_field(
        inline_serializer("Hardening", {"adopted": serializers.IntegerField(), "total": serializers.IntegerField()})
    )
    def get_hardening(self, profile: Profile) -> dict[str, int]:
        recs = ms.recommendations(profile.managed_settings or {})
        return {"adopted": sum(rec.adopted for rec in recs), "total": len(recs)}


class ProfileWriteSerializer(serializers.Serializer):
    """Fields a client may write; omitted fields keep their value (new profiles: the baseline)."""

    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(allow_blank=True, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    agent_version = serializers.CharField(allow_blank=True, required=False, help_text="e.g. 101.25092.0003")
    proxy = serializers.CharField(allow_blank=True, required=False, help_text="http://host:port")
    managed_settings = serializers.JSONField(
        required=False, help_text="mdatp_managed.json as an object (or its text as a string)"
    )
    carried_exclusions = serializers.JSONField(
        required=False, help_text='[{"kind": "path|extension|process", "value": "..."}]'
    )
    scan_cron = serializers.CharField(allow_blank=True, required=False)
    scan_type = serializers.ChoiceField(choices=[(value, value) for value in cron.SCAN_TYPES], required=False)
    update_cron = serializers.CharField(allow_blank=True, required=False)


class OnboardingUploadSerializer(serializers.Serializer):
    """A multipart ``file``, or JSON ``filename`` with ``content_base64``."""

    file = serializers.FileField(required=False)
    filename = serializers.CharField(required=False)
    content_base64 = serializers.CharField(required=False)


ERRORS_400 = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Refused, nothing saved: messages by field, and by JSON path inside managed_settings.",
    examples=[
        OpenApiExample(
            "Bad setting",
            value={
                "managed_settings": {
                    "antivirusEngine.enforcementLevel": [
                        '"realtime" is not allowed; use one of: real_time, on_demand, passive'
                    ]
                }
            },
        )
    ],
)


def _write_data(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
    """The request's writable fields, or a 400 naming unknown ones (read-only fields are ignored)."""
    raw = request.data
    if not isinstance(raw, dict):
        return None, Response({"non_field_errors": ["Send a JSON object of fields."]}, status=400)
    known_read_only = set(ProfileSerializer.Meta.fields) - set(EDITABLE_FIELDS)
    unknown = sorted(key for key in raw if key not in EDITABLE_FIELDS and key not in known_read_only)
    if unknown:
        return None, Response({key: ["Unknown field."] for key in unknown}, status=status.HTTP_400_BAD_REQUEST)
    serializer = ProfileWriteSerializer(data={key: raw[key] for key in raw if key in EDITABLE_FIELDS})
    if not serializer.is_valid():
        return None, Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
    return dict(serializer.validated_data), None


@extend_schema_view(
    list=extend_schema(summary="List profiles (filters as on the profiles page)"),
    retrieve=extend_schema(summary="One profile (never the onboarding package's content)"),
    create=extend_schema(
        summary="Create a profile (settings default to the recommended hardening)",
        request=ProfileWriteSerializer,
        responses={201: ProfileSerializer, 400: ERRORS_400},
    ),
    partial_update=extend_schema(
        summary="Change a profile's fields (omitted fields are kept)",
        request=ProfileWriteSerializer,
        responses={200: ProfileSerializer, 400: ERRORS_400},
    ),
)
class ProfileViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Deployment profiles."""

    serializer_class = ProfileSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ProfileFilterSet
    required_role = ADMIN
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> Any:
        return Profile.objects.defer("onboarding_encrypted").select_related("created_by").order_by("name")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data, refused = _write_data(request)
        if refused is not None:
            return refused
        try:
            profile = profile_create(actor=Actor.from_request(request), data=data or {})
        except ProfileInvalid as exc:
            return Response(exc.nested(), status=status.HTTP_400_BAD_REQUEST)
        return Response(ProfileSerializer(profile).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        profile = self.get_object()
        data, refused = _write_data(request)
        if refused is not None:
            return refused
        try:
            profile = profile_update(actor=Actor.from_request(request), profile=profile, data=data or {})
        except ProfileInvalid as exc:
            return Response(exc.nested(), status=status.HTTP_400_BAD_REQUEST)
        return Response(ProfileSerializer(profile).data)

    @extend_schema(
        summary="Upload the onboarding package (multipart file, or JSON filename + content_base64)",
        request={"multipart/form-data": OnboardingUploadSerializer, "application/json": OnboardingUploadSerializer},
        responses={200: ProfileSerializer, 400: ERRORS_400},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser, JSONParser])
    def onboarding(self, request: Request, pk: str | None = None) -> Response:
        profile = self.get_object()
        upload = request.FILES.get("file")
        if upload is not None:
            if upload.size > MAX_PACKAGE_BYTES:
                return Response({"onboarding": ["The file is larger than 1 MB."]}, status=status.HTTP_400_BAD_REQUEST)
            filename, content = upload.name, upload.read()
        else:
            data = request.data if isinstance(request.data, dict) else {}
            filename = data.get("filename")
            encoded = data.get("content_base64")
            if not isinstance(filename, str) or not isinstance(encoded, str):
                return Response(
                    {"onboarding": ['Send a multipart "file", or JSON "filename" and "content_base64".']},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            if len(encoded) > MAX_PACKAGE_BYTES * 4 // 3 + 4:
                return Response({"onboarding": ["The file is larger than 1 MB."]}, status=status.HTTP_400_BAD_REQUEST)
            try:
                content = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return Response({"content_base64": ["Not valid base64."]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            profile = profile_set_onboarding(
                actor=Actor.from_request(request), profile=profile, filename=filename, content=content
            )
        except ProfileInvalid as exc:
            return Response(exc.nested(), status=status.HTTP_400_BAD_REQUEST)
        return Response(ProfileSerializer(profile).data)

    @extend_schema(summary="The diff against the recommended hardening", responses=RecommendationSerializer(many=True))
    @action(detail=True, methods=["get"])
    def recommendations(self, request: Request, pk: str | None = None) -> Response:
        profile = self.get_object()
        rows = ms.recommendations(profile.managed_settings or {})
        return Response(RecommendationSerializer(rows, many=True).data)

    @extend_schema(
        summary="Adopt one recommendation",
        request=None,
        responses={200: ProfileSerializer, 404: OpenApiTypes.OBJECT},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"recommendations/(?P<recommendation_id>[a-z0-9-]+)/adopt",
        url_name="adopt",
    )
    def adopt(self, request: Request, pk: str | None = None, recommendation_id: str = "") -> Response:
        profile = self.get_object()
        try:
            profile = profile_adopt_recommendation(
                actor=Actor.from_request(request), profile=profile, recommendation_id=recommendation_id
            )
        except ProfileInvalid as exc:
            code = status.HTTP_404_NOT_FOUND if "recommendation" in exc.errors else status.HTTP_400_BAD_REQUEST
            return Response(exc.nested(), status=code)
        return Response(ProfileSerializer(profile).data)

    @extend_schema(
        summary="The files this profile delivers: mdatp_managed.json and the cron file",
        responses=inline_serializer(
            "ProfileFiles",
            {
                "managed_json": inline_serializer(
                    "ManagedJsonFile", {"path": serializers.CharField(), "content": serializers.CharField()}
                ),
                "cron": inline_serializer(
                    "CronFile", {"path": serializers.CharField(), "content": serializers.CharField()}
                ),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def files(self, request: Request, pk: str | None = None) -> Response:
        profile = self.get_object()
        return Response(
            {
                "managed_json": {"path": ms.MANAGED_JSON_PATH, "content": ms.render_managed_json(profile)},
                "cron": {"path": cron.CRON_FILE_PATH, "content": cron.cron_lines(profile)},
            }
        )
