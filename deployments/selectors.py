"""Reads of rollouts for pages and the API, shaped so a page costs a fixed number of queries.

A rollout of a thousand hosts is read with grouped queries (counts per wave and status, counts
per wave, step and status) and one narrow query for the per-host grid; nothing here issues a
query per host. The live view asks :func:`rollout_changes` for what changed since its cursor, so
an idle poll costs a handful of queries and a few hundred bytes whatever the size of the rollout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Length, Substr
from django.utils import timezone

from deployments.choices import HostRunStatus, RolloutStatus, WaveStatus
from deployments.models import HostRun, Rollout, StepResult, Wave
from hosts.choices import StepStatus

OUTPUT_SHOWN_MAX = 64 * 1024
DRY_RUN_DEFAULT = 20
DRY_RUN_MAX = 200
# Changes older than the last poll are sent again for this long: a worker's batch may commit a
# little after the rows' timestamps (and worker clocks drift a little), so nothing falls in a gap.
POLL_OVERLAP = timedelta(seconds=10)
# Above this many changed squares in one wave, the wave's whole grid is sent instead of each square.
GRID_SQUARES_OOB_MAX = 300
WAVE_DONE = (WaveStatus.PASSED, WaveStatus.FAILED, WaveStatus.INCONCLUSIVE)
RUN_STATUSES = [s.value for s in HostRunStatus]
STEP_STATUSES = [s.value for s in StepStatus]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the step catalogue, for titles and order ---------------------------------------------------


@lru_cache(maxsize=1)
def step_titles() -> dict[str, tuple[int, str]]:
    """{step key: (number, title)} of every step the catalogue knows."""
    from deployments.steps import catalogue

    steps: list[Any] = list(getattr(catalogue, "DISCOVERY_STEPS", ()))
    if hasattr(catalogue, "rollout_steps"):
        steps += list(catalogue.rollout_steps())
    titles = {step.key: (step.number, step.title) for step in steps}
    return titles


def step_title(key: str) -> str:
    """A step's title; a key the catalogue does not know (such as ``connect``) is shown readably."""
    known = step_titles().get(key)
    return known[1] if known else key.replace("_", " ").capitalize()


def _step_order(key: str) -> tuple[int, str]:
    known = step_titles().get(key)
    return (known[0] if known else 0, key)


# --- lists -------------------------------------------------------------------------------------


def rollout_list() -> QuerySet[Rollout]:
    """Rollouts with profile, creator and waves loaded (three queries for any number of rows)."""
    return Rollout.objects.select_related("profile", "created_by").prefetch_related(
        Prefetch("waves", queryset=Wave.objects.order_by("index"))
    )


def rollout_get(*, rollout_id: int) -> Rollout:
    """One rollout with profile and creator; raises Rollout.DoesNotExist."""
    return Rollout.objects.select_related("profile", "created_by").get(pk=rollout_id)


def _blank_counts() -> dict[str, int]:
    return {status: 0 for status in RUN_STATUSES} | {"total": 0}


