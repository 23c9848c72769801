"""Scheduled rollouts on a frozen clock: waiting for the window, starting inside it, no new host after
it closes (hosts already started finish, the rest stay pending), resuming at the next window, and
cancellation past the start-before deadline. Also the schedule on the pages and in the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from deployments.choices import HostRunStatus, RolloutStatus, WaveStatus
from deployments.comparison import METRICS
from deployments.execution import _StatusGate, host_runs_claim
from deployments.models import HostRun, Profile, Rollout, Wave
from deployments.services.rollouts import (
    ActionRefused,
    rollout_advance,
    rollout_create,
    rollout_start,
    rollouts_tick,
)
from deployments.services.schedules import rollout_window_state
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.broker import Broker
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]

BERLIN = ZoneInfo("Europe/Berlin")
NIGHTS = {
    "schedule_timezone": "Europe/Berlin",
    "maintenance_windows": [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}],
}
UNGATED = {"regression": {metric: None for metric in METRICS}}


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def dispatched(broker: Broker) -> Callable[[], int]:
    """How many wave tasks were published so far to the real, flushed test Redis db (no worker takes them)."""
    return lambda: len(broker.sent("deployments.tasks.rollout_run_task"))


@pytest.fixture
def profile() -> Profile:
    return ProfileFactory()


def plan(profile: Profile, hosts: int = 3, **schedule: Any) -> Rollout:
    return rollout_create(
        actor=SYSTEM,
        name="night shift",
        profile=profile,
        selection={"ids": [h.pk for h in eligible_hosts(hosts, prefix="night")]},
        wave_plan="1, 100%",
        gates=UNGATED,
        schedule={**NIGHTS, **schedule},
    )


@pytest.fixture
def tick(django_capture_on_commit_callbacks: Any) -> Any:
    """One beat tick, with its after-commit dispatches run (the test's transaction never commits)."""

    def run() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            rollouts_tick()

    return run


def finish(run: HostRun) -> None:
    HostRun.objects.filter(pk=run.pk).update(status=HostRunStatus.OK, finished_at=timezone.now(), claimed_by="")


def fresh(rollout: Rollout) -> Rollout:
    return Rollout.objects.get(pk=rollout.pk)


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def test_a_scheduled_rollout_waits_for_its_window_runs_inside_it_and_stops_new_hosts_when_it_closes(
    profile: Profile, dispatched: Callable[[], int], tick: Any
) -> None:
    with at(berlin(2026, 11, 30, 12, 0)):  # Monday noon
        rollout = plan(profile)
        rollout_start(actor=SYSTEM, rollout=rollout)
        rollout = fresh(rollout)
        assert rollout.status == RolloutStatus.SCHEDULED
        assert rollout.next_action_at == berlin(2026, 12, 1, 22, 0)
        assert rollout_window_state(rollout)["note"] == "waiting for window (opens Tue 22:00 CET)"
        assert host_runs_claim(rollout_id=rollout.pk, worker="w1", limit=10) == []
        assert dispatched() == 0

    with at(berlin(2026, 12, 1, 21, 59, 50)):  # ten seconds early: the tick leaves it waiting
        tick()
        assert fresh(rollout).status == RolloutStatus.SCHEDULED

    with at(berlin(2026, 12, 1, 22, 0, 5)):  # inside the window: wave 1 (the canary) starts
        tick()
        rollout = fresh(rollout)
        assert rollout.status == RolloutStatus.RUNNING
        assert rollout.started_at == berlin(2026, 12, 1, 22, 0, 5)
        assert dispatched() == 1
        (canary,) = host_runs_claim(rollout_id=rollout.pk, worker="w1", limit=10)

    with at(berlin(2026, 12, 2, 2, 30)):  # the window closed while the canary ran; it finishes
        finish(canary)
        rollout_advance(rollout_id=rollout.pk)
        rollout = fresh(rollout)
        # The canary's wave passed, but wave 2 does not start outside a window: it waits for Thursday.
        assert rollout.status == RolloutStatus.SOAKING
        assert rollout.next_action_at == berlin(2026, 12, 3, 22, 0)
        assert Wave.objects.get(rollout=rollout, index=1).status == WaveStatus.PENDING
        assert rollout_window_state(rollout)["note"] == "waiting for window (opens Thu 22:00 CET)"
        tick()
        assert dispatched() == 1

    with at(berlin(2026, 12, 3, 22, 0, 5)):  # Thursday's window: wave 2 starts by itself
        tick()
        rollout = fresh(rollout)
        assert rollout.status == RolloutStatus.RUNNING and rollout.current_wave == 1
        assert dispatched() == 2

    with at(berlin(2026, 12, 4, 1, 59)):  # one host starts a minute before the window closes
        (started,) = host_runs_claim(rollout_id=rollout.pk, worker="w1", limit=1)

    with at(berlin(2026, 12, 4, 2, 0)):  # closed: no new host is claimed, nor let through the runner's gate
        assert host_runs_claim(rollout_id=rollout.pk, worker="w2", limit=10) == []
        assert _StatusGate(rollout.pk)._may_start() is False
        finish(started)  # the host already started finishes
        rollout_advance(rollout_id=rollout.pk)

    with at(berlin(2026, 12, 4, 2, 10)):
        tick()
        rollout = fresh(rollout)
        assert rollout.status == RolloutStatus.RUNNING
        assert dispatched() == 2  # nothing dispatched while closed
        statuses = sorted(rollout.host_runs.values_list("status", flat=True))
        assert statuses == [HostRunStatus.OK, HostRunStatus.OK, HostRunStatus.PENDING]
        state = rollout_window_state(rollout)
        assert state["waiting_for_window"] and state["note"] == "waiting for window (opens Tue 22:00 CET)"

    with at(berlin(2026, 12, 8, 22, 0, 5)):  # next Tuesday: the pending host goes on by itself
        tick()
        assert dispatched() == 3
        assert _StatusGate(rollout.pk)._may_start() is True
        (last,) = host_runs_claim(rollout_id=rollout.pk, worker="w1", limit=10)
        finish(last)
        rollout_advance(rollout_id=rollout.pk)
        assert fresh(rollout).status == RolloutStatus.COMPLETED


def test_a_scheduled_rollout_is_cancelled_past_its_start_before_deadline(
    profile: Profile, dispatched: Callable[[], int], tick: Any
) -> None:
    with at(berlin(2026, 11, 30, 12, 0)):
        rollout = plan(profile, start_before=berlin(2026, 12, 1, 20, 0))  # before Tuesday's window opens
        rollout_start(actor=SYSTEM, rollout=rollout)
        assert fresh(rollout).next_action_at == berlin(2026, 12, 1, 20, 0)
    with at(berlin(2026, 12, 1, 20, 0, 5)), mock.patch("deployments.services.schedules.emit_event") as emit:
        tick()
        rollout = fresh(rollout)
    assert rollout.status == RolloutStatus.ABORTED
    assert rollout.halt_reason.startswith("Cancelled: could not start before its deadline Tue 2026-12-01 20:00 CET")
    assert set(rollout.host_runs.values_list("status", flat=True)) == {HostRunStatus.CANCELLED}
    assert dispatched() == 0
    event = AuditEvent.objects.get(action="rollout.schedule_expired")
    assert event.details["cancelled"] == 3
    emit.assert_called_once_with("rollout.aborted", mock.ANY, reason="start_before_passed")


def test_start_at_holds_a_rollout_back_even_inside_a_window(
    profile: Profile, dispatched: Callable[[], int], tick: Any
) -> None:
    with at(berlin(2026, 12, 1, 22, 30)):
        rollout = plan(profile, start_at=berlin(2026, 12, 3, 23, 0))
        rollout_start(actor=SYSTEM, rollout=rollout)
        rollout = fresh(rollout)
        assert rollout.status == RolloutStatus.SCHEDULED
        assert rollout_window_state(rollout)["note"] == "waiting for start time (opens Thu 23:00 CET)"
    with at(berlin(2026, 12, 3, 23, 0, 1)):
        tick()
        assert fresh(rollout).status == RolloutStatus.RUNNING


def test_starting_inside_the_window_runs_at_once_and_past_the_deadline_is_refused(
    profile: Profile, dispatched: Callable[[], int], tick: Any
) -> None:
    with at(berlin(2026, 12, 1, 22, 30)):
        rollout = plan(profile)
        rollout_start(actor=SYSTEM, rollout=rollout)
        assert fresh(rollout).status == RolloutStatus.RUNNING
        late = rollout_create(
            actor=SYSTEM,
            name="too late",
            profile=profile,
            selection={"ids": [h.pk for h in eligible_hosts(1, prefix="late")]},
            wave_plan="100%",
            schedule={**NIGHTS, "start_before": berlin(2026, 12, 1, 22, 0) - timedelta(days=1)},
        )
        with pytest.raises(ActionRefused, match=r"deadline .* has passed"):
            rollout_start(actor=SYSTEM, rollout=late)
        assert fresh(late).status == RolloutStatus.DRAFT


def test_bad_schedule_input_refuses_the_whole_rollout_with_field_messages(profile: Profile) -> None:
    from deployments.services.rollouts import RolloutInvalid

    with pytest.raises(RolloutInvalid) as caught:
        plan(profile, schedule_timezone="Berlin", blackout_dates=["31.12.2026"])
    assert "IANA" in caught.value.errors["schedule_timezone"][0]
    assert "YYYY-MM-DD" in caught.value.errors["blackout_dates"][0]
    assert not Rollout.objects.exists()
