"""Host jobs: discovery (steps 1-5), the way back, ad-hoc snapshots, health refresh and high-CPU diagnosis.

Discovery stores facts, eligibility and a pre snapshot; the other kinds store what their steps learned
(``HOST_APPLY``), and every kind keeps each step's record as a ``HostCheck``.

Claims are rows of ``DiscoveryHost`` taken with ``select_for_update(skip_locked=True)``; each
carries the worker's name and a heartbeat, so a worker that died leaves rows another can take
over once the heartbeat is stale. Results are written in batches (bulk inserts and updates), not
one row per round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from deployments.runner import HostJob, HostResult, RunnerLimits, Sink, StepRecord, run_and_store, run_hosts
from deployments.steps.base import Outcome, StepContext
from deployments.steps.catalogue import job_steps
from hosts import crypto
from hosts.choices import AgentState, DiscoveryStatus, JobKind, RunStatus, SnapshotPhase, StepStatus
from hosts.eligibility import eligibility_from
from hosts.keys import public_key_fingerprint
from hosts.models import Discovery, DiscoveryHost, Host, HostCheck, Snapshot
from hosts.targets import target_for
from mdefleet.audit import SYSTEM, audit_host_key_mismatches, audit_record

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
AGENT_FIELDS = [
    "agent_version", "definitions_version", "definitions_updated_at", "agent_healthy", "org_id",
    "real_time_protection",
]  # fmt: skip
HOST_FACT_FIELDS = [
    "distro_id", "distro_version", "distro_name", "kernel", "arch", "cpu_cores", "memory_mb", "facts",
    "eligibility", "eligibility_reasons", "last_seen_at", "last_discovered_at", "last_error", "agent_state",
    "conflicting_applications", "updated_at",
]  # fmt: skip


def discovery_hosts_claim(*, discovery_id: int, worker: str, limit: int) -> list[DiscoveryHost]:
    """Take up to ``limit`` pending (or abandoned) host runs of the discovery for this worker."""
    stale = timezone.now() - timedelta(seconds=settings.MDEFLEET_CLAIM_STALE_SECONDS)
    with transaction.atomic():
        rows = list(
            DiscoveryHost.objects.select_for_update(skip_locked=True)
            .filter(discovery_id=discovery_id)
            .filter(Q(status=RunStatus.PENDING) | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale))
            .order_by("id")[:limit]
        )
        now = timezone.now()
        for row in rows:
            row.status, row.claimed_by, row.heartbeat_at, row.started_at = RunStatus.RUNNING, worker, now, now
        DiscoveryHost.objects.bulk_update(rows, ["status", "claimed_by", "heartbeat_at", "started_at"])
        if rows:
            Discovery.objects.filter(pk=discovery_id, status=DiscoveryStatus.QUEUED).update(
                status=DiscoveryStatus.RUNNING
            )
    return rows


def host_apply_discovery(host: Host, outcomes: dict[str, Outcome], now: Any) -> Snapshot | None:
    """Copy what the steps learned onto the host (unsaved) and return the snapshot to store, if any."""
    facts = outcomes.get("facts")
    if facts is not None and facts.data:
        data = facts.data
        host.distro_id = str(data.get("distro_id") or "")[:40]
        host.distro_version = str(data.get("distro_version") or "")[:40]
        host.distro_name = str(data.get("distro_name") or "")[:120]
        host.kernel = str(data.get("kernel") or "")[:120]
        host.arch = str(data.get("arch") or "")[:20]
        host.cpu_cores = data.get("cpu_cores")
        host.memory_mb = data.get("memory_mb")
    host.facts = {key: outcome.data for key, outcome in outcomes.items() if key != "snapshot_pre"}
    verdict, reasons = eligibility_from(outcomes)
    host.eligibility, host.eligibility_reasons = verdict, reasons
    connect = outcomes.get("connect")
    host.last_error = connect.reason[:500] if connect is not None else ""
    if connect is None:
        host.last_seen_at = now
    host.last_discovered_at = now
    conflicts = outcomes.get("conflicts")
    if conflicts is not None:
        host.conflicting_applications = conflicts.data.get("conflicting", [])
    if host.agent_state == AgentState.UNKNOWN and connect is None and facts is not None:
        host.agent_state = AgentState.ABSENT
    snap = outcomes.get("snapshot_pre")
    if snap is None or snap.status == StepStatus.FAILED or not snap.data:
        return None
    return Snapshot(host=host, phase=SnapshotPhase.PRE, taken_at=now, **Snapshot.fields_from(snap.data))


def host_apply_way_back(host: Host, outcomes: dict[str, Outcome], now: Any) -> None:
    """After offboarding or uninstalling: the agent's new state (eligibility is left as it was)."""
    connect = outcomes.get("connect")
    host.last_error = connect.reason[:500] if connect is not None else ""
    if connect is None:
        host.last_seen_at = now
    uninstall = outcomes.get("uninstall")
    if uninstall is not None and uninstall.status == StepStatus.OK:
        host.agent_state = AgentState.ABSENT
        host.agent_version = host.definitions_version = host.org_id = ""
        host.agent_healthy = host.real_time_protection = None
    verify = outcomes.get("offboard_verify")
    if verify is not None and verify.status == StepStatus.OK:
        host.agent_state = AgentState.INSTALLED
        host.agent_healthy = verify.data.get("healthy")
        host.org_id = ""
    return None


