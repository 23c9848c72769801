"""Fault specs: targets, values, shares of the fleet and errors."""

from __future__ import annotations

import pytest

from hosts.sim.faults import FaultSpecError, parse_host_faults, parse_spec


def test_a_spec_names_hosts_by_0_based_index_range_and_list() -> None:
    faults = parse_spec("unreachable:3,slow=2.5:4-6,auth:1+8", count=10)
    assert faults[3] == {"unreachable": True}
    assert [faults[i]["slow"] for i in (4, 5, 6)] == [2.5, 2.5, 2.5]
    assert faults[1] == {"auth": True} and faults[8] == {"auth": True}
    assert 0 not in faults and 7 not in faults


def test_a_fault_without_targets_applies_to_every_host() -> None:
    assert parse_spec("slow=0.1", count=3) == {0: {"slow": 0.1}, 1: {"slow": 0.1}, 2: {"slow": 0.1}}


def test_a_percentage_picks_a_stable_share_of_the_fleet() -> None:
    first = parse_spec("cpu-regression:5%", count=200, seed=3)
    assert len(first) == 10 and all(v == {"cpu-regression": 25.0} for v in first.values())
    assert parse_spec("cpu-regression:5%", count=200, seed=3) == first
    assert parse_spec("cpu-regression:5%", count=200, seed=4) != first


def test_indexes_beyond_the_fleet_are_ignored() -> None:
    assert parse_spec("hang:5-20", count=7) == {5: {"hang": True}, 6: {"hang": True}}


def test_defaults_and_vendors() -> None:
    faults = parse_spec("flood:0,disk-full:1,conflicting-av=mcafee:2,tls-inspection=zscaler:3", count=4)
    assert faults[0] == {"flood": 8.0} and faults[1] == {"disk-full": 98.0}
    assert faults[2] == {"conflicting-av": "mcafee"} and faults[3] == {"tls-inspection": "zscaler"}


@pytest.mark.parametrize(
    "spec",
    ["nosuch:1", "slow=fast:1", "auth=1:2", "hang:x", "hang:5-2", "conflicting-av=norton:1", "slow=-1"],
)
def test_bad_specs_are_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_spec(spec, count=10)


def test_one_hosts_faults_come_as_text_list_or_dict() -> None:
    assert parse_host_faults("slow=2,auth") == {"slow": 2.0, "auth": True}
    assert parse_host_faults(["hang"]) == {"hang": True}
    assert parse_host_faults({"disk-full": True, "auth": False, "slow": 3}) == {"disk-full": 98.0, "slow": 3.0}
    with pytest.raises(FaultSpecError):
        parse_host_faults("auth:3")
