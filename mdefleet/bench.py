"""The benchmark behind ``manage.py bench``: a full rollout on real workers against a bare asyncssh floor.

Every measured phase gets a fresh simulated fleet in its own process (same seed, same keys and
ports, so the inventory stays valid; fresh state, so every phase installs from scratch) and,
for rollouts, fresh ``celery worker`` processes, so a worker's peak RSS (VmHWM) and its query
count belong to that phase alone. The floor sends the same command strings as the rollout over
the same number of connections with the same bounds, and stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncssh

ROOT = Path(__file__).resolve().parents[1]
CREDENTIAL = "bench-sim"
STEP_WAIT = 0.2
SIM_START_ATTEMPTS = 8


# --- query counting inside a worker (installed from mdefleet/celery.py when MDEFLEET_COUNT_QUERIES is set) ---

_queries_seen = 0
_queries_lock = threading.Lock()


def query_counter_install(path: str) -> None:
    """Count every SQL statement of this process (every connection, every thread); write the total to ``path``."""
    from celery.signals import task_postrun, worker_shutdown
    from django.db.backends.utils import CursorWrapper

    # At the class, not per connection: the runner's writes run on a thread whose connection is made later.
    original = CursorWrapper._execute_with_wrappers

    def counted(self: Any, sql: str, params: Any, many: bool, executor: Any) -> Any:
        global _queries_seen
        with _queries_lock:
            _queries_seen += 1
        return original(self, sql, params, many, executor)

    CursorWrapper._execute_with_wrappers = counted  # type: ignore[method-assign]

    def write(**kwargs: Any) -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as handle:
            handle.write(str(_queries_seen))
        os.replace(tmp, path)

    task_postrun.connect(write, weak=False)
    worker_shutdown.connect(write, weak=False)


# --- services the bench needs ---


class BenchRefused(Exception):
    """The bench cannot run here; the message says what to set."""


def require_services(database_url: str, broker_url: str) -> None:
    """PostgreSQL and Redis only: SQLite and the filesystem broker measure something else."""
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise BenchRefused(
            "the bench needs PostgreSQL: set DATABASE_URL=postgres://USER@HOST:5432/NAME "
            f"(got {urlsplit(database_url).scheme or 'nothing'}; SQLite would measure file locking)"
        )
    if not broker_url.startswith(("redis://", "rediss://")):
        raise BenchRefused(
            "the bench needs Redis: set CELERY_BROKER_URL=redis://HOST:6379/N "
            f"(got {urlsplit(broker_url).scheme or 'nothing'}; the filesystem broker polls)"
        )


def database_url_for(database_url: str, name: str) -> str:
    """The same server and user, another database."""
    parts = urlsplit(database_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextlib.contextmanager
def scratch_database(database_url: str, name: str, *, keep: bool = False) -> Iterator[str]:
    """Create ``name`` afresh (dropping a leftover), yield its URL, drop it at the end unless ``keep``."""
    import psycopg
    from psycopg import sql

    maintenance = database_url_for(database_url, "postgres")

    def run(statement: sql.Composed) -> None:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(statement)

    run(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    run(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url_for(database_url, name)
    finally:
        if not keep:
            run(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def flush_broker(broker_url: str) -> None:
    """Empty the bench's Redis database: no message of an earlier run may reach this run's workers."""
    import redis

    redis.Redis.from_url(broker_url).flushdb()


# --- processes: the simulated fleet and the workers ---


def free_port_range(base_port: int, count: int, *, limit: int = 65000) -> int:
    """The first ``count`` consecutive free loopback ports from ``base_port`` (a client socket may hold one)."""
    import socket

    port = base_port
    while port + count <= limit:
        taken = None
        for offset in range(count):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port + offset))
                except OSError:
                    taken = port + offset
                    break
        if taken is None:
            return port
        port = taken + 1
    raise RuntimeError(f"no {count} consecutive free ports from {base_port}")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB, from /proc (no psutil)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): field 3 (state) is index 0."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids: list[int], *, reaped: bool = False) -> float:
    """User + system CPU seconds the processes have used so far (a process gone counts 0).

    ``reaped`` adds what their ended children used (PostgreSQL's postmaster reaps each backend
    a worker closes, and that backend's CPU would otherwise be lost).
    """
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(pid)
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            if reaped:
                ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    """Every process of a process group (the simulator's parent and its children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(_stat_fields(entry.name)[2]) == pgid:
                    pids.append(int(entry.name))
    return pids


def postgres_pids() -> list[int]:
    """The local PostgreSQL server's processes (its backends serve the workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


@dataclass
class CpuUse:
    """Where a phase's CPU went: the simulated fleet, the workers (or the bare client), PostgreSQL."""

    sim_s: float = 0.0
    workers_s: float = 0.0
    postgres_s: float = 0.0
    machine_busy_pct: float = 0.0

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float]) -> CpuUse:
        total = after["machine_total"] - before["machine_total"]
        return cls(
            sim_s=round(after["sim"] - before["sim"], 1),
            workers_s=round(after["workers"] - before["workers"], 1),
            postgres_s=round(after["postgres"] - before["postgres"], 1),
            machine_busy_pct=round((after["machine_busy"] - before["machine_busy"]) / total * 100, 1) if total else 0.0,
        )


