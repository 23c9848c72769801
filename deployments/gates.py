"""Gates: pure judgement of a finished wave (failures and resource regressions) with its numbers.

Three outcomes: pass, fail, inconclusive. Missing data never passes silently: a host that ended
OK without a pre and post figure for a gated metric makes the wave inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from deployments.comparison import METRICS

DEFAULT_GATES: dict[str, Any] = {
    "max_failed_per_wave": {"value": 10, "unit": "pct"},
    "max_failed_total": {"value": 5, "unit": "count"},
    "regression": {"cpu_points": 25, "mem_mb": 1536, "agent_rss_mb": 2048, "disk_mb": 2048},
}


class GateConfigError(ValueError):
    """Gate settings that cannot be used."""


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
            if threshold is not None and (
                not isinstance(threshold, int | float) or isinstance(threshold, bool) or threshold < 0
            ):
                raise GateConfigError(f"regression.{metric} must be a number ≥ 0 or null (not gated)")
            gates["regression"][metric] = threshold
    return gates


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

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": self.reasons, "numbers": self.numbers}


def judge_wave(
    gates: dict[str, Any], hosts: list[HostFigures], *, earlier_failed: int, unfinished: int = 0
) -> GateResult:
    """Judge one wave; ``earlier_failed`` counts failures of earlier waves for the global budget."""
    gates = normalize_gates(gates)
    total = len(hosts) + unfinished
    failed = [h for h in hosts if h.status != "ok"] + [None] * unfinished
    per_wave = allowed_failures(gates["max_failed_per_wave"], total)
    budget = allowed_failures(gates["max_failed_total"], total)
    fails: list[str] = []
    unsure: list[str] = []
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
    for metric, threshold in gates["regression"].items():
        if threshold is None:
            continue
        over = [h for h in ok_hosts if (h.deltas.get(metric) is not None and h.deltas[metric] > threshold)]
        missing = [h for h in ok_hosts if h.deltas.get(metric) is None]
        label, unit = METRICS[metric]["label"], METRICS[metric]["unit"]
        worst = max((h.deltas[metric] for h in ok_hosts if h.deltas.get(metric) is not None), default=None)
        numbers["regressions"][metric] = {
            "threshold": threshold,
            "over": len(over),
            "missing": len(missing),
            "worst": worst,
            "hosts_over": [{"host_id": h.host_id, "name": h.name, "value": h.deltas[metric]} for h in over[:20]],
        }
        if over:
            names = ", ".join(f"{h.name} (+{h.deltas[metric]:g} {unit})" for h in over[:5])
            more = f" and {len(over) - 5} more" if len(over) > 5 else ""
            fails.append(f"{label} rose by more than {threshold:g} {unit} on {len(over)} host(s): {names}{more}")
        if missing:
            unsure.append(f"{label}: no pre/post figure for {len(missing)} host(s) ({missing[0].name}…)")
    if not hosts and unfinished == 0:
        unsure.append("the wave had no hosts")
    if fails:
        return GateResult("fail", fails, numbers)
    if unsure:
        return GateResult("inconclusive", unsure, numbers)
    return GateResult("pass", [f"{len(ok_hosts)} of {total} hosts OK; no regression over the thresholds"], numbers)