def host_apply_seen(host: Host, outcomes: dict[str, Outcome], now: Any) -> None:
    """Whether the host answered: last seen, or the connection error."""
    connect = outcomes.get("connect")
    host.last_error = connect.reason[:500] if connect is not None else ""
    if connect is None:
        host.last_seen_at = now


def host_apply_snapshot(host: Host, outcomes: dict[str, Outcome], now: Any) -> Snapshot | None:
    """An ad-hoc snapshot job: refreshed facts (eligibility is left as discovery judged it) and the snapshot."""
    host_apply_seen(host, outcomes, now)
    facts = outcomes.get("facts")
    if facts is not None and facts.status != StepStatus.FAILED and facts.data:
        data = facts.data
        host.distro_id = str(data.get("distro_id") or host.distro_id)[:40]
        host.distro_version = str(data.get("distro_version") or host.distro_version)[:40]
        host.distro_name = str(data.get("distro_name") or host.distro_name)[:120]
        host.kernel = str(data.get("kernel") or host.kernel)[:120]
        host.arch = str(data.get("arch") or host.arch)[:20]
        host.cpu_cores = data.get("cpu_cores") or host.cpu_cores
        host.memory_mb = data.get("memory_mb") or host.memory_mb
    snap = outcomes.get("snapshot_adhoc")
    if snap is None or snap.status == StepStatus.FAILED or not snap.data:
        return None
    return Snapshot(host=host, phase=SnapshotPhase.ADHOC, taken_at=now, **Snapshot.fields_from(snap.data))


def host_apply_health(host: Host, outcomes: dict[str, Outcome], now: Any) -> None:
    """A fleet health refresh: the agent's state from ``mdatp health`` (the rollout's own reading)."""
    from deployments.agent_state import host_agent_fields

    host_apply_seen(host, outcomes, now)
    health = outcomes.get("health")
    if health is None:
        return
    if not health.data:
        # mdatp answered nothing a health reading is made of: not installed (any more) or not running.
        if "not on the PATH" in health.reason:
            host.agent_state = AgentState.ABSENT
        return
    for name, value in host_agent_fields(outcomes).items():
        setattr(host, name, value)
    minutes = health.data.get("definitions_updated_minutes_ago")
    if isinstance(minutes, int):
        host.definitions_updated_at = now - timedelta(minutes=minutes)


# How each job kind's results land on the host; a function may return the snapshot to store.
HOST_APPLY: dict[str, Callable[[Host, dict[str, Outcome], Any], Snapshot | None]] = {
    JobKind.DISCOVER: host_apply_discovery,
    JobKind.OFFBOARD: host_apply_way_back,
    JobKind.UNINSTALL: host_apply_way_back,
    JobKind.SNAPSHOT: host_apply_snapshot,
    JobKind.HEALTH: host_apply_health,
    JobKind.DIAGNOSE: host_apply_seen,
}


class DiscoverySink(Sink):
    """Buffers step records and host results; ``write`` stores each batch in one transaction."""

    def __init__(self, runs: dict[int, DiscoveryHost], kind: str = JobKind.DISCOVER) -> None:
        self.runs = runs
        self.kind = kind
        self.steps: list[StepRecord] = []
        self.hosts: list[HostResult] = []
        self.finished: set[int] = set()

    async def step_done(self, record: StepRecord) -> None:
        self.steps.append(record)

    async def host_done(self, result: HostResult) -> None:
        self.hosts.append(result)

    def take(self) -> tuple[list[StepRecord], list[HostResult]]:
        """Hand over what arrived so far; called on the event loop's thread, never the writer's."""
        batch = (self.steps, self.hosts)
        self.steps, self.hosts = [], []
        return batch

    def write(self, batch: tuple[list[StepRecord], list[HostResult]]) -> None:
        """Store one taken batch in one transaction (runs in the database thread)."""
        steps, results = batch
        now = timezone.now()
        with transaction.atomic():
            HostCheck.objects.bulk_create(
                [
                    HostCheck(
                        run_id=r.run_id,
                        host_id=self.runs[r.run_id].host_id,
                        **r.stored_fields(),
                    )
                    for r in steps
                ]
            )
            audit_host_key_mismatches(steps, self.runs)
            if results:
                self._store_hosts(results, now)
            alive = [pk for pk in self.runs if pk not in self.finished]
            if alive:
                DiscoveryHost.objects.filter(pk__in=alive, status=RunStatus.RUNNING).update(heartbeat_at=now)

    def _store_hosts(self, results: list[HostResult], now: Any) -> None:
        hosts = Host.objects.in_bulk([self.runs[r.run_id].host_id for r in results])
        snapshots, runs = [], []
        for result in results:
            run = self.runs[result.run_id]
            host = hosts[run.host_id]
            if result.pinned_host_key and not host.host_key:
                host.host_key = result.pinned_host_key
                host.host_key_fingerprint = public_key_fingerprint(result.pinned_host_key)
                host.host_key_pinned_at = now
                host.save(update_fields=["host_key", "host_key_fingerprint", "host_key_pinned_at"])
                audit_record(
                    actor=SYSTEM,
                    action="host.pin_key",
                    target=host,
                    details={"after": host.host_key_fingerprint, "reason": "trust on first use"},
                )
            snapshot = HOST_APPLY[self.kind](host, result.outcomes, now)
            if snapshot is not None:
                snapshots.append(snapshot)
            run.status, run.reason, run.finished_at = result.status, result.reason[:500], now
            runs.append(run)
            self.finished.add(result.run_id)
        Host.objects.bulk_update(list(hosts.values()), HOST_FACT_FIELDS + AGENT_FIELDS)
        Snapshot.objects.bulk_create(snapshots)
        DiscoveryHost.objects.bulk_update(runs, ["status", "reason", "finished_at"])