def cpu_reading(*, sim_pgid: int, workers: list[int]) -> dict[str, float]:
    """The CPU counters :meth:`CpuUse.between` subtracts (taken before the workers stop)."""
    busy, total = machine_busy_seconds()
    return {
        "sim": cpu_seconds(group_pids(sim_pgid)),
        "workers": cpu_seconds(workers),
        "postgres": cpu_seconds(postgres_pids(), reaped=True),
        "machine_busy": busy,
        "machine_total": total,
    }


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class SimProcess:
    """``manage.py simfleet`` in its own processes (``processes`` GILs: one Python process playing a
    thousand hosts holds one core and becomes the floor); counters read from its stats file."""

    def __init__(
        self,
        *,
        hosts: int,
        base_port: int,
        work_dir: Path,
        env: dict[str, str],
        time_scale: float,
        seed: int = 0,
        processes: int = 1,
    ) -> None:
        self.inventory_path = work_dir / "inventory.json"
        self.key_path = work_dir / "client-key"
        self.stats_path = work_dir / "sim-stats.json"
        self.control_path = work_dir / "sim-control"
        self.log_path = work_dir / "simfleet.log"
        for path in (self.inventory_path, self.stats_path):
            path.unlink(missing_ok=True)
        self._log = open(work_dir / "simfleet.log", "ab")
        argv = [
            sys.executable, "manage.py", "simfleet", "--hosts", str(hosts), "--base-port", str(base_port),
            "--seed", str(seed), "--time-scale", str(time_scale), "--deploy-every", "5",
            "--state-dir", str(work_dir / "sim-state"), "--inventory-out", str(self.inventory_path),
            "--client-key-out", str(self.key_path), "--stats-file", str(self.stats_path), "--credential", CREDENTIAL, "--control-file", str(self.control_path),
            "--processes", str(max(1, processes)),
        ]  # fmt: skip
        # If the ports sit inside Linux's ephemeral range, a client socket anywhere on the machine may hold
        # one for a moment. Every phase needs the same ports (the inventory pins them), so wait and retry.
        for attempt in range(SIM_START_ATTEMPTS):
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
            )
            deadline = time.monotonic() + 120
            while not self.inventory_path.exists() and self.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.inventory_path.exists():
                return
            _stop(self.proc)
            time.sleep(1 + attempt)
        self._log.close()
        raise RuntimeError(f"the simulated fleet did not start; see {work_dir / 'simfleet.log'}")

    def inventory(self) -> list[dict[str, Any]]:
        return list(json.loads(self.inventory_path.read_text()))

    def client_key(self) -> str:
        return self.key_path.read_text()

    def reset(self, timeout: float = 60) -> None:
        """Every host back to a fresh install target, counters zeroed (the same process keeps the same ports)."""
        applied = self.log_path.read_bytes().count(b"applied 'reset'")
        self.control_path.write_text("reset\n")
        deadline = time.monotonic() + timeout
        while self.log_path.read_bytes().count(b"applied 'reset'") <= applied:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulated fleet did not reset; see {self.log_path}")
            time.sleep(0.1)

    def stats(self, timeout: float = 30) -> dict[str, Any]:
        """The per-host counters now (asked with SIGUSR1)."""
        self.stats_path.unlink(missing_ok=True)
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while not self.stats_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return dict(json.loads(self.stats_path.read_text())) if self.stats_path.exists() else {}

    def stop(self) -> dict[str, Any]:
        """Stop the fleet; its per-host counters ({} if it wrote none)."""
        _stop(self.proc)
        self._log.close()
        if self.stats_path.exists():
            return dict(json.loads(self.stats_path.read_text()))
        return {}


