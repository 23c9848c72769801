"""A ticketing system drives mdefleet over HTTP on loopback: the live server, real Celery workers,
real SSH to the simulated fleet, and a real webhook receiver that verifies every signature.

The ticket opens a rollout (twice, with one Idempotency-Key: one rollout), starts it, follows it
through signed webhooks, reads its report and is told rollout.completed. A dead and a slow receiver
beside it neither hold the rollout back nor stop the other subscribers' deliveries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hosts.sim import SimFleet
from mdefleet.audit import SYSTEM
from mdefleet.models import WebhookAttempt, WebhookDelivery
from mdefleet.service_accounts import service_account_create
from mdefleet.webhooks.services import webhook_deliveries_tick
from tests.integration.http import ApiClient
from tests.integration.rollout_setup import discovered_fleet, profile_over_api, token_for
from tests.integration.worker import WorkerProcess, wait_for
from tests.mdefleet.webhooks_receiver import Receiver, dead_url, receiving

pytestmark = pytest.mark.integration

PROFILES = ["rhel-9.4", "rocky-9.4", "alma-9.4", "ol-8.10"]
FAST = {"MDEFLEET_CPU_SAMPLE_SECONDS": "1", "MDEFLEET_SSH_CONNECT_TIMEOUT": "5", "MDEFLEET_CLAIM_STALE_SECONDS": "4"}
TICKET = "CHG0031234"
ALL_EVENTS = [
    "rollout.created", "rollout.started", "wave.started", "wave.completed", "gate.failed", "rollout.paused",
    "rollout.halted", "rollout.completed", "rollout.aborted", "host.failed",
]  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


def rollout_body(profile_id: int, host_ids: list[int]) -> dict[str, Any]:
    return {
        "name": f"Defender for {TICKET}",
        "profile": profile_id,
        "ticket": TICKET,
        "selection": {"ids": host_ids},
        "wave_plan": ["1", "100%"],
        "gates": {"max_failed_per_wave": {"value": 0, "unit": "count"}},
        "soak_seconds": 0,
        "settle_seconds": 0,
    }


def subscribe(admin: ApiClient, name: str, url: str) -> str:
    created = admin.post("/api/v1/webhooks/", {"name": name, "url": url, "events": ALL_EVENTS})
    assert created.status == 201, created.body
    return str(created.body["generated_secret"])


def test_a_ticket_opens_follows_and_is_closed_by_a_rollout_through_the_api_and_signed_webhooks(
    live_server: Any,
    celery_workers: Callable[..., WorkerProcess],
    sim_fleet_factory: Callable[..., SimFleet],
    receiver: Receiver,
    settings: Any,
) -> None:
    settings.MDEFLEET_BASE_URL = live_server.url  # rollout.created is emitted by the web process
    fleet = sim_fleet_factory(len(PROFILES), profiles=PROFILES, seed=21, time_scale=0.05)
    hosts = discovered_fleet(fleet)
    admin = ApiClient(live_server.url, token_for("admin"))
    profile_id = profile_over_api(admin)
    # An admin subscribes the ticketing system's receiver; mdefleet generates the secret, shown once.
    secret = subscribe(admin, "servicenow", receiver.url)
    _, token = service_account_create(actor=SYSTEM, name="servicenow", role="operator")
    itsm = ApiClient(live_server.url, token)

    key = {"Idempotency-Key": f"{TICKET}-rollout-1"}
    first = itsm.post("/api/v1/rollouts/", rollout_body(profile_id, [h.pk for h in hosts]), headers=key)
    assert first.status == 201, first.body
    again = itsm.post("/api/v1/rollouts/", rollout_body(profile_id, [h.pk for h in hosts]), headers=key)
    assert again.status in (200, 201) and again.body["id"] == first.body["id"], again.body
    assert itsm.get(f"/api/v1/rollouts/?ticket={TICKET}").body["count"] == 1
    rollout_url = f"/api/v1/rollouts/{first.body['id']}/"

    celery_workers("w1", MDEFLEET_BASE_URL=live_server.url, **FAST)
    assert itsm.post(rollout_url + "start/").status == 200
    wait_for(lambda: "rollout.completed" in receiver.events(), timeout=240, what="the rollout.completed webhook")

    # Every delivery verifies with the secret; a tampered one would not.
    assert all(r.verifies(secret) for r in receiver.received)
    assert not receiver.received[0].verifies(secret + "x")
    events = receiver.events()
    assert events.count("rollout.created") == 1  # the replayed create made no second rollout, no second event
    assert {"rollout.created", "rollout.started", "rollout.completed"} <= set(events)
    assert events.count("wave.started") == 2 and events.count("wave.completed") == 2
    assert "host.failed" not in events and "gate.failed" not in events
    payloads = sorted((r.json for r in receiver.received), key=lambda p: p["occurred_at"])
    assert payloads[0]["event"] == "rollout.created" and payloads[-1]["event"] == "rollout.completed"
    done = payloads[-1]
    assert done["rollout"]["id"] == first.body["id"] and done["rollout"]["ticket"] == TICKET
    assert done["rollout"]["status"] == "completed"
    assert done["rollout"]["counts"]["ok"] == len(hosts) == done["rollout"]["counts"]["total"]
    assert done["rollout"]["url"] == f"{live_server.url}/rollouts/{first.body['id']}/"
    assert [p["wave"]["gate_verdict"] for p in payloads if p["event"] == "wave.completed"] == ["pass", "pass"]
    assert len({p["id"] for p in payloads}) == len(payloads)

    # The ticket follows the links in the event: the report, through the public API.
    report = itsm.get(done["rollout"]["api_report_url"].removeprefix(live_server.url))
    assert report.status == 200, report.body
    assert itsm.get(rollout_url).body["status"] == "completed"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_dead_and_a_slow_receiver_neither_hold_the_rollout_nor_the_other_subscribers(
    live_server: Any,
    celery_workers: Callable[..., WorkerProcess],
    sim_fleet_factory: Callable[..., SimFleet],
    receiver: Receiver,
) -> None:
    fleet = sim_fleet_factory(2, profiles=PROFILES[:2], seed=22, time_scale=0.05)
    hosts = discovered_fleet(fleet)
    admin = ApiClient(live_server.url, token_for("admin"))
    operator = ApiClient(live_server.url, token_for("operator"))
    profile_id = profile_over_api(admin)
    slow = Receiver(delay=20).start()
    try:
        subscribe(admin, "dead", dead_url())
        subscribe(admin, "slow", slow.url)
        good_secret = subscribe(admin, "good", receiver.url)
        created = operator.post("/api/v1/rollouts/", rollout_body(profile_id, [h.pk for h in hosts]))
        assert created.status == 201, created.body
        rollout_url = f"/api/v1/rollouts/{created.body['id']}/"

        # Rollouts and deliveries on their own workers (queues), as production may run them.
        celery_workers("rollouts", CELERY_WORKER_QUEUES="mdefleet", **FAST)
        celery_workers("hooks", CELERY_WORKER_QUEUES="webhooks", MDEFLEET_WEBHOOK_TIMEOUT="2")
        assert operator.post(rollout_url + "start/").status == 200
        wait_for(lambda: operator.get(rollout_url).body["status"] == "completed", timeout=240, what="completion")

        # The rollout completed although the slow and dead receivers never accepted a delivery.
        stuck = WebhookDelivery.objects.filter(subscription__name__in=["dead", "slow"])
        assert stuck.exists() and not stuck.filter(status="delivered").exists()

        def all_sent() -> bool:
            webhook_deliveries_tick()  # what beat runs every 15 s
            return (
                "rollout.completed" in receiver.events()
                and not WebhookDelivery.objects.filter(
                    subscription__name__in=["dead", "slow"], event="rollout.completed", attempts=0
                ).exists()
            )

        wait_for(all_sent, timeout=240, what="every subscriber to be tried with rollout.completed")
    finally:
        slow.stop()
    assert all(r.verifies(good_secret) for r in receiver.received)
    errors = dict(
        WebhookAttempt.objects.filter(delivery__event="rollout.completed")
        .exclude(delivery__subscription__name="good")
        .values_list("delivery__subscription__name", "error")
    )
    assert "refused" in errors["dead"].lower() and "timed out" in errors["slow"].lower()
    retry = WebhookDelivery.objects.get(subscription__name="dead", event="rollout.completed")
    assert retry.status == "pending" and retry.next_attempt_at is not None  # backed off, to be retried
