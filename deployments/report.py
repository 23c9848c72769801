"""The comparison report of one rollout: per-host pre/post figures, distributions, gates, groups.

Read with a fixed number of queries whatever the number of hosts (the waves, the host runs joined
with their hosts and tags, the step results that matter); everything else is pure Python over those
rows, so the page, the printable report, the CSV and the API carry the same numbers. Each host's
figures come from the summary its compare step stored; only a host without one (stopped before
the compare step, or compared before summaries existed) has its two snapshots read and compared here.

A figure that is missing stays None (shown as "no data"), is counted apart and never becomes 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Q
from django.urls import reverse

from deployments.choices import HostRunStatus
from deployments.comparison import (
    METRICS,
    agent_totals,
    distribution,
    host_deltas,
    host_summary,
    percentile_nearest_rank,  # noqa: F401 (re-exported: the report module names its statistics)
    share_of,
)
from deployments.gates import DEFAULT_GATES, GateConfigError, Rule, regression_rules, rule_of
from deployments.models import HostRun, Rollout, StepResult, Wave
from hosts.choices import StepStatus
from hosts.models import Snapshot

SNAPSHOT_STEPS = ("snapshot_pre", "snapshot_post")
WORST_SHOWN = 10
# A figure above this share of its threshold is "near" the limit (amber), above the threshold "over".
NEAR_SHARE = 0.8
WAVE_WORST_SHOWN = 5

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


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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


def judge_rule(rule: Rule | None, deltas: dict[str, Any], metric: str) -> tuple[str, float | None]:
    """(colour class, the figure the rule judges) of one host's metric.

    over: past the critical limit; marginal: past the allowed one; near: within 20 % of the limit;
    ok; nodata; "" when the metric is not gated.
    """
    if rule is None:
        return ("nodata" if deltas.get(metric) is None else ""), None
    value = rule.value(deltas)
    level = rule.level(value)
    if level == "ok" and rule.threshold:
        return judge_value(value, rule.threshold), value
    return level, value


def _fmt(value: float) -> str:
    return f"{value:+g}"


def over_words(metric: str, value: float, threshold: float, unit: str | None = None, kind: str = "limit") -> str:
    """A regression in words: "CPU +31.5 points, limit 25"."""
    return f"{SHORT.get(metric, metric)} {_fmt(value)} {unit or METRICS[metric]['unit']}, {kind} {threshold:g}"


def _rules(rollout: Rollout) -> dict[str, Rule | None]:
    try:
        return regression_rules(rollout.gates)
    except GateConfigError:
        return {m: rule_of(m, DEFAULT_GATES["regression"].get(m)) for m in METRICS}


def _rule_dict(rule: Rule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {
        "allowed": rule.allowed,
        "critical": rule.critical,
        "relative": rule.relative,
        "baseline": rule.baseline,
        "unit": rule.unit,
        "describe": rule.describe(),
    }


# --- reads ---------------------------------------------------------------------------------------


def _host_rows(rollout: Rollout, run_id: int | None = None) -> dict[int, dict[str, Any]]:
    """One joined query: every host run (or one) with its wave, host facts and tags (a row per tag)."""
    runs: dict[int, dict[str, Any]] = {}
    only = {"id": run_id} if run_id is not None else {}
    rows = (
        HostRun.objects.filter(rollout=rollout, **only)
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
            "host__cpu_cores",
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


def _step_rows(
    rollout: Rollout, run_id: int | None = None
) -> tuple[dict[int, dict[str, dict[str, Any]]], list[dict[str, Any]]]:
    """The latest compare result per host run (or of one) and every failed step; two queries.

    A compare result carries its host's summary (:func:`deployments.comparison.host_summary`), so
    the full snapshots are read only for the runs without one: those that stopped before the
    compare step, and rollouts run before the summary existed.
    """
    latest: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    failed: list[dict[str, Any]] = []
    only = {"host_run_id": run_id} if run_id is not None else {}
    mine = StepResult.objects.filter(host_run__rollout=rollout, **only)
    columns = ("id", "host_run_id", "step", "status", "reason", "parsed")
    for row in mine.filter(Q(step="compare") | Q(status=StepStatus.FAILED)).order_by("id").values(*columns):
        if row["step"] == "compare":
            latest[row["host_run_id"]]["compare"] = row  # ordered by id: the last one wins
        if row["status"] == StepStatus.FAILED:
            failed.append(row)
    summarised = mine.filter(step="compare", parsed__has_key="summary").values("host_run_id")
    snapshots = mine.filter(step__in=SNAPSHOT_STEPS).exclude(host_run_id__in=summarised)
    for row in snapshots.order_by("id").values(*columns):
        latest[row["host_run_id"]][row["step"]] = row
    failed.sort(key=lambda row: (row["host_run_id"], row["id"]))
    return latest, failed


# --- the report ----------------------------------------------------------------------------------


# A run id no real run has, reversed in place of the real ones (see _run_url).
_RUN_PLACEHOLDER = 2_147_000_111


def _run_url(name: str, rollout_pk: int) -> Callable[[int], str]:
    """The URL of a host run's page by run id: reverse() once per report rather than per host."""
    head, tail = reverse(name, args=[rollout_pk, _RUN_PLACEHOLDER]).rsplit(str(_RUN_PLACEHOLDER), 1)
    return lambda run_id: f"{head}{run_id}{tail}"


