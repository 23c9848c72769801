"""Emitting rollout events: ``emit("wave.started", rollout, wave=index)`` from the state machine.

``emit`` costs the caller no query and no network: it captures the rollout's fields as they are
now and, once the caller's transaction commits, writes one delivery row per active subscription
that asked for the event and enqueues their sending. A rolled-back transaction emits nothing; a
failure here is logged and never reaches the rollout. Sending happens on Celery (tasks.py).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from mdefleet.models import WebhookDelivery, WebhookSubscription
from mdefleet.tasks import enqueue
from mdefleet.webhooks.choices import EVENT_NAMES, FLEET_EVENTS, PING, DeliveryStatus

log = logging.getLogger(__name__)

# The rollout fields an event carries (read from the caller's in-memory row: no query).
ROLLOUT_FIELDS = ("id", "name", "ticket", "status", "halt_reason", "current_wave")
HOSTS_PER_EVENT = 500


def emit(event: str, rollout: Any, **extra: Any) -> None:
    """Announce ``event`` about ``rollout`` to its subscribers after the current transaction commits.

    ``rollout`` is the Rollout (its fields are taken as they are now) or its id. ``extra`` may hold ``wave`` (a Wave or a wave index), ``host_runs`` (HostRuns or their ids,
    for host.failed) and any JSON-serialisable details (e.g. ``reason``).
    """
    if event not in EVENT_NAMES or event in FLEET_EVENTS:
        raise ValueError(f"unknown rollout webhook event {event!r}")
    if isinstance(rollout, int):  # only the id at hand (a worker's result sink): read the row on commit
        snapshot: dict[str, Any] = {"id": rollout}
    else:
        snapshot = {name: getattr(rollout, "pk" if name == "id" else name) for name in ROLLOUT_FIELDS}
    details = {key: _capture(key, value) for key, value in extra.items()}
    transaction.on_commit(partial(_emit_committed, event, snapshot, details, timezone.now()))


def emit_fleet(event: str, **details: Any) -> None:
    """Announce a fleet event (no rollout, e.g. agent.expiring) to its subscribers after commit."""
    if event not in FLEET_EVENTS:
        raise ValueError(f"unknown fleet webhook event {event!r}")
    transaction.on_commit(partial(_emit_fleet_committed, event, details, timezone.now()))


def _emit_fleet_committed(event: str, details: dict[str, Any], occurred_at: datetime) -> None:
    try:
        targets = _subscribers(event)
        if targets:
            payload = {"event": event, "occurred_at": occurred_at.isoformat(), **details}
            deliveries_create(event=event, payload=payload, subscription_ids=targets)
    except Exception:  # a webhook problem must never reach the job that emitted it
        log.exception("could not record webhook event %s", event)


def _subscribers(event: str) -> list[int]:
    """The active subscriptions to ``event`` (events are a JSON list: filtered here, the same on SQLite)."""
    return [
        pk
        for pk, events in WebhookSubscription.objects.filter(active=True).values_list("pk", "events")
        if event in (events or [])
    ]


def _capture(key: str, value: Any) -> Any:
    if key == "wave" and not isinstance(value, int):
        return _wave_dict(value)
    if key == "host_runs":
        return [getattr(run, "pk", run) for run in value]
    return value


def _wave_dict(wave: Any) -> dict[str, Any]:
    report = wave.gate_report or {}
    return {
        "index": wave.index,
        "number": wave.index + 1,
        "planned_size": wave.planned_size,
        "status": wave.status,
        "gate_verdict": wave.gate_verdict,
        "gate_reasons": list(report.get("reasons", [])),
    }


def _emit_committed(event: str, snapshot: dict[str, Any], details: dict[str, Any], occurred_at: datetime) -> None:
    try:
        targets = _subscribers(event)
        if not targets:
            return
        payload = {
            "event": event,
            "occurred_at": occurred_at.isoformat(),
            "rollout": rollout_summary(snapshot),
            **_resolve(snapshot["id"], details),
        }
        deliveries_create(event=event, payload=payload, subscription_ids=targets)
    except Exception:  # a webhook problem must never reach the rollout that emitted it
        log.exception("could not record webhook event %s for rollout %s", event, snapshot.get("id"))


def deliveries_create(*, event: str, payload: dict[str, Any], subscription_ids: list[int]) -> list[WebhookDelivery]:
    """Write one pending delivery per subscription (one event id for all); enqueue their sending on commit."""
    from mdefleet.webhooks.tasks import webhook_deliver_task

    event_id = uuid.uuid4()
    payload = {**payload, "id": str(event_id)}
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                subscription_id=pk,
                event=event,
                event_id=event_id,
                payload=payload,
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
            )
            for pk in subscription_ids
        ]
    )
    ids = [delivery.pk for delivery in deliveries]
    # After commit (at once outside a transaction): a task must find its row.
    transaction.on_commit(lambda: [enqueue(webhook_deliver_task, pk) for pk in ids])
    return deliveries


def absolute(path: str) -> str:
    """``path`` under MDEFLEET_BASE_URL, the address people and ticketing systems reach mdefleet at."""
    return settings.MDEFLEET_BASE_URL.rstrip("/") + path


def rollout_summary(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The rollout part of every event: identity, ticket, status, host counts and links (two queries)."""
    from deployments.models import HostRun, Rollout, Wave
    from deployments.selectors import RUN_STATUSES

    rollout_id = snapshot["id"]
    if len(snapshot) == 1:
        snapshot = Rollout.objects.filter(pk=rollout_id).values(*ROLLOUT_FIELDS).get()
    counts = dict.fromkeys(RUN_STATUSES, 0)
    for row in HostRun.objects.filter(rollout_id=rollout_id).values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts.values())
    return {
        "id": rollout_id,
        "name": snapshot["name"],
        "ticket": snapshot["ticket"],
        "status": snapshot["status"],
        "halt_reason": snapshot["halt_reason"],
        "current_wave": snapshot["current_wave"] + 1,
        "waves_total": Wave.objects.filter(rollout_id=rollout_id).count(),
        "counts": counts,
        "url": absolute(reverse("deployments:rollout", args=[rollout_id])),
        "report_url": absolute(reverse("deployments:rollout-report", args=[rollout_id])),
        "api_url": absolute(f"/api/v1/rollouts/{rollout_id}/"),
        "api_report_url": absolute(f"/api/v1/rollouts/{rollout_id}/report/"),
    }


