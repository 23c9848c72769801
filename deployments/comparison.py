"""Pre/post comparison of one host's snapshots: pure functions over snapshot data dicts.

A snapshot dict has the Snapshot model's field names (cpu_busy_pct, mem_used_mb, filesystems...).
A figure that cannot be computed is None, never zero: missing data must not pass a gate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

# Metric keys, the direction that is bad, and how a person reads them. ``base`` names the pre figure
# a relative limit is a percentage of; a metric without one (the agent is absent before the install)
# takes absolute limits only. Free disk going down is bad: ``disk_mb`` counts the free space lost.
METRICS: dict[str, dict[str, str]] = {
    "cpu_points": {"label": "CPU busy", "unit": "points", "bad": "up", "base": "pre CPU busy %"},
    "mem_mb": {"label": "Memory used", "unit": "MB", "bad": "up", "base": "pre memory used"},
    "mem_pct": {"label": "Memory used", "unit": "% of RAM", "bad": "up"},
    "agent_rss_mb": {"label": "Agent memory (RSS)", "unit": "MB", "bad": "up"},
    "agent_cpu_pct": {"label": "Agent CPU", "unit": "%", "bad": "up"},
    "disk_mb": {
        "label": "Free disk lost (worst filesystem)",
        "unit": "MB",
        "bad": "up",
        "base": "pre free space of that filesystem",
    },
}
# Processes of the post snapshot that appeared, or grew by at least this RSS or CPU, are listed.
PROCESS_GROWTH_KB = 10 * 1024
PROCESS_GROWTH_CPU = 2.0
PROCESSES_SHOWN = 5
FILESYSTEMS_SHOWN = 3


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


def filesystem_changes(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every filesystem mounted in both snapshots with the free space it lost, most lost first.

    Each: {mount, avail_pre_mb, avail_post_mb, lost_mb, lost_pct (of the pre free space, None if
    there was none), use_pct_pre, use_pct_post}. A filesystem without both free figures is left out.
    """
    if not pre or not post:
        return []
    before = {fs.get("mount"): fs for fs in pre.get("filesystems") or []}
    rows = []
    for fs in post.get("filesystems") or []:
        old = before.get(fs.get("mount"))
        if old is None:
            continue
        a, b = _num(old.get("avail_kb")), _num(fs.get("avail_kb"))
        if a is None or b is None:
            continue
        lost = round((a - b) / 1024, 1)
        rows.append(
            {
                "mount": str(fs.get("mount")),
                "avail_pre_mb": round(a / 1024, 1),
                "avail_post_mb": round(b / 1024, 1),
                "lost_mb": lost,
                "lost_pct": round((a - b) / a * 100, 2) if a > 0 else None,
                "use_pct_pre": _num(old.get("use_pct")),
                "use_pct_post": _num(fs.get("use_pct")),
            }
        )
    rows.sort(key=lambda r: (-r["lost_mb"], r["mount"]))
    return rows


def _by_name(snapshot: dict[str, Any]) -> dict[str, dict[str, float]]:
    """RSS and CPU summed per process name; a process in both ps lists counts once (by pid)."""
    totals: dict[str, dict[str, float]] = {}
    seen: set[Any] = set()
    for proc in (snapshot.get("top_processes") or []) + (snapshot.get("agent_processes") or []):
        pid = proc.get("pid")
        if pid is not None and pid in seen:
            continue
        seen.add(pid)
        entry = totals.setdefault(str(proc.get("name") or "?"), {"rss_kb": 0.0, "cpu_pct": 0.0, "count": 0})
        entry["rss_kb"] += _num(proc.get("rss_kb")) or 0.0
        entry["cpu_pct"] += _num(proc.get("cpu_pct")) or 0.0
        entry["count"] += 1
    return totals


