"""Pre/post deltas of one host, computed from snapshot data."""

from __future__ import annotations

from deployments.comparison import filesystem_changes, host_deltas, host_summary, process_changes, share_of

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


def proc(pid: int, name: str, cpu: float, rss_mb: float) -> dict:
    return {"pid": pid, "name": name, "cpu_pct": cpu, "rss_kb": int(rss_mb * 1024)}


def test_processes_that_appeared_or_grew_are_matched_by_name_across_new_pids() -> None:
    pre = {"top_processes": [proc(10, "java", 40.0, 900), proc(11, "sshd", 0.1, 8), proc(12, "crond", 0.0, 4)]}
    post = {
        "top_processes": [proc(20, "java", 41.0, 960), proc(21, "sshd", 0.1, 8), proc(22, "crond", 4.5, 4)],
        "agent_processes": [proc(30, "wdavdaemon", 30.0, 200), proc(31, "wdavdaemon", 2.0, 500)],
    }
    changes = {c["name"]: c for c in process_changes(pre, post)}
    assert set(changes) == {"wdavdaemon", "java", "crond"}  # sshd neither appeared nor grew
    assert changes["wdavdaemon"] == {
        "name": "wdavdaemon", "change": "new", "count": 2, "rss_mb": 700.0, "rss_mb_delta": 700.0,
        "cpu_pct": 32.0, "cpu_pct_delta": 32.0,
    }  # fmt: skip
    assert changes["java"]["change"] == "grew" and changes["java"]["rss_mb_delta"] == 60.0
    assert changes["crond"]["cpu_pct_delta"] == 4.5  # grew by CPU, not RSS
    assert process_changes(pre, post)[0]["name"] == "wdavdaemon"  # biggest CPU growth first


def test_filesystems_are_listed_by_the_free_space_they_lost() -> None:
    rows = filesystem_changes(PRE, POST)
    assert [(r["mount"], r["lost_mb"], r["lost_pct"]) for r in rows] == [
        ("/", 1000.0, round(1_024_000 / 10_240_000 * 100, 2)),
        ("/var", 500.0, round(512_000 / 4_096_000 * 100, 2)),
    ]
    assert host_deltas(PRE, POST)["base"]["disk_mb"] == 10_000.0  # / had 10,000 MB free before


def agent_share(post: dict[str, object], cores: int | None) -> dict[str, float | None]:
    """The agent's share as the report computes it: from the summary the compare step stores."""
    return share_of(host_summary(PRE, post)["share_base"], cores)


def test_the_agent_share_is_of_all_cores_of_the_busy_cpu_and_of_ram() -> None:
    share = agent_share(POST, cores=4)
    assert share["cpu_pct_of_host"] == 1.0  # 4 % of one core over 4 cores
    assert share["cpu_pct_of_busy"] == 5.0  # 1 % of the host out of 20 % busy
    assert share["rss_pct_of_ram"] == round(400 / 8000 * 100, 2)
    assert agent_share(POST, cores=None)["cpu_pct_of_host"] is None
