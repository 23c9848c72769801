"""Gates: pure judgement of a finished wave (failures and resource regressions) with its numbers.

Three outcomes: pass, fail, inconclusive. Missing data never passes silently: a host that ended
OK without a pre and post figure for a gated metric makes the wave inconclusive.

Resource regressions are judged in the manner of automated canary analysis. Each gated metric has
a rule: the direction that is bad (``METRICS[metric]["bad"]``), an *allowed* and a *critical*
increase, absolute (in the metric's unit) or *relative* (in % of the host's pre figure), and an
optional *baseline* margin over the earlier waves. A rule is written either as one number (the
historical form: "halt when a host rises by more than N", i.e. allowed = critical = N) or as
``{"allowed": A, "critical": C, "relative": false, "baseline": B}``. The wave fails when

- any host rises by more than C (judged per host),
- the wave's median host rises by more than A (the typical host regressed), or
- the wave's median exceeds the earlier waves' median by more than B (the baseline drifted).

A p95 over A with none of these is a pass with a note ("marginal"); hosts between A and C are
"marginal" on the pages, hosts over C are "over".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from deployments.comparison import METRICS, distribution

DEFAULT_GATES: dict[str, Any] = {
    "max_failed_per_wave": {"value": 10, "unit": "pct"},
    "max_failed_total": {"value": 5, "unit": "count"},
    "regression": {"cpu_points": 25, "mem_mb": 1536, "agent_rss_mb": 2048, "disk_mb": 2048},
}
RULE_KEYS = ("allowed", "critical", "relative", "baseline")


class GateConfigError(ValueError):
    """Gate settings that cannot be used."""


@dataclass(frozen=True)
class Rule:
    """One metric's regression rule: allowed and critical increase, absolute or relative, baseline margin."""

    metric: str
    allowed: float | None
    critical: float | None
    relative: bool = False
    baseline: float | None = None

    @property
    def unit(self) -> str:
        return "%" if self.relative else METRICS[self.metric]["unit"]

    @property
    def threshold(self) -> float | None:
        """The single figure older screens show: the critical limit, else the allowed one."""
        return self.critical if self.critical is not None else self.allowed

    def value(self, deltas: dict[str, Any]) -> float | None:
        """The host's figure this rule judges, signed so that larger is worse; None if it has no data."""
        delta = deltas.get(self.metric)
        if not isinstance(delta, int | float) or isinstance(delta, bool):
            return None
        if METRICS[self.metric]["bad"] == "down":
            delta = -delta
        if not self.relative:
            return float(delta)
        base = (deltas.get("base") or {}).get(self.metric)
        if not isinstance(base, int | float) or isinstance(base, bool) or base <= 0:
            return None  # no pre figure to take a percentage of: no data, never a pass
        return round(delta / base * 100, 2)

    def level(self, value: float | None) -> str:
        """over (past critical), marginal (past allowed), ok, or nodata."""
        if value is None:
            return "nodata"
        if self.critical is not None and value > self.critical:
            return "over"
        if self.allowed is not None and value > self.allowed:
            return "marginal"
        return "ok"

    def describe(self) -> str:
        """The rule as a sentence fragment: "halt when a host rises by more than 25 points"."""
        unit = "% of its pre figure" if self.relative else METRICS[self.metric]["unit"]
        parts = []
        if self.critical is not None:
            parts.append(f"a host rises by more than {self.critical:g} {unit}")
        if self.allowed is not None and self.allowed != self.critical:
            parts.append(f"the wave's median rises by more than {self.allowed:g} {unit}")
        if self.baseline is not None:
            parts.append(f"the median exceeds the earlier waves' by more than {self.baseline:g} {unit}")
        return "halt when " + " or ".join(parts)


def _number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise GateConfigError(f"{where} must be a number ≥ 0")
    return value


