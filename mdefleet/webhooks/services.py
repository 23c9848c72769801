"""Writes of outgoing webhooks: subscriptions, sending one delivery, the retry sweep, redeliver, ping.

Sending never runs inside a request or a rollout: a delivery row is written first, a Celery task
sends it (tasks.py), and the beat's sweep re-dispatches due deliveries whose message was lost.
A delivery is claimed with a conditional UPDATE of its lease, so a duplicate message or a second
sweep never sends it twice at once.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hosts import crypto
from mdefleet.audit import SYSTEM, Actor, audit_record
from mdefleet.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from mdefleet.tasks import enqueue
from mdefleet.webhooks.choices import EVENT_NAMES, PING, DeliveryStatus
from mdefleet.webhooks.events import deliveries_create, ping_payload
from mdefleet.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    secret_generate,
    signature_header,
)

log = logging.getLogger(__name__)

EXCERPT_CHARS = 500
SECRET_MIN_CHARS = 16
BACKOFF_FACTOR = 4
BACKOFF_MAX_SECONDS = 6 * 3600
SWEEP_BATCH = 500
USER_AGENT = "mdefleet-webhooks/1"


class WebhookInvalid(Exception):
    """Input that cannot make a subscription: ``errors`` maps field names to messages. Nothing was saved."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


# --- subscriptions ---------------------------------------------------------------------------


def _clean(
    *, name: str, url: str, events: Any, secret: str | None, exclude_pk: int | None = None
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["give the subscription a name"]
    elif WebhookSubscription.objects.filter(name=name.strip()).exclude(pk=exclude_pk).exists():
        errors["name"] = [f"a subscription named {name.strip()!r} exists already"]
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        errors["url"] = ["an http:// or https:// address"]
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        errors["events"] = ["choose at least one event"]
    else:
        unknown = sorted(set(events) - set(EVENT_NAMES))
        if unknown:
            errors["events"] = [f"unknown event {unknown[0]!r}; known: {', '.join(EVENT_NAMES)}"]
    if secret is not None and len(secret) < SECRET_MIN_CHARS:
        errors["secret"] = [f"at least {SECRET_MIN_CHARS} characters (leave it empty to have one generated)"]
    return errors


def _ordered(events: list[str]) -> list[str]:
    return [name for name in EVENT_NAMES if name in set(events)]


def webhook_subscription_create(
    *, actor: Actor, name: str, url: str, events: list[str], secret: str | None = None, active: bool = True
) -> tuple[WebhookSubscription, str]:
    """Create a subscription; returns it with its signing secret (generated when none is given).

    The secret is stored encrypted and is never shown again: the caller shows it once.
    """
    secret = secret or None
    errors = _clean(name=name, url=url, events=events, secret=secret)
    if errors:
        raise WebhookInvalid(errors)
    secret = secret or secret_generate()
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(
            name=name.strip(),
            url=url.strip(),
            events=_ordered(events),
            secret_encrypted=crypto.encrypt(secret),
            active=active,
            created_by=actor.user,
        )
        audit_record(
            actor=actor,
            action="webhook.create",
            target=subscription,
            details={"url": subscription.url, "events": subscription.events, "active": active},
        )
    return subscription, secret


def webhook_subscription_update(
    *,
    actor: Actor,
    subscription: WebhookSubscription,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    active: bool | None = None,
    secret: str | None = None,
) -> WebhookSubscription:
    """Change what is given (None leaves a field as it is); a new ``secret`` replaces the old one."""
    secret = secret or None
    new = {
        "name": subscription.name if name is None else name.strip(),
        "url": subscription.url if url is None else url.strip(),
        "events": subscription.events if events is None else events,
    }
    errors = _clean(**new, secret=secret, exclude_pk=subscription.pk)
    if errors:
        raise WebhookInvalid(errors)
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        before = {"name": subscription.name, "url": subscription.url, "events": subscription.events,
                  "active": subscription.active}  # fmt: skip
        subscription.name, subscription.url, subscription.events = new["name"], new["url"], _ordered(new["events"])
        if active is not None:
            subscription.active = active
        if secret is not None:
            subscription.secret_encrypted = crypto.encrypt(secret)
        subscription.save()
        after = {"name": subscription.name, "url": subscription.url, "events": subscription.events,
                 "active": subscription.active}  # fmt: skip
        changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
        if secret is not None:
            changed["secret"] = {"before": "(hidden)", "after": "(replaced)"}
        audit_record(actor=actor, action="webhook.update", target=subscription, details=changed)
    return subscription


def webhook_secret_rotate(*, actor: Actor, subscription: WebhookSubscription) -> str:
    """Replace the signing secret with a generated one; returns it (shown once)."""
    secret = secret_generate()
    webhook_subscription_update(actor=actor, subscription=subscription, secret=secret)
    return secret


def webhook_subscription_delete(*, actor: Actor, subscription: WebhookSubscription) -> None:
    """Delete a subscription with its deliveries and their attempts."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="webhook.delete",
            target=subscription,
            details={"url": subscription.url, "deliveries": subscription.deliveries.count()},
        )
        subscription.delete()


def webhook_secret(subscription: WebhookSubscription) -> str:
    """The decrypted signing secret, for signing only: never rendered, logged or returned by the API."""
    return crypto.decrypt(subscription.secret_encrypted)


# --- sending ----------------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> int:
    """Wait after the ``attempts``-th failed attempt: base, then 4 and 16 times it, ... (30 s, 2 min, 8 min, ...), capped."""
    base = settings.MDEFLEET_WEBHOOK_BACKOFF_SECONDS
    return int(min(base * BACKOFF_FACTOR ** max(0, attempts - 1), BACKOFF_MAX_SECONDS))


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str, str]:
    """POST once, no redirects followed; (status, response excerpt, error). Never raises on the network."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        # Only the excerpt is kept: a receiver answering megabytes costs one bounded read.
        excerpt = response.read(EXCERPT_CHARS * 4).decode("utf-8", errors="replace")[:EXCERPT_CHARS]
        return response.status, excerpt, ""
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, "", (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:EXCERPT_CHARS]
    finally:
        connection.close()


def _claim(delivery_id: int, now: datetime) -> bool:
    lease = now + timedelta(seconds=2 * settings.MDEFLEET_WEBHOOK_TIMEOUT + 30)
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=lease)
    )


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Send one due delivery once and log the attempt; returns its status ("skipped" if not due or taken)."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    manual = delivery.redeliver_requested
    if not subscription.active and delivery.event != PING:
        status_code, excerpt, error, latency = None, "", "the subscription is inactive: not sent", 0
        final = True
    else:
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.pk),
            SIGNATURE_HEADER: signature_header(webhook_secret(subscription), body),
        }
        started = time.monotonic()
        status_code, excerpt, error = _post(subscription.url, body, headers, settings.MDEFLEET_WEBHOOK_TIMEOUT)
        latency = int((time.monotonic() - started) * 1000)
        final = False
    ok = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not ok:
        error = f"HTTP {status_code}"
    done = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=done,
            status_code=status_code,
            latency_ms=latency,
            response_excerpt=excerpt,
            error=error,
            manual=manual,
        )
        delivery.attempts += 1
        delivery.locked_until = None
        delivery.redeliver_requested = False
        if ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.DELIVERED, done, None
        elif final or delivery.attempts >= settings.MDEFLEET_WEBHOOK_MAX_ATTEMPTS:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        else:
            delivery.next_attempt_at = done + timedelta(seconds=backoff_seconds(delivery.attempts))
        delivery.save(
            update_fields=[
                "attempts",
                "locked_until",
                "redeliver_requested",
                "status",
                "delivered_at",
                "next_attempt_at",
            ]
        )
    if not ok:
        log.info(
            "webhook delivery %s (%s) attempt %s failed: %s", delivery.pk, delivery.event, delivery.attempts, error
        )
    return str(delivery.status)


