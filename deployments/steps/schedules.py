"""Step 9 — schedules: the scheduled-scan and agent-update cron jobs in /etc/cron.d/mdatp."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import q
from deployments.steps.files import atomic_write, landed, sha256
from hosts.choices import StepStatus
from hosts.ssh import CommandResult

CRON_FILE = "/etc/cron.d/mdatp"


class SchedulesStep(Step):
    """Writes the cron file (0644 root), or removes ours when the profile has no schedule."""

    key = "schedules"
    number = 9
    title = "Scheduled scan and update jobs"

    def stdin(self, ctx: StepContext) -> str | None:
        return ctx.profile.cron_file or None

    def command(self, ctx: StepContext) -> str:
        if not ctx.profile.cron_file:
            return f"rm -f {q(CRON_FILE)} && echo 'no schedule in the profile'"
        return atomic_write(CRON_FILE, mode="0644")

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        if not ctx.profile.cron_file:
            return Outcome(StepStatus.SKIPPED, "the profile schedules no scan or update")
        if landed(result.stdout, sha256(ctx.profile.cron_file)):
            return Outcome.ok(f"{CRON_FILE} written", path=CRON_FILE, lines=ctx.profile.cron_file.count("\n"))
        return Outcome.failed(f"the cron file did not land intact: {result.stderr.strip()[:200]}")
