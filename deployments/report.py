"""The comparison report of one rollout: per-host pre/post figures, distributions, gates, groups.

Read with a fixed number of queries whatever the number of hosts (the waves, the host runs joined
with their hosts and tags, the step results that matter); everything else is pure Python over those
rows, so the page, the printable report, the CSV and the API carry the same numbers.

A figure that is missing stays None (shown as "no data"), is counted apart and never becomes 0.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.urls import reverse

from deployments.choices import HostRunStatus
from deployments.comparison import METRICS, agent_totals, host_deltas
from deployments.gates import DEFAULT_GATES, GateConfigError, normalize_gates
from deployments.models import HostRun, Rollout, StepResult, Wave
from hosts.choices import StepStatus

SNAPSHOT_STEPS = ("snapshot_pre", "snapshot_post", "compare")
WORST_SHOWN = 10
# A figure above this share of its threshold is "near" the limit (amber), above the threshold "over".
NEAR_SHARE = 0.8
# Processes of the post snapshot that grew by at least this much RSS (or appeared) are listed.
PROCESS_GROWTH_KB = 10 * 1024
PROCESSES_SHOWN = 5

# The paired figures of a host: (key, label, unit, pre/post snapshot field or agent total).
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("cpu_busy", "CPU busy", "%"),
    ("mem_used", "Memory used", "MB"),
    ("agent_rss", "Agent memory (RSS)", "MB"),
    ("agent_cpu", "Agent CPU", "%"),
)

# Short names used in sentences ("CPU +31.5 points, limit 25").
SHORT: dict[str, str] = {
    "cpu_points": "CPU",
    "mem_mb": "Memory",
    "mem_pct": "Memory",
    "agent_rss_mb": "Agent RSS",
    "agent_cpu_pct": "Agent CPU",
    "disk_mb": "Disk",
}


# --- pure figures --------------------------------------------------------------------------------


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


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _delta(pre: float | None, post: float | None) -> tuple[float | None, float | None]:
    """(post - pre, the change in % of pre); None where a side is missing or pre is 0 (no base)."""
    if pre is None or post is None:
        return None, None
    delta = round(post - pre, 2)
    return delta, (round(delta / pre * 100, 1) if pre else None)


def _figures(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> dict[str, dict[str, float | None]]:
    """The four paired figures with pre, post, delta and delta %."""
    pre, post = pre or {}, post or {}
    pre_rss, pre_cpu = agent_totals(pre) if pre else (None, None)
    post_rss, post_cpu = agent_totals(post) if post else (None, None)
    sides = {
        "cpu_busy": (_num(pre.get("cpu_busy_pct")), _num(post.get("cpu_busy_pct"))),
        "mem_used": (_num(pre.get("mem_used_mb")), _num(post.get("mem_used_mb"))),
        "agent_rss": (pre_rss, post_rss),
        "agent_cpu": (pre_cpu, post_cpu),
    }
    out: dict[str, dict[str, float | None]] = {}
    for key, (before, after) in sides.items():
        delta, pct = _delta(before, after)
        out[key] = {"pre": before, "post": after, "delta": delta, "delta_pct": pct}
    return out


def _by_name(snapshot: dict[str, Any]) -> dict[str, dict[str, float]]:
    """RSS and CPU summed per process name; a process in both ps lists counts once (by pid)."""
    totals: dict[str, dict[str, float]] = {}
    seen: set[Any] = set()
    for proc in (snapshot.get("top_processes") or []) + (snapshot.get("agent_processes") or []):
        pid = proc.get("pid")
        if pid is not None and pid in seen:
            continue
        seen.add(pid)
        entry = totals.setdefault(str(proc.get("name") or "?"), {"rss_kb": 0.0, "cpu_pct": 0.0})
        entry["rss_kb"] += _num(proc.get("rss_kb")) or 0.0
        entry["cpu_pct"] += _num(proc.get("cpu_pct")) or 0.0
    return totals


def process_changes(pre: dict[str, Any] | None, post: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Processes of the post snapshot that appeared (by name) or grew in RSS, biggest growth first."""
    if not pre or not post:
        return []
    before, after = _by_name(pre), _by_name(post)
    changes = []
    for name, figures in after.items():
        old = before.get(name)
        grown = figures["rss_kb"] - (old["rss_kb"] if old else 0.0)
        if old is None or grown >= PROCESS_GROWTH_KB:
            changes.append(
                {
                    "name": name,
                    "change": "new" if old is None else "grew",
                    "rss_mb": round(figures["rss_kb"] / 1024, 1),
                    "rss_mb_delta": round(grown / 1024, 1),
                    "cpu_pct": round(figures["cpu_pct"], 1),
                }
            )
    changes.sort(key=lambda c: -c["rss_mb_delta"])
    return changes[:PROCESSES_SHOWN]


