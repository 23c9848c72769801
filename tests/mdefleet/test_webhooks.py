"""Outgoing webhooks, services: signatures, emission on commit, sending with retries and back-off,
dead and slow receivers, the sweep, redeliver and ping — against real HTTP receivers on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from deployments.choices import HostRunStatus, RolloutStatus
from deployments.models import HostRun, Rollout
from deployments.services.rollouts import (
    rollout_abort,
    rollout_approve,
    rollout_create,
    rollout_pause,
    rollout_resume,
    rollout_retry_failed,
    rollout_start,
)
from hosts import crypto
from mdefleet.audit import SYSTEM
from mdefleet.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from mdefleet.webhooks import services
from mdefleet.webhooks.events import emit
from mdefleet.webhooks.signing import signature_header, verify_signature
from tests.broker import Broker
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)
from tests.mdefleet.webhooks_receiver import Receiver, dead_url, receiving

SECRET = "whsec_test-secret-for-signing-0123"
DELIVER = "mdefleet.webhooks.tasks.webhook_deliver_task"

# Celery messages go to the real, flushed test Redis db (`broker`), where no worker takes them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys", "broker")]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


def subscribe(url: str, events: list[str], name: str = "itsm", secret: str = SECRET, **kw: Any) -> WebhookSubscription:
    return services.webhook_subscription_create(actor=SYSTEM, name=name, url=url, events=events, secret=secret, **kw)[0]


def plan(name: str = "web tier", ticket: str = "CHG0031234") -> Rollout:
    profile = ProfileFactory(name=f"profile {name}")
    hosts = eligible_hosts(3, prefix=name.replace(" ", "")[:6])
    return rollout_create(
        actor=SYSTEM, name=name, profile=profile, selection={"ids": [h.pk for h in hosts]},
        wave_plan="1, 100%", ticket=ticket,
    )  # fmt: skip


def make_delivery(subscription: WebhookSubscription, event: str = "rollout.completed") -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        subscription=subscription, event=event, event_id="0b5e9c1e-3c59-4b5f-9a0d-5e0c1c2f4a11",
        payload={"event": event, "rollout": {"id": 1, "ticket": "CHG1"}}, next_attempt_at=timezone.now(),
    )  # fmt: skip


def come_due(delivery: WebhookDelivery) -> None:
    """The back-off wait passes (moving the row's clock rather than the test's)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


# --- signatures -----------------------------------------------------------------------------------


def test_a_signature_verifies_with_the_secret_and_the_exact_body() -> None:
    body = b'{"event":"rollout.completed"}'
    header = signature_header(SECRET, body)
    assert header.startswith("t=") and ",v1=" in header
    assert verify_signature(SECRET, header, body)


def test_a_tampered_body_a_wrong_secret_or_a_garbled_header_is_refused() -> None:
    body = b'{"event":"rollout.completed"}'
    header = signature_header(SECRET, body)
    assert not verify_signature(SECRET, header, body + b" ")
    assert not verify_signature("another-secret-of-enough-length", header, body)
    assert not verify_signature(SECRET, "", body)
    assert not verify_signature(SECRET, "v1=" + header.split("v1=")[1], body)
    assert not verify_signature(SECRET, header.split(",")[0], body)


def test_an_old_timestamp_is_refused_as_a_replay() -> None:
    body = b"{}"
    old = int(time.time()) - 600
    header = signature_header(SECRET, body, timestamp=old)
    assert not verify_signature(SECRET, header, body, tolerance=300)
    assert verify_signature(SECRET, header, body, tolerance=900)


def test_any_of_several_v1_values_may_match_during_a_secret_rotation() -> None:
    body = b"{}"
    header = signature_header(SECRET, body)
    other = signature_header("the-old-secret-still-in-use", body, timestamp=int(header[2:].split(",")[0]))
    assert verify_signature(SECRET, f"{other},v1={header.split('v1=')[1]}", body)


# --- subscriptions --------------------------------------------------------------------------------


