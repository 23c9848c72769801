"""Two beat processes by mistake: two ticks at once never start a wave twice (guarded in the database)."""

from __future__ import annotations

import threading
from datetime import datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connections

from deployments.choices import RolloutStatus, WaveStatus
from deployments.models import Rollout, Wave
from deployments.services import rollouts as services
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.broker import Broker
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fernet_keys")]


def test_two_concurrent_ticks_start_a_due_scheduled_rollout_once(broker: Broker) -> None:
    rollout = services.rollout_create(
        actor=SYSTEM,
        name="twice?",
        profile=ProfileFactory(),
        selection={"ids": [h.pk for h in eligible_hosts(4, prefix="dbl")]},
        wave_plan="2, 100%",
        schedule={"start_at": datetime(2020, 1, 1, tzinfo=ZoneInfo("UTC"))},
    )
    # Scheduled and due now (its start time has passed): exactly what two beats would both see.
    Rollout.objects.filter(pk=rollout.pk).update(status=RolloutStatus.SCHEDULED, next_action_at=rollout.created_at)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    real_advance = services.rollout_advance

    def advance_together(*, rollout_id: int) -> str:
        barrier.wait(timeout=10)  # both ticks found the rollout due before either moved it
        return real_advance(rollout_id=rollout_id)

    def beat() -> None:
        try:
            services.rollouts_tick()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connections.close_all()  # each thread has its own connection

    with mock.patch.object(services, "rollout_advance", advance_together):
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.RUNNING
    assert list(Wave.objects.filter(rollout=rollout).values_list("status", flat=True)) == [
        WaveStatus.RUNNING,
        WaveStatus.PENDING,
    ]
    assert AuditEvent.objects.filter(action="rollout.start", target_id=str(rollout.pk)).count() == 1
    # One dispatch, really published to Redis: the second tick found it running and dispatched nothing.
    assert len(broker.sent("deployments.tasks.rollout_run_task")) == 1


def test_a_stale_caller_cannot_start_a_wave_that_already_started() -> None:
    """The second guard: the wave moves only from pending, and only that caller dispatches."""
    rollout = services.rollout_create(
        actor=SYSTEM,
        name="stale",
        profile=ProfileFactory(),
        selection={"ids": [h.pk for h in eligible_hosts(2, prefix="stl")]},
        wave_plan="100%",
    )
    stale_copy = Rollout.objects.get(pk=rollout.pk)
    with mock.patch.object(services, "_dispatch_wave") as dispatch:
        assert services._start_wave(Rollout.objects.get(pk=rollout.pk), 0, rollout.created_at) is True
        assert services._start_wave(stale_copy, 0, rollout.created_at) is False
    assert dispatch.call_count == 1