def rollouts_attach_counts(*, rollouts: list[Rollout]) -> list[Rollout]:
    """Set ``counts`` (host runs per status), ``wave_counts`` (per wave index and status) and
    ``waves_done``/``waves_total`` on each rollout, in one query for the whole list.

    The rollouts' waves must be prefetched (``rollout_list``).
    """
    by_rollout: dict[int, dict[int, dict[str, int]]] = defaultdict(dict)
    rows = (
        HostRun.objects.filter(rollout_id__in=[r.pk for r in rollouts])
        .values("rollout_id", "wave__index", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        wave = by_rollout[row["rollout_id"]].setdefault(row["wave__index"], _blank_counts())
        wave[row["status"]] += row["n"]
        wave["total"] += row["n"]
    for rollout in rollouts:
        waves = list(rollout.waves.all())
        per_wave = {w.index: by_rollout[rollout.pk].get(w.index, _blank_counts()) for w in waves}
        totals = _blank_counts()
        for counts in per_wave.values():
            for key, value in counts.items():
                totals[key] += value
        rollout.counts = totals  # type: ignore[attr-defined]
        rollout.wave_counts = per_wave  # type: ignore[attr-defined]
        rollout.waves_total = len(waves)  # type: ignore[attr-defined]
        rollout.waves_done = sum(1 for w in waves if w.status in WAVE_DONE)  # type: ignore[attr-defined]
    return rollouts


# --- the detail page: waves, counts, step counts, the grid -------------------------------------


@dataclass(frozen=True)
class Cell:
    """One square of the per-host grid."""

    id: int
    wave_id: int
    status: str
    step: str
    name: str
    reason: str

    @property
    def title(self) -> str:
        label = HostRunStatus(self.status).label if self.status in RUN_STATUSES else self.status
        parts = [self.name, label]
        if self.step and self.status == HostRunStatus.RUNNING:
            parts.append(step_title(self.step))
        if self.reason:
            parts.append(self.reason[:160])
        return " · ".join(parts)


@dataclass
class StepCount:
    """How one wave's host runs ended one step (the latest result of each host)."""

    key: str
    title: str
    ok: int = 0
    warn: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.ok + self.warn + self.failed + self.skipped


@dataclass
class WaveView:
    """A wave as the page shows it: its row, counts, step counts and squares."""

    wave: Wave
    counts: dict[str, int]
    steps: list[StepCount] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.wave.index + 1

    def pct(self, status: str) -> float:
        total = self.counts["total"] or 1
        return round(100 * self.counts.get(status, 0) / total, 2)

    @property
    def bar(self) -> dict[str, float]:
        return {s: self.pct(s) for s in ("ok", "failed", "running", "cancelled")}

    @property
    def failed_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.status == HostRunStatus.FAILED][:10]

    @property
    def regressions(self) -> list[dict[str, Any]]:
        """The gate report's regression numbers with each metric's label and unit."""
        from deployments.comparison import METRICS

        numbers = (self.wave.gate_report or {}).get("numbers") or {}
        rows = []
        for metric, figures in (numbers.get("regressions") or {}).items():
            meta = METRICS.get(metric, {"label": metric, "unit": ""})
            rows.append({"metric": metric, "label": meta["label"], "unit": meta["unit"], **figures})
        return rows


def rollout_wave_counts(*, rollout: Rollout, wave_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Host runs per wave id and status (with ``total``), in one query."""
    runs = HostRun.objects.filter(rollout=rollout)
    if wave_ids is not None:
        runs = runs.filter(wave_id__in=wave_ids)
    counts: dict[int, dict[str, int]] = defaultdict(_blank_counts)
    for row in runs.values("wave_id", "status").annotate(n=Count("id")).order_by():
        counts[row["wave_id"]][row["status"]] += row["n"]
        counts[row["wave_id"]]["total"] += row["n"]
    return counts


def rollout_step_counts(*, rollout: Rollout, wave_ids: list[int] | None = None) -> dict[int, list[StepCount]]:
    """Per wave id, each step with how many host runs ended it ok/warn/failed/skipped, in one query.

    Only each host run's latest result of a step counts: a step failed then retried ok is ok.
    """
    results = StepResult.objects.filter(host_run__rollout=rollout)
    if wave_ids is not None:
        results = results.filter(host_run__wave_id__in=wave_ids)
    latest = results.values("host_run_id", "step").annotate(last=Max("id")).values("last").order_by()
    rows = (
        StepResult.objects.filter(id__in=Subquery(latest))
        .values("host_run__wave_id", "step", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_wave: dict[int, dict[str, StepCount]] = defaultdict(dict)
    for row in rows:
        key = row["step"]
        count = by_wave[row["host_run__wave_id"]].setdefault(key, StepCount(key=key, title=step_title(key)))
        if row["status"] in STEP_STATUSES:
            setattr(count, row["status"], getattr(count, row["status"]) + row["n"])
    return {wave_id: sorted(steps.values(), key=lambda s: _step_order(s.key)) for wave_id, steps in by_wave.items()}


def _cells(runs: QuerySet[HostRun]) -> list[Cell]:
    return [
        Cell(*row)
        for row in runs.order_by("id").values_list("id", "wave_id", "status", "current_step", "host__name", "reason")
    ]


def rollout_cells(*, rollout: Rollout, wave_ids: list[int] | None = None) -> list[Cell]:
    """Every host run of the rollout (or of some waves) as a grid square, in one narrow query."""
    runs = HostRun.objects.filter(rollout=rollout)
    if wave_ids is not None:
        runs = runs.filter(wave_id__in=wave_ids)
    return _cells(runs)


def rollout_waves(*, rollout: Rollout, wave_ids: list[int] | None = None, with_cells: bool = True) -> list[WaveView]:
    """The rollout's waves (or some of them) with counts, step counts and squares: four queries."""
    waves = Wave.objects.filter(rollout=rollout).select_related("approved_by").order_by("index")
    if wave_ids is not None:
        waves = waves.filter(pk__in=wave_ids)
    counts = rollout_wave_counts(rollout=rollout, wave_ids=wave_ids)
    steps = rollout_step_counts(rollout=rollout, wave_ids=wave_ids)
    cells: dict[int, list[Cell]] = defaultdict(list)
    if with_cells:
        for cell in rollout_cells(rollout=rollout, wave_ids=wave_ids):
            cells[cell.wave_id].append(cell)
    return [
        WaveView(wave=w, counts=counts.get(w.pk, _blank_counts()), steps=steps.get(w.pk, []), cells=cells[w.pk])
        for w in waves
    ]


def rollout_totals(*, waves: list[WaveView] | None = None, counts: dict[int, dict[str, int]] | None = None) -> dict:
    """Host runs per status over the whole rollout, from per-wave counts already read."""
    totals = _blank_counts()
    per_wave = [w.counts for w in waves] if waves is not None else list((counts or {}).values())
    for wave_counts in per_wave:
        for key, value in wave_counts.items():
            totals[key] += value
    totals["done"] = totals["ok"] + totals["failed"] + totals["cancelled"]
    return totals


def gates_described(gates: dict[str, Any]) -> list[tuple[str, str]]:
    """The rollout's gates as a person reads them: (name, sentence) pairs."""
    from deployments.comparison import METRICS
    from deployments.gates import GateConfigError, normalize_gates, rule_of

    try:
        gates = normalize_gates(gates)
    except GateConfigError:
        return [("Gates", "not readable; see the API")]

    def share(limit: dict[str, Any], whole: str) -> str:
        value = f"{limit['value']:g}"
        return f"more than {value}% of {whole}" if limit["unit"] == "pct" else f"more than {value} of {whole}"

    wave_hosts = "a wave's hosts"
    lines = [
        ("Wave gate", f"halt when {share(gates['max_failed_per_wave'], wave_hosts)} fail"),
        ("Failure budget", f"halt when {share(gates['max_failed_total'], 'all hosts')} fail across waves"),
    ]
    for metric, threshold in gates["regression"].items():
        meta = METRICS.get(metric, {"label": metric, "unit": ""})
        rule = rule_of(metric, threshold)
        text = "not gated" if rule is None else rule.describe().replace("halt when a host", "halt when a host's figure")
        lines.append((meta["label"], text))
    return lines


# --- the live view: what changed since the client's cursor --------------------------------------


def _micros(moment: datetime | None) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) if moment else 0


@dataclass(frozen=True)
class PollCursor:
    """What a live page has seen: the last step result id, the poll's time and the rollout's version."""

    step_id: int
    at: datetime
    rollout_version: int

    def encode(self) -> str:
        return f"{self.step_id}.{_micros(self.at)}.{self.rollout_version}"

    @classmethod
    def decode(cls, text: str) -> PollCursor | None:
        """The cursor of a ``since`` parameter; None when it is missing or malformed."""
        try:
            step_id, at, version = (int(part) for part in text.split("."))
            return cls(step_id, _EPOCH + timedelta(microseconds=at), version)
        except (ValueError, OverflowError):
            return None


def rollout_poll_cursor(*, rollout: Rollout) -> PollCursor:
    """The cursor as of now (read before the data it covers, so nothing slips between)."""
    last = StepResult.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return PollCursor(step_id=last, at=timezone.now(), rollout_version=_micros(rollout.updated_at))


@dataclass
class RolloutChanges:
    """What a live page must update: everything (``full``) or only these squares and their waves."""

    cursor: PollCursor
    full: bool
    cells: list[Cell] = field(default_factory=list)

    @property
    def wave_ids(self) -> list[int]:
        return sorted({c.wave_id for c in self.cells})


def rollout_changes(*, rollout: Rollout, since: PollCursor | None) -> RolloutChanges:
    """Squares changed since ``since`` (steps recorded, hosts claimed or finished); ``full`` when the
    rollout itself changed (status, wave, halt reason: these move many squares at once) or the
    cursor is unusable. Two queries when nothing changed."""
    cursor = rollout_poll_cursor(rollout=rollout)
    if since is None or since.rollout_version != cursor.rollout_version:
        return RolloutChanges(cursor=cursor, full=True)
    after = since.at - POLL_OVERLAP
    stepped = StepResult.objects.filter(id__gt=since.step_id, host_run__rollout=rollout).values("host_run_id")
    runs = HostRun.objects.filter(rollout=rollout).filter(
        Q(pk__in=Subquery(stepped)) | Q(started_at__gte=after) | Q(finished_at__gte=after)
    )
    return RolloutChanges(cursor=cursor, full=False, cells=_cells(runs))


def rollout_is_live(*, rollout: Rollout) -> bool:
    """Whether the page should keep polling: not terminal, and not at rest with nothing running."""
    if rollout.status in RolloutStatus.terminal():
        return False
    if rollout.status in (RolloutStatus.DRAFT, RolloutStatus.HALTED, RolloutStatus.PAUSED):
        return HostRun.objects.filter(rollout=rollout, status=HostRunStatus.RUNNING).exists()
    return True


# --- host runs and their steps ------------------------------------------------------------------


def host_run_list(*, rollout: Rollout) -> QuerySet[HostRun]:
    """The rollout's host runs with host and wave (one query per page)."""
    return (
        HostRun.objects.filter(rollout=rollout)
        .select_related("host", "wave")
        .only(
            "id",
            "rollout_id",
            "status",
            "attempt",
            "current_step",
            "reason",
            "started_at",
            "finished_at",
            "wave__id",
            "wave__index",
            "host__id",
            "host__name",
            "host__address",
            "host__port",
        )
        .order_by("wave__index", "id")
    )


def _steps_queryset(*, with_output: bool, with_parsed: bool) -> QuerySet[StepResult]:
    steps = StepResult.objects.order_by("id").defer("output")
    if not with_parsed:
        steps = steps.defer("output", "parsed")
    if with_output:
        steps = steps.annotate(output_head=Substr("output", 1, OUTPUT_SHOWN_MAX + 1), output_chars=Length("output"))
    return steps


def host_runs_with_steps(*, rollout: Rollout, with_output: bool = False, with_parsed: bool = False) -> QuerySet:
    """Host runs with their step results prefetched (output only when asked, capped): fixed queries."""
    return host_run_list(rollout=rollout).prefetch_related(
        Prefetch("steps", queryset=_steps_queryset(with_output=with_output, with_parsed=with_parsed))
    )


def host_run_get(*, rollout: Rollout, run_id: int) -> HostRun:
    """One host run of the rollout with host and wave; raises HostRun.DoesNotExist."""
    return HostRun.objects.select_related("host", "wave").get(rollout=rollout, pk=run_id)


def host_run_steps(*, host_run: HostRun) -> list[StepResult]:
    """The run's step results in order, without their output (fetched on demand)."""
    return list(_steps_queryset(with_output=False, with_parsed=False).filter(host_run=host_run))


def capped_output(text: str, *, limit: int = OUTPUT_SHOWN_MAX) -> tuple[str, bool]:
    """The output as shown to a person, at most ``limit`` bytes; True when it was cut."""
    encoded = (text or "").encode("utf-8")
    if len(encoded) <= limit:
        return text or "", False
    return encoded[:limit].decode("utf-8", errors="ignore"), True


def step_output(*, host_run: HostRun, step_id: int) -> tuple[StepResult, str, bool]:
    """One step result of the run with its output capped at 64 KB (cut in the database, not here)."""
    step = (
        StepResult.objects.defer("output", "parsed")
        .annotate(output_head=Substr("output", 1, OUTPUT_SHOWN_MAX + 1), output_chars=Length("output"))
        .get(host_run=host_run, pk=step_id)
    )
    shown, cut = capped_output(step.output_head)
    return step, shown, cut or step.output_chars > OUTPUT_SHOWN_MAX


# --- dry run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRunStep:
    """One step as it would run on one host: its command, or why none is sent."""

    key: str
    number: int
    title: str
    command: str | None
    note: str = ""
    stdin_name: str = ""
    stdin_bytes: int | None = None
    delay_seconds: float = 0
    error: str = ""


@dataclass(frozen=True)
class DryRunHost:
    """A host run and the steps it would run, in order."""

    run_id: int
    host_id: int
    name: str
    address: str
    wave: int
    status: str
    discovered: bool
    steps: list[DryRunStep]


@dataclass(frozen=True)
class DryRun:
    """The dry run of a rollout: the first ``limit`` hosts and how many there are in all."""

    hosts: list[DryRunHost]
    total: int
    limit: int


def _stdin_name(key: str, profile: Any) -> str:
    """Where a file delivered on standard input lands, by the step that delivers it."""
    from deployments.steps.detection import TEST_FILE
    from deployments.steps.onboarding_file import ONBOARD_JSON, SCRIPT_PATH
    from deployments.steps.schedules import CRON_FILE
    from deployments.steps.settings_file import MANAGED_JSON

    if key == "onboarding":
        return ONBOARD_JSON if profile.onboarding_kind == "json" else f"{SCRIPT_PATH} (run, then removed)"
    return {"settings": MANAGED_JSON, "schedules": CRON_FILE, "detection": f"{TEST_FILE} (EICAR test string)"}.get(
        key, "standard input"
    )


def _redact(command: str, secret: str) -> str:
    # The onboarding package travels on stdin, never in a command; this only guards against a
    # future step that would put it there by mistake.
    if secret and len(secret) >= 8 and secret in command:
        return command.replace(secret, "[onboarding package withheld]")
    return command


def rollout_dry_run(*, rollout: Rollout, limit: int = DRY_RUN_DEFAULT) -> DryRun:
    """For each of the first ``limit`` host runs, the exact commands the steps would send, run nowhere.

    Each step's context is the host's discovered facts (``Host.facts``, keyed by step) and the
    profile as the workers see it. Files delivered on standard input are named with their size;
    their content (the onboarding package is a secret) never leaves this function.
    """
    from deployments.execution import ProfileContext
    from deployments.steps.base import StepContext
    from deployments.steps.catalogue import rollout_steps

    limit = max(1, min(int(limit), DRY_RUN_MAX))
    profile_ctx = ProfileContext.build(rollout.profile, rollout)
    secret = profile_ctx.onboarding or ""
    runs = list(
        HostRun.objects.filter(rollout=rollout)
        .select_related("host", "wave")
        .only("id", "status", "wave__index", "host__id", "host__name", "host__address", "host__facts")
        .order_by("wave__index", "id")[:limit]
    )
    total = HostRun.objects.filter(rollout=rollout).count()
    steps = list(rollout_steps())
    hosts = []
    for run in runs:
        facts = run.host.facts if isinstance(run.host.facts, dict) else {}
        ctx = StepContext(
            host_label=run.host.name,
            results={key: value for key, value in facts.items() if isinstance(value, dict)},
            proxy=rollout.profile.proxy,
            cpu_sample_seconds=settings.MDEFLEET_CPU_SAMPLE_SECONDS,
            profile=profile_ctx,
        )
        planned = []
        for step in steps:
            try:
                command = step.command(ctx)
                stdin = step.stdin(ctx)
                delay = float(step.delay_before(ctx) or 0)
            except Exception as exc:  # a step that cannot be built for this host says why, others go on
                planned.append(
                    DryRunStep(
                        step.key, step.number, step.title, None, error=f"cannot build: {type(exc).__name__}: {exc}"
                    )
                )
                continue
            planned.append(
                DryRunStep(
                    key=step.key,
                    number=step.number,
                    title=step.title,
                    command=_redact(command, secret) if command is not None else None,
                    note="" if command is not None else "judged locally, no command",
                    stdin_name=_stdin_name(step.key, rollout.profile) if stdin is not None else "",
                    stdin_bytes=len(stdin.encode("utf-8")) if stdin is not None else None,
                    delay_seconds=delay,
                )
            )
        hosts.append(
            DryRunHost(
                run_id=run.pk,
                host_id=run.host.pk,
                name=run.host.name,
                address=run.host.address,
                wave=run.wave.index + 1,
                status=run.status,
                discovered=bool(facts),
                steps=planned,
            )
        )
    return DryRun(hosts=hosts, total=total, limit=limit)