def test_the_secret_is_stored_encrypted_and_a_generated_one_is_returned_once() -> None:
    subscription, secret = services.webhook_subscription_create(
        actor=SYSTEM, name="gen", url="https://tickets.example.com/hook", events=["rollout.completed"]
    )
    assert secret.startswith("whsec_") and len(secret) > 30
    assert secret not in subscription.secret_encrypted
    assert crypto.decrypt(subscription.secret_encrypted) == secret


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("url", {"url": "ftp://tickets.example.com/hook"}),
        ("url", {"url": "file:///etc/passwd"}),
        ("events", {"events": []}),
        ("events", {"events": ["rollout.exploded"]}),
        ("secret", {"secret": "short"}),
        ("name", {"name": "  "}),
    ],
)
def test_bad_input_is_refused_by_field_and_nothing_is_saved(field: str, changes: dict[str, Any]) -> None:
    data = {"name": "n", "url": "https://x.example.com/h", "events": ["rollout.completed"], **changes}
    with pytest.raises(services.WebhookInvalid) as refused:
        services.webhook_subscription_create(actor=SYSTEM, **data)
    assert field in refused.value.errors
    assert not WebhookSubscription.objects.exists()


# --- emission ---------------------------------------------------------------------------------


def test_an_event_becomes_one_delivery_per_active_subscriber_after_commit(
    django_capture_on_commit_callbacks: Any, broker: Broker, settings: Any
) -> None:
    settings.MDEFLEET_BASE_URL = "https://mdefleet.example.com/"
    wanted = subscribe("https://a.example.com/h", ["rollout.created", "rollout.completed"], name="a")
    subscribe("https://b.example.com/h", ["rollout.completed"], name="b")
    subscribe("https://c.example.com/h", ["rollout.created"], name="c", active=False)
    with django_capture_on_commit_callbacks(execute=True):
        rollout = plan()
    deliveries = list(WebhookDelivery.objects.all())
    assert [(d.subscription_id, d.event) for d in deliveries] == [(wanted.pk, "rollout.created")]
    payload = deliveries[0].payload
    assert payload["event"] == "rollout.created" and payload["id"] == str(deliveries[0].event_id)
    assert payload["rollout"] == {
        "id": rollout.pk,
        "name": "web tier",
        "ticket": "CHG0031234",
        "status": "draft",
        "halt_reason": "",
        "current_wave": 1,
        "waves_total": 2,
        "counts": {"pending": 3, "running": 0, "ok": 0, "failed": 0, "cancelled": 0, "total": 3},
        "url": f"https://mdefleet.example.com/rollouts/{rollout.pk}/",
        "report_url": f"https://mdefleet.example.com/rollouts/{rollout.pk}/report/",
        "api_url": f"https://mdefleet.example.com/api/v1/rollouts/{rollout.pk}/",
        "api_report_url": f"https://mdefleet.example.com/api/v1/rollouts/{rollout.pk}/report/",
    }
    assert SECRET not in json.dumps(payload)
    assert broker.sent(DELIVER) == [(deliveries[0].pk,)]


def test_the_state_machine_emits_started_wave_paused_and_aborted(django_capture_on_commit_callbacks: Any) -> None:
    subscribe("https://a.example.com/h", ["rollout.started", "wave.started", "rollout.paused", "rollout.aborted"])
    rollout = plan()
    with django_capture_on_commit_callbacks(execute=True):
        rollout_start(actor=SYSTEM, rollout=rollout)
        rollout_pause(actor=SYSTEM, rollout=rollout)
        rollout_abort(actor=SYSTEM, rollout=rollout)
    events = list(WebhookDelivery.objects.order_by("id").values_list("event", "payload"))
    assert [e for e, _ in events] == ["wave.started", "rollout.started", "rollout.paused", "rollout.aborted"]
    assert events[0][1]["wave"]["number"] == 1 and events[0][1]["wave"]["status"] == "running"
    assert [p["rollout"]["status"] for _, p in events] == ["running", "running", "paused", "aborted"]