@dataclass(frozen=True)
class WayBackContext:
    """What offboarding needs: the portal's offboarding package, decrypted for the batch only."""

    offboarding: str = ""

    def __repr__(self) -> str:  # the package never reaches a log
        return "WayBackContext(***)"


def _jobs_for(runs: list[DiscoveryHost], job: Discovery) -> list[HostJob]:
    hosts = Host.objects.select_related("credential").in_bulk([r.host_id for r in runs])
    payload = WayBackContext(crypto.decrypt(job.payload_encrypted) if job.payload_encrypted else "")
    steps = job_steps(job.kind)
    return [
        HostJob(
            run_id=run.pk,
            target=target_for(hosts[run.host_id]),
            steps=steps,
            context=StepContext(
                host_label=hosts[run.host_id].name,
                cpu_sample_seconds=settings.MDEFLEET_CPU_SAMPLE_SECONDS,
                cpu_samples=settings.MDEFLEET_SNAPSHOT_SAMPLES,
                profile=payload if job.kind == JobKind.OFFBOARD else None,
            ),
            trust_on_first_use=hosts[run.host_id].trust_on_first_use,
        )
        for run in runs
    ]


async def _drive(jobs: list[HostJob], sink: DiscoverySink, limits: RunnerLimits) -> None:
    write = sync_to_async(sink.write, thread_sensitive=True)
    try:
        await run_and_store(run_hosts(jobs, sink, limits), sink.take, write, FLUSH_SECONDS)
    finally:
        # The writing thread's connection must not outlive the event loop that owns the thread.
        await sync_to_async(connections.close_all, thread_sensitive=True)()


def discovery_execute(*, discovery_id: int, worker: str) -> int:
    """Claim and run batches of this discovery until none is left; returns the hosts this worker ran."""
    limits = RunnerLimits.from_settings()
    ran = 0
    while True:
        runs = discovery_hosts_claim(discovery_id=discovery_id, worker=worker, limit=settings.MDEFLEET_CLAIM_BATCH)
        if not runs:
            break
        job = Discovery.objects.get(pk=discovery_id)
        sink = DiscoverySink({run.pk: run for run in runs}, kind=job.kind)
        asyncio.run(_drive(_jobs_for(runs, job), sink, limits))
        ran += len(runs)
    discovery_finish_if_done(discovery_id=discovery_id)
    return ran


def discovery_finish_if_done(*, discovery_id: int) -> bool:
    """Mark the discovery done when no host run is pending or running (conditional update)."""
    open_runs = DiscoveryHost.objects.filter(
        discovery_id=discovery_id, status__in=[RunStatus.PENDING, RunStatus.RUNNING]
    )
    if open_runs.exists():
        return False
    return bool(
        Discovery.objects.filter(pk=discovery_id)
        .exclude(status=DiscoveryStatus.DONE)
        .update(status=DiscoveryStatus.DONE, finished_at=timezone.now(), payload_encrypted="")
    )


def discoveries_tick() -> int:
    """Re-dispatch discoveries whose hosts nobody is working on (lost message, dead worker)."""
    from hosts.tasks import discovery_run_task

    stale = timezone.now() - timedelta(seconds=settings.MDEFLEET_CLAIM_STALE_SECONDS)
    ids = list(
        DiscoveryHost.objects.filter(discovery__status__in=[DiscoveryStatus.QUEUED, DiscoveryStatus.RUNNING])
        .filter(
            Q(status=RunStatus.PENDING, discovery__created_at__lt=stale)
            | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
        )
        .values_list("discovery_id", flat=True)
        .distinct()
    )
    for discovery_id in ids:
        discovery_run_task.delay(discovery_id)
    return len(ids)
