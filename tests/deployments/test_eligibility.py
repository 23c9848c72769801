"""A host's eligibility follows from its discovery outcomes: failures block, warnings are listed."""

from __future__ import annotations

from deployments.steps.base import Outcome
from hosts.eligibility import eligibility_from


def all_ok() -> dict[str, Outcome]:
    return {key: Outcome.ok("fine") for key in ("facts", "requirements", "conflicts", "network", "snapshot_pre")}


def test_a_host_whose_steps_all_passed_is_eligible() -> None:
    assert eligibility_from(all_ok()) == ("eligible", [])


def test_a_host_with_warnings_stays_eligible_and_lists_them() -> None:
    outcomes = {**all_ok(), "requirements": Outcome.warn("1 CPU core: two are advised, four recommended")}

    assert eligibility_from(outcomes) == ("eligible", ["warning: 1 CPU core: two are advised, four recommended"])


def test_each_failed_judging_step_makes_the_host_ineligible_with_its_reason() -> None:
    outcomes = {
        **all_ok(),
        "facts": Outcome.failed("RHEL 6.10: no longer shipped"),
        "network": Outcome.failed("unreachable: https://x.cp.wd.microsoft.com/api/report"),
        "conflicts": Outcome.warn("fapolicyd uses fanotify"),
    }

    assert eligibility_from(outcomes) == (
        "ineligible",
        [
            "RHEL 6.10: no longer shipped",
            "unreachable: https://x.cp.wd.microsoft.com/api/report",
            "warning: fapolicyd uses fanotify",
        ],
    )


def test_an_unreachable_host_is_ineligible_with_the_connection_reason() -> None:
    outcomes = {"connect": Outcome.failed("connection refused by 10.0.0.5:22")}

    assert eligibility_from(outcomes) == ("ineligible", ["connection refused by 10.0.0.5:22"])


def test_a_failed_snapshot_is_reported_without_blocking_the_host() -> None:
    outcomes = {**all_ok(), "snapshot_pre": Outcome.failed("the command printed nothing (exit status 1)")}

    assert eligibility_from(outcomes) == ("eligible", ["warning: the command printed nothing (exit status 1)"])


def test_a_judging_step_that_never_ran_leaves_the_host_ineligible() -> None:
    outcomes = {"facts": Outcome.ok("fine"), "requirements": Outcome.ok("fine")}

    assert eligibility_from(outcomes) == ("ineligible", ["conflicts did not run", "network did not run"])


def test_nothing_run_is_not_eligible() -> None:
    assert eligibility_from({})[0] == "ineligible"
