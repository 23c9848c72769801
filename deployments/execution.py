"""Running a rollout's hosts on a worker: claim host runs, drive their steps, store results in batches.

A host run is claimed with ``select_for_update(skip_locked=True)`` and carries the worker's
name and a heartbeat refreshed while it runs. A claim whose heartbeat is older than
MDEFLEET_CLAIM_STALE_SECONDS belongs to a dead worker and is taken over; the new owner resumes
at the host's first step not done (steps are idempotent), so no step result is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Case, F, Model, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from deployments.choices import HostRunStatus, RolloutStatus
from deployments.models import HostRun, Profile, Rollout, StepResult
from deployments.runner import HostJob, HostPool, HostResult, RunnerLimits, Sink, StepRecord, run_and_store
from deployments.steps.base import StepContext
from deployments.steps.catalogue import rollout_steps
from hosts.choices import SnapshotPhase, StepStatus
from hosts.models import Host, Snapshot
from hosts.targets import target_for
from mdefleet.audit import audit_host_key_mismatches
from mdefleet.webhooks.events import emit

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
SNAPSHOT_STEPS = {"snapshot_pre": SnapshotPhase.PRE, "snapshot_post": SnapshotPhase.POST}


@dataclass(frozen=True)
class ProfileContext:
    """What the deployment steps need of the profile, decrypted for the length of a batch."""

    channel: str
    agent_version: str
    proxy: str
    onboarding_kind: str
    onboarding: str
    org_id: str
    managed_json: str
    cron_file: str
    settle_seconds: int
    gates: dict[str, Any]

    def __repr__(self) -> str:  # the onboarding package never reaches a log
        return f"ProfileContext(channel={self.channel!r}, org_id={self.org_id!r})"

    @classmethod
    def build(cls, profile: Profile, rollout: Rollout) -> ProfileContext:
        from deployments.cron import cron_lines
        from deployments.managed_settings import render_managed_json
        from hosts import crypto

        return cls(
            channel=profile.channel,
            agent_version=profile.agent_version,
            proxy=profile.proxy,
            onboarding_kind=profile.onboarding_kind,
            onboarding=crypto.decrypt(profile.onboarding_encrypted) if profile.onboarding_encrypted else "",
            org_id=profile.org_id,
            managed_json=render_managed_json(profile),
            cron_file=cron_lines(profile),
            settle_seconds=rollout.settle_seconds,
            gates=rollout.gates,
        )


def host_runs_claim(*, rollout_id: int, worker: str, limit: int) -> list[HostRun]:
    """Take up to ``limit`` pending or abandoned host runs of the rollout's open waves.

    Nothing is taken while the rollout's maintenance window is closed: hosts not started stay
    pending until the window opens again (the tick dispatches them then).
    """
    from deployments.services.schedules import rollout_may_start_wave

    stale = timezone.now() - timedelta(seconds=settings.MDEFLEET_CLAIM_STALE_SECONDS)
    with transaction.atomic():
        rollout = Rollout.objects.filter(pk=rollout_id, status=RolloutStatus.RUNNING).first()
        if rollout is None or not rollout_may_start_wave(rollout, timezone.now()):
            return []
        rows = list(
            HostRun.objects.select_for_update(skip_locked=True)
            .filter(rollout_id=rollout_id, wave__index__lte=rollout.current_wave)
            .filter(Q(status=HostRunStatus.PENDING) | Q(status=HostRunStatus.RUNNING, heartbeat_at__lt=stale))
            .order_by("wave__index", "id")[:limit]
        )
        now = timezone.now()
        for row in rows:
            row.status, row.claimed_by, row.heartbeat_at = HostRunStatus.RUNNING, worker, now
            row.started_at = row.started_at or now
            row.attempt += 1
        # One plain UPDATE (the same values for every row), not bulk_update's CASE per row.
        HostRun.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=HostRunStatus.RUNNING,
            claimed_by=worker,
            heartbeat_at=now,
            started_at=Coalesce("started_at", Value(now)),
            attempt=F("attempt") + 1,
        )
    return rows


HOST_AGENT_FIELDS = [
    "agent_state", "agent_version", "definitions_version", "agent_healthy", "org_id", "real_time_protection",
    "last_seen_at",
]  # fmt: skip


def copy_create(model: type[Model], objs: list[Model]) -> None:
    """``bulk_create`` without returning ids, by ``COPY ... FROM STDIN``: one statement per batch.

    Django's bulk insert on PostgreSQL sends each column as an array literal that psycopg escapes
    in Python, a regex replacement per quote: for step output and JSON that was most of a worker's
    database time (py-spy, issue 7). COPY streams the rows through psycopg's C writer instead.
    Values go through each field's own ``get_db_prep_save`` (JSON, times, defaults), as in an insert.
    """
    if not objs:
        return
    conn = connections[router.db_for_write(model)]
    if conn.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    rows = [[f.get_db_prep_save(f.pre_save(obj, True), conn) for f in fields] for obj in objs]
    qn = conn.ops.quote_name
    sql = f"COPY {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) FROM STDIN"

    def copy(sql: str, params: Any, many: bool, context: dict[str, Any]) -> None:
        with context["cursor"].cursor.copy(sql) as stream:
            for row in rows:
                stream.write_row(row)

    with conn.cursor() as cursor:
        # Through the cursor's wrappers, as every statement goes: query counters see this one too.
        cursor._execute_with_wrappers(sql, None, False, executor=copy)


class RolloutSink(Sink):
    """Buffers results; ``write`` stores each batch in one transaction, only while this worker owns the run."""

    def __init__(self, runs: dict[int, HostRun], worker: str) -> None:
        self.runs = runs
        self.worker = worker
        self.steps: list[StepRecord] = []
        self.hosts: list[HostResult] = []
        self.released: list[int] = []
        self.finished: set[int] = set()

    async def step_done(self, record: StepRecord) -> None:
        self.steps.append(record)

    async def host_done(self, result: HostResult) -> None:
        self.hosts.append(result)

    async def host_released(self, run_id: int) -> None:
        self.released.append(run_id)

    def take(self) -> tuple[list[StepRecord], list[HostResult], list[int]]:
        """Hand over what arrived so far; called on the event loop's thread, never the writer's."""
        batch = (self.steps, self.hosts, self.released)
        self.steps, self.hosts, self.released = [], [], []
        return batch

    def write(self, batch: tuple[list[StepRecord], list[HostResult], list[int]]) -> None:
        """Store one taken batch in one transaction (runs in the database thread)."""
        steps, results, released = batch
        now = timezone.now()
        with transaction.atomic():
            # A run taken over by another worker (we were presumed dead) is no longer ours to write.
            # Runs already finished here send nothing more: only the open ones are checked (fewer ids per write).
            open_runs = [pk for pk in self.runs if pk not in self.finished]
            owned = set(HostRun.objects.filter(pk__in=open_runs, claimed_by=self.worker).values_list("pk", flat=True))
            copy_create(
                StepResult,
                [
                    StepResult(
                        host_run_id=r.run_id,
                        attempt=self.runs[r.run_id].attempt,
                        **r.stored_fields(),
                    )
                    for r in steps
                    if r.run_id in owned
                ],
            )
            snapshots = [
                Snapshot(
                    host_id=self.runs[r.run_id].host_id,
                    phase=SNAPSHOT_STEPS[r.step],
                    taken_at=r.finished_at,
                    **Snapshot.fields_from(r.parsed),
                )
                for r in steps
                if r.run_id in owned and r.step in SNAPSHOT_STEPS and r.status != StepStatus.FAILED and r.parsed
            ]
            copy_create(Snapshot, snapshots)
            audit_host_key_mismatches([r for r in steps if r.run_id in owned], self.runs)
            ended = []
            for result in results:
                if result.run_id not in owned:
                    continue
                run = self.runs[result.run_id]
                run.status = HostRunStatus.OK if result.status == "ok" else HostRunStatus.FAILED
                run.reason, run.finished_at, run.current_step = result.reason[:500], now, ""
                ended.append(run)
                self.finished.add(result.run_id)
            HostRun.objects.bulk_update(ended, ["status", "reason", "finished_at", "current_step"])
            failed = [run.pk for run in ended if run.status == HostRunStatus.FAILED]
            if failed:  # one event for the whole batch, not one per host
                emit("host.failed", ended[0].rollout_id, host_runs=failed)
            if results:
                self._update_hosts([r for r in results if r.run_id in owned], now)
            if released:
                HostRun.objects.filter(pk__in=[r for r in released if r in owned]).update(
                    status=HostRunStatus.PENDING, claimed_by="", heartbeat_at=None, attempt=F("attempt") - 1
                )
                self.finished.update(released)
            last_step = {r.run_id: r.step for r in steps}
            alive = [pk for pk in owned if pk not in self.finished]
            if alive:
                # One UPDATE for the heartbeat and every host's current step: a WHEN per step name, not
                # per host (hosts move through the same steps together).
                by_step: dict[str, list[int]] = {}
                for run_id, step in last_step.items():
                    if run_id in alive:
                        by_step.setdefault(step, []).append(run_id)
                current = (
                    {
                        "current_step": Case(
                            *(When(pk__in=ids, then=Value(step)) for step, ids in by_step.items()),
                            default=F("current_step"),
                        )
                    }
                    if by_step
                    else {}
                )
                HostRun.objects.filter(pk__in=alive).update(heartbeat_at=now, **current)

    def _update_hosts(self, results: list[HostResult], now: Any) -> None:
        from deployments.agent_state import host_agent_fields

        hosts = Host.objects.only("id", *HOST_AGENT_FIELDS).in_bulk([self.runs[r.run_id].host_id for r in results])
        changed = []
        for result in results:
            host = hosts[self.runs[result.run_id].host_id]
            fields = host_agent_fields(result.outcomes)
            if fields:
                for name, value in fields.items():
                    setattr(host, name, value)
                host.last_seen_at = now
                changed.append(host)
        if changed:
            Host.objects.bulk_update(changed, HOST_AGENT_FIELDS)


def _context_for(run: HostRun, host: Host, profile_ctx: ProfileContext, done: dict[str, dict[str, Any]]) -> StepContext:
    return StepContext(
        host_label=host.name,
        results=dict(done),
        proxy=profile_ctx.proxy,
        cpu_sample_seconds=settings.MDEFLEET_CPU_SAMPLE_SECONDS,
        profile=profile_ctx,
    )


def _jobs_for(runs: list[HostRun], rollout: Rollout, profile_ctx: ProfileContext | None = None) -> list[HostJob]:
    profile_ctx = profile_ctx or ProfileContext.build(rollout.profile, rollout)
    hosts = Host.objects.select_related("credential").in_bulk([r.host_id for r in runs])
    # Steps done (ok or warn) in earlier attempts, with their data: the resume point and the context.
    done: dict[int, dict[str, dict[str, Any]]] = {}
    for run_id, step, parsed in (
        StepResult.objects.filter(host_run__in=runs, status__in=[StepStatus.OK, StepStatus.WARN])
        .order_by("id")
        .values_list("host_run_id", "step", "parsed")
    ):
        done.setdefault(run_id, {})[step] = parsed
    steps = rollout_steps()
    return [
        HostJob(
            run_id=run.pk,
            target=target_for(hosts[run.host_id]),
            steps=steps,
            context=_context_for(run, hosts[run.host_id], profile_ctx, done.get(run.pk, {})),
            trust_on_first_use=False,
            done_steps=frozenset(done.get(run.pk, {})),
        )
        for run in runs
    ]


class _StatusGate:
    """Answers "may a new host start?" from the rollout's status and window, read at most once a second."""

    def __init__(self, rollout_id: int) -> None:
        self.rollout_id = rollout_id
        self.checked = 0.0
        self.running = True

    async def __call__(self) -> bool:
        if time.monotonic() - self.checked > 1.0:
            self.checked = time.monotonic()
            self.running = await sync_to_async(self._may_start, thread_sensitive=True)()
        return self.running

    def _may_start(self) -> bool:
        from deployments.services.schedules import rollout_may_start_wave

        rollout = (
            Rollout.objects.filter(pk=self.rollout_id)
            .only("status", "schedule_timezone", "maintenance_windows", "blackout_dates", "start_at", "start_before")
            .first()
        )
        return (
            rollout is not None
            and rollout.status == RolloutStatus.RUNNING
            and rollout_may_start_wave(rollout, timezone.now())
        )