class BenchWorker:
    """One ``celery worker -P solo`` process with a query counter; peak RSS read before it stops."""

    def __init__(self, name: str, *, env: dict[str, str], work_dir: Path) -> None:
        self.name = name
        self.queries_path = work_dir / f"queries-{name}.txt"
        self.queries_path.unlink(missing_ok=True)
        self.log_path = work_dir / f"worker-{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mdefleet", "worker", "-l", "info", "-c", "1", "-P", "solo",
             "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env={**env, "MDEFLEET_COUNT_QUERIES": str(self.queries_path)},
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.peak_rss_mb = 0.0

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited; see {self.log_path}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} did not start within {timeout} s; see {self.log_path}")

    def sample(self) -> None:
        self.peak_rss_mb = max(self.peak_rss_mb, peak_rss_mb(self.proc.pid))

    def stop(self) -> int:
        """Stop the worker (warm shutdown writes the final count); the SQL statements it ran."""
        self.sample()
        _stop(self.proc)
        self._log.close()
        with contextlib.suppress(OSError, ValueError):
            return int(self.queries_path.read_text())
        return 0


# --- results ---


@dataclass
class PhaseResult:
    """One measured phase: a rollout on real workers, or the bare asyncssh floor."""

    phase: str
    hosts: int
    workers: int
    wall_s: float
    host_steps: int
    connections: int
    queries: int | None = None
    worker_peak_rss_mb: list[float] = field(default_factory=list)
    hosts_ok: int = 0
    hosts_failed: int = 0
    status: str = ""
    notes: str = ""
    # Host runs each worker claimed (its last claim): two workers must each run their own share.
    hosts_per_worker: dict[str, int] = field(default_factory=dict)
    cpu: CpuUse = field(default_factory=CpuUse)

    @property
    def steps_per_s(self) -> float:
        return self.host_steps / self.wall_s if self.wall_s else 0.0

    @property
    def queries_per_step(self) -> float | None:
        if self.queries is None or not self.host_steps:
            return None
        return self.queries / self.host_steps

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "host_steps_per_s": round(self.steps_per_s, 1),
            "queries_per_host_step": None if self.queries_per_step is None else round(self.queries_per_step, 3),
        }


def table(results: list[PhaseResult]) -> str:
    """The results as a fixed-width table."""
    head = f"{'phase':<18} {'hosts':>6} {'wrk':>3} {'wall s':>8} {'steps/s':>8} {'conns':>6} {'q/step':>7} "
    head += f"{'peak RSS MB':>12} {'ok/failed':>10}  {'CPU s: sim':>10} {'wrk':>5} {'pg':>5} {'busy':>5}"
    lines = [head, "-" * len(head)]
    for r in results:
        qps = "-" if r.queries_per_step is None else f"{r.queries_per_step:.2f}"
        rss = "/".join(f"{m:.0f}" for m in r.worker_peak_rss_mb) or "-"
        lines.append(
            f"{r.phase:<18} {r.hosts:>6} {r.workers or '-':>3} {r.wall_s:>8.1f} {r.steps_per_s:>8.0f} "
            f"{r.connections:>6} {qps:>7} {rss:>12} {f'{r.hosts_ok}/{r.hosts_failed}':>10}  "
            f"{r.cpu.sim_s:>10.1f} {r.cpu.workers_s:>5.1f} {r.cpu.postgres_s:>5.1f} {r.cpu.machine_busy_pct:>4.0f}%"
        )
    return "\n".join(lines)


