"""Step 8 — settings: deliver mdatp_managed.json to /etc/opt/microsoft/mdatp/managed/."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.files import atomic_write, landed, sha256
from hosts.ssh import CommandResult

MANAGED_JSON = "/etc/opt/microsoft/mdatp/managed/mdatp_managed.json"


class SettingsStep(Step):
    """The profile's managed settings (with carried-over exclusions), written atomically, 0644 root."""

    key = "settings"
    number = 8
    title = "Managed settings"

    def stdin(self, ctx: StepContext) -> str | None:
        return ctx.profile.managed_json

    def command(self, ctx: StepContext) -> str:
        return atomic_write(MANAGED_JSON, mode="0644")

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        digest = sha256(ctx.profile.managed_json)
        if landed(result.stdout, digest):
            return Outcome.ok(f"{MANAGED_JSON} written", path=MANAGED_JSON, sha256=digest)
        return Outcome.failed(f"mdatp_managed.json did not land intact: {result.stderr.strip()[:200]}")