def test_resume_retry_and_approve_are_announced_with_who_and_how_many(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.MDEFLEET_FOUR_EYES = False
    subscribe("https://a.example.com/h", ["rollout.resumed", "rollout.retried", "wave.approved"])
    rollout = plan()
    with django_capture_on_commit_callbacks(execute=True):
        rollout_start(actor=SYSTEM, rollout=rollout)
        rollout_pause(actor=SYSTEM, rollout=rollout)
        rollout_resume(actor=SYSTEM, rollout=rollout)
        first = HostRun.objects.filter(rollout=rollout, wave__index=0)
        first.update(status=HostRunStatus.FAILED, reason="disk full")
        rollout_retry_failed(actor=SYSTEM, rollout=rollout)
        Rollout.objects.filter(pk=rollout.pk).update(status=RolloutStatus.WAITING_APPROVAL)
        first.update(status=HostRunStatus.OK, reason="")
        rollout_approve(actor=SYSTEM, rollout=Rollout.objects.get(pk=rollout.pk))
    events = list(WebhookDelivery.objects.order_by("id").values_list("event", "payload"))
    assert [e for e, _ in events] == ["rollout.resumed", "rollout.retried", "wave.approved"]
    resumed, retried, approved = (p for _, p in events)
    assert resumed["rollout"]["status"] == "running"
    assert retried["hosts_retried"] == 1
    assert approved["wave"]["number"] == 1 and approved["approved_by"] == "system"
    assert approved["rollout"]["status"] != "waiting_approval"  # taken after the promotion


def test_failed_hosts_of_one_result_batch_make_one_host_failed_event(django_capture_on_commit_callbacks: Any) -> None:
    subscribe("https://a.example.com/h", ["host.failed"])
    rollout = plan()
    runs = list(HostRun.objects.filter(rollout=rollout).select_related("host"))
    HostRun.objects.filter(pk__in=[r.pk for r in runs[:2]]).update(status=HostRunStatus.FAILED, reason="disk full")
    with django_capture_on_commit_callbacks(execute=True):
        emit("host.failed", rollout.pk, host_runs=[r.pk for r in runs[:2]])
    [delivery] = WebhookDelivery.objects.all()
    hosts = delivery.payload["hosts"]
    assert [h["name"] for h in hosts] == [r.host.name for r in runs[:2]]
    assert hosts[0]["reason"] == "disk full" and hosts[0]["page_url"].endswith(f"/hosts/{runs[0].pk}/")
    assert delivery.payload["rollout"]["ticket"] == "CHG0031234"  # read from the row: only the id was at hand


def test_a_rolled_back_transaction_emits_nothing(django_capture_on_commit_callbacks: Any) -> None:
    subscribe("https://a.example.com/h", ["rollout.created"])
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            plan()
            raise RuntimeError("the caller failed after planning")
    assert not WebhookDelivery.objects.exists()


def test_an_event_nobody_subscribed_to_writes_nothing_and_costs_one_query(
    django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    subscribe("https://a.example.com/h", ["rollout.completed"])
    rollout = plan()
    with django_assert_num_queries(1), django_capture_on_commit_callbacks(execute=True):
        emit("wave.started", rollout, wave=0)
    assert not WebhookDelivery.objects.exists()


def test_a_broken_subscription_never_breaks_the_rollout_that_emitted(django_capture_on_commit_callbacks: Any) -> None:
    subscribe("https://a.example.com/h", ["rollout.created"])
    with (
        mock.patch("mdefleet.webhooks.events.deliveries_create", side_effect=RuntimeError("db hiccup")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        rollout = plan()
    assert Rollout.objects.filter(pk=rollout.pk).exists()


# --- sending --------------------------------------------------------------------------------------


def test_a_delivery_is_posted_signed_with_its_event_and_delivery_headers(receiver: Receiver) -> None:
    delivery = make_delivery(subscribe(receiver.url, ["rollout.completed"]))
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "delivered"
    [request] = receiver.received
    assert request.verifies(SECRET)
    assert request.headers["X-Mdefleet-Event"] == "rollout.completed"
    assert request.headers["X-Mdefleet-Delivery"] == str(delivery.pk)
    assert request.json == delivery.payload
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code == 200 and attempt.response_excerpt == '{"ok": true, "n": 1}' and not attempt.error


def test_a_failing_receiver_is_retried_with_exponential_back_off_until_it_answers(settings: Any) -> None:
    settings.MDEFLEET_WEBHOOK_BACKOFF_SECONDS = 30
    assert [services.backoff_seconds(n) for n in range(1, 6)] == [30, 120, 480, 1920, 7680]
    receiver = Receiver(statuses=[500, 503, 200]).start()
    try:
        delivery = make_delivery(subscribe(receiver.url, ["rollout.completed"]))
        outcomes, waits = [], []
        for _ in range(3):
            outcomes.append(services.webhook_delivery_attempt(delivery_id=delivery.pk))
            delivery.refresh_from_db()
            if delivery.status == "pending":
                last = WebhookAttempt.objects.filter(delivery=delivery).first()
                waits.append(round((delivery.next_attempt_at - last.at).total_seconds()))
                # Not due yet: a duplicate message or the sweep sends nothing.
                assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "skipped"
                come_due(delivery)
    finally:
        receiver.stop()
    assert outcomes == ["pending", "pending", "delivered"]
    assert waits == [30, 120]
    assert delivery.attempts == 3 and delivery.delivered_at is not None
    codes = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("id").values_list("status_code", "error"))
    assert codes == [(500, "HTTP 500"), (503, "HTTP 503"), (200, "")]
    assert len(receiver.received) == 3 and all(r.verifies(SECRET) for r in receiver.received)
    # Each attempt is signed afresh; the event id stays, so the receiver can drop duplicates.
    assert len({r.body for r in receiver.received}) == 1


def test_a_delivery_that_never_succeeds_fails_after_the_last_attempt(settings: Any) -> None:
    settings.MDEFLEET_WEBHOOK_MAX_ATTEMPTS = 2
    for received in receiving(statuses=[502]):
        delivery = make_delivery(subscribe(received.url, ["rollout.completed"]))
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
        come_due(delivery)
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at is None and delivery.attempts == 2


def test_a_dead_receiver_is_logged_as_an_attempt_without_a_status() -> None:
    delivery = make_delivery(subscribe(dead_url(), ["rollout.completed"]))
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None and "ConnectionRefused" in attempt.error


def test_a_slow_receiver_is_cut_off_at_the_timeout(settings: Any) -> None:
    settings.MDEFLEET_WEBHOOK_TIMEOUT = 1
    for received in receiving(delay=3):
        delivery = make_delivery(subscribe(received.url, ["rollout.completed"]))
        started = time.monotonic()
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
        assert time.monotonic() - started < 2.5
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None and "timed out" in attempt.error.lower()


def test_an_inactive_subscription_sends_nothing_and_says_why(receiver: Receiver) -> None:
    subscription = subscribe(receiver.url, ["rollout.completed"])
    delivery = make_delivery(subscription)
    services.webhook_subscription_update(actor=SYSTEM, subscription=subscription, active=False)
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "failed"
    assert receiver.received == []
    assert "inactive" in WebhookAttempt.objects.get(delivery=delivery).error


def test_a_delivery_being_sent_is_not_claimed_twice() -> None:
    delivery = make_delivery(subscribe("https://a.example.com/h", ["rollout.completed"]))
    now = timezone.now()
    assert services._claim(delivery.pk, now)
    assert not services._claim(delivery.pk, now)
    assert services.webhook_deliveries_tick() == 0  # leased: the sweep leaves it alone


def test_the_sweep_re_dispatches_due_deliveries_only(broker: Broker) -> None:
    subscription = subscribe("https://a.example.com/h", ["rollout.completed"])
    due = make_delivery(subscription)
    later = make_delivery(subscription)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=2))
    done = make_delivery(subscription)
    WebhookDelivery.objects.filter(pk=done.pk).update(status="delivered")
    assert services.webhook_deliveries_tick() == 1
    assert broker.sent(DELIVER) == [(due.pk,)]


def test_redeliver_sends_a_delivered_event_again_as_a_manual_attempt(
    receiver: Receiver, django_capture_on_commit_callbacks: Any, broker: Broker
) -> None:
    delivery = make_delivery(subscribe(receiver.url, ["rollout.completed"]))
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_redeliver(actor=SYSTEM, delivery=delivery)
    assert broker.sent(DELIVER)[-1:] == [(delivery.pk,)]
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "delivered"
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("id").values_list("manual", flat=True))
    assert attempts == [False, True]
    assert len(receiver.received) == 2 and receiver.received[0].json == receiver.received[1].json


def test_ping_reaches_the_receiver_signed(receiver: Receiver, django_capture_on_commit_callbacks: Any) -> None:
    subscription = subscribe(receiver.url, ["rollout.completed"])
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_ping(actor=SYSTEM, subscription=subscription)
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "delivered"
    assert receiver.events() == ["ping"] and receiver.received[0].verifies(SECRET)
