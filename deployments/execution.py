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
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from deployments.choices import HostRunStatus, RolloutStatus
from deployments.models import HostRun, Profile, Rollout, StepResult
from deployments.runner import HostJob, HostResult, RunnerLimits, Sink, StepRecord, run_and_store, run_hosts
from deployments.steps.base import StepContext
from deployments.steps.catalogue import rollout_steps
from hosts.choices import SnapshotPhase, StepStatus
from hosts.models import Host, Snapshot
from hosts.targets import target_for

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
    """Take up to ``limit`` pending or abandoned host runs of the rollout's open waves."""
    stale = timezone.now() - timedelta(seconds=settings.MDEFLEET_CLAIM_STALE_SECONDS)
    with transaction.atomic():
        rollout = Rollout.objects.filter(pk=rollout_id, status=RolloutStatus.RUNNING).first()
        if rollout is None:
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
        HostRun.objects.bulk_update(rows, ["status", "claimed_by", "heartbeat_at", "started_at", "attempt"])
    return rows


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
            owned = set(
                HostRun.objects.filter(pk__in=list(self.runs), claimed_by=self.worker).values_list("pk", flat=True)
            )
            StepResult.objects.bulk_create(
                [
                    StepResult(
                        host_run_id=r.run_id,
                        attempt=self.runs[r.run_id].attempt,
                        **r.stored_fields(),
                    )
                    for r in steps
                    if r.run_id in owned
                ]
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
            Snapshot.objects.bulk_create(snapshots)
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
                HostRun.objects.filter(pk__in=alive).update(heartbeat_at=now)
                # One UPDATE per step name, not per host: hosts move through the same steps together.
                by_step: dict[str, list[int]] = {}
                for run_id, step in last_step.items():
                    if run_id in alive:
                        by_step.setdefault(step, []).append(run_id)
                for step, run_ids in by_step.items():
                    HostRun.objects.filter(pk__in=run_ids).update(current_step=step)

    def _update_hosts(self, results: list[HostResult], now: Any) -> None:
        from deployments.agent_state import host_agent_fields

        hosts = Host.objects.in_bulk([self.runs[r.run_id].host_id for r in results])
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
            Host.objects.bulk_update(
                changed,
                [
                    "agent_state", "agent_version", "definitions_version", "agent_healthy", "org_id",
                    "real_time_protection", "last_seen_at",
                ],
            )  # fmt: skip


def _context_for(run: HostRun, host: Host, profile_ctx: ProfileContext, done: dict[str, dict[str, Any]]) -> StepContext:
    return StepContext(
        host_label=host.name,
        results=dict(done),
        proxy=profile_ctx.proxy,
        cpu_sample_seconds=settings.MDEFLEET_CPU_SAMPLE_SECONDS,
        profile=profile_ctx,
    )


def _jobs_for(runs: list[HostRun], rollout: Rollout) -> list[HostJob]:
    profile_ctx = ProfileContext.build(rollout.profile, rollout)
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
    """Answers "may a new host start?" from the rollout's status, read at most once a second."""

    def __init__(self, rollout_id: int) -> None:
        self.rollout_id = rollout_id
        self.checked = 0.0
        self.running = True

    async def __call__(self) -> bool:
        if time.monotonic() - self.checked > 1.0:
            self.checked = time.monotonic()
            status = await sync_to_async(
                lambda: Rollout.objects.filter(pk=self.rollout_id).values_list("status", flat=True).first(),
                thread_sensitive=True,
            )()
            self.running = status == RolloutStatus.RUNNING
        return self.running


async def _drive(jobs: list[HostJob], sink: RolloutSink, limits: RunnerLimits, rollout_id: int) -> None:
    write = sync_to_async(sink.write, thread_sensitive=True)
    run = run_hosts(jobs, sink, limits, should_continue=_StatusGate(rollout_id))
    try:
        await run_and_store(run, sink.take, write, FLUSH_SECONDS)
    finally:
        # The writing thread's connection must not outlive the event loop that owns the thread.
        await sync_to_async(connections.close_all, thread_sensitive=True)()


def rollout_execute(*, rollout_id: int, worker: str) -> int:
    """Claim and run batches of the rollout's hosts until none is left; returns the hosts run."""
    from deployments.services.rollouts import rollout_advance

    limits = RunnerLimits.from_settings()
    ran = 0
    while True:
        runs = host_runs_claim(rollout_id=rollout_id, worker=worker, limit=settings.MDEFLEET_CLAIM_BATCH)
        if not runs:
            break
        rollout = Rollout.objects.select_related("profile").get(pk=rollout_id)
        sink = RolloutSink({run.pk: run for run in runs}, worker)
        asyncio.run(_drive(_jobs_for(runs, rollout), sink, limits, rollout_id))
        ran += len(runs)
    rollout_advance(rollout_id=rollout_id)
    return ran
