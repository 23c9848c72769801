"""``manage.py bench --pages``: server time and queries of the pages a big fleet makes heavy.

The data is built once in the scratch database: a handful of simulated hosts are discovered and
rolled out for real (so every stored output, parsed figure and snapshot has the shape the steps
give it), then cloned into a fleet of 10,000 hosts and a finished 1,000-host, four-wave rollout
(snapshot figures varied per host so the comparison has distributions), plus a running copy for
the live progress fragment. Each page is then asked for by Django's test client, logged in as
an admin: warm-up calls first, then the median of N timed calls, and the queries of one call.
"""

from __future__ import annotations

import asyncio
import copy
import random
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

TEMPLATE_HOSTS = 8
WAVE_PLAN = ["1", "5%", "25%", "100%"]
TAGS = ("web", "db", "app", "batch", "prod", "staging")


@dataclass
class PageTiming:
    """One page or API call: its median server time over ``runs`` calls and its queries."""

    name: str
    path: str
    median_ms: float
    min_ms: float
    max_ms: float
    queries: int
    bytes: int
    target_ms: float
    runs: int

    @property
    def met(self) -> bool:
        return self.median_ms < self.target_ms

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class PagesData:
    """What the measured pages are about."""

    hosts: int
    finished_rollout_id: int
    running_rollout_id: int
    rollout_hosts: int


# --- building the data ---------------------------------------------------------------------------


def _records_from_sim(profile: Any, rollout: Any, host_ids: list[int]) -> dict[int, list[Any]]:
    """Run the rollout's steps for real on the template hosts; every step record by host id."""
    from deployments.execution import ProfileContext
    from deployments.runner import HostJob, HostResult, RunnerLimits, Sink, StepRecord, run_hosts
    from deployments.steps.base import StepContext
    from deployments.steps.catalogue import rollout_steps
    from hosts.models import Host
    from hosts.targets import target_for

    class Keep(Sink):
        def __init__(self) -> None:
            self.steps: dict[int, list[StepRecord]] = {}

        async def step_done(self, record: StepRecord) -> None:
            self.steps.setdefault(record.run_id, []).append(record)

        async def host_done(self, result: HostResult) -> None:
            pass

    profile_ctx = ProfileContext.build(profile, rollout)
    jobs = []
    for host in Host.objects.select_related("credential").filter(pk__in=host_ids):
        jobs.append(
            HostJob(
                run_id=host.pk,
                target=target_for(host),
                steps=rollout_steps(),
                context=StepContext(
                    host_label=host.name, results=dict(host.facts), cpu_sample_seconds=0, profile=profile_ctx
                ),
            )
        )
    sink = Keep()
    asyncio.run(run_hosts(jobs, sink, RunnerLimits.from_settings()))
    return sink.steps


def _vary(parsed: dict[str, Any], rng: random.Random, phase: str) -> dict[str, Any]:
    """A snapshot's figures moved a little (post: the agent's cost on top), so hosts differ."""
    data = copy.deepcopy(parsed)
    if isinstance(data.get("cpu_busy_pct"), int | float):
        data["cpu_busy_pct"] = round(max(0.0, data["cpu_busy_pct"] + rng.uniform(0, 30 if phase == "post" else 10)), 1)
    if isinstance(data.get("mem_used_mb"), int | float):
        data["mem_used_mb"] = round(data["mem_used_mb"] + rng.uniform(0, 900 if phase == "post" else 300), 1)
    return data


