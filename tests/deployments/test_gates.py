"""Gates: failures per wave and across waves, regressions, and inconclusive data."""

from __future__ import annotations

import pytest

from deployments.gates import GateConfigError, HostFigures, judge_wave, normalize_gates

CALM = {
    "cpu_points": 2.0,
    "mem_mb": 300.0,
    "mem_pct": 4.0,
    "agent_rss_mb": 420.0,
    "agent_cpu_pct": 1.0,
    "disk_mb": 900.0,
}


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


# --- rules in the manner of canary analysis -------------------------------------------------------


def with_cpu(values: list[float | None], base: float | None = 20.0) -> list[HostFigures]:
    return [
        HostFigures(i, f"h{i}", "ok", {**CALM, "cpu_points": v, "base": {"cpu_points": base}})
        for i, v in enumerate(values)
    ]


RULE = {"cpu_points": {"allowed": 5, "critical": 25}}


def test_a_host_past_the_critical_increase_fails_the_wave_with_its_number_and_the_spread() -> None:
    result = judge_wave({"regression": RULE}, with_cpu([1.0, 2.0, 30.0]), earlier_failed=0)
    assert result.verdict == "fail"
    assert "h2 (+30 points)" in result.reasons[0] and "wave median +2, p95 +30 points" in result.reasons[0]
    figures = result.numbers["regressions"]["cpu_points"]
    assert (figures["allowed"], figures["critical"], figures["over"], figures["median"]) == (5, 25, 1, 2.0)


def test_the_wave_median_past_the_allowed_increase_fails_though_no_host_is_critical() -> None:
    result = judge_wave({"regression": RULE}, with_cpu([6.0, 7.0, 8.0, 1.0, 9.0]), earlier_failed=0)
    assert result.verdict == "fail"
    assert "the wave's median host rose by +7 points, more than the 5 allowed" in result.reasons[0]
    checks = {c["check"]: c for c in result.numbers["regressions"]["cpu_points"]["checks"]}
    assert checks["median"] == {"check": "median", "value": 7.0, "limit": 5, "outcome": "fail"}
    assert checks["host"]["outcome"] == "pass"


def test_a_p95_past_the_allowed_increase_alone_is_a_marginal_pass_said_in_words() -> None:
    values = [1.0] * 18 + [12.0, 12.0]  # median 1; p95 of 20 values is the 19th: 12
    result = judge_wave({"regression": RULE}, with_cpu(values), earlier_failed=0)
    assert result.verdict == "pass"
    assert result.numbers["regressions"]["cpu_points"]["marginal"] == 2
    assert any("marginal" in note and "p95 +12 points" in note for note in result.notes)


def test_a_relative_rule_judges_the_change_in_percent_of_the_pre_figure() -> None:
    gates = {"regression": {"cpu_points": {"critical": 100, "relative": True}}}
    assert judge_wave(gates, with_cpu([15.0], base=20.0), earlier_failed=0).verdict == "pass"  # +75 %
    result = judge_wave(gates, with_cpu([25.0], base=20.0), earlier_failed=0)  # +125 %
    assert result.verdict == "fail" and "h0 (+125 %)" in result.reasons[0]


def test_a_relative_rule_without_a_pre_figure_is_inconclusive_never_a_pass() -> None:
    gates = {"regression": {"cpu_points": {"critical": 100, "relative": True}}}
    result = judge_wave(gates, with_cpu([1.0], base=None), earlier_failed=0)
    assert result.verdict == "inconclusive"
    assert "no pre figure to take a % of" in result.reasons[0]


def test_the_earlier_waves_are_the_baseline_for_a_margin_on_the_median() -> None:
    gates = {"regression": {"cpu_points": {"critical": 25, "baseline": 3}}}
    earlier = with_cpu([1.0, 2.0, 2.0])
    assert judge_wave(gates, with_cpu([4.0, 4.0, 5.0]), earlier_failed=0, baseline=earlier).verdict == "pass"
    result = judge_wave(gates, with_cpu([6.0, 7.0, 9.0]), earlier_failed=0, baseline=earlier)
    assert result.verdict == "fail"
    assert "+5 over the earlier waves' median +2 (margin 3)" in result.reasons[0]
    assert result.numbers["regressions"]["cpu_points"]["baseline"]["median"] == 2.0


def test_a_wave_whose_hosts_all_failed_within_the_budget_is_not_a_pass() -> None:
    gates = {"max_failed_per_wave": {"value": 100, "unit": "pct"}, "max_failed_total": {"value": 100, "unit": "pct"}}
    assert judge_wave(gates, hosts(0, 2), earlier_failed=0).verdict == "inconclusive"


def test_the_number_form_and_the_rule_form_are_both_accepted_and_stored_unchanged() -> None:
    gates = normalize_gates({"regression": {"cpu_points": 30, "mem_mb": {"allowed": 200, "critical": 1500}}})
    assert gates["regression"]["cpu_points"] == 30
    assert gates["regression"]["mem_mb"] == {"allowed": 200, "critical": 1500, "relative": False, "baseline": None}
    assert normalize_gates(gates) == gates  # stored gates normalize to themselves


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"allowed": 30, "critical": 10}, "allowed must not be above critical"),
        ({}, "needs an allowed or a critical"),
        ({"critical": 10, "ratio": 2}, "unknown"),
        ({"critical": 10, "relative": "yes"}, "true or false"),
    ],
)
def test_bad_rules_are_refused_with_the_field(rule: dict, message: str) -> None:
    with pytest.raises(GateConfigError, match=message):
        normalize_gates({"regression": {"cpu_points": rule}})


def test_a_relative_rule_on_a_metric_without_a_pre_figure_is_refused() -> None:
    with pytest.raises(GateConfigError, match="no pre figure"):
        normalize_gates({"regression": {"agent_rss_mb": {"critical": 10, "relative": True}}})


@pytest.mark.django_db
def test_the_state_machine_judges_a_wave_against_the_earlier_waves_median() -> None:
    """The rollout's own earlier waves are the baseline: wave 2 drifts 12 points over wave 1's median."""
    from django.utils import timezone

    from deployments.choices import HostRunStatus, RolloutStatus, WaveStatus
    from deployments.models import HostRun, Rollout, StepResult, Wave
    from deployments.services.rollouts import _judge
    from tests.factories import ProfileFactory, eligible_hosts

    gates = {"regression": {"cpu_points": {"allowed": 30, "critical": 60, "baseline": 5}}}
    rollout = Rollout.objects.create(
        name="drift", profile=ProfileFactory(), status=RolloutStatus.RUNNING, wave_plan=["3", "100%"], gates=gates
    )
    first = Wave.objects.create(rollout=rollout, index=0, planned_size=3, status=WaveStatus.PASSED)
    second = Wave.objects.create(rollout=rollout, index=1, planned_size=3, status=WaveStatus.RUNNING)
    hosts = eligible_hosts(6)
    for i, host in enumerate(hosts):
        run = HostRun.objects.create(
            rollout=rollout, wave=first if i < 3 else second, host=host, status=HostRunStatus.OK
        )
        cpu = 2.0 if i < 3 else 14.0  # well under the allowed 30, but 12 over the earlier median
        StepResult.objects.create(
            host_run=run,
            step="compare",
            status="ok",
            parsed={"deltas": {"cpu_points": cpu}},
            finished_at=timezone.now(),
        )
    _judge(rollout, second, timezone.now())
    second.refresh_from_db()
    assert second.gate_verdict == "fail", second.gate_report
    assert "earlier waves" in " ".join(second.gate_report["reasons"])
    assert rollout.status == RolloutStatus.HALTED