def judge_value(value: float | None, threshold: float | None) -> str:
    """The colour class of a delta: over, near (≥ 80 % of the limit), ok, nodata, or "" when not gated."""
    if value is None:
        return "nodata"
    if threshold is None:
        return ""
    if value > threshold:
        return "over"
    if threshold and value >= NEAR_SHARE * threshold:
        return "near"
    return "ok"


def _fmt(value: float) -> str:
    return f"{value:+g}"


def over_words(metric: str, value: float, threshold: float) -> str:
    """A regression in words: "CPU +31.5 points, limit 25"."""
    return f"{SHORT.get(metric, metric)} {_fmt(value)} {METRICS[metric]['unit']}, limit {threshold:g}"


def _thresholds(rollout: Rollout) -> dict[str, float | None]:
    try:
        return normalize_gates(rollout.gates)["regression"]
    except GateConfigError:
        return dict(DEFAULT_GATES["regression"])


# --- reads ---------------------------------------------------------------------------------------


def _host_rows(rollout: Rollout) -> dict[int, dict[str, Any]]:
    """One joined query: every host run with its wave, host facts and tags (a row per tag)."""
    runs: dict[int, dict[str, Any]] = {}
    rows = (
        HostRun.objects.filter(rollout=rollout)
        .order_by("id")
        .values(
            "id",
            "status",
            "reason",
            "current_step",
            "wave_id",
            "wave__index",
            "host_id",
            "host__name",
            "host__distro_id",
            "host__distro_version",
            "host__tags__name",
        )
    )
    for row in rows:
        run = runs.get(row["id"])
        if run is None:
            run = runs[row["id"]] = {**row, "tags": []}
        if row["host__tags__name"]:
            run["tags"].append(row["host__tags__name"])
    return runs


def _step_rows(rollout: Rollout) -> tuple[dict[int, dict[str, dict[str, Any]]], list[dict[str, Any]]]:
    """One query: the latest snapshot/compare result per host run, and every failed step."""
    latest: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    failed: list[dict[str, Any]] = []
    rows = (
        StepResult.objects.filter(host_run__rollout=rollout)
        .filter(Q(step__in=SNAPSHOT_STEPS) | Q(status=StepStatus.FAILED))
        .order_by("host_run_id", "id")
        .values("id", "host_run_id", "step", "status", "reason", "parsed")
    )
    for row in rows:
        if row["step"] in SNAPSHOT_STEPS:
            latest[row["host_run_id"]][row["step"]] = row  # ordered by id: the last one wins
        if row["status"] == StepStatus.FAILED:
            failed.append(row)
    return latest, failed


# --- the report ----------------------------------------------------------------------------------


