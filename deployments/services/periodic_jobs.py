"""mdefleet's periodic jobs (django-celery-beat PeriodicTasks named "mdefleet: ..."): reading and editing.

The safety ticks re-dispatch work a lost message or a dead worker left behind (DESIGN.md): they can
be slowed down a little but never disabled.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from mdefleet.audit import Actor, audit_record

PREFIX = "mdefleet:"
SAFETY_TICKS = frozenset({"mdefleet: advance rollouts", "mdefleet: re-dispatch discoveries"})
SAFETY_MAX_SECONDS = 300
PERIOD_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
MAX_INTERVAL_SECONDS = 31 * 86400


class PeriodicJobInvalid(Exception):
    """Input that cannot schedule the job: ``errors`` maps field names to messages; nothing changed."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def periodic_job_list() -> QuerySet[PeriodicTask]:
    """Every PeriodicTask of mdefleet, by name, with its schedule."""
    return (
        PeriodicTask.objects.filter(name__startswith=PREFIX)
        .select_related("interval", "crontab", "solar", "clocked")
        .order_by("name")
    )


def is_safety_tick(task: PeriodicTask) -> bool:
    return task.name in SAFETY_TICKS


def schedule_label(task: PeriodicTask) -> str:
    """ "every 10 seconds", "cron 0 6 * * * (UTC)", or what beat has."""
    if task.interval_id:
        every, period = task.interval.every, task.interval.period
        return f"every {every} {period[:-1] if every == 1 else period}"
    if task.crontab_id:
        c = task.crontab
        return f"cron {c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} ({c.timezone})"
    return str(task.schedule) if task.pk else ""


def parse_crontab(text: str) -> dict[str, str]:
    """ "m h dom mon dow" to CrontabSchedule fields; refuses what celery's crontab refuses."""
    from celery.schedules import crontab

    parts = text.split()
    if len(parts) != 5:
        raise ValueError("five fields: minute hour day-of-month month day-of-week, e.g. 0 6 * * *")
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except Exception as exc:  # celery raises ValueError or ParseException by field
        raise ValueError(f"not a crontab: {exc}") from None
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def periodic_job_update(
    *,
    actor: Actor,
    task: PeriodicTask,
    enabled: bool,
    every: int | None = None,
    period: str | None = None,
    crontab: str | None = None,
) -> PeriodicTask:
    """Change a job's schedule (an interval or a crontab) and whether it runs; audited with before/after."""
    errors: dict[str, list[str]] = {}
    if not task.name.startswith(PREFIX):
        raise PeriodicJobInvalid({"task": ["not one of mdefleet's periodic jobs"]})
    safety = is_safety_tick(task)
    if safety and not enabled:
        errors["enabled"] = ["a safety tick cannot be disabled: it re-dispatches work that would otherwise be lost"]
    cron_fields: dict[str, str] | None = None
    if crontab:
        if safety:
            errors["crontab"] = ["a safety tick runs on an interval"]
        else:
            try:
                cron_fields = parse_crontab(crontab)
            except ValueError as exc:
                errors["crontab"] = [str(exc)]
    elif every is not None:
        if period not in PERIOD_SECONDS:
            errors["period"] = [f"one of {', '.join(PERIOD_SECONDS)}"]
        elif every < 1 or every * PERIOD_SECONDS[period] > MAX_INTERVAL_SECONDS:
            errors["every"] = ["between 1 second and 31 days"]
        elif safety and every * PERIOD_SECONDS[period] > SAFETY_MAX_SECONDS:
            errors["every"] = [f"a safety tick runs at least every {SAFETY_MAX_SECONDS // 60} minutes"]
    else:
        errors["every"] = ["give an interval or a crontab"]
    if errors:
        raise PeriodicJobInvalid(errors)
    with transaction.atomic():
        task = PeriodicTask.objects.select_for_update().get(pk=task.pk)
        before = {"schedule": schedule_label(task), "enabled": task.enabled}
        if cron_fields is not None:
            schedule, _ = CrontabSchedule.objects.get_or_create(**cron_fields, timezone="UTC")
            task.crontab, task.interval = schedule, None
        else:
            assert every is not None and period is not None
            interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
            task.interval, task.crontab = interval, None
        task.solar = task.clocked = None
        task.enabled = enabled
        task.save()  # PeriodicTasks.changed is signalled: beat reloads its schedule
        after: dict[str, Any] = {"schedule": schedule_label(task), "enabled": task.enabled}
        audit_record(actor=actor, action="periodic_job.update", target=task, details={"before": before, "after": after})
    return task
