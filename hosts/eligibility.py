"""Whether a host may receive the agent, judged from its discovery steps' outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hosts.choices import Eligibility, StepStatus

if TYPE_CHECKING:
    from deployments.steps.base import Outcome

# The steps whose verdict decides eligibility; each must have run.
JUDGING_STEPS = ("facts", "requirements", "conflicts", "network")
# Non-blocking captures: their failure is reported, it does not make the agent unsafe to install.
ADVISORY_STEPS = frozenset({"snapshot_pre", "snapshot_post"})


def eligibility_from(outcomes: dict[str, Outcome]) -> tuple[str, list[str]]:
    """("eligible" | "ineligible", reasons): failed reasons first, then warnings prefixed "warning:"."""
    failed: list[str] = []
    warned: list[str] = []
    for key, outcome in outcomes.items():
        # Any failure blocks, including outcomes of steps outside the catalogue ("connect").
        if outcome.status == StepStatus.FAILED and key not in ADVISORY_STEPS:
            failed.append(outcome.reason or f"{key} failed")
        elif outcome.status in (StepStatus.FAILED, StepStatus.WARN):
            warned.append(f"warning: {outcome.reason or key + ' ' + outcome.status}")
    if not failed:
        # Without a failure to explain it, a judging step that never ran leaves the host unjudged.
        failed = [f"{key} did not run" for key in JUDGING_STEPS if key not in outcomes]
    status = Eligibility.INELIGIBLE if failed else Eligibility.ELIGIBLE
    return str(status.value), failed + warned