def _host_report(
    rollout: Rollout, run: dict[str, Any], steps: dict[str, dict[str, Any]], thresholds: dict[str, float | None]
) -> dict[str, Any]:
    pre_row, post_row, compare_row = steps.get("snapshot_pre"), steps.get("snapshot_post"), steps.get("compare")
    pre = pre_row["parsed"] if pre_row and isinstance(pre_row["parsed"], dict) else None
    post = post_row["parsed"] if post_row and isinstance(post_row["parsed"], dict) else None
    if pre and post:
        deltas = host_deltas(pre, post)
    elif compare_row and isinstance((compare_row["parsed"] or {}).get("deltas"), dict):
        deltas = {key: None for key in METRICS} | {"disk_mount": ""} | compare_row["parsed"]["deltas"]
    else:
        deltas = host_deltas(None, None)
    judged: dict[str, str] = {}
    over: list[dict[str, Any]] = []
    severity = 0.0
    for metric in METRICS:
        value, threshold = deltas.get(metric), thresholds.get(metric)
        judged[metric] = judge_value(value, threshold)
        if value is not None and threshold:
            severity = max(severity, value / threshold)
        if judged[metric] == "over" and value is not None and threshold is not None:
            over.append(
                {
                    "metric": metric,
                    "value": value,
                    "threshold": threshold,
                    "words": over_words(metric, value, threshold),
                }
            )
    over.sort(key=lambda o: -(o["value"] / o["threshold"] if o["threshold"] else math.inf))
    figures = _figures(pre, post)
    mem_total = _num((post or {}).get("mem_total_mb")) or _num((pre or {}).get("mem_total_mb"))
    rss = figures["agent_rss"]["post"]
    return {
        "run_id": run["id"],
        "host_id": run["host_id"],
        "name": run["host__name"],
        "wave": run["wave__index"] + 1,
        "wave_id": run["wave_id"],
        "status": run["status"],
        "reason": run["reason"],
        "distro": run["host__distro_id"],
        "version": run["host__distro_version"],
        "tags": sorted(run["tags"]),
        "figures": figures,
        "deltas": {key: deltas.get(key) for key in METRICS},
        "disk_mount": deltas.get("disk_mount") or "",
        "agent_rss_pct_of_ram": round(rss / mem_total * 100, 2) if rss is not None and mem_total else None,
        "judged": judged,
        "over": over,
        "regressed": bool(over),
        "severity": round(severity, 3),
        "missing": [m for m in METRICS if deltas.get(m) is None and thresholds.get(m) is not None],
        "has_data": bool(pre and post) or any(deltas.get(m) is not None for m in METRICS),
        "processes": process_changes(pre, post),
        "url": reverse("deployments:rollout-host", args=[rollout.pk, run["id"]]),
    }


