"""A rollout's schedule: reading it, the window state shown on pages and in the API, and editing it.

The window math is pure (``deployments/schedules.py``); this module binds it to the rollout row.
The state machine (``deployments/services/rollouts.py``) asks ``rollout_may_start_wave`` before a
wave starts, and the host claim (``deployments/execution.py``) before a host starts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments import schedules
from deployments.choices import RolloutStatus
from deployments.models import Rollout
from mdefleet.audit import Actor, audit_record

SCHEDULE_FIELDS = ["start_at", "start_before", "schedule_timezone", "maintenance_windows", "blackout_dates"]
# Statuses in which the schedule may still change: nothing of the rollout has run yet.
EDITABLE = (RolloutStatus.DRAFT, RolloutStatus.SCHEDULED)


class ScheduleRefused(Exception):
    """A schedule change that does not apply to the rollout's state."""


def rollout_schedule(rollout: Rollout) -> schedules.Schedule:
    """The rollout's schedule; a stored value that no longer parses counts as no restriction."""
    try:
        return schedules.schedule_from_fields(
            schedule_timezone=rollout.schedule_timezone,
            maintenance_windows=rollout.maintenance_windows,
            blackout_dates=rollout.blackout_dates,
            start_at=rollout.start_at,
            start_before=rollout.start_before,
        )
    except schedules.ScheduleError:
        return schedules.Schedule(start_at=rollout.start_at, start_before=rollout.start_before)


def schedule_fields_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Validate schedule input (any of SCHEDULE_FIELDS) to the stored fields; ScheduleError by field."""
    _, stored = schedules.schedule_clean(
        timezone_name=data.get("schedule_timezone") or "UTC",
        windows=data.get("maintenance_windows") or [],
        blackout_dates=data.get("blackout_dates") or [],
        start_at=data.get("start_at"),
        start_before=data.get("start_before"),
    )
    return stored


def rollout_is_scheduled(rollout: Rollout) -> bool:
    """Whether anything in the schedule can hold the rollout back (a start time, windows or blackouts)."""
    return bool(rollout.start_at or rollout.start_before or rollout.maintenance_windows or rollout.blackout_dates)


def rollout_may_start_wave(rollout: Rollout, now: datetime) -> bool:
    """Whether a wave (or a host of a running wave) may start now: inside a window, not on a blackout day."""
    if not (rollout.maintenance_windows or rollout.blackout_dates):
        return True
    return schedules.is_open(rollout_schedule(rollout), now)


def rollout_window_state(rollout: Rollout, now: datetime | None = None) -> dict[str, Any]:
    """What the page and the API say about the schedule right now.

    ``waiting_for_window`` is true when the rollout would start a wave or a host but the schedule
    holds it back; ``note`` says so in words ("waiting for window (opens Tue 22:00 CET)").
    """
    now = now or timezone.now()
    schedule = rollout_schedule(rollout)
    state: dict[str, Any] = {
        "scheduled": rollout_is_scheduled(rollout),
        "open": None,
        "waiting_for_window": False,
        "opens_at": None,
        "closes_at": None,
        "note": "",
        "start_at_label": schedules.local_label(rollout.start_at, schedule.tz) if rollout.start_at else "",
        "start_before_label": schedules.local_label(rollout.start_before, schedule.tz) if rollout.start_before else "",
    }
    if not state["scheduled"]:
        return state
    open_now = schedules.is_open(schedule, now)
    state["open"] = open_now
    if open_now:
        state["closes_at"] = schedules.closes_at(schedule, now)
    waiting_statuses = (RolloutStatus.SCHEDULED, RolloutStatus.RUNNING, RolloutStatus.SOAKING)
    if rollout.status not in waiting_statuses:
        return state
    if rollout.status == RolloutStatus.SCHEDULED:
        opens = schedules.next_start(schedule, now)
        if opens is None:
            state["note"] = "no window opens within a year"
        elif opens > now:
            state.update(waiting_for_window=True, opens_at=opens)
            reason = "start time" if schedule.start_at and opens == schedule.start_at else "window"
            state["note"] = f"waiting for {reason} (opens {schedules.short_label(opens, schedule.tz)})"
        if schedule.start_before is not None:
            deadline = schedules.local_label(schedule.start_before, schedule.tz)
            state["note"] = f"{state['note']}; cancelled if not started by {deadline}".lstrip("; ")
        return state
    if not open_now:
        opens = schedules.next_open(schedule, now)
        state.update(waiting_for_window=True, opens_at=opens)
        state["note"] = (
            f"waiting for window (opens {schedules.short_label(opens, schedule.tz)})"
            if opens
            else "waiting for window (none opens within a year)"
        )
    elif state["closes_at"]:
        state["note"] = f"window open until {schedules.short_label(state['closes_at'], schedule.tz)}"
    return state


def rollout_schedule_preview(rollout_or_fields: Rollout | dict[str, Any], now: datetime, count: int = 5) -> list[Any]:
    """The next ``count`` openings (local start and end) of a rollout's or posted schedule."""
    if isinstance(rollout_or_fields, Rollout):
        schedule = rollout_schedule(rollout_or_fields)
    else:
        schedule = schedules.schedule_from_fields(**rollout_or_fields)
    return [opening.local(schedule.tz) for opening in schedules.preview(schedule, now, count)]


def rollout_schedule_set(*, actor: Actor, rollout: Rollout, fields: dict[str, Any]) -> Rollout:
    """Replace the schedule of a draft or scheduled rollout (validated first; audited with before/after)."""
    stored = schedule_fields_clean(fields)
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if rollout.status not in EDITABLE:
            raise ScheduleRefused(
                f"the schedule of a {rollout.get_status_display().lower()} rollout cannot change; "
                "only drafts and scheduled rollouts"
            )
        before = {name: _jsonable(getattr(rollout, name)) for name in SCHEDULE_FIELDS}
        for name, value in stored.items():
            setattr(rollout, name, value)
        if rollout.status == RolloutStatus.SCHEDULED:
            # Look again at the next tick: the new schedule may let it start now.
            rollout.next_action_at = timezone.now()
        rollout.save()
        after = {name: _jsonable(getattr(rollout, name)) for name in SCHEDULE_FIELDS}
        audit_record(actor=actor, action="rollout.schedule", target=rollout, details={"before": before, "after": after})
    return rollout


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def emit_event(event: str, rollout: Rollout, **extra: Any) -> None:
    """Announce a rollout event by webhook when the webhook module is installed (it enqueues after commit)."""
    from mdefleet.webhooks.events import emit

    emit(event, rollout, **extra)