def webhook_deliveries_tick() -> int:
    """The beat's sweep: enqueue every pending delivery that is due and not being sent; returns how many."""
    from mdefleet.webhooks.tasks import webhook_deliver_task

    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for delivery_id in due:
        enqueue(webhook_deliver_task, delivery_id)
    return len(due)


def webhook_deliveries_prune(*, now: datetime | None = None) -> int:
    """Delete delivered and failed deliveries (and their attempts) older than the retention; audited.

    Pending ones stay whatever their age: they are work not done yet.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.MDEFLEET_WEBHOOK_RETENTION_DAYS)
    with transaction.atomic():
        _, deleted = WebhookDelivery.objects.filter(
            status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.FAILED], created_at__lt=cutoff
        ).delete()
        count = deleted.get(WebhookDelivery._meta.label, 0)
        if count:
            audit_record(
                actor=SYSTEM,
                action="webhook.deliveries_pruned",
                details={"deliveries": count, "before": cutoff.isoformat()},
            )
    return count


def webhook_redeliver(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, whatever its state; the new attempt is logged as manual."""
    from mdefleet.webhooks.tasks import webhook_deliver_task

    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        before = delivery.status
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.redeliver_requested = True
        delivery.save(update_fields=["status", "next_attempt_at", "redeliver_requested"])
        audit_record(
            actor=actor,
            action="webhook.redeliver",
            target=delivery.subscription,
            details={"delivery": delivery.pk, "event": delivery.event, "before": before},
        )
        delivery_id = delivery.pk
        transaction.on_commit(lambda: enqueue(webhook_deliver_task, delivery_id))
    return delivery


def webhook_ping(*, actor: Actor, subscription: WebhookSubscription) -> WebhookDelivery:
    """Queue a ``ping`` event to this one subscription (active or not: it is a test of the receiver)."""
    with transaction.atomic():
        audit_record(actor=actor, action="webhook.ping", target=subscription)
        [delivery] = deliveries_create(
            event=PING, payload=ping_payload(subscription), subscription_ids=[subscription.pk]
        )
    return delivery
