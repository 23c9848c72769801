"""REST API of the inventory: hosts (with import and discover), discoveries, credentials.

Viewsets validate and call the services; reads need the viewer role, writes operator
(credentials: admin for reading and writing).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError
from django.db.models import ProtectedError
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from hosts import importing, selectors, services
from hosts.api import serializers as s
from hosts.api.pagination import StandardPagination
from hosts.choices import JobKind, SnapshotPhase
from hosts.filters import CredentialFilterSet, DiscoveryFilterSet, HostFilterSet, SnapshotFilterSet
from hosts.models import Discovery, Host
from mdefleet.audit import Actor
from mdefleet.roles import ADMIN, OPERATOR


def _flat_errors(detail: Any, field: str = "request") -> list[dict[str, Any]]:
    """DRF's nested error detail as the import's ``[{line, field, message}]`` list."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            out += _flat_errors(value, field if key == "non_field_errors" else str(key))
        return out
    if isinstance(detail, list):
        return [item for value in detail for item in _flat_errors(value, field)]
    return [{"line": 0, "field": field, "message": str(detail)}]


def _job_accepted(job: Discovery, hosts: int) -> Response:
    """202 with where to follow a host job (API and page)."""
    body = {
        "id": job.pk,
        "hosts": hosts,
        "url": reverse("hosts-api:discovery-detail", args=[job.pk]),
        "page_url": reverse("hosts:discovery", args=[job.pk]),
    }
    return Response(body, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List hosts (filters as on the fleet page)"),
    retrieve=extend_schema(summary="One host"),
    create=extend_schema(summary="Add a host", responses={201: s.HostSerializer}),
    partial_update=extend_schema(
        summary="Change a host's name, port, user, credential, tags or sudo use",
        request=s.HostUpdateSerializer,
        responses={200: s.HostSerializer},
    ),
    destroy=extend_schema(summary="Delete a host (audited)", responses={204: None, 409: OpenApiTypes.OBJECT}),
)
@extend_schema(tags=["hosts"])
class HostViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Hosts of the inventory."""

    serializer_class = s.HostSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = HostFilterSet
    pagination_class = StandardPagination
    required_role = OPERATOR
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.host_list()

    def get_serializer_class(self) -> Any:
        if self.action == "partial_update":
            return s.HostUpdateSerializer
        return super().get_serializer_class()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = s.HostSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            host = services.host_create(
                actor=Actor.from_request(request),
                name=data.get("name") or data["address"],
                address=data["address"],
                port=data["port"],
                ssh_user=data["ssh_user"],
                credential=data["credential"],
                tags=data.get("tags", []),
                use_sudo=data.get("use_sudo"),
                host_key=data.get("host_key", ""),
                trust_on_first_use=data.get("trust_on_first_use", False),
            )
        except IntegrityError:
            raise ValidationError({"address": "this address and port were added meanwhile"}) from None
        host = selectors.host_get(host_id=host.pk)
        return Response(s.HostSerializer(host, context=self.get_serializer_context()).data, status=201)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        host = self.get_object()
        serializer = s.HostUpdateSerializer(host, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            services.host_update(actor=Actor.from_request(request), host=host, changes=dict(serializer.validated_data))
        except IntegrityError:
            raise ValidationError({"port": "this address and port were added meanwhile"}) from None
        host = selectors.host_get(host_id=host.pk)
        return Response(s.HostSerializer(host, context=self.get_serializer_context()).data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not kwargs.get("partial"):
            return Response({"detail": "Use PATCH."}, status=status.HTTP_405_METHOD_NOT_ALLOWED)
        return super().update(request, *args, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        host = self.get_object()
        try:
            services.host_delete(actor=Actor.from_request(request), host=host)
        except ProtectedError:
            return Response({"detail": "The host is referenced by a rollout; it cannot be deleted."}, status=409)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Import an inventory file (CSV or JSON); any bad row imports nothing",
        request={"application/json": s.ImportJSONSerializer, "multipart/form-data": s.ImportUploadSerializer},
        responses={201: s.ImportResultSerializer, 400: s.ImportErrorsSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[JSONParser, MultiPartParser, FormParser],
        filter_backends=[],
        pagination_class=None,
    )
    def import_(self, request: Request) -> Response:
        form = s.ImportRequestSerializer(data=request.data)
        if not form.is_valid():
            return Response({"errors": _flat_errors(form.errors)}, status=400)
        parsed = importing.parse_inventory(content=form.raw_content(), fmt=form.validated_data["format"])
        if not parsed.ok:
            return Response({"errors": [error.as_dict() for error in parsed.errors]}, status=400)
        try:
            hosts = services.host_import(
                actor=Actor.from_request(request),
                rows=parsed.rows,
                trust_on_first_use=form.validated_data["trust_on_first_use"],
            )
        except IntegrityError:
            message = "a host of the file was added meanwhile; try again"
            return Response({"errors": [{"line": 0, "field": "address", "message": message}]}, status=400)
        body = {"created": len(hosts), "hosts": s.ImportedHostSerializer(hosts, many=True).data}
        return Response(body, status=201)

    @extend_schema(
        summary="Discover hosts by ids or by filter",
        request=s.DiscoverRequestSerializer,
        responses={202: s.DiscoverResultSerializer, 400: OpenApiResponse(description="Bad ids or filter")},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def discover(self, request: Request) -> Response:
        hosts = self._hosts_requested(request)
        discovery = services.discovery_start(actor=Actor.from_request(request), hosts=hosts)
        return _job_accepted(discovery, len(hosts))

    def _hosts_requested(self, request: Request) -> list[Host]:
        """The hosts a ``{ids}`` or ``{filter}`` body names (400 for unknown ids, a bad filter, or none)."""
        form = s.DiscoverRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if "ids" in form.validated_data:
            ids = set(form.validated_data["ids"])
            hosts = list(Host.objects.filter(pk__in=ids).only("id"))
            missing = sorted(ids - {host.pk for host in hosts})
            if missing:
                raise ValidationError({"ids": f"no such host(s): {', '.join(map(str, missing))}"})
        else:
            params = form.validated_data["filter"]
            filterset = HostFilterSet(data=params, queryset=Host.objects.all())
            unknown = sorted(set(params) - set(filterset.filters))
            if unknown:
                raise ValidationError({"filter": f"unknown filter(s): {', '.join(unknown)}"})
            if not filterset.is_valid():
                raise ValidationError({"filter": filterset.errors})
            hosts = list(filterset.qs.only("id"))
        if not hosts:
            raise ValidationError({"filter": "no host matches"})
        return hosts

    def _look(self, request: Request, kind: str, hosts: list[Host]) -> Response:
        job = services.host_job_start(actor=Actor.from_request(request), hosts=hosts, kind=kind)
        return _job_accepted(job, len(hosts))

    @extend_schema(
        operation_id="hosts_snapshot_many",
        summary="Take an ad-hoc resource snapshot of many hosts (by ids or by filter)",
        request=s.DiscoverRequestSerializer,
        responses={202: s.DiscoverResultSerializer, 400: OpenApiResponse(description="Bad ids or filter")},
    )
    @action(
        detail=False, methods=["post"], url_path="snapshot", url_name="snapshot-many",
        filter_backends=[], pagination_class=None,
    )  # fmt: skip
    def snapshot_many(self, request: Request) -> Response:
        return self._look(request, JobKind.SNAPSHOT, self._hosts_requested(request))

    @extend_schema(
        operation_id="hosts_health_many",
        summary="Refresh the agent's health (mdatp health) on many hosts (by ids or by filter)",
        request=s.DiscoverRequestSerializer,
        responses={202: s.DiscoverResultSerializer, 400: OpenApiResponse(description="Bad ids or filter")},
    )
    @action(
        detail=False, methods=["post"], url_path="health", url_name="health-many",
        filter_backends=[], pagination_class=None,
    )  # fmt: skip
    def health_many(self, request: Request) -> Response:
        return self._look(request, JobKind.HEALTH, self._hosts_requested(request))

    @extend_schema(
        operation_id="hosts_diagnose_many",
        summary="Run the high-CPU diagnosis on many hosts (by ids or by filter)",
        request=s.DiscoverRequestSerializer,
        responses={202: s.DiscoverResultSerializer, 400: OpenApiResponse(description="Bad ids or filter")},
    )
    @action(
        detail=False, methods=["post"], url_path="diagnose", url_name="diagnose-many",
        filter_backends=[], pagination_class=None,
    )  # fmt: skip
    def diagnose_many(self, request: Request) -> Response:
        return self._look(request, JobKind.DIAGNOSE, self._hosts_requested(request))

    @extend_schema(
        summary="Take an ad-hoc resource snapshot of this host now",
        request=None,
        responses={202: s.DiscoverResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="snapshot", filter_backends=[], pagination_class=None)
    def snapshot(self, request: Request, pk: str | None = None) -> Response:
        return self._look(request, JobKind.SNAPSHOT, [self.get_object()])

    @extend_schema(
        summary="Refresh this host's agent health now", request=None, responses={202: s.DiscoverResultSerializer}
    )
    @action(detail=True, methods=["post"], url_path="health", filter_backends=[], pagination_class=None)
    def health(self, request: Request, pk: str | None = None) -> Response:
        return self._look(request, JobKind.HEALTH, [self.get_object()])

    @extend_schema(
        summary="Run the high-CPU diagnosis on this host (hot Defender process and thread, hot event sources)",
        request=None,
        responses={202: s.DiscoverResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="diagnose", filter_backends=[], pagination_class=None)
    def diagnose(self, request: Request, pk: str | None = None) -> Response:
        return self._look(request, JobKind.DIAGNOSE, [self.get_object()])

    @extend_schema(
        summary="The host's latest high-CPU diagnosis (404 when none ran)",
        responses={200: s.HostCheckSerializer, 404: OpenApiResponse(description="No diagnosis yet")},
    )
    @action(
        detail=True, methods=["get"], url_path="diagnosis", filter_backends=[], pagination_class=None,
        serializer_class=s.HostCheckSerializer,
    )  # fmt: skip
    def diagnosis(self, request: Request, pk: str | None = None) -> Response:
        host = self.get_object()
        check = selectors.latest_diagnoses([host.pk]).get(host.pk)
        if check is None:
            return Response({"detail": "No diagnosis has run on this host."}, status=status.HTTP_404_NOT_FOUND)
        return Response(s.HostCheckSerializer(check).data)

    @extend_schema(
        summary="Offboard or uninstall Defender on hosts (the way back)",
        request=s.WayBackRequestSerializer,
        responses={202: s.DiscoverResultSerializer, 400: OpenApiResponse(description="Bad ids, mode or package")},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def offboard(self, request: Request) -> Response:
        form = s.WayBackRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        ids = set(form.validated_data["ids"])
        hosts = list(Host.objects.filter(pk__in=ids).only("id", "name"))
        missing = sorted(ids - {host.pk for host in hosts})
        if missing:
            raise ValidationError({"ids": f"no such host(s): {', '.join(map(str, missing))}"})
        try:
            job = services.hosts_way_back_start(
                actor=Actor.from_request(request),
                hosts=hosts,
                kind=form.validated_data["mode"],
                offboarding_package=form.validated_data["offboarding_package"],
            )
        except services.WayBackInvalid as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        body = {
            "id": job.pk,
            "hosts": len(hosts),
            "url": reverse("hosts-api:discovery-detail", args=[job.pk]),
            "page_url": reverse("hosts:discovery", args=[job.pk]),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The host's snapshots, newest first (filter by phase and capture time)",
        parameters=[
            OpenApiParameter("phase", OpenApiTypes.STR, enum=list(SnapshotPhase.values), description="Phase"),
            OpenApiParameter("taken_after", OpenApiTypes.DATETIME, description="Taken at or after (ISO 8601)"),
            OpenApiParameter("taken_before", OpenApiTypes.DATETIME, description="Taken before (ISO 8601)"),
            OpenApiParameter(
                "ordering",
                OpenApiTypes.STR,
                description="taken_at, cpu_busy_pct or mem_used_mb; prefix - for descending; comma-separated",
            ),
        ],
        responses=s.SnapshotSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=s.SnapshotSerializer)
    def snapshots(self, request: Request, pk: str | None = None) -> Response:
        host = self.get_object()
        filterset = SnapshotFilterSet(request.query_params, queryset=selectors.host_snapshots(host=host))
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(s.SnapshotSerializer(page, many=True).data)

    @extend_schema(summary="Step results of the host's latest discovery", responses=s.HostCheckSerializer(many=True))
    @action(
        detail=True, methods=["get"], filter_backends=[], pagination_class=None, serializer_class=s.HostCheckSerializer
    )
    def checks(self, request: Request, pk: str | None = None) -> Response:
        host = self.get_object()
        checks = selectors.host_latest_checks(host=host, with_output=True)
        return Response(s.HostCheckSerializer(checks, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="Discoveries, newest first"),
    retrieve=extend_schema(summary="A discovery's status and counts"),
)
@extend_schema(tags=["discoveries"])
class DiscoveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Discovery requests with their progress."""

    serializer_class = s.DiscoverySerializer
    pagination_class = StandardPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = DiscoveryFilterSet

    def get_queryset(self) -> Any:
        return selectors.discovery_list()


@extend_schema_view(
    list=extend_schema(summary="Credentials (never their secrets)"),
    create=extend_schema(summary="Store a credential; the secret is write-only"),
)
@extend_schema(tags=["credentials"])
class CredentialViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """SSH credentials; admin only, for reading too."""

    serializer_class = s.CredentialSerializer
    pagination_class = StandardPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = CredentialFilterSet
    read_role = ADMIN
    required_role = ADMIN

    def get_queryset(self) -> Any:
        return selectors.credential_list()

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        credential = services.credential_create(
            actor=Actor.from_request(self.request),
            name=data["name"],
            kind=data["kind"],
            secret=data["secret"],
            passphrase=data.get("passphrase") or "",
        )
        credential.host_count = 0
        serializer.instance = credential
