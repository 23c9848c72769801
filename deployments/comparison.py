"""Pre/post comparison of one host's snapshots: pure functions over snapshot data dicts.

A snapshot dict has the Snapshot model's field names (cpu_busy_pct, mem_used_mb, filesystems...).
A figure that cannot be computed is None, never zero: missing data must not pass a gate.
"""

from __future__ import annotations

from typing import Any

# Metric keys, the direction that is bad, and how a person reads them.
METRICS: dict[str, dict[str, str]] = {
    "cpu_points": {"label": "CPU busy", "unit": "points", "bad": "up"},
    "mem_mb": {"label": "Memory used", "unit": "MB", "bad": "up"},
    "mem_pct": {"label": "Memory used", "unit": "% of RAM", "bad": "up"},
    "agent_rss_mb": {"label": "Agent memory (RSS)", "unit": "MB", "bad": "up"},
    "agent_cpu_pct": {"label": "Agent CPU", "unit": "%", "bad": "up"},
    "disk_mb": {"label": "Free disk lost (worst filesystem)", "unit": "MB", "bad": "up"},
}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _diff(post: Any, pre: Any) -> float | None:
    a, b = _num(post), _num(pre)
    return None if a is None or b is None else round(a - b, 2)


def agent_totals(snapshot: dict[str, Any]) -> tuple[float | None, float | None]:
    """(RSS MB, CPU %) summed over the agent's processes; None when the list is missing."""
    procs = snapshot.get("agent_processes")
    if procs is None:
        return None, None
    rss = sum(_num(p.get("rss_kb")) or 0.0 for p in procs) / 1024
    cpu = sum(_num(p.get("cpu_pct")) or 0.0 for p in procs)
    return round(rss, 1), round(cpu, 1)


def disk_lost_mb(pre: dict[str, Any], post: dict[str, Any]) -> tuple[float | None, str]:
    """The most free space lost on any filesystem mounted in both snapshots, and its mount point."""
    before = {fs.get("mount"): fs for fs in pre.get("filesystems") or []}
    worst, where = None, ""
    for fs in post.get("filesystems") or []:
        old = before.get(fs.get("mount"))
        if old is None:
            continue
        a, b = _num(old.get("avail_kb")), _num(fs.get("avail_kb"))
        if a is None or b is None:
            continue
        lost = round((a - b) / 1024, 1)
        if worst is None or lost > worst:
            worst, where = lost, str(fs.get("mount"))
    return worst, where


def host_deltas(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> dict[str, Any]:
    """Every metric's post-minus-pre figure for one host (None where data is missing)."""
    if not pre or not post:
        return {key: None for key in METRICS} | {"disk_mount": ""}
    mem_mb = _diff(post.get("mem_used_mb"), pre.get("mem_used_mb"))
    total = _num(pre.get("mem_total_mb"))
    rss, cpu = agent_totals(post)
    lost, mount = disk_lost_mb(pre, post)
    return {
        "cpu_points": _diff(post.get("cpu_busy_pct"), pre.get("cpu_busy_pct")),
        "mem_mb": mem_mb,
        "mem_pct": round(mem_mb / total * 100, 2) if mem_mb is not None and total else None,
        "agent_rss_mb": rss,
        "agent_cpu_pct": cpu,
        "disk_mb": lost,
        "disk_mount": mount,
    }
