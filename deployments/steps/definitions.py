"""Step 14 — definitions update: `mdatp definitions update`, then the version it reports."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker
from hosts.ssh import CommandResult


class DefinitionsUpdateStep(Step):
    """Asks for a security-intelligence update and reads the definitions' version and status."""

    key = "definitions_update"
    number = 14
    title = "Security intelligence update"
    timeout = 600

    def command(self, ctx: StepContext) -> str:
        return join(
            "mdatp definitions update",
            marker("health"),
            "mdatp health --field definitions_version",
            "mdatp health --field definitions_status",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        update, _, fields = result.stdout.partition("@@health")
        lines = [ln.strip().strip('"') for ln in fields.splitlines() if ln.strip() and not ln.startswith("ATTENTION")]
        version = lines[0] if lines else ""
        status = lines[1] if len(lines) > 1 else ""
        if "success" not in update.lower():
            detail = (update.strip() or result.stderr.strip() or "no output").splitlines()[-1]
            return Outcome.failed(f"definitions update failed: {detail}", version=version, status=status)
        if status not in ("up_to_date", "updating"):
            return Outcome.warn(
                f"updated, but definitions status is {status or 'unknown'}", version=version, status=status
            )
        return Outcome.ok(f"definitions {version} ({status})", version=version, status=status)