def _normalize_rule(metric: str, raw: Any) -> Any:
    """A metric's rule in its stored form: None, a number, or a dict with every key of RULE_KEYS."""
    where = f"regression.{metric}"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        if not isinstance(raw, int | float) or isinstance(raw, bool) or raw < 0:
            raise GateConfigError(f"{where} must be a number ≥ 0, null (not gated) or a rule {{allowed, critical}}")
        return raw
    unknown = sorted(set(raw) - set(RULE_KEYS))
    if unknown:
        raise GateConfigError(f"{where}.{unknown[0]}: unknown; a rule takes {', '.join(RULE_KEYS)}")
    allowed = None if raw.get("allowed") is None else _number(raw["allowed"], f"{where}.allowed")
    critical = None if raw.get("critical") is None else _number(raw["critical"], f"{where}.critical")
    baseline = None if raw.get("baseline") is None else _number(raw["baseline"], f"{where}.baseline")
    relative = raw.get("relative", False)
    if not isinstance(relative, bool):
        raise GateConfigError(f"{where}.relative must be true or false")
    if allowed is None and critical is None:
        raise GateConfigError(f"{where} needs an allowed or a critical increase")
    if allowed is not None and critical is not None and allowed > critical:
        raise GateConfigError(f"{where}.allowed must not be above critical ({allowed:g} > {critical:g})")
    if relative and "base" not in METRICS[metric]:
        raise GateConfigError(f"{where}.relative: this metric has no pre figure to take a % of; use absolute limits")
    return {"allowed": allowed, "critical": critical, "relative": relative, "baseline": baseline}


