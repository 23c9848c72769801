"""Reads of outgoing webhooks for the pages and the API."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from mdefleet.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from mdefleet.webhooks.choices import DeliveryStatus

RECENT_DELIVERIES = 50
ATTEMPTS_SHOWN = 10


def webhook_subscription_list() -> QuerySet[WebhookSubscription]:
    """Subscriptions with their delivery counts by status (one query)."""
    return (
        WebhookSubscription.objects.select_related("created_by")
        .annotate(
            pending_count=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
            delivered_count=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DELIVERED)),
            failed_count=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
        )
        .order_by("name")
    )  # Meta.ordering does not apply to a grouped query


def webhook_deliveries(*, subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    """The subscription's deliveries, newest first, with their attempts (two queries per page)."""
    return WebhookDelivery.objects.filter(subscription=subscription).prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("-at", "-id"))
    )