# --- claiming as slots free up (perf: issue 7) ---


def claim_size(limits: RunnerLimits) -> tuple[int, int]:
    """(most hosts one claim takes, fewest free slots worth a claim).

    A worker claims at most MDEFLEET_CLAIM_BATCH (and its concurrency) at first, then tops up in
    steps of an eighth of its concurrency as hosts finish: a few queries per claim, no idle slots
    behind a batch's slow tail, and a second worker finds hosts left to claim.
    """
    most = max(1, min(settings.MDEFLEET_CLAIM_BATCH, limits.concurrency))
    return most, max(1, min(most, limits.concurrency // 8))


def rollout_tasks_needed(pending: int) -> int:
    """Wave tasks to enqueue for ``pending`` hosts: enough that every worker of a typical pool gets one.

    A task claims as it goes until nothing is left, so extra tasks cost only an empty claim; too
    few would leave workers idle (two workers, one task: the second does nothing).
    """
    if pending <= 0:
        return 1
    return max(1, min(WAVE_TASKS_MAX, -(-pending // WAVE_TASK_SHARE)))


WAVE_TASK_SHARE = 25  # hosts per extra wave task
WAVE_TASKS_MAX = 16


class _Claimer:
    """Claims host runs for one drive and builds their jobs; runs in the database thread."""

    def __init__(self, rollout_id: int, worker: str, sink: RolloutSink) -> None:
        self.rollout_id = rollout_id
        self.worker = worker
        self.sink = sink
        self.rollout: Rollout | None = None
        self.profile_ctx: ProfileContext | None = None
        self.claimed = 0

    def __call__(self, limit: int) -> list[HostJob]:
        runs = host_runs_claim(rollout_id=self.rollout_id, worker=self.worker, limit=limit)
        if not runs:
            return []
        if self.rollout is None:
            self.rollout = Rollout.objects.select_related("profile").get(pk=self.rollout_id)
            self.profile_ctx = ProfileContext.build(self.rollout.profile, self.rollout)
        self.sink.runs.update({run.pk: run for run in runs})
        self.claimed += len(runs)
        return _jobs_for(runs, self.rollout, self.profile_ctx)


async def _drive(rollout_id: int, worker: str, limits: RunnerLimits) -> int:
    """Claim, run and store the rollout's hosts on this worker until no claim finds one; the hosts run."""
    sink = RolloutSink({}, worker)
    claimer = _Claimer(rollout_id, worker, sink)
    claim = sync_to_async(claimer, thread_sensitive=True)
    write = sync_to_async(sink.write, thread_sensitive=True)
    gate = _StatusGate(rollout_id)
    pool = HostPool(sink, limits, should_continue=gate)
    most, least = claim_size(limits)

    async def feed() -> None:
        while await gate():  # paused, aborted or out of its window: claim no more
            await pool.wait_for_room(least)
            jobs = await claim(min(most, pool.room))
            if not jobs:
                break
            pool.start(jobs)
        await pool.join()

    try:
        await run_and_store(feed(), sink.take, write, FLUSH_SECONDS)
    finally:
        # The writing thread's connection must not outlive the event loop that owns the thread.
        await sync_to_async(connections.close_all, thread_sensitive=True)()
    return claimer.claimed


def rollout_execute(*, rollout_id: int, worker: str) -> int:
    """Claim and run the rollout's hosts (more as slots free up) until none is left; returns the hosts run."""
    from deployments.services.rollouts import rollout_advance

    ran = asyncio.run(_drive(rollout_id, worker, RunnerLimits.from_settings()))
    rollout_advance(rollout_id=rollout_id)
    return ran