def _run_urls(rollout: Rollout) -> dict[str, Callable[[int], str]]:
    return {
        "url": _run_url("deployments:rollout-comparison-host", rollout.pk),
        "steps_url": _run_url("deployments:rollout-host", rollout.pk),
    }


def _host_report(
    urls: dict[str, Callable[[int], str]],
    run: dict[str, Any],
    steps: dict[str, dict[str, Any]],
    rules: dict[str, Rule | None],
) -> dict[str, Any]:
    compare_row = steps.get("compare")
    compare = compare_row["parsed"] if compare_row and isinstance(compare_row["parsed"], dict) else {}
    summary = compare.get("summary")
    stored = compare.get("deltas") if isinstance(compare.get("deltas"), dict) else None
    if isinstance(summary, dict) and stored is not None:
        deltas = {key: None for key in METRICS} | {"disk_mount": ""} | stored
    else:
        pre_row, post_row = steps.get("snapshot_pre"), steps.get("snapshot_post")
        pre = pre_row["parsed"] if pre_row and isinstance(pre_row["parsed"], dict) else None
        post = post_row["parsed"] if post_row and isinstance(post_row["parsed"], dict) else None
        summary = host_summary(pre, post)
        if pre and post:
            deltas = host_deltas(pre, post)
        elif stored is not None:
            deltas = {key: None for key in METRICS} | {"disk_mount": ""} | stored
        else:
            deltas = host_deltas(None, None)
    judged: dict[str, str] = {}
    over: list[dict[str, Any]] = []
    marginal: list[dict[str, Any]] = []
    severity = 0.0
    for metric in METRICS:
        rule = rules.get(metric)
        judged[metric], value = judge_rule(rule, deltas, metric)
        if rule is None or value is None:
            continue
        limit = rule.threshold
        if limit:
            severity = max(severity, value / limit)
        if judged[metric] in ("over", "marginal"):
            kind = "limit" if judged[metric] == "over" else "allowed"
            bound = rule.critical if judged[metric] == "over" else rule.allowed
            assert bound is not None
            (over if judged[metric] == "over" else marginal).append(
                {
                    "metric": metric,
                    "value": value,
                    "threshold": bound,
                    "relative": rule.relative,
                    "words": over_words(metric, value, bound, rule.unit, kind),
                }
            )
    over.sort(key=lambda o: -(o["value"] / o["threshold"] if o["threshold"] else math.inf))
    share = share_of(summary.get("share_base"), run["host__cpu_cores"])
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
        "figures": summary["figures"],
        "deltas": {key: deltas.get(key) for key in METRICS},
        "disk_mount": deltas.get("disk_mount") or "",
        "agent_rss_pct_of_ram": share["rss_pct_of_ram"],
        "agent_cpu_pct_of_host": share["cpu_pct_of_host"],
        "agent_cpu_pct_of_busy": share["cpu_pct_of_busy"],
        "judged": judged,
        "over": over,
        "marginal": marginal,
        "regressed": bool(over),
        "severity": round(severity, 3),
        "missing": [m for m in METRICS if deltas.get(m) is None and rules.get(m) is not None],
        "has_data": bool(summary.get("paired")) or any(deltas.get(m) is not None for m in METRICS),
        "processes": summary["processes"],
        "filesystems": summary["filesystems"],
        **{key: url(run["id"]) for key, url in urls.items()},
    }


def _distributions(hosts: list[dict[str, Any]], rules: dict[str, Rule | None]) -> dict[str, dict[str, Any]]:
    """Per metric: the distribution of its deltas, its limits and how many hosts are over each."""
    out = {}
    for metric, meta in METRICS.items():
        rule = rules.get(metric)
        values = [h["deltas"][metric] for h in hosts]
        levels = [h["judged"][metric] for h in hosts]
        out[metric] = {
            "label": meta["label"],
            "unit": meta["unit"],
            "threshold": None if rule is None else rule.threshold,
            "allowed": None if rule is None else rule.allowed,
            "critical": None if rule is None else rule.critical,
            "relative": False if rule is None else rule.relative,
            "over": None if rule is None else levels.count("over"),
            "marginal": None if rule is None else levels.count("marginal"),
            **distribution(values),
            "worst": _worst(hosts, metric, WAVE_WORST_SHOWN),
        }
    return out


