"""Pre/post deltas of one host, computed from snapshot data."""

from __future__ import annotations

from deployments.comparison import host_deltas

PRE = {
    "cpu_busy_pct": 12.5,
    "mem_total_mb": 8000.0,
    "mem_used_mb": 3000.0,
    "agent_processes": [],
    "filesystems": [{"mount": "/", "avail_kb": 10_240_000}, {"mount": "/var", "avail_kb": 4_096_000}],
}
POST = {
    "cpu_busy_pct": 20.0,
    "mem_total_mb": 8000.0,
    "mem_used_mb": 3600.0,
    "agent_processes": [{"rss_kb": 307_200, "cpu_pct": 3.5}, {"rss_kb": 102_400, "cpu_pct": 0.5}],
    "filesystems": [{"mount": "/", "avail_kb": 9_216_000}, {"mount": "/var", "avail_kb": 3_584_000}],
}


def test_it_computes_each_delta_from_the_two_snapshots() -> None:
    deltas = host_deltas(PRE, POST)
    assert deltas["cpu_points"] == 7.5
    assert deltas["mem_mb"] == 600.0
    assert deltas["mem_pct"] == 7.5
    assert deltas["agent_rss_mb"] == 400.0
    assert deltas["agent_cpu_pct"] == 4.0
    assert deltas["disk_mb"] == 1000.0  # / lost 1000 MB, /var 500 MB
    assert deltas["disk_mount"] == "/"


def test_missing_snapshots_give_none_not_zero() -> None:
    deltas = host_deltas(PRE, None)
    assert all(deltas[k] is None for k in ("cpu_points", "mem_mb", "agent_rss_mb", "disk_mb"))


def test_a_missing_figure_in_one_snapshot_stays_none() -> None:
    deltas = host_deltas({**PRE, "cpu_busy_pct": None}, POST)
    assert deltas["cpu_points"] is None
    assert deltas["mem_mb"] == 600.0
