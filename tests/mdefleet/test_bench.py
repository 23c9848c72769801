"""`manage.py bench` end to end at 5 hosts: real simulator, real worker, scratch database, JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
needs_services = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="the bench needs PostgreSQL and Redis"
)


def run_bench(out: Path, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``manage.py bench ARGS --json-out OUT``: what it printed, and the JSON it wrote."""
    done = subprocess.run(
        [sys.executable, "manage.py", "bench", *args, "--json-out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(out.read_text())


@needs_services
def test_the_bench_runs_a_rollout_on_five_hosts_and_writes_its_figures(tmp_path: Path) -> None:
    done, report = run_bench(
        tmp_path / "bench.json", "--hosts", "5", "--waves", "one", "--skip-bare",
        "--database", "mdefleet_bench_pytest", "--base-port", "40900", timeout=120,
    )  # fmt: skip
    [rollout] = report["results"]
    assert rollout["phase"] == "rollout one-wave" and rollout["status"] == "completed"
    assert rollout["hosts_failed"] == 0 and rollout["hosts_ok"] == rollout["hosts"] > 0
    assert rollout["connections"] == rollout["hosts"]  # one SSH connection per host
    assert rollout["host_steps"] == 17 * rollout["hosts"]
    assert rollout["queries"] > 0 and rollout["worker_peak_rss_mb"][0] > 0
    # Where the CPU went: the fleet and the worker both worked; the machine's share is a percentage.
    assert rollout["cpu"]["sim_s"] > 0 and rollout["cpu"]["workers_s"] > 0
    assert 0 < rollout["cpu"]["machine_busy_pct"] <= 100
    assert "rollout one-wave" in done.stdout


@needs_services
def test_the_page_bench_times_every_page_and_counts_its_queries(tmp_path: Path) -> None:
    done, report = run_bench(
        tmp_path / "pages.json", "pages", "--fleet-hosts", "60", "--rollout-hosts", "20", "--page-runs", "2",
        "--database", "mdefleet_bench_pages_pytest", timeout=300,
    )  # fmt: skip
    assert report["data"] == {"hosts": 60, "rollout_hosts": 20}
    pages = {p["name"].split(" (")[0]: p for p in report["pages"]}
    assert set(pages) == {
        "fleet page", "rollout detail", "comparison page", "progress fragment", "API rollout detail", "API report",
    }  # fmt: skip
    assert all(p["queries"] > 0 and p["median_ms"] > 0 and p["runs"] == 2 for p in pages.values())
    assert "comparison page" in done.stdout


def test_a_fleet_served_by_two_processes_answers_on_every_port_and_counts_as_one(tmp_path: Path) -> None:
    """``simfleet --processes 2``: host i is served by process i % 2; counters and resets span both."""
    import asyncio
    import signal
    import time

    import asyncssh

    inventory, stats, control = tmp_path / "inventory.json", tmp_path / "stats.json", tmp_path / "control"
    log = tmp_path / "simfleet.log"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "simfleet", "--hosts", "4", "--base-port", "0", "--processes", "2",
         "--deploy-every", "0", "--state-dir", str(tmp_path / "state"), "--inventory-out", str(inventory),
         "--client-key-out", str(tmp_path / "key"), "--stats-file", str(stats), "--control-file", str(control)],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not inventory.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        hosts = json.loads(inventory.read_text())
        key = asyncssh.import_private_key((tmp_path / "key").read_text())

        async def hostname(host: dict[str, object]) -> str:
            async with asyncssh.connect(
                str(host["address"]), int(str(host["port"])), username=str(host["user"]), client_keys=[key],
                known_hosts=([asyncssh.import_public_key(str(host["host_key"]))], [], []), config=None,
                agent_path=None,
            ) as conn:  # fmt: skip
                return str((await conn.run("hostname", input="")).stdout).strip()

        async def all_hosts() -> list[str]:
            return list(await asyncio.gather(*(hostname(h) for h in hosts)))

        assert asyncio.run(all_hosts()) == [h["name"] for h in hosts]
        os.kill(proc.pid, signal.SIGUSR1)
        while not stats.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        counted = json.loads(stats.read_text())["hosts"]
        assert [h["connections_accepted"] for h in counted] == [1, 1, 1, 1]
        control.write_text("reset\n")
        while b"applied 'reset'" not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)
        stats.unlink()
        os.kill(proc.pid, signal.SIGUSR1)
        while not stats.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [h["connections_accepted"] for h in json.loads(stats.read_text())["hosts"]] == [0, 0, 0, 0]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_verdicts_explain_a_cpu_bound_miss_and_leave_the_wall_unjudged_when_hosts_take_time() -> None:
    from mdefleet.bench import CpuUse, PhaseResult
    from mdefleet.management.commands.bench import _targets

    def run(workers: int, wall: float, busy: float) -> PhaseResult:
        return PhaseResult(
            phase="rollout one-wave", hosts=923, workers=workers, wall_s=wall, host_steps=15_691,
            connections=923, queries=400, worker_peak_rss_mb=[150.0] * workers, cpu=CpuUse(machine_busy_pct=busy),
        )  # fmt: skip

    verdicts = _targets([run(1, 20.1, 95), run(2, 21.1, 98)], None, time_scale=0.01)
    assert verdicts["wall (1,000 hosts, one wave)"] == "met (20.10 s, target < 30 s)"
    assert verdicts["two workers faster than one"].startswith("MISSED (21.1 s vs 20.1 s); the machine was 98 % busy")
    verdicts = _targets([run(1, 42.5, 51), run(2, 33.2, 68)], None, time_scale=0.1)
    assert verdicts["wall (1,000 hosts, one wave)"].startswith("not judged (42.50 s)")
    assert verdicts["two workers faster than one"] == "met (33.2 s vs 42.5 s)"
    verdicts = _targets([run(1, 107.2, 95)], None, time_scale=0.01, fleet=5000)
    assert verdicts["wall (1,000 hosts, one wave)"] == "not judged (107.20 s for 5,000 hosts)"