# --- setup (not measured) ---

PLANS: dict[str, list[str]] = {"one": ["100%"], "four": ["1", "5%", "25%", "100%"]}
SAMPLE_ONBOARDING = ROOT / "deployments" / "samples" / "mdatp_onboard.json"
DONE_STATUSES = ("completed", "halted", "aborted")


def bench_gates() -> dict[str, Any]:
    """Gates that never stop the bench (it measures speed): failures allowed, no regression gated."""
    from deployments.comparison import METRICS

    return {
        "max_failed_per_wave": {"value": 100, "unit": "pct"},
        "max_failed_total": {"value": 100, "unit": "pct"},
        "regression": dict.fromkeys(METRICS),
    }


def fleet_prepare(*, sim: SimProcess) -> tuple[list[int], Any]:
    """Import the fleet, discover it in this process, and make the profile: (eligible host ids, profile)."""
    from deployments.services.profiles import profile_create, profile_set_onboarding
    from hosts.choices import Eligibility
    from hosts.discovery import discovery_execute
    from hosts.importing import parse_inventory
    from hosts.models import Host
    from hosts.services import credential_create, discovery_start, host_import
    from mdefleet.audit import SYSTEM

    credential_create(actor=SYSTEM, name=CREDENTIAL, kind="private_key", secret=sim.client_key())
    parsed = parse_inventory(content=json.dumps(sim.inventory()), fmt="json")
    if not parsed.ok:
        raise RuntimeError(f"the simulated fleet's inventory did not import: {parsed.errors[:3]}")
    hosts = host_import(actor=SYSTEM, rows=parsed.rows, trust_on_first_use=False)
    discovery = discovery_start(actor=SYSTEM, hosts=hosts)
    discovery_execute(discovery_id=discovery.pk, worker="bench-setup")
    eligible = list(Host.objects.filter(eligibility=Eligibility.ELIGIBLE).order_by("id").values_list("pk", flat=True))
    profile = profile_create(actor=SYSTEM, data={"name": "bench", "channel": "prod"})
    profile = profile_set_onboarding(
        actor=SYSTEM, profile=profile, filename=SAMPLE_ONBOARDING.name, content=SAMPLE_ONBOARDING.read_bytes()
    )
    return eligible, profile


# --- a rollout on real workers ---


@dataclass
class BenchRun:
    """What every phase shares: the fleet, the profile, where processes log, and their environment."""

    hosts: int
    host_ids: list[int]
    profile: Any
    work_dir: Path
    env: dict[str, str]
    broker_url: str
    timeout: float = 3600

    sim: SimProcess | None = None

    def fresh_sim(self) -> SimProcess:
        """The fleet, every host fresh and its counters zeroed, for the next phase."""
        assert self.sim is not None
        self.sim.reset()
        return self.sim


def _connections(stats: dict[str, Any]) -> int:
    return sum(int(h.get("connections_accepted", 0)) for h in stats.get("hosts", []))