def normalize_gates(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults filled in and every value checked; raises GateConfigError naming the bad field."""
    gates = {
        "max_failed_per_wave": dict(DEFAULT_GATES["max_failed_per_wave"]),
        "max_failed_total": dict(DEFAULT_GATES["max_failed_total"]),
        "regression": dict(DEFAULT_GATES["regression"]),
    }
    raw = raw or {}
    unknown = set(raw) - set(gates)
    if unknown:
        raise GateConfigError(f"unknown gate {sorted(unknown)[0]!r}; known: {', '.join(gates)}")
    for key in ("max_failed_per_wave", "max_failed_total"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, dict) or set(value) - {"value", "unit"}:
                raise GateConfigError(f"{key} must be {{'value': number, 'unit': 'count' or 'pct'}}")
            unit = value.get("unit", "count")
            number = value.get("value")
            if unit not in ("count", "pct"):
                raise GateConfigError(f"{key}.unit must be 'count' or 'pct'")
            if not isinstance(number, int | float) or isinstance(number, bool) or number < 0:
                raise GateConfigError(f"{key}.value must be a number ≥ 0")
            if unit == "pct" and number > 100:
                raise GateConfigError(f"{key}.value is a percentage: at most 100")
            gates[key] = {"value": number, "unit": unit}
    if "regression" in raw:
        reg = raw["regression"]
        if not isinstance(reg, dict):
            raise GateConfigError("regression must map metric names to thresholds")
        for metric, threshold in reg.items():
            if metric not in METRICS:
                raise GateConfigError(f"regression.{metric}: unknown metric; known: {', '.join(METRICS)}")
            gates["regression"][metric] = _normalize_rule(metric, threshold)
    return gates


def rule_of(metric: str, stored: Any) -> Rule | None:
    """The Rule of a normalized regression entry (a number N is allowed = critical = N)."""
    if stored is None:
        return None
    if isinstance(stored, dict):
        return Rule(
            metric, stored.get("allowed"), stored.get("critical"), bool(stored.get("relative")), stored.get("baseline")
        )
    return Rule(metric, float(stored), float(stored))


def regression_rules(gates: dict[str, Any] | None) -> dict[str, Rule | None]:
    """Every metric's rule (None: not gated) from raw or stored gates; raises GateConfigError."""
    regression = normalize_gates(gates)["regression"]
    return {metric: rule_of(metric, regression.get(metric)) for metric in METRICS}


def critical_limits(gates: dict[str, Any] | None) -> dict[str, float | None]:
    """Per metric the absolute per-host critical limit (None: not gated per host in absolute units).

    For readers that compare one host's delta with one number (the compare step, older screens).
    """
    out: dict[str, float | None] = {}
    for metric, rule in regression_rules(gates).items():
        out[metric] = None if rule is None or rule.relative else rule.critical
    return out


def allowed_failures(limit: dict[str, Any], total: int) -> int:
    """How many failures a limit tolerates ("more than N fails")."""
    if limit["unit"] == "pct":
        return math.floor(total * limit["value"] / 100)
    return int(limit["value"])


def describe_limit(limit: dict[str, Any]) -> str:
    """The limit as a person reads it on screen."""
    return (
        f"more than {limit['value']:g}% of hosts" if limit["unit"] == "pct" else f"more than {limit['value']:g} hosts"
    )


@dataclass
class HostFigures:
    """One finished host of the wave: status and pre/post deltas."""

    host_id: int
    name: str
    status: str
    deltas: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateResult:
    """The verdict and the numbers that decided it."""

    verdict: str
    reasons: list[str]
    numbers: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": self.reasons, "numbers": self.numbers, "notes": self.notes}


def _signed(value: float) -> str:
    return f"{value:+g}"


def judge_metric(rule: Rule, hosts: list[HostFigures], baseline: list[HostFigures] | None = None) -> dict[str, Any]:
    """One metric over the wave's OK hosts: per-host levels, median/p95, baseline, and the checks.

    Returns the numbers the wave's gate report keeps, with ``fails`` (sentences that fail the wave),
    ``unsure`` (sentences that make it inconclusive) and ``notes`` (marginal, informative).
    """
    label, unit = METRICS[rule.metric]["label"], rule.unit
    values = [(h, rule.value(h.deltas)) for h in hosts]
    known = [(h, v) for h, v in values if v is not None]
    missing = [h for h, v in values if v is None]
    over = sorted(((h, v) for h, v in known if rule.level(v) == "over"), key=lambda hv: -hv[1])
    marginal = sorted(((h, v) for h, v in known if rule.level(v) == "marginal"), key=lambda hv: -hv[1])
    dist = distribution(v for _, v in known)
    base_dist = distribution(v for h in baseline or [] if h.status == "ok" for v in [rule.value(h.deltas)])
    checks: list[dict[str, Any]] = []
    fails: list[str] = []
    unsure: list[str] = []
    notes: list[str] = []
    spread = f"wave median {_signed(dist['median'])}, p95 {_signed(dist['p95'])} {unit}" if dist["n"] else ""
    if rule.critical is not None:
        checks.append(
            {
                "check": "host",
                "value": over[0][1] if over else dist["max"],
                "limit": rule.critical,
                "outcome": "fail" if over else ("pass" if dist["n"] else "nodata"),
            }
        )
        if over:
            names = ", ".join(f"{h.name} ({_signed(v)} {unit})" for h, v in over[:5])
            more = f" and {len(over) - 5} more" if len(over) > 5 else ""
            fails.append(
                f"{label} rose by more than {rule.critical:g} {unit} on {len(over)} host(s): {names}{more}"
                + (f" ({spread})" if spread else "")
            )
    # The median check adds nothing when allowed == critical (a median over it means hosts over it).
    if rule.allowed is not None and rule.allowed != rule.critical:
        outcome = "nodata" if dist["median"] is None else "fail" if dist["median"] > rule.allowed else "pass"
        checks.append({"check": "median", "value": dist["median"], "limit": rule.allowed, "outcome": outcome})
        if outcome == "fail":
            fails.append(
                f"{label}: the wave's median host rose by {_signed(dist['median'])} {unit}, more than the "
                f"{rule.allowed:g} allowed (p95 {_signed(dist['p95'])}, {len(marginal) + len(over)} of {dist['n']} "
                "host(s) over the allowed increase)"
            )
        elif dist["p95"] is not None and dist["p95"] > rule.allowed:
            notes.append(
                f"{label}: marginal — p95 {_signed(dist['p95'])} {unit} is over the {rule.allowed:g} allowed "
                f"(median {_signed(dist['median'])}); {len(marginal)} host(s) between allowed and critical"
            )
    if rule.baseline is not None:
        if base_dist["median"] is None or dist["median"] is None:
            checks.append({"check": "baseline", "value": None, "limit": rule.baseline, "outcome": "nodata"})
            notes.append(f"{label}: no earlier wave to compare with (baseline margin {rule.baseline:g} {unit})")
        else:
            drift = round(dist["median"] - base_dist["median"], 2)
            outcome = "fail" if drift > rule.baseline else "pass"
            checks.append({"check": "baseline", "value": drift, "limit": rule.baseline, "outcome": outcome})
            if outcome == "fail":
                fails.append(
                    f"{label}: the wave's median {_signed(dist['median'])} {unit} is {_signed(drift)} over the "
                    f"earlier waves' median {_signed(base_dist['median'])} (margin {rule.baseline:g})"
                )
    if missing:
        why = "no pre figure to take a % of, or no pre/post figure" if rule.relative else "no pre/post figure"
        unsure.append(f"{label}: {why} for {len(missing)} host(s) ({missing[0].name}…)")
    return {
        "threshold": rule.threshold,
        "allowed": rule.allowed,
        "critical": rule.critical,
        "relative": rule.relative,
        "unit": unit,
        "over": len(over),
        "marginal": len(marginal),
        "missing": len(missing),
        "n": dist["n"],
        "worst": dist["max"],
        "median": dist["median"],
        "p95": dist["p95"],
        "baseline": None
        if baseline is None
        else {"n": base_dist["n"], "median": base_dist["median"], "p95": base_dist["p95"], "margin": rule.baseline},
        "checks": checks,
        "hosts_over": [{"host_id": h.host_id, "name": h.name, "value": v} for h, v in over[:20]],
        "hosts_marginal": [{"host_id": h.host_id, "name": h.name, "value": v} for h, v in marginal[:20]],
        "fails": fails,
        "unsure": unsure,
        "notes": notes,
    }


def judge_wave(
    gates: dict[str, Any],
    hosts: list[HostFigures],
    *,
    earlier_failed: int,
    unfinished: int = 0,
    baseline: list[HostFigures] | None = None,
) -> GateResult:
    """Judge one wave; ``earlier_failed`` counts failures of earlier waves for the global budget and
    ``baseline`` holds the earlier waves' hosts for the rules with a baseline margin."""
    gates = normalize_gates(gates)
    total = len(hosts) + unfinished
    failed = [h for h in hosts if h.status != "ok"] + [None] * unfinished
    per_wave = allowed_failures(gates["max_failed_per_wave"], total)
    budget = allowed_failures(gates["max_failed_total"], total)
    fails: list[str] = []
    unsure: list[str] = []
    notes: list[str] = []
    numbers: dict[str, Any] = {
        "hosts": total,
        "failed": len(failed),
        "allowed_failed": per_wave,
        "failed_total": earlier_failed + len(failed),
        "allowed_failed_total": int(gates["max_failed_total"]["value"])
        if gates["max_failed_total"]["unit"] == "count"
        else budget,
        "regressions": {},
    }
    if len(failed) > per_wave:
        fails.append(
            f"{len(failed)} of {total} hosts failed; the gate stops at {describe_limit(gates['max_failed_per_wave'])} "
            f"({per_wave} allowed)"
        )
    if gates["max_failed_total"]["unit"] == "count" and earlier_failed + len(failed) > budget:
        fails.append(
            f"{earlier_failed + len(failed)} hosts failed across waves; the budget is "
            f"{describe_limit(gates['max_failed_total'])}"
        )
    ok_hosts = [h for h in hosts if h.status == "ok"]
    gated = False
    for metric, stored in gates["regression"].items():
        rule = rule_of(metric, stored)
        if rule is None:
            continue
        gated = True
        judged = judge_metric(rule, ok_hosts, baseline)
        fails += judged.pop("fails")
        unsure += judged.pop("unsure")
        notes += judged.pop("notes")
        numbers["regressions"][metric] = judged
    if not hosts and unfinished == 0:
        unsure.append("the wave had no hosts")
    elif gated and hosts and not ok_hosts and not fails:
        unsure.append("no host of the wave finished OK: no pre/post figure to judge")
    if fails:
        return GateResult("fail", fails, numbers, notes)
    if unsure:
        return GateResult("inconclusive", unsure, numbers, notes)
    return GateResult(
        "pass", [f"{len(ok_hosts)} of {total} hosts OK; no regression over the limits", *notes], numbers, notes
    )