def pages_build(*, hosts: int, rollout_hosts: int, seed: int = 7) -> PagesData:
    """Discover and roll out a few simulated hosts for real, then clone them to the sizes measured."""
    from django.db import transaction
    from django.utils import timezone

    from deployments.choices import GateVerdict, HostRunStatus, RolloutStatus, WaveStatus
    from deployments.models import HostRun, Rollout, StepResult, Wave
    from deployments.planning import plan_sizes as wave_sizes
    from deployments.services.profiles import profile_create, profile_set_onboarding
    from deployments.services.rollouts import rollout_create
    from hosts.choices import Eligibility, SnapshotPhase
    from hosts.discovery import discovery_execute
    from hosts.importing import parse_inventory
    from hosts.models import Host, Snapshot, Tag
    from hosts.services import credential_create, discovery_start, host_import
    from hosts.sim import SimFleet
    from mdefleet.audit import SYSTEM
    from mdefleet.bench import SAMPLE_ONBOARDING, bench_gates

    rng = random.Random(seed)  # noqa: S311 - varied figures, not secrets
    fleet = SimFleet(
        TEMPLATE_HOSTS,
        time_scale=0.01,
        deploy_every=0,
        profiles=["rhel-9.4", "rhel-8.10", "rocky-9.4", "alma-9.4", "ol-8.10", "rhel-7.9", "centos-7.9", "rocky-9.4"],
    ).start_in_thread()
    try:
        credential_create(actor=SYSTEM, name="bench-pages", kind="private_key", secret=fleet.client_private_key or "")
        import json

        parsed = parse_inventory(content=json.dumps(fleet.inventory("bench-pages")), fmt="json")
        templates = host_import(actor=SYSTEM, rows=parsed.rows, trust_on_first_use=False)
        discovery_execute(discovery_id=discovery_start(actor=SYSTEM, hosts=templates).pk, worker="bench-pages")
        template_ids = list(
            Host.objects.filter(eligibility=Eligibility.ELIGIBLE).order_by("id").values_list("pk", flat=True)
        )
        profile = profile_create(actor=SYSTEM, data={"name": "bench pages", "channel": "prod"})
        profile = profile_set_onboarding(
            actor=SYSTEM, profile=profile, filename=SAMPLE_ONBOARDING.name, content=SAMPLE_ONBOARDING.read_bytes()
        )
        draft = rollout_create(
            actor=SYSTEM,
            name="templates",
            profile=profile,
            selection={"ids": template_ids},
            wave_plan=["100%"],
            gates=bench_gates(),
            soak_seconds=0,
            settle_seconds=0,
        )
        records = _records_from_sim(profile, draft, template_ids)
    finally:
        fleet.stop_thread()

    # The fleet: every template host cloned until there are ``hosts``, with tags.
    source = list(Host.objects.filter(pk__in=template_ids))
    tags = [Tag.objects.get_or_create(name=name)[0] for name in TAGS]
    fields = [
        f.attname
        for f in Host._meta.concrete_fields
        if not f.primary_key and f.attname not in ("name", "address", "port", "host_key")
    ]
    now = timezone.now()
    with transaction.atomic():
        clones = Host.objects.bulk_create(
            [
                Host(
                    **{name: getattr(source[i % len(source)], name) for name in fields},
                    name=f"bench-{i:05d}.example.net",
                    address=f"10.{i // 62500 % 250}.{i // 250 % 250}.{i % 250 + 1}",
                    port=22,
                    host_key=source[i % len(source)].host_key,
                )
                for i in range(max(0, hosts - Host.objects.count()))
            ],
            batch_size=2000,
        )
        Host.tags.through.objects.bulk_create(
            [Host.tags.through(host_id=h.pk, tag_id=tags[i % 4].pk) for i, h in enumerate(clones)]
            + [Host.tags.through(host_id=h.pk, tag_id=tags[4 + i % 2].pk) for i, h in enumerate(clones)],
            batch_size=5000,
        )
    chosen = [h.pk for h in clones[:rollout_hosts]]
    finished, running = (
        _rollout_clone(
            name=f"bench pages: {'finished' if done else 'running'}",
            profile=profile,
            host_ids=chosen,
            templates=[records[pk] for pk in template_ids if pk in records],
            rng=rng,
            finished=done,
            now=now,
            models=(Rollout, Wave, HostRun, StepResult, Snapshot),
            choices=(GateVerdict, HostRunStatus, RolloutStatus, WaveStatus, SnapshotPhase),
            wave_sizes=wave_sizes,
        )
        for done in (True, False)
    )
    return PagesData(
        hosts=Host.objects.count(), finished_rollout_id=finished, running_rollout_id=running, rollout_hosts=len(chosen)
    )