def _resolve(rollout_id: int, details: dict[str, Any]) -> dict[str, Any]:
    """Turn wave indexes and host-run ids into what a receiver can use (one query each)."""
    from deployments.models import HostRun, Wave

    out = dict(details)
    if isinstance(out.get("wave"), int):
        wave = Wave.objects.filter(rollout_id=rollout_id, index=out["wave"]).first()
        out["wave"] = _wave_dict(wave) if wave else {"index": out["wave"], "number": out["wave"] + 1}
    if "host_runs" in out:
        run_ids = out.pop("host_runs")[:HOSTS_PER_EVENT]
        runs = HostRun.objects.filter(pk__in=run_ids).select_related("host", "wave").order_by("id")
        out["hosts"] = [
            {
                "host_id": run.host_id,
                "name": run.host.name,
                "address": run.host.address,
                "wave": run.wave.index + 1,
                "status": run.status,
                "reason": run.reason,
                "page_url": absolute(reverse("deployments:rollout-host", args=[rollout_id, run.pk])),
            }
            for run in runs
        ]
    return out


def ping_payload(subscription: WebhookSubscription) -> dict[str, Any]:
    """The test event a person sends from the subscription's page."""
    return {
        "event": PING,
        "occurred_at": timezone.now().isoformat(),
        "subscription": {"id": subscription.pk, "name": subscription.name},
        "message": "mdefleet test event: your receiver is reachable and verifies signatures.",
    }