def _worst(hosts: list[dict[str, Any]], metric: str, count: int = WORST_SHOWN) -> list[dict[str, Any]]:
    ranked = sorted(
        (h for h in hosts if h["deltas"][metric] is not None), key=lambda h: (-h["deltas"][metric], h["name"])
    )
    return [
        {"run_id": h["run_id"], "name": h["name"], "wave": h["wave"], "value": h["deltas"][metric], "url": h["url"]}
        for h in ranked[:count]
    ]


def _groups(hosts: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
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
        dists = {m: distribution(h["deltas"][m] for h in members) for m in METRICS}
        rows.append(
            {
                "group": label,
                "hosts": len(members),
                "regressed": sum(1 for h in members if h["regressed"]),
                "medians": {m: dists[m]["median"] for m in METRICS},
                "p95s": {m: dists[m]["p95"] for m in METRICS},
                "maxes": {m: dists[m]["max"] for m in METRICS},
            }
        )
    return rows


def _wave_report(
    wave: Wave, hosts: list[dict[str, Any]], earlier: list[dict[str, Any]], rules: dict[str, Rule | None]
) -> dict[str, Any]:
    gate = wave.gate_report or {}
    numbers = gate.get("numbers") or {}
    regressions = []
    for metric, figures in (numbers.get("regressions") or {}).items():
        meta = METRICS.get(metric, {"label": metric, "unit": ""})
        regressions.append({"metric": metric, "label": meta["label"], "unit": meta["unit"], **figures})
    distributions = _distributions(hosts, rules)
    # The earlier waves as the baseline: their median of each delta beside this wave's.
    for metric, dist in distributions.items():
        before = distribution(h["deltas"][metric] for h in earlier)
        dist["baseline_median"] = before["median"]
        dist["vs_baseline"] = (
            round(dist["median"] - before["median"], 2)
            if dist["median"] is not None and before["median"] is not None
            else None
        )
    ranked = sorted((h for h in hosts if h["has_data"]), key=lambda h: (-h["severity"], h["name"]))
    return {
        "id": wave.pk,
        "number": wave.index + 1,
        "status": wave.status,
        "verdict": wave.gate_verdict or gate.get("verdict") or "",
        "reasons": list(gate.get("reasons") or []),
        "notes": [n for n in gate.get("notes") or [] if n not in (gate.get("reasons") or [])],
        "numbers": {k: v for k, v in numbers.items() if k != "regressions"},
        "regressions": regressions,
        "hosts": len(hosts),
        "regressed": sum(1 for h in hosts if h["regressed"]),
        "earlier_hosts": len(earlier),
        "distributions": distributions,
        "worst_hosts": [
            {"run_id": h["run_id"], "name": h["name"], "url": h["url"], "severity": h["severity"], "over": h["over"]}
            for h in ranked[:WAVE_WORST_SHOWN]
        ],
    }


def rollout_report(rollout: Rollout) -> dict[str, Any]:
    """Everything the comparison page, the printable report, the CSV and the API show (five queries)."""
    rules = _rules(rollout)
    thresholds = {m: None if r is None else r.threshold for m, r in rules.items()}
    waves = list(Wave.objects.filter(rollout=rollout).order_by("index"))
    runs = _host_rows(rollout)
    steps, failed_steps = _step_rows(rollout)
    urls = _run_urls(rollout)
    hosts = [_host_report(urls, run, steps.get(run_id, {}), rules) for run_id, run in runs.items()]
    by_run = {h["run_id"]: h for h in hosts}
    by_wave: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for host in hosts:
        by_wave[host["wave_id"]].append(host)
    wave_reports = []
    earlier: list[dict[str, Any]] = []
    for wave in waves:
        wave_reports.append(_wave_report(wave, by_wave[wave.pk], list(earlier), rules))
        earlier += by_wave[wave.pk]
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
        "rules": {m: _rule_dict(r) for m, r in rules.items()},
        "distributions": _distributions(hosts, rules),
        "waves": wave_reports,
        "worst": {metric: _worst(hosts, metric) for metric in METRICS},
        "worst_hosts": ranked[:WORST_SHOWN],
        "groups": {"distro": _groups(hosts, "distro"), "tag": _groups(hosts, "tag")},
        "hosts": hosts,
        "failed_steps": failed,
    }


# --- the host table's filter ----------------------------------------------------------------------

# Which hosts the comparison page's table shows, besides all of them.
HOST_VIEWS: dict[str, str] = {
    "regressed": "Regressed",
    "failed": "Failed",
    "nodata": "No pre/post data",
}


