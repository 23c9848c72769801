"""Gates: failures per wave and across waves, regressions, and inconclusive data."""

from __future__ import annotations

import pytest

from deployments.gates import GateConfigError, HostFigures, judge_wave, normalize_gates

CALM = {"cpu_points": 2.0, "mem_mb": 300.0, "mem_pct": 4.0, "agent_rss_mb": 420.0, "agent_cpu_pct": 1.0, "disk_mb": 900.0}


def hosts(ok: int, failed: int = 0, **override: float | None) -> list[HostFigures]:
    made = [HostFigures(i, f"h{i}", "ok", {**CALM, **override}) for i in range(ok)]
    made += [HostFigures(100 + i, f"f{i}", "failed", {}) for i in range(failed)]
    return made


def test_it_passes_a_calm_wave() -> None:
    result = judge_wave({}, hosts(10), earlier_failed=0)
    assert result.verdict == "pass"
    assert result.numbers["failed"] == 0


def test_it_halts_when_failures_pass_the_wave_threshold() -> None:
    gates = {"max_failed_per_wave": {"value": 10, "unit": "pct"}, "max_failed_total": {"value": 100, "unit": "count"}}
    assert judge_wave(gates, hosts(9, 1), earlier_failed=0).verdict == "pass"  # 1 of 10 is not more than 10%
    result = judge_wave(gates, hosts(8, 2), earlier_failed=0)
    assert result.verdict == "fail"
    assert "2 of 10 hosts failed" in result.reasons[0]
    assert "more than 10% of hosts" in result.reasons[0]


def test_it_halts_when_the_global_budget_is_spent_across_waves() -> None:
    gates = {"max_failed_per_wave": {"value": 50, "unit": "pct"}, "max_failed_total": {"value": 3, "unit": "count"}}
    assert judge_wave(gates, hosts(9, 1), earlier_failed=2).verdict == "pass"
    result = judge_wave(gates, hosts(9, 1), earlier_failed=3)
    assert result.verdict == "fail"
    assert "4 hosts failed across waves" in " ".join(result.reasons)


def test_unfinished_hosts_count_as_failures() -> None:
    gates = {"max_failed_per_wave": {"value": 0, "unit": "count"}}
    assert judge_wave(gates, hosts(5), earlier_failed=0, unfinished=1).verdict == "fail"


def test_a_cpu_regression_over_the_threshold_fails_with_the_host_named() -> None:
    figures = hosts(3)
    figures[1].deltas["cpu_points"] = 31.5
    result = judge_wave({"regression": {"cpu_points": 20}}, figures, earlier_failed=0)
    assert result.verdict == "fail"
    assert "h1 (+31.5 points)" in result.reasons[0]
    assert result.numbers["regressions"]["cpu_points"]["over"] == 1


def test_missing_figures_make_the_wave_inconclusive_never_a_pass() -> None:
    result = judge_wave({}, hosts(3, mem_mb=None), earlier_failed=0)
    assert result.verdict == "inconclusive"
    assert "no pre/post figure for 3 host(s)" in result.reasons[0]


def test_a_metric_set_to_null_is_not_gated() -> None:
    assert judge_wave({"regression": {"mem_mb": None}}, hosts(3, mem_mb=None), earlier_failed=0).verdict == "pass"


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ({"nope": 1}, "unknown gate"),
        ({"max_failed_per_wave": {"value": -1, "unit": "count"}}, "≥ 0"),
        ({"max_failed_per_wave": {"value": 120, "unit": "pct"}}, "at most 100"),
        ({"max_failed_total": {"value": 1, "unit": "hosts"}}, "'count' or 'pct'"),
        ({"regression": {"gpu": 3}}, "unknown metric"),
        ({"regression": {"cpu_points": "high"}}, "number"),
    ],
)
def test_bad_gate_settings_are_refused_with_the_field(gates: dict, message: str) -> None:
    with pytest.raises(GateConfigError, match=message):
        normalize_gates(gates)