def _rollout_clone(
    *,
    name: str,
    profile: Any,
    host_ids: list[int],
    templates: list[list[Any]],
    rng: random.Random,
    finished: bool,
    now: Any,
    models: tuple[Any, ...],
    choices: tuple[Any, ...],
    wave_sizes: Any,
) -> int:
    """A four-wave rollout of ``host_ids`` whose step results are the templates' (figures varied).

    Finished: every wave passed its gate. Running: the last wave is half done, the rest running.
    """
    from django.db import transaction

    from deployments.execution import ProfileContext
    from deployments.steps.base import StepContext
    from deployments.steps.compare import CompareStep
    from hosts.ssh import CommandResult
    from mdefleet.bench import bench_gates

    Rollout, Wave, HostRun, StepResult, Snapshot = models
    GateVerdict, HostRunStatus, RolloutStatus, WaveStatus, SnapshotPhase = choices
    sizes = wave_sizes(WAVE_PLAN, len(host_ids))
    compare = CompareStep()
    no_command = CommandResult(command="", exit_status=0, stdout="", stderr="", duration_ms=0)
    with transaction.atomic():
        rollout = Rollout.objects.create(
            name=name,
            profile=profile,
            ticket="CHG0070001",
            status=RolloutStatus.COMPLETED if finished else RolloutStatus.RUNNING,
            selection={"tags": ["prod"], "filter": {"distro": "rhel"}},
            wave_plan=WAVE_PLAN,
            gates=bench_gates(),
            settle_seconds=0,
            current_wave=len(sizes) - 1,
            started_at=now - timedelta(minutes=30),
            finished_at=now if finished else None,
        )
        waves = []
        for index, size in enumerate(sizes):
            last = index == len(sizes) - 1
            done = finished or not last
            waves.append(
                Wave(
                    rollout=rollout,
                    index=index,
                    planned_size=size,
                    status=WaveStatus.PASSED if done else WaveStatus.RUNNING,
                    gate_verdict=GateVerdict.PASS if done else "",
                    gate_report={"verdict": "pass", "reasons": [f"{size} of {size} hosts OK"], "numbers": {}}
                    if done
                    else {},
                    started_at=now - timedelta(minutes=30 - 5 * index),
                    finished_at=now - timedelta(minutes=25 - 5 * index) if done else None,
                )
            )
        Wave.objects.bulk_create(waves)
        runs: list[Any] = []
        position = 0
        for wave, size in zip(waves, sizes, strict=True):
            last = wave.index == len(sizes) - 1
            for offset, host_id in enumerate(host_ids[position : position + size]):
                running = not finished and last and offset % 2 == 0
                failed = not running and (position + offset) % 97 == 96
                runs.append(
                    HostRun(
                        rollout=rollout,
                        wave=wave,
                        host_id=host_id,
                        status=HostRunStatus.RUNNING
                        if running
                        else HostRunStatus.FAILED
                        if failed
                        else HostRunStatus.OK,
                        attempt=1,
                        current_step="install" if running else "",
                        claimed_by="bench@pages" if running else "",
                        started_at=now - timedelta(minutes=20),
                        finished_at=None if running else now - timedelta(minutes=10),
                        reason="Install mdatp: dnf could not reach packages.microsoft.com" if failed else "",
                    )
                )
            position += size
        HostRun.objects.bulk_create(runs, batch_size=2000)
        profile_ctx = ProfileContext.build(profile, rollout)
        results: list[Any] = []
        snapshots: list[Any] = []
        for i, run in enumerate(runs):
            template = templates[i % len(templates)]
            varied: dict[str, Any] = {}
            for record in template:
                if run.status == HostRunStatus.RUNNING and record.step == "install":
                    break
                fields = record.stored_fields()
                if record.step in ("snapshot_pre", "snapshot_post"):
                    fields["parsed"] = _vary(record.parsed, rng, record.step.removeprefix("snapshot_"))
                    varied[record.step] = fields["parsed"]
                    if record.status != "failed" and fields["parsed"]:
                        snapshots.append(
                            Snapshot(
                                host_id=run.host_id,
                                phase=SnapshotPhase.PRE if record.step == "snapshot_pre" else SnapshotPhase.POST,
                                taken_at=fields["finished_at"],
                                **Snapshot.fields_from(fields["parsed"]),
                            )
                        )
                if record.step == "compare":
                    # What the compare step stores for the varied snapshots: its verdict, words and data.
                    context = StepContext(host_label="clone", results=varied, profile=profile_ctx)
                    outcome = compare.evaluate(context, no_command)
                    fields.update(status=outcome.status, reason=outcome.reason[:500], parsed=outcome.data)
                if run.status == HostRunStatus.FAILED and record.step == "install":
                    fields.update(status="failed", reason="dnf could not reach packages.microsoft.com")
                    results.append(StepResult(host_run=run, attempt=1, **fields))
                    break
                results.append(StepResult(host_run=run, attempt=1, **fields))
        StepResult.objects.bulk_create(results, batch_size=2000)
        Snapshot.objects.bulk_create(snapshots, batch_size=2000)
    return int(rollout.pk)