def hosts_matching(
    hosts: list[dict[str, Any]], *, name: str = "", wave: int | None = None, show: str = ""
) -> list[dict[str, Any]]:
    """The report's hosts whose name contains ``name`` (any case), in wave ``wave``, in view ``show``."""
    needle = name.casefold()
    keep = {
        "regressed": lambda h: h["regressed"],
        "failed": lambda h: h["status"] == HostRunStatus.FAILED,
        "nodata": lambda h: not h["has_data"],
    }.get(show, lambda h: True)
    return [
        h
        for h in hosts
        if (not needle or needle in h["name"].casefold()) and (wave is None or h["wave"] == wave) and keep(h)
    ]


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
    "agent_cpu_pct_of_host",
    "agent_cpu_pct_of_busy",
    "disk_mount",
    "filesystems_lost",
    "processes_new_or_grown",
    "regressed",
    "over",
    "marginal",
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
    record["agent_cpu_pct_of_host"] = host["agent_cpu_pct_of_host"]
    record["agent_cpu_pct_of_busy"] = host["agent_cpu_pct_of_busy"]
    record["disk_mount"] = host["disk_mount"]
    record["filesystems_lost"] = "; ".join(f"{f['mount']} {f['lost_mb']:g} MB" for f in host["filesystems"])
    record["processes_new_or_grown"] = "; ".join(process_words(p) for p in host["processes"])
    record["regressed"] = host["regressed"]
    record["over"] = "; ".join(o["words"] for o in host["over"])
    record["marginal"] = "; ".join(o["words"] for o in host["marginal"])
    record["wave_verdict"] = host["wave_verdict"]
    return record


def process_words(proc: dict[str, Any]) -> str:
    """One process change as text: "wdavdaemon new, CPU +31.2 %, RSS +412 MB"."""
    return f"{proc['name']} {proc['change']}, CPU {proc['cpu_pct_delta']:+g} %, RSS {proc['rss_mb_delta']:+g} MB"


def host_api(host: dict[str, Any]) -> dict[str, Any]:
    """One host as the report API gives it: the CSV's record, and the lists and words as structures."""
    return {
        **host_flat(host),
        "over": host["over"],
        "marginal": host["marginal"],
        "missing": host["missing"],
        "processes": host["processes"],
        "filesystems": host["filesystems"],
        "url": host["url"],
    }


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


# --- one host ------------------------------------------------------------------------------------

TIMELINE_SNAPSHOTS = 60


def host_comparison(rollout: Rollout, run_id: int) -> dict[str, Any] | None:
    """One host run's comparison (the same figures as its row in :func:`rollout_report`), its wave's
    gate, its failed steps and the timeline of the host's snapshots; None if the run is not there."""
    runs = _host_rows(rollout, run_id)
    run = runs.get(run_id)
    if run is None:
        return None
    rules = _rules(rollout)
    steps, failed = _step_rows(rollout, run_id)
    host = _host_report(_run_urls(rollout), run, steps.get(run_id, {}), rules)
    wave = Wave.objects.filter(pk=run["wave_id"]).first()
    gate = (wave.gate_report or {}) if wave else {}
    host["wave_verdict"] = (wave.gate_verdict if wave else "") or gate.get("verdict") or ""
    host["wave_reasons"] = list(gate.get("reasons") or [])
    host["failed_steps"] = [{"step": row["step"], "reason": row["reason"]} for row in failed]
    host["rules"] = {m: _rule_dict(r) for m, r in rules.items()}
    host["timeline"] = host_timeline(host_id=run["host_id"])
    return host


def host_timeline(*, host_id: int, limit: int = TIMELINE_SNAPSHOTS) -> list[dict[str, Any]]:
    """The host's latest snapshots, oldest first: time, phase, CPU busy, memory used %, agent RSS MB."""
    rows = list(
        Snapshot.objects.filter(host_id=host_id)
        .order_by("-taken_at", "-id")
        .values("id", "phase", "taken_at", "cpu_busy_pct", "mem_used_mb", "mem_total_mb", "agent_processes")[:limit]
    )
    timeline = []
    for row in reversed(rows):
        rss, cpu = agent_totals({"agent_processes": row["agent_processes"] or []})
        used, total = _num(row["mem_used_mb"]), _num(row["mem_total_mb"])
        timeline.append(
            {
                "id": row["id"],
                "phase": row["phase"],
                "taken_at": row["taken_at"],
                "cpu_busy_pct": _num(row["cpu_busy_pct"]),
                "mem_used_pct": round(used / total * 100, 1) if used is not None and total else None,
                "agent_rss_mb": rss,
                "agent_cpu_pct": cpu,
            }
        )
    return timeline
