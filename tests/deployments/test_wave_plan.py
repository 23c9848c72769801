"""Wave plans: sizes, cumulative percentages, and refusals with the entry at fault."""

from __future__ import annotations

import pytest

from deployments.planning import PlanError, parse_plan, plan_sizes


def test_a_canary_then_cumulative_percentages_covers_every_host_once() -> None:
    assert plan_sizes(["1", "5%", "25%", "100%"], 1000) == [1, 49, 200, 750]
    assert sum(plan_sizes(["1", "5%", "25%", "100%"], 50)) == 50


def test_small_fleets_drop_empty_waves() -> None:
    assert plan_sizes(["1", "5%", "25%", "100%"], 3) == [1, 2]
    assert plan_sizes(["1", "5%", "100%"], 1) == [1]


def test_the_last_wave_takes_the_rest_when_the_plan_stops_short() -> None:
    assert plan_sizes(["2", "3"], 10) == [2, 8]


def test_counts_are_wave_sizes_not_cumulative() -> None:
    assert plan_sizes(["10", "10", "100%"], 50) == [10, 10, 30]


def test_a_plan_given_as_text_is_parsed() -> None:
    assert parse_plan("1, 5%, 25% ,100%") == ["1", "5%", "25%", "100%"]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("", "empty"),
        ("1, abc", "wave 2: 'abc' is neither"),
        ("0", "at least 1"),
        ("1.5", "whole number"),
        ("50%, 10%", "must grow"),
        ("150%", "at most 100%"),
        ("0%", "above 0%"),
    ],
)
def test_a_bad_plan_is_refused_with_the_entry_at_fault(plan: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(plan)