def rollout_phase(run: BenchRun, *, waves: str, workers: int) -> tuple[PhaseResult, Any]:
    """A full rollout (all steps) with ``waves`` plan on ``workers`` fresh workers; timed from start to done."""
    from django.db.models import Count

    from deployments.models import HostRun, Rollout, StepResult
    from deployments.services.rollouts import rollout_create, rollout_start
    from mdefleet.audit import SYSTEM

    label = f"rollout {waves}-wave"
    sim = run.fresh_sim()
    started: list[BenchWorker] = []
    queries = 0
    try:
        rollout = rollout_create(
            actor=SYSTEM,
            name=f"bench {waves} wave x{workers}",
            profile=run.profile,
            selection={"ids": run.host_ids},
            wave_plan=PLANS[waves],
            gates=bench_gates(),
            soak_seconds=0,
            settle_seconds=0,
        )
        flush_broker(run.broker_url)
        started = [BenchWorker(f"bench{i + 1}", env=run.env, work_dir=run.work_dir) for i in range(workers)]
        for worker in started:
            worker.wait_ready()
        pids = [w.proc.pid for w in started]
        cpu_before = cpu_reading(sim_pgid=sim.proc.pid, workers=pids)
        began = time.monotonic()
        rollout_start(actor=SYSTEM, rollout=rollout)
        last_sample = 0.0
        status = ""
        while time.monotonic() - began < run.timeout:
            status = Rollout.objects.values_list("status", flat=True).get(pk=rollout.pk)
            if status in DONE_STATUSES:
                break
            if time.monotonic() - last_sample > 1:
                last_sample = time.monotonic()
                for worker in started:
                    worker.sample()
            time.sleep(STEP_WAIT)
        wall = time.monotonic() - began
        cpu = CpuUse.between(cpu_before, cpu_reading(sim_pgid=sim.proc.pid, workers=pids))
    finally:
        for worker in started:
            queries += worker.stop()
        stats = sim.stats()
    runs = HostRun.objects.filter(rollout=rollout)
    result = PhaseResult(
        phase=label,
        hosts=run.hosts,
        workers=workers,
        wall_s=round(wall, 2),
        host_steps=StepResult.objects.filter(host_run__rollout=rollout).count(),
        connections=_connections(stats),
        queries=queries,
        worker_peak_rss_mb=[round(w.peak_rss_mb, 1) for w in started],
        hosts_ok=runs.filter(status="ok").count(),
        hosts_failed=runs.filter(status="failed").count(),
        status=status,
        hosts_per_worker={
            row["claimed_by"]: row["n"]
            for row in runs.values("claimed_by").annotate(n=Count("id")).order_by("claimed_by")
        },
        cpu=cpu,
    )
    if status not in DONE_STATUSES:
        result.notes = f"timed out after {run.timeout:.0f} s"
    return result, rollout


# --- the floor: bare asyncssh, same commands, same bounds, nothing stored ---


class _Collect(asyncssh.SSHClientSession[bytes]):
    """A minimal asyncssh client session that keeps the output and nothing else."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.err: list[bytes] = []

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        (self.err if datatype else self.out).append(data)


@dataclass
class _BareHost:
    address: str
    port: int
    username: str
    use_sudo: bool
    pinned: Any
    client_keys: list[Any]
    context: Any


async def _bare_host(host: _BareHost, steps: Any, limits: Any, handshakes: asyncio.Semaphore) -> int:
    """One host: one connection, every step's command in order (polling steps re-asked as the runner does)."""
    from deployments.runner import poll_delays
    from hosts.ssh import CommandResult, encryption_algs, remote_seconds, wrap_command

    async with handshakes:
        conn = await asyncssh.connect(
            host.address,
            host.port,
            username=host.username,
            known_hosts=([host.pinned], [], []),
            encryption_algs=encryption_algs(),  # the product's cipher order: same bytes, same cost
            client_keys=host.client_keys,
            config=None,
            agent_path=None,
            connect_timeout=limits.connect_timeout,
            login_timeout=limits.connect_timeout,
            keepalive_interval=limits.keepalive,
        )
    done = 0
    ctx = host.context
    async with conn:
        for step in steps:
            delay = step.delay_before(ctx)
            if delay > 0:
                await asyncio.sleep(delay)
            delays = poll_delays(step)
            while True:
                command = step.command(ctx)
                if command is None:
                    break
                bound = remote_seconds(limits.command_timeout if step.timeout is None else step.timeout)
                wrapped = wrap_command(command, use_sudo=host.use_sudo, username=host.username, remote_timeout=bound)
                channel, session = await conn.create_session(_Collect, wrapped, encoding=None)
                stdin = step.stdin(ctx)
                if stdin is not None:
                    channel.write(stdin.encode("utf-8"))
                channel.write_eof()
                await channel.wait_closed()
                if step.attempts == 1:
                    break
                # A polling step (health) decides whether to ask again, and a later command (detection) reads
                # its data: judge it as the runner does. Every other output is dropped unread.
                result = CommandResult(
                    command=command,
                    exit_status=channel.get_exit_status(),
                    stdout=b"".join(session.out).decode("utf-8", "replace"),
                    stderr=b"".join(session.err).decode("utf-8", "replace"),
                    duration_ms=0,
                )
                outcome = step.evaluate(ctx, result)
                ctx.results[step.key] = outcome.data
                delay = next(delays, None) if outcome.retry else None
                if delay is None:
                    break
                await asyncio.sleep(delay)
            done += 1
    return done