def _distributions(hosts: list[dict[str, Any]], thresholds: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    """Per metric: the distribution of its deltas, the threshold and how many hosts are over it."""
    out = {}
    for metric, meta in METRICS.items():
        threshold = thresholds.get(metric)
        values = [h["deltas"][metric] for h in hosts]
        known = [v for v in values if v is not None]
        out[metric] = {
            "label": meta["label"],
            "unit": meta["unit"],
            "threshold": threshold,
            "over": sum(1 for v in known if v > threshold) if threshold is not None else None,
            **distribution(values),
        }
    return out


def _worst(hosts: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    ranked = sorted((h for h in hosts if h["deltas"][metric] is not None), key=lambda h: -h["deltas"][metric])
    return [
        {"run_id": h["run_id"], "name": h["name"], "wave": h["wave"], "value": h["deltas"][metric], "url": h["url"]}
        for h in ranked[:WORST_SHOWN]
    ]


def _groups(hosts: list[dict[str, Any]], key: str, thresholds: dict[str, float | None]) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for host in hosts:
        if key == "tag":
            for tag in host["tags"] or ["(no tag)"]:
                grouped[tag].append(host)
        else:
            label = " ".join(p for p in (host["distro"], host["version"]) if p) or "(unknown)"
            grouped[label].append(host)
    rows = []
    for label, members in sorted(grouped.items()):
        rows.append(
            {
                "group": label,
                "hosts": len(members),
                "regressed": sum(1 for h in members if h["regressed"]),
                "medians": {m: distribution(h["deltas"][m] for h in members)["median"] for m in METRICS},
            }
        )
    return rows


def _wave_report(wave: Wave, hosts: list[dict[str, Any]], thresholds: dict[str, float | None]) -> dict[str, Any]:
    gate = wave.gate_report or {}
    numbers = gate.get("numbers") or {}
    regressions = []
    for metric, figures in (numbers.get("regressions") or {}).items():
        meta = METRICS.get(metric, {"label": metric, "unit": ""})
        regressions.append({"metric": metric, "label": meta["label"], "unit": meta["unit"], **figures})
    return {
        "id": wave.pk,
        "number": wave.index + 1,
        "status": wave.status,
        "verdict": wave.gate_verdict or gate.get("verdict") or "",
        "reasons": list(gate.get("reasons") or []),
        "numbers": {k: v for k, v in numbers.items() if k != "regressions"},
        "regressions": regressions,
        "hosts": len(hosts),
        "regressed": sum(1 for h in hosts if h["regressed"]),
        "distributions": _distributions(hosts, thresholds),
    }


def rollout_report(rollout: Rollout) -> dict[str, Any]:
    """Everything the comparison page, the printable report, the CSV and the API show (four queries)."""
    thresholds = _thresholds(rollout)
    waves = list(Wave.objects.filter(rollout=rollout).order_by("index"))
    runs = _host_rows(rollout)
    steps, failed_steps = _step_rows(rollout)
    hosts = [_host_report(rollout, run, steps.get(run_id, {}), thresholds) for run_id, run in runs.items()]
    by_run = {h["run_id"]: h for h in hosts}
    by_wave: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for host in hosts:
        by_wave[host["wave_id"]].append(host)
    wave_reports = [_wave_report(w, by_wave[w.pk], thresholds) for w in waves]
    verdicts = {w["id"]: w for w in wave_reports}
    for host in hosts:
        wave = verdicts.get(host["wave_id"])
        host["wave_verdict"] = wave["verdict"] if wave else ""
    # Regressed hosts first (furthest over their threshold first), then failed, then the rest by name.
    hosts.sort(
        key=lambda h: (
            0 if h["regressed"] else 1 if h["status"] == HostRunStatus.FAILED else 2,
            -h["severity"] if h["regressed"] else 0,
            h["name"],
        )
    )
    statuses = [h["status"] for h in hosts]
    summary = {
        "hosts": len(hosts),
        "ok": statuses.count(HostRunStatus.OK),
        "failed": statuses.count(HostRunStatus.FAILED),
        "unfinished": sum(1 for s in statuses if s in (HostRunStatus.PENDING, HostRunStatus.RUNNING)),
        "cancelled": statuses.count(HostRunStatus.CANCELLED),
        "regressed": sum(1 for h in hosts if h["regressed"]),
        "compared": sum(1 for h in hosts if h["has_data"]),
        "no_data": sum(1 for h in hosts if not h["has_data"]),
    }
    failed = [
        {
            "run_id": row["host_run_id"],
            "name": by_run[row["host_run_id"]]["name"] if row["host_run_id"] in by_run else "?",
            "step": row["step"],
            "reason": row["reason"],
            "url": by_run[row["host_run_id"]]["url"] if row["host_run_id"] in by_run else "",
        }
        for row in failed_steps
    ]
    ranked = sorted((h for h in hosts if h["has_data"]), key=lambda h: (-h["severity"], h["name"]))
    return {
        "rollout": {"id": rollout.pk, "name": rollout.name, "ticket": rollout.ticket, "status": rollout.status},
        "summary": summary,
        "thresholds": thresholds,
        "distributions": _distributions(hosts, thresholds),
        "waves": wave_reports,
        "worst": {metric: _worst(hosts, metric) for metric in METRICS},
        "worst_hosts": ranked[:WORST_SHOWN],
        "groups": {"distro": _groups(hosts, "distro", thresholds), "tag": _groups(hosts, "tag", thresholds)},
        "hosts": hosts,
        "failed_steps": failed,
    }


# --- flat rows: the CSV and the API's per-host list ----------------------------------------------

CSV_COLUMNS: tuple[str, ...] = (
    "host",
    "run_id",
    "wave",
    "status",
    "distro",
    "version",
    "tags",
    *(f"{key}_{part}" for key, _, _ in FIGURES for part in ("pre", "post", "delta", "delta_pct")),
    *(f"{metric}_delta" for metric in METRICS),
    "agent_rss_pct_of_ram",
    "disk_mount",
    "regressed",
    "over",
    "wave_verdict",
)


def host_flat(host: dict[str, Any]) -> dict[str, Any]:
    """One host as a flat record (None kept: the CSV writes it empty, the API as null)."""
    record: dict[str, Any] = {
        "host": host["name"],
        "run_id": host["run_id"],
        "wave": host["wave"],
        "status": host["status"],
        "distro": host["distro"],
        "version": host["version"],
        "tags": " ".join(host["tags"]),
    }
    for key, _, _ in FIGURES:
        for part in ("pre", "post", "delta", "delta_pct"):
            record[f"{key}_{part}"] = host["figures"][key][part]
    for metric in METRICS:
        record[f"{metric}_delta"] = host["deltas"][metric]
    record["agent_rss_pct_of_ram"] = host["agent_rss_pct_of_ram"]
    record["disk_mount"] = host["disk_mount"]
    record["regressed"] = host["regressed"]
    record["over"] = "; ".join(o["words"] for o in host["over"])
    record["wave_verdict"] = host["wave_verdict"]
    return record


def csv_rows(report: dict[str, Any]) -> Iterable[list[str]]:
    """The header and one row per host; a missing figure is an empty cell, never 0."""
    yield list(CSV_COLUMNS)
    for host in report["hosts"]:
        record = host_flat(host)
        yield [_cell(record[column]) for column in CSV_COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value}"