# --- measuring -------------------------------------------------------------------------------------


def pages_measure(data: PagesData, *, runs: int = 15, warmup: int = 2) -> list[PageTiming]:
    """Each page's median server time over ``runs`` calls (after ``warmup``), and its queries."""
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from deployments import selectors
    from deployments.models import Rollout

    user_model = get_user_model()
    admin, _ = user_model.objects.get_or_create(username="bench-pages", defaults={"is_superuser": True})
    admin.is_superuser = admin.is_staff = True
    admin.save()
    client = Client(SERVER_NAME="localhost")
    client.force_login(admin)
    finished, running = data.finished_rollout_id, data.running_rollout_id
    cursor = selectors.rollout_poll_cursor(rollout=Rollout.objects.get(pk=running)).encode()
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "rollout-poll"}
    pages: list[tuple[str, str, dict[str, str], float]] = [
        (f"fleet page ({data.hosts:,} hosts)", reverse("hosts:fleet"), {}, 150),
        (f"rollout detail ({data.rollout_hosts:,} hosts)", reverse("deployments:rollout", args=[finished]), {}, 150),
        ("comparison page", reverse("deployments:rollout-comparison", args=[finished]), {}, 150),
        (
            "progress fragment (idle poll)",
            reverse("deployments:rollout", args=[running]) + f"?since={cursor}",
            htmx,
            30,
        ),
        ("API rollout detail", f"/api/v1/rollouts/{finished}/", {}, 50),
        ("API report", f"/api/v1/rollouts/{finished}/report/", {}, 500),
    ]
    timings = []
    for name, path, headers, target in pages:
        for _ in range(warmup):
            response = client.get(path, **headers)  # type: ignore[arg-type]
            if response.status_code not in (200, 286):
                raise RuntimeError(f"{name}: GET {path} answered {response.status_code}")
        reset_queries()  # each request resets the log (request_started): start from empty, as tests do
        with CaptureQueriesContext(connection) as queries:
            client.get(path, **headers)  # type: ignore[arg-type]
        spent = []
        size = 0
        for _ in range(runs):
            began = time.perf_counter()
            response = client.get(path, **headers)  # type: ignore[arg-type]
            spent.append((time.perf_counter() - began) * 1000)
            size = len(response.content)
        timings.append(
            PageTiming(
                name=name,
                path=path,
                median_ms=round(statistics.median(spent), 1),
                min_ms=round(min(spent), 1),
                max_ms=round(max(spent), 1),
                queries=len(queries),
                bytes=size,
                target_ms=target,
                runs=runs,
            )
        )
    return timings


def pages_table(timings: list[PageTiming]) -> str:
    """The timings as a fixed-width table."""
    head = f"{'page':<34} {'median ms':>10} {'min':>7} {'max':>7} {'queries':>8} {'KB':>7}  target"
    lines = [head, "-" * len(head)]
    for t in timings:
        verdict = "met" if t.met else "MISSED"
        lines.append(
            f"{t.name:<34} {t.median_ms:>10.1f} {t.min_ms:>7.1f} {t.max_ms:>7.1f} {t.queries:>8} "
            f"{t.bytes / 1024:>7.0f}  < {t.target_ms:.0f} ms {verdict}"
        )
    return "\n".join(lines)
