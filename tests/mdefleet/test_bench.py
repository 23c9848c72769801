"""`manage.py bench` end to end at 5 hosts: real simulator, real worker, scratch database, JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="the bench needs PostgreSQL and Redis"
)
def test_the_bench_runs_a_rollout_on_five_hosts_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "manage.py", "bench", "--hosts", "5", "--waves", "one", "--skip-bare",
         "--database", "mdefleet_bench_pytest", "--base-port", "40900", "--json-out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    [rollout] = report["results"]
    assert rollout["phase"] == "rollout one-wave" and rollout["status"] == "completed"
    assert rollout["hosts_failed"] == 0 and rollout["hosts_ok"] == rollout["hosts"] > 0
    assert rollout["connections"] == rollout["hosts"]  # one SSH connection per host
    assert rollout["host_steps"] == 17 * rollout["hosts"]
    assert rollout["queries"] > 0 and rollout["worker_peak_rss_mb"][0] > 0
    assert "rollout one-wave" in done.stdout
