"""Writes of the rollout state machine: create, start, the actions, and ``rollout_advance``.

The rollout row is the state; every change takes it with ``select_for_update`` so two workers,
two beat processes or a person and a worker never move it at the same time. Tasks are enqueued
after commit with the row's id.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from deployments.choices import GateVerdict, HostRunStatus, RolloutStatus, WaveStatus
from deployments.gates import GateConfigError, HostFigures, judge_wave, normalize_gates, regression_rules
from deployments.models import HostRun, Profile, Rollout, StepResult, Wave
from deployments.planning import PlanError, parse_plan, plan_sizes
from hosts.choices import Eligibility
from hosts.models import Host
from mdefleet.audit import SYSTEM, Actor, audit_record
from mdefleet.tasks import enqueue
from mdefleet.webhooks.events import emit


class RolloutInvalid(Exception):
    """Input that cannot make a rollout: ``errors`` maps field names to messages. Nothing was saved."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class ActionRefused(Exception):
    """An action that does not apply to the rollout's current state; the message says why."""


class FourEyesRefused(ActionRefused):
    """An approval by the person who created the rollout while MDEFLEET_FOUR_EYES is on."""


def hosts_for_selection(*, selection: dict[str, Any]) -> QuerySet[Host]:
    """Hosts chosen by ids, tags or a fleet filter (the fleet page's parameters)."""
    from hosts.filters import HostFilterSet

    if not isinstance(selection, dict) or not selection:
        raise RolloutInvalid({"hosts": ["choose hosts by ids, tags or a filter"]})
    unknown = set(selection) - {"ids", "tags", "filter"}
    if unknown:
        raise RolloutInvalid({"hosts": [f"unknown selection key {sorted(unknown)[0]!r}; use ids, tags or filter"]})
    queryset = Host.objects.all()
    if "ids" in selection:
        ids = selection["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise RolloutInvalid({"hosts": ["ids must be a list of host ids"]})
        missing = set(ids) - set(Host.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if missing:
            raise RolloutInvalid({"hosts": [f"no host with id {', '.join(map(str, sorted(missing)[:10]))}"]})
        queryset = queryset.filter(pk__in=ids)
    if "tags" in selection:
        tags = selection["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise RolloutInvalid({"hosts": ["tags must be a list of tag names"]})
        queryset = queryset.filter(tags__name__in=tags).distinct()
    if "filter" in selection:
        params = selection["filter"]
        if not isinstance(params, dict):
            raise RolloutInvalid({"hosts": ["filter must map the fleet page's filter names to values"]})
        # An unknown (misspelt) parameter would be ignored and select the whole fleet: refuse it.
        unknown = sorted(set(params) - set(HostFilterSet.base_filters) - {"ordering"})
        if unknown:
            raise RolloutInvalid(
                {"hosts": [f"unknown filter {unknown[0]!r}; known: {', '.join(HostFilterSet.Meta.fields)}"]}
            )
        filterset = HostFilterSet(data=params, queryset=queryset)
        if not filterset.is_valid():
            raise RolloutInvalid({"hosts": [f"{k}: {' '.join(v)}" for k, v in filterset.errors.items()]})
        queryset = filterset.qs
    return queryset.order_by("id")


def busy_hosts(*, host_ids: list[int], exclude_rollout: int | None = None) -> dict[int, str]:
    """Hosts held by another rollout that is not finished: {host id: that rollout's name}."""
    runs = HostRun.objects.filter(host_id__in=host_ids, rollout__status__in=RolloutStatus.active())
    if exclude_rollout is not None:
        runs = runs.exclude(rollout_id=exclude_rollout)
    return dict(runs.values_list("host_id", "rollout__name"))


def rollout_preview(*, selection: dict[str, Any], wave_plan: Any) -> dict[str, Any]:
    """What a rollout would plan: eligible hosts, wave sizes, and every excluded host with its reason."""
    hosts = list(hosts_for_selection(selection=selection).only("id", "name", "eligibility", "eligibility_reasons"))
    try:
        plan = parse_plan(wave_plan)
    except PlanError as exc:
        raise RolloutInvalid({"wave_plan": [str(exc)]}) from exc
    busy = busy_hosts(host_ids=[h.pk for h in hosts])
    eligible, excluded = [], []
    for host in hosts:
        if host.pk in busy:
            excluded.append({"host_id": host.pk, "name": host.name, "reasons": [f"in rollout {busy[host.pk]!r}"]})
        elif host.eligibility != Eligibility.ELIGIBLE:
            reasons = host.eligibility_reasons or ["not discovered yet: run discovery first"]
            excluded.append({"host_id": host.pk, "name": host.name, "reasons": [str(r) for r in reasons]})
        else:
            eligible.append(host)
    return {
        "plan": plan,
        "sizes": plan_sizes(plan, len(eligible)) if eligible else [],
        "eligible": [h.pk for h in eligible],
        "excluded": excluded,
        "busy": busy,
    }


def rollout_create(
    *,
    actor: Actor,
    name: str,
    profile: Profile,
    selection: dict[str, Any],
    wave_plan: Any,
    gates: dict[str, Any] | None = None,
    soak_seconds: int = 0,
    settle_seconds: int = 60,
    auto_promote: bool = True,
    approval_timeout_seconds: int = 24 * 3600,
    ticket: str = "",
    schedule: dict[str, Any] | None = None,
) -> Rollout:
    """Plan a rollout (draft): waves over the eligible hosts; refused whole if any host is busy.

    ``schedule`` takes start_at, start_before, schedule_timezone, maintenance_windows and
    blackout_dates (deployments/services/schedules.py validates them).
    """
    from deployments.schedules import ScheduleError
    from deployments.services.schedules import schedule_fields_clean

    errors: dict[str, list[str]] = {}
    schedule_stored: dict[str, Any] = {}
    try:
        schedule_stored = schedule_fields_clean(schedule or {})
    except ScheduleError as exc:
        errors.update(exc.errors)
    if not name.strip():
        errors["name"] = ["give the rollout a name"]
    try:
        gates = normalize_gates(gates)
    except GateConfigError as exc:
        errors["gates"] = [str(exc)]
    if not profile.onboarding_encrypted:
        errors["profile"] = [f"profile {profile.name!r} has no onboarding package: upload it first"]
    for field, value in (("soak_seconds", soak_seconds), ("settle_seconds", settle_seconds)):
        if value < 0 or value > 7 * 24 * 3600:
            errors[field] = ["must be between 0 and 604800 seconds (7 days)"]
    if not 60 <= approval_timeout_seconds <= 30 * 24 * 3600:
        errors["approval_timeout_seconds"] = ["must be between 60 seconds and 30 days"]
    if errors:
        raise RolloutInvalid(errors)
    with transaction.atomic():
        # Lock the chosen hosts: two rollouts created at once cannot both take the same host.
        preview = rollout_preview(selection=selection, wave_plan=wave_plan)
        list(Host.objects.select_for_update().filter(pk__in=preview["eligible"]).values_list("pk", flat=True))
        busy = busy_hosts(host_ids=preview["eligible"] + list(preview["busy"]))
        if busy:
            names = dict(Host.objects.filter(pk__in=busy).values_list("pk", "name"))
            raise RolloutInvalid(
                {"hosts": [f"{names[h]} is already in rollout {r!r}" for h, r in list(busy.items())[:20]]}
            )
        if not preview["eligible"]:
            raise RolloutInvalid({"hosts": ["none of the chosen hosts is eligible; see the excluded list"]})
        rollout = Rollout.objects.create(
            name=name.strip(),
            profile=profile,
            ticket=ticket.strip(),
            selection=selection,
            wave_plan=preview["plan"],
            gates=gates,
            soak_seconds=soak_seconds,
            settle_seconds=settle_seconds,
            auto_promote=auto_promote,
            approval_timeout_seconds=approval_timeout_seconds,
            excluded_hosts=preview["excluded"],
            created_by=actor.user,
            **schedule_stored,
        )
        waves, runs, position = [], [], 0
        for index, size in enumerate(preview["sizes"]):
            wave = Wave(rollout=rollout, index=index, planned_size=size)
            waves.append(wave)
        Wave.objects.bulk_create(waves)
        for wave in waves:
            for host_id in preview["eligible"][position : position + wave.planned_size]:
                runs.append(HostRun(rollout=rollout, wave=wave, host_id=host_id))
            position += wave.planned_size
        HostRun.objects.bulk_create(runs)
        audit_record(
            actor=actor,
            action="rollout.create",
            target=rollout,
            details={"hosts": len(runs), "waves": preview["sizes"], "excluded": len(preview["excluded"])},
        )
        emit("rollout.created", rollout)
    return rollout


def _locked(rollout_id: int) -> Rollout:
    return Rollout.objects.select_for_update().get(pk=rollout_id)


def _dispatch_wave(rollout: Rollout) -> None:
    """Enqueue enough wave tasks (after commit) for the pending host runs that every worker gets one."""
    from deployments.execution import rollout_tasks_needed
    from deployments.tasks import rollout_run_task

    pending = HostRun.objects.filter(
        rollout=rollout, wave__index__lte=rollout.current_wave, status=HostRunStatus.PENDING
    ).count()
    tasks = rollout_tasks_needed(pending)
    rollout_id = rollout.pk
    transaction.on_commit(lambda: enqueue(rollout_run_task, rollout_id, copies=tasks))


def _start_wave(rollout: Rollout, index: int, now: Any) -> bool:
    """Start wave ``index``; False when it had already started (dispatched by someone else)."""
    rollout.current_wave = index
    rollout.status = RolloutStatus.RUNNING
    rollout.next_action_at = None
    # Besides the rollout row lock, the wave itself moves only from pending: a second beat (or a
    # stale caller) that gets here anyway updates no row and dispatches nothing.
    started = Wave.objects.filter(rollout=rollout, index=index, status=WaveStatus.PENDING).update(
        status=WaveStatus.RUNNING, started_at=now
    )
    if started:
        _dispatch_wave(rollout)
        emit("wave.started", rollout, wave=index)
    return bool(started)


def _hold_for_window(rollout: Rollout, now: Any) -> bool:
    """Keep the next wave back while the schedule is closed (soaking until the window opens); True if held."""
    from deployments import schedules
    from deployments.services.schedules import rollout_may_start_wave, rollout_schedule

    if rollout_may_start_wave(rollout, now):
        return False
    opens = schedules.next_open(rollout_schedule(rollout), now)
    if opens is None:
        rollout.status = RolloutStatus.HALTED
        rollout.halt_reason = (
            f"Wave {rollout.current_wave + 2} cannot start: no maintenance window opens within a year."
        )
        return True
    rollout.status = RolloutStatus.SOAKING
    rollout.next_action_at = opens
    return True


def rollout_start(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Start a draft rollout with its first wave, or schedule it when its schedule holds it back."""
    from deployments.services.schedules import rollout_is_scheduled

    with transaction.atomic():
        rollout = _locked(rollout.pk)
        if rollout.status != RolloutStatus.DRAFT:
            raise ActionRefused(f"only a draft can be started; this rollout is {rollout.get_status_display().lower()}")
        now = timezone.now()
        if rollout_is_scheduled(rollout) and _schedule_instead(actor, rollout, now):
            return rollout
        rollout.started_at = now
        _start_wave(rollout, 0, now)
        rollout.save()
        audit_record(actor=actor, action="rollout.start", target=rollout)
        emit("rollout.started", rollout)
    return rollout


def rollout_pause(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Stop starting new hosts; hosts already running finish their steps."""
    with transaction.atomic():
        rollout = _locked(rollout.pk)
        if rollout.status not in (RolloutStatus.RUNNING, RolloutStatus.SOAKING, RolloutStatus.WAITING_APPROVAL):
            raise ActionRefused(f"a {rollout.get_status_display().lower()} rollout cannot be paused")
        before = rollout.status
        rollout.status = RolloutStatus.PAUSED
        rollout.halt_reason = f"paused by {actor.label}"
        rollout.save()
        audit_record(actor=actor, action="rollout.pause", target=rollout, details={"before": before})
        emit("rollout.paused", rollout)
    return rollout


def rollout_resume(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Continue a paused rollout where it stopped."""
    with transaction.atomic():
        rollout = _locked(rollout.pk)
        if rollout.status != RolloutStatus.PAUSED:
            raise ActionRefused("only a paused rollout can be resumed")
        rollout.status = RolloutStatus.RUNNING
        rollout.halt_reason = ""
        rollout.save()
        _dispatch_wave(rollout)
        audit_record(actor=actor, action="rollout.resume", target=rollout)
        emit("rollout.resumed", rollout)
    transaction.on_commit(lambda: _enqueue_advance(rollout.pk))
    return rollout


def rollout_abort(*, actor: Actor, rollout: Rollout) -> Rollout:
    """End the rollout for good: hosts not started are cancelled, running ones finish their step."""
    with transaction.atomic():
        rollout = _locked(rollout.pk)
        if rollout.status in RolloutStatus.terminal():
            raise ActionRefused(f"the rollout is already {rollout.get_status_display().lower()}")
        before = rollout.status
        now = timezone.now()
        cancelled = HostRun.objects.filter(rollout=rollout, status=HostRunStatus.PENDING).update(
            status=HostRunStatus.CANCELLED, reason="rollout aborted", finished_at=now
        )
        rollout.status = RolloutStatus.ABORTED
        rollout.finished_at = now
        rollout.halt_reason = f"aborted by {actor.label}"
        rollout.save()
        audit_record(
            actor=actor, action="rollout.abort", target=rollout, details={"before": before, "cancelled": cancelled}
        )
        emit("rollout.aborted", rollout, reason="aborted")
    return rollout


def rollout_approve(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Promote past an approval gate (or an inconclusive gate) to the next wave."""
    with transaction.atomic():
        rollout = _locked(rollout.pk)
        if rollout.status != RolloutStatus.WAITING_APPROVAL:
            raise ActionRefused("the rollout is not waiting for an approval")
        if settings.MDEFLEET_FOUR_EYES and actor.user is not None and rollout.created_by_id == actor.user.pk:
            raise FourEyesRefused("four eyes: you created this rollout, so another approver must approve its waves")
        wave = Wave.objects.get(rollout=rollout, index=rollout.current_wave)
        wave.approved_by, wave.approved_at = actor.user, timezone.now()
        wave.save(update_fields=["approved_by", "approved_at"])
        audit_record(actor=actor, action="rollout.approve", target=rollout, details={"wave": wave.index + 1})
        _promote(rollout, timezone.now())
        rollout.save()
        emit("wave.approved", rollout, wave=wave, approved_by=actor.label)
    return rollout


def rollout_retry_failed(*, actor: Actor, rollout: Rollout) -> Rollout:
    """Queue failed and never-started hosts again; each resumes at its first step not done."""
    with transaction.atomic():
        rollout = _locked(rollout.pk)
        if rollout.status not in (RolloutStatus.HALTED, RolloutStatus.PAUSED, RolloutStatus.RUNNING):
            raise ActionRefused(f"a {rollout.get_status_display().lower()} rollout cannot retry hosts")
        retried = HostRun.objects.filter(
            rollout=rollout,
            wave__index__lte=rollout.current_wave,
            status__in=[HostRunStatus.FAILED, HostRunStatus.CANCELLED],
        ).update(status=HostRunStatus.PENDING, reason="", claimed_by="", heartbeat_at=None, finished_at=None)
        if not retried:
            raise ActionRefused("no failed or never-started host to retry")
        Wave.objects.filter(rollout=rollout, index=rollout.current_wave).update(
            status=WaveStatus.RUNNING, gate_verdict="", gate_report={}
        )
        rollout.status = RolloutStatus.RUNNING
        rollout.halt_reason = ""
        rollout.finished_at = None
        rollout.save()
        _dispatch_wave(rollout)
        audit_record(actor=actor, action="rollout.retry_failed", target=rollout, details={"hosts": retried})
        emit("rollout.retried", rollout, hosts_retried=retried)
    return rollout


def _enqueue_advance(rollout_id: int) -> None:
    from deployments.tasks import rollout_advance_task

    enqueue(rollout_advance_task, rollout_id)


def _promote(rollout: Rollout, now: Any) -> None:
    """Start the next wave (inside a window), or complete the rollout after the last one."""
    if not Wave.objects.filter(rollout=rollout, index=rollout.current_wave + 1).exists():
        rollout.status = RolloutStatus.COMPLETED
        rollout.finished_at = now
        rollout.next_action_at = None
        audit_record(actor=SYSTEM, action="rollout.complete", target=rollout)
        emit("rollout.completed", rollout)
        return
    if _hold_for_window(rollout, now):
        return
    _start_wave(rollout, rollout.current_wave + 1, now)


def wave_figures(*, wave: Wave) -> list[HostFigures]:
    """Each finished host of the wave with its pre/post deltas (read from the compare step)."""
    return _figures(wave.host_runs.all())


def _figures(runs_qs: Any) -> list[HostFigures]:
    runs = list(runs_qs.select_related("host").exclude(status=HostRunStatus.PENDING))
    compare = dict(
        StepResult.objects.filter(host_run__in=runs, step="compare")
        .order_by("host_run_id", "id")
        .values_list("host_run_id", "parsed")
    )
    return [
        HostFigures(
            host_id=run.host_id,
            name=run.host.name,
            status="ok" if run.status == HostRunStatus.OK else "failed",
            deltas=(compare.get(run.pk) or {}).get("deltas", {}),
        )
        for run in runs
    ]


def _baseline_figures(rollout: Rollout, wave: Wave) -> list[HostFigures] | None:
    """The earlier waves' hosts, read only when a gate rule compares with them."""
    if not any(rule and rule.baseline is not None for rule in regression_rules(rollout.gates).values()):
        return None
    return _figures(HostRun.objects.filter(rollout=rollout, wave__index__lt=wave.index))


def _judge(rollout: Rollout, wave: Wave, now: Any) -> None:
    earlier_failed = HostRun.objects.filter(
        rollout=rollout, wave__index__lt=wave.index, status=HostRunStatus.FAILED
    ).count()
    result = judge_wave(
        rollout.gates,
        wave_figures(wave=wave),
        earlier_failed=earlier_failed,
        baseline=_baseline_figures(rollout, wave),
    )
    wave.gate_verdict = result.verdict
    wave.gate_report = result.as_dict()
    wave.finished_at = now
    wave.status = {
        GateVerdict.PASS: WaveStatus.PASSED,
        GateVerdict.FAIL: WaveStatus.FAILED,
        GateVerdict.INCONCLUSIVE: WaveStatus.INCONCLUSIVE,
    }[result.verdict]
    wave.save(update_fields=["gate_verdict", "gate_report", "finished_at", "status"])
    audit_record(
        actor=SYSTEM,
        action=f"wave.gate_{result.verdict}",
        target=rollout,
        details={"wave": wave.index + 1, **result.as_dict()},
    )
    emit("wave.completed", rollout, wave=wave)
    if result.verdict == GateVerdict.FAIL:
        rollout.status = RolloutStatus.HALTED
        rollout.halt_reason = f"Wave {wave.index + 1} gate failed: " + "; ".join(result.reasons)
        emit("gate.failed", rollout, wave=wave)
        return
    if result.verdict == GateVerdict.INCONCLUSIVE:
        rollout.status = RolloutStatus.WAITING_APPROVAL
        rollout.halt_reason = f"Wave {wave.index + 1} gate inconclusive: " + "; ".join(result.reasons)
        rollout.next_action_at = now + timedelta(seconds=rollout.approval_timeout_seconds)
        return
    last = not Wave.objects.filter(rollout=rollout, index=wave.index + 1).exists()
    if last:
        _promote(rollout, now)
    elif rollout.auto_promote:
        rollout.status = RolloutStatus.SOAKING
        rollout.next_action_at = now + timedelta(seconds=rollout.soak_seconds)
        if rollout.soak_seconds == 0:
            _promote(rollout, now)
    else:
        rollout.status = RolloutStatus.WAITING_APPROVAL
        rollout.halt_reason = ""
        rollout.next_action_at = now + timedelta(seconds=rollout.approval_timeout_seconds)


def rollout_advance(*, rollout_id: int) -> str:
    """Move the rollout forward if something is due; safe to call any number of times from anywhere."""
    with transaction.atomic():
        rollout = _locked(rollout_id)
        now = timezone.now()
        before = rollout.status
        # A passed wave promoted at once (no soak) leaves the status RUNNING but moves current_wave.
        before_wave = rollout.current_wave
        before_next = rollout.next_action_at  # a scheduled rollout waiting on moves only its wake-up time
        if rollout.status == RolloutStatus.RUNNING:
            wave = Wave.objects.get(rollout=rollout, index=rollout.current_wave)
            open_runs = HostRun.objects.filter(
                rollout=rollout,
                wave__index__lte=rollout.current_wave,
                status__in=[HostRunStatus.PENDING, HostRunStatus.RUNNING],
            ).exists()
            if not open_runs:
                _judge(rollout, wave, now)
        elif rollout.status == RolloutStatus.SOAKING and rollout.next_action_at and now >= rollout.next_action_at:
            _promote(rollout, now)
        elif rollout.status == RolloutStatus.SCHEDULED:
            _scheduled_advance(rollout, now)
        elif (
            rollout.status == RolloutStatus.WAITING_APPROVAL
            and rollout.next_action_at
            and now >= rollout.next_action_at
        ):
            rollout.status = RolloutStatus.HALTED
            rollout.halt_reason = (
                f"No approval within {rollout.approval_timeout_seconds // 60} minutes for wave "
                f"{rollout.current_wave + 2}; halted rather than left waiting."
            )
            audit_record(actor=SYSTEM, action="rollout.approval_expired", target=rollout)
        if rollout.status != before or rollout.current_wave != before_wave or rollout.next_action_at != before_next:
            rollout.save()
            if rollout.status == RolloutStatus.HALTED and before != RolloutStatus.HALTED:
                audit_record(
                    actor=SYSTEM, action="rollout.halt", target=rollout, details={"reason": rollout.halt_reason}
                )
                emit("rollout.halted", rollout)
        return rollout.status


def _schedule_instead(actor: Actor, rollout: Rollout, now: Any) -> bool:
    """Put a draft whose schedule holds it back into ``scheduled``; False when it may start now."""
    from deployments import schedules
    from deployments.services.schedules import rollout_schedule

    schedule = rollout_schedule(rollout)
    if schedules.deadline_passed(schedule, now):
        raise ActionRefused(
            "its start-before deadline "
            f"{schedules.local_label(schedule.start_before, schedule.tz)} has passed; change the schedule"
        )
    if schedules.may_start(schedule, now):
        return False
    opens = schedules.next_start(schedule, now)
    if opens is None:
        raise ActionRefused("no maintenance window opens within a year (check the windows and blackout dates)")
    rollout.status = RolloutStatus.SCHEDULED
    rollout.halt_reason = ""
    wake = [t for t in (opens, schedule.start_before) if t is not None]
    rollout.next_action_at = min(wake)
    rollout.save()
    audit_record(
        actor=actor,
        action="rollout.schedule_start",
        target=rollout,
        details={
            "opens_at": opens.isoformat(),
            "start_before": rollout.start_before and rollout.start_before.isoformat(),
        },
    )
    return True


def _scheduled_advance(rollout: Rollout, now: Any) -> None:
    """A scheduled rollout at its wake-up time: start wave 1, wait for the next opening, or cancel at the deadline."""
    from deployments import schedules
    from deployments.services.schedules import emit_event, rollout_schedule

    schedule = rollout_schedule(rollout)
    if schedules.deadline_passed(schedule, now):
        cancelled = HostRun.objects.filter(rollout=rollout, status=HostRunStatus.PENDING).update(
            status=HostRunStatus.CANCELLED, reason="not started before the deadline", finished_at=now
        )
        rollout.status = RolloutStatus.ABORTED
        rollout.finished_at = now
        rollout.next_action_at = None
        rollout.halt_reason = (
            "Cancelled: could not start before its deadline "
            f"{schedules.local_label(schedule.start_before, schedule.tz)}; no maintenance window was open in time."
        )
        audit_record(
            actor=SYSTEM,
            action="rollout.schedule_expired",
            target=rollout,
            details={"start_before": schedule.start_before.isoformat(), "cancelled": cancelled},
        )
        emit_event("rollout.aborted", rollout, reason="start_before_passed")
        return
    if schedules.may_start(schedule, now):
        rollout.started_at = now
        if _start_wave(rollout, 0, now):
            audit_record(actor=SYSTEM, action="rollout.start", target=rollout, details={"scheduled": True})
            emit_event("rollout.started", rollout)
        return
    opens = schedules.next_start(schedule, now)
    wake = [t for t in (opens, schedule.start_before) if t is not None]
    # Nothing ahead (no window within the horizon and no deadline): look again in a day.
    rollout.next_action_at = min(wake) if wake else now + timedelta(days=1)


def rollout_counts(*, rollout: Rollout) -> dict[int, dict[str, int]]:
    """Host-run counts per wave index and status, in one query."""
    counts: dict[int, dict[str, int]] = {}
    rows = rollout.host_runs.values("wave__index", "status").annotate(n=Count("id"))
    for row in rows:
        counts.setdefault(row["wave__index"], {})[row["status"]] = row["n"]
    return counts


def rollouts_due() -> list[int]:
    """Rollouts the periodic tick should look at (running, soaking or waiting with a deadline)."""
    return list(
        Rollout.objects.filter(
            Q(status=RolloutStatus.RUNNING)
            | Q(
                status__in=[RolloutStatus.SOAKING, RolloutStatus.WAITING_APPROVAL, RolloutStatus.SCHEDULED],
                next_action_at__lte=timezone.now(),
            )
        ).values_list("pk", flat=True)
    )


def rollouts_tick() -> int:
    """The beat's safety net: advance what is due; re-dispatch host runs nobody is working on.

    The broker is not the source of truth: a message may be lost (Redis restarted without
    persistence) and a killed worker's task only returns after the visibility timeout. Host runs
    that are pending, or running with a stale heartbeat, get a fresh task.
    """
    from deployments.services.schedules import rollout_may_start_wave

    stale = timezone.now() - timedelta(seconds=settings.MDEFLEET_CLAIM_STALE_SECONDS)
    touched = 0
    for rollout_id in rollouts_due():
        status = rollout_advance(rollout_id=rollout_id)
        touched += 1
        if status != RolloutStatus.RUNNING:
            continue
        rollout = Rollout.objects.get(pk=rollout_id)
        if not rollout_may_start_wave(rollout, timezone.now()):
            continue  # the window is closed: pending hosts wait for it, nothing to dispatch
        orphaned = HostRun.objects.filter(rollout_id=rollout_id, wave__index__lte=rollout.current_wave).filter(
            Q(status=HostRunStatus.PENDING, rollout__updated_at__lt=stale)
            | Q(status=HostRunStatus.RUNNING, heartbeat_at__lt=stale)
        )
        if orphaned.exists():
            with transaction.atomic():
                _dispatch_wave(rollout)
    return touched