async def _bare_all(hosts: list[_BareHost], steps: Any, limits: Any) -> tuple[int, int]:
    in_flight = asyncio.Semaphore(limits.concurrency)
    handshakes = asyncio.Semaphore(limits.handshakes)

    async def one(host: _BareHost) -> int:
        async with in_flight:
            return await _bare_host(host, steps, limits, handshakes)

    results = await asyncio.gather(*(one(h) for h in hosts), return_exceptions=True)
    steps_done = sum(r for r in results if isinstance(r, int))
    failed = sum(1 for r in results if not isinstance(r, int))
    return steps_done, failed


def bare_phase(run: BenchRun, *, rollout: Any) -> PhaseResult:
    """The floor: the rollout's command strings (from the real steps) sent by a plain asyncssh loop."""
    from deployments.execution import ProfileContext
    from deployments.runner import RunnerLimits
    from deployments.steps.base import StepContext
    from deployments.steps.catalogue import rollout_steps
    from hosts.models import Host
    from hosts.targets import target_for

    profile_ctx = ProfileContext.build(run.profile, rollout)
    limits = RunnerLimits.from_settings()
    keys: dict[str, Any] = {}
    hosts = []
    for host in Host.objects.select_related("credential").filter(pk__in=run.host_ids).order_by("id"):
        target = target_for(host)
        if target.secret.private_key not in keys:
            keys[target.secret.private_key] = asyncssh.import_private_key(target.secret.private_key)
        context = StepContext(host_label=host.name, results=dict(host.facts), cpu_sample_seconds=0, profile=profile_ctx)
        hosts.append(
            _BareHost(
                address=target.address,
                port=target.port,
                username=target.username,
                use_sudo=target.use_sudo,
                pinned=asyncssh.import_public_key(target.host_key),
                client_keys=[keys[target.secret.private_key]],
                context=context,
            )
        )
    sim = run.fresh_sim()
    try:
        cpu_before = cpu_reading(sim_pgid=sim.proc.pid, workers=[os.getpid()])
        began = time.monotonic()
        steps_done, failed = asyncio.run(_bare_all(hosts, rollout_steps(), limits))
        wall = time.monotonic() - began
        cpu = CpuUse.between(cpu_before, cpu_reading(sim_pgid=sim.proc.pid, workers=[os.getpid()]))
    finally:
        stats = sim.stats()
    return PhaseResult(
        phase="bare asyncssh",
        hosts=run.hosts,
        workers=0,
        wall_s=round(wall, 2),
        host_steps=steps_done,  # compare, judged locally, counts as in the rollout
        connections=_connections(stats),
        hosts_ok=len(hosts) - failed,
        hosts_failed=failed,
        status="completed",
        cpu=cpu,
    )
