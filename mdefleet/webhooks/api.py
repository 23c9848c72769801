"""REST API of outgoing webhooks under /api/v1/webhooks/: admins only, the signing secret write-only.

A subscription created without a secret gets a generated one, returned in that 201 response only
(``generated_secret``); a secret sent by the caller is never echoed. Deliveries are listed with their
attempts; ``redeliver`` and ``ping`` queue a new attempt and answer 202 at once.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from hosts.api.pagination import StandardPagination
from mdefleet.audit import Actor
from mdefleet.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from mdefleet.roles import ADMIN
from mdefleet.webhooks import selectors, services
from mdefleet.webhooks.choices import EVENT_NAMES, DeliveryStatus

# --- shapes --------------------------------------------------------------------------------------


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    """A subscription: where events go and which; the secret can be set but is never read back."""

    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_NAMES), allow_empty=False)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=200,
        help_text="Signing secret (16+ characters). Omit on create to have one generated and returned once.",
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pending_count = serializers.IntegerField(read_only=True, default=0)
    delivered_count = serializers.IntegerField(read_only=True, default=0)
    failed_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = WebhookSubscription
        fields = [
            "id", "name", "url", "events", "active", "secret", "created_by", "created_at", "updated_at",
            "pending_count", "delivered_count", "failed_count",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        # The service checks the name is unique and says so by field; DRF's own check would run first.
        extra_kwargs = {"name": {"validators": []}}


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    """The 201 answer: ``secret`` is present only when mdefleet generated it (shown this once)."""

    generated_secret = serializers.CharField(read_only=True, required=False, source="_generated_secret")

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "generated_secret"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    """One POST of a delivery: the receiver's status code, latency and answer (first 500 characters)."""

    class Meta:
        model = WebhookAttempt
        fields = ["id", "at", "status_code", "latency_ms", "response_excerpt", "error", "manual"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """One event sent (or being sent) to the subscription, with every attempt, newest first."""

    status = serializers.ChoiceField(choices=DeliveryStatus.choices, read_only=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)
    payload = serializers.JSONField(read_only=True, help_text="The body as sent (signed per attempt)")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event", "event_id", "status", "attempts", "next_attempt_at", "created_at", "delivered_at",
            "payload", "attempt_log",
        ]  # fmt: skip


class SecretSerializer(serializers.Serializer):
    """A signing secret, shown once."""

    secret = serializers.CharField()


# --- the viewset ---------------------------------------------------------------------------------


def _invalid(exc: services.WebhookInvalid) -> ValidationError:
    return ValidationError(exc.errors)


@extend_schema_view(
    list=extend_schema(summary="Webhook subscriptions (never their secrets)"),
    retrieve=extend_schema(summary="One webhook subscription"),
    create=extend_schema(
        summary="Subscribe a URL to rollout events; a generated secret is returned once as generated_secret",
        responses={201: WebhookSubscriptionCreatedSerializer},
    ),
    update=extend_schema(summary="Replace a subscription (a new secret replaces the old one)"),
    partial_update=extend_schema(summary="Change a subscription (a new secret replaces the old one)"),
    destroy=extend_schema(summary="Delete a subscription with its deliveries"),
)
@extend_schema(tags=["webhooks"])
class WebhookSubscriptionViewSet(viewsets.ModelViewSet):
    """Outgoing webhooks: subscriptions, their deliveries and attempts, redeliver and ping."""

    serializer_class = WebhookSubscriptionSerializer
    pagination_class = StandardPagination
    filter_backends: list[Any] = []
    read_role = ADMIN
    required_role = ADMIN

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        return selectors.webhook_subscription_list()

    def _respond(self, pk: int, status_code: int = 200, generated: str | None = None) -> Response:
        subscription = self.get_queryset().get(pk=pk)
        if generated:
            subscription._generated_secret = generated  # type: ignore[attr-defined]
            body = WebhookSubscriptionCreatedSerializer(subscription).data
            return Response(body, status=status_code, headers={"Cache-Control": "no-store"})
        return Response(WebhookSubscriptionSerializer(subscription).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = WebhookSubscriptionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            subscription, secret = services.webhook_subscription_create(
                actor=Actor.from_request(request),
                name=data["name"],
                url=data["url"],
                events=data["events"],
                secret=data.get("secret") or None,
                active=data.get("active", True),
            )
        except services.WebhookInvalid as exc:
            raise _invalid(exc) from None
        return self._respond(subscription.pk, status.HTTP_201_CREATED, None if data.get("secret") else secret)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        subscription = self.get_object()
        form = WebhookSubscriptionSerializer(subscription, data=request.data, partial=kwargs.get("partial", False))
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            services.webhook_subscription_update(
                actor=Actor.from_request(request),
                subscription=subscription,
                name=data.get("name"),
                url=data.get("url"),
                events=data.get("events"),
                active=data.get("active"),
                secret=data.get("secret") or None,
            )
        except services.WebhookInvalid as exc:
            raise _invalid(exc) from None
        return self._respond(subscription.pk)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.webhook_subscription_delete(actor=Actor.from_request(request), subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="The subscription's deliveries, newest first, each with its attempts")
    @action(detail=True, methods=["get"], serializer_class=WebhookDeliverySerializer)
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        deliveries = selectors.webhook_deliveries(subscription=self.get_object())
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Send a delivery again now; the new attempt is logged as manual",
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[0-9]+)/redeliver",
        serializer_class=WebhookDeliverySerializer,
        pagination_class=None,
    )
    def redeliver(self, request: Request, pk: str | None = None, delivery_id: str | None = None) -> Response:
        subscription = self.get_object()
        if len(delivery_id or "") > 18:  # beyond a bigint: no such row (and no database error)
            raise NotFound("No such delivery.")
        delivery = get_object_or_404(WebhookDelivery, pk=delivery_id, subscription=subscription)
        delivery = services.webhook_redeliver(actor=Actor.from_request(request), delivery=delivery)
        fresh = selectors.webhook_deliveries(subscription=delivery.subscription).get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(fresh).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Send a test event (ping) to this subscription", request=None,
                   responses={202: WebhookDeliverySerializer})  # fmt: skip
    @action(detail=True, methods=["post"], serializer_class=WebhookDeliverySerializer, pagination_class=None)
    def ping(self, request: Request, pk: str | None = None) -> Response:
        delivery = services.webhook_ping(actor=Actor.from_request(request), subscription=self.get_object())
        fresh = selectors.webhook_deliveries(subscription=delivery.subscription).get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(fresh).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Replace the signing secret with a generated one, returned this once", request=None,
                   responses={200: SecretSerializer})  # fmt: skip
    @action(detail=True, methods=["post"], url_path="rotate-secret", serializer_class=SecretSerializer,
            pagination_class=None)  # fmt: skip
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        secret = services.webhook_secret_rotate(actor=Actor.from_request(request), subscription=self.get_object())
        return Response({"secret": secret}, headers={"Cache-Control": "no-store"})


router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# JSON only: the ".json" suffix routes crashed the @action views (they take no format argument).
router.include_format_suffixes = False
router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

app_name = "webhooks-api"
urlpatterns = router.urls