def process_changes(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Processes of the post snapshot (top by CPU and RSS, and the agent's) that appeared or grew.

    Matched by name (pids change across a restart): "new" when the name was not in the pre lists,
    "grew" when its RSS rose by ``PROCESS_GROWTH_KB`` or its CPU by ``PROCESS_GROWTH_CPU`` points.
    Sorted by CPU growth, then RSS growth; at most ``PROCESSES_SHOWN``.
    """
    if not pre or not post:
        return []
    before, after = _by_name(pre), _by_name(post)
    changes = []
    for name, figures in after.items():
        old = before.get(name)
        rss_grown = figures["rss_kb"] - (old["rss_kb"] if old else 0.0)
        cpu_grown = figures["cpu_pct"] - (old["cpu_pct"] if old else 0.0)
        if old is None or rss_grown >= PROCESS_GROWTH_KB or cpu_grown >= PROCESS_GROWTH_CPU:
            changes.append(
                {
                    "name": name,
                    "change": "new" if old is None else "grew",
                    "count": int(figures["count"]),
                    "rss_mb": round(figures["rss_kb"] / 1024, 1),
                    "rss_mb_delta": round(rss_grown / 1024, 1),
                    "cpu_pct": round(figures["cpu_pct"], 1),
                    "cpu_pct_delta": round(cpu_grown, 1),
                }
            )
    changes.sort(key=lambda c: (-c["cpu_pct_delta"], -c["rss_mb_delta"], c["name"]))
    return changes[:PROCESSES_SHOWN]


def share_of(base: dict[str, float | None] | None, cores: int | None) -> dict[str, float | None]:
    """The agent's own share of the host: CPU in % of all cores, of the busy CPU, and RSS in % of RAM.

    From the four post figures of a host summary's ``share_base``. ps counts CPU per core
    (100 % = one core), so the share of the host is the sum over cores.
    """
    if not base:
        return {"cpu_pct_of_host": None, "cpu_pct_of_busy": None, "rss_pct_of_ram": None}
    rss, cpu = _num(base.get("agent_rss_mb")), _num(base.get("agent_cpu_pct"))
    total, busy = _num(base.get("mem_total_mb")), _num(base.get("cpu_busy_pct"))
    of_host = round(cpu / cores, 2) if cpu is not None and cores else None
    return {
        "cpu_pct_of_host": of_host,
        "cpu_pct_of_busy": round(min(100.0, of_host / busy * 100), 1) if of_host is not None and busy else None,
        "rss_pct_of_ram": round(rss / total * 100, 2) if rss is not None and total else None,
    }


def _paired(before: float | None, after: float | None) -> dict[str, float | None]:
    """pre, post, post - pre and the change in % of pre (None where a side is missing or pre is 0)."""
    if before is None or after is None:
        return {"pre": before, "post": after, "delta": None, "delta_pct": None}
    delta = round(after - before, 2)
    return {
        "pre": before,
        "post": after,
        "delta": delta,
        "delta_pct": round(delta / before * 100, 1) if before else None,
    }


def paired_figures(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> dict[str, dict[str, float | None]]:
    """CPU busy, memory used, agent RSS and agent CPU of a host before and after, with their changes."""
    pre, post = pre or {}, post or {}
    pre_rss, pre_cpu = agent_totals(pre) if pre else (None, None)
    post_rss, post_cpu = agent_totals(post) if post else (None, None)
    return {
        "cpu_busy": _paired(_num(pre.get("cpu_busy_pct")), _num(post.get("cpu_busy_pct"))),
        "mem_used": _paired(_num(pre.get("mem_used_mb")), _num(post.get("mem_used_mb"))),
        "agent_rss": _paired(pre_rss, post_rss),
        "agent_cpu": _paired(pre_cpu, post_cpu),
    }


def host_summary(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> dict[str, Any]:
    """What the comparison report shows of one host's two snapshots, a few hundred bytes.

    The compare step stores it, so a report of thousands of hosts reads these instead of decoding
    and walking two full snapshots (tens of processes and filesystems each) per host.
    """
    figures = paired_figures(pre, post)
    return {
        "paired": bool(pre and post),
        "figures": figures,
        "processes": process_changes(pre, post),
        "filesystems": filesystem_changes(pre, post)[:FILESYSTEMS_SHOWN],
        "share_base": None
        if not post
        else {
            "agent_rss_mb": figures["agent_rss"]["post"],
            "agent_cpu_pct": figures["agent_cpu"]["post"],
            "mem_total_mb": _num(post.get("mem_total_mb")),
            "cpu_busy_pct": figures["cpu_busy"]["post"],
        },
    }


def percentile_nearest_rank(ordered: list[float], pct: float) -> float:
    """The nearest-rank percentile of an ascending list: the value at rank ⌈pct/100 * n⌉ (1-based).

    No interpolation, so the answer is always one of the observed values (p95 of 10 values is the
    10th, of 20 values the 19th, of 500 values the 475th).
    """
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def distribution(values: Iterable[float | None]) -> dict[str, Any]:
    """{n, missing, median, p95, max, min, mean} of the values; None values are counted in ``missing``
    and left out (never taken as 0). With no value every figure but the counts is None.

    p95 is by the nearest-rank method (:func:`percentile_nearest_rank`); figures are rounded to 2 places.
    """
    known: list[float] = []
    missing = 0
    for value in values:
        if value is None:
            missing += 1
        else:
            known.append(float(value))
    if not known:
        return {"n": 0, "missing": missing, "median": None, "p95": None, "max": None, "min": None, "mean": None}
    known.sort()
    return {
        "n": len(known),
        "missing": missing,
        "median": round(statistics.median(known), 2),
        "p95": round(percentile_nearest_rank(known, 95), 2),
        "max": round(known[-1], 2),
        "min": round(known[0], 2),
        "mean": round(statistics.fmean(known), 2),
    }


def host_deltas(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> dict[str, Any]:
    """Every metric's post-minus-pre figure for one host (None where data is missing)."""
    if not pre or not post:
        return {key: None for key in METRICS} | {"disk_mount": "", "base": {}}
    mem_mb = _diff(post.get("mem_used_mb"), pre.get("mem_used_mb"))
    total = _num(pre.get("mem_total_mb"))
    rss, cpu = agent_totals(post)
    disks = filesystem_changes(pre, post)
    lost, mount = (disks[0]["lost_mb"], disks[0]["mount"]) if disks else (None, "")
    return {
        "cpu_points": _diff(post.get("cpu_busy_pct"), pre.get("cpu_busy_pct")),
        "mem_mb": mem_mb,
        "mem_pct": round(mem_mb / total * 100, 2) if mem_mb is not None and total else None,
        "agent_rss_mb": rss,
        "agent_cpu_pct": cpu,
        "disk_mb": lost,
        "disk_mount": mount,
        # The pre figures a relative gate limit is a percentage of (see METRICS[...]["base"]).
        "base": {
            "cpu_points": _num(pre.get("cpu_busy_pct")),
            "mem_mb": _num(pre.get("mem_used_mb")),
            "disk_mb": disks[0]["avail_pre_mb"] if disks else None,
        },
    }
