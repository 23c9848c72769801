"""Step 13 — platform update: the package manager sees the agent's updates in the repository."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import q
from deployments.steps.packages import package_manager, repo_id
from deployments.steps.repository import proxy_env
from hosts.ssh import CommandResult


class PlatformUpdateStep(Step):
    """``check-update`` exits 0 (up to date) or 100 (update available) when the repo answers; 1 on error.

    It only looks: updating here would break a version pin. The monthly cron job updates.
    """

    key = "platform_update"
    number = 13
    title = "Platform updates reachable"
    timeout = 300

    def command(self, ctx: StepContext) -> str:
        facts = ctx.data("facts")
        rid = repo_id(facts, ctx.profile.channel)
        return f"{proxy_env(ctx)}{package_manager(facts)} -q --enablerepo={q(rid)} check-update mdatp"

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        if result.exit_status == 0:
            return Outcome.ok("the repository answers; mdatp is up to date", update_available=False)
        if result.exit_status == 100:
            fields = next((ln.split() for ln in result.stdout.splitlines() if ln.startswith("mdatp")), [])
            available = fields[1] if len(fields) > 1 else "a newer mdatp"
            return Outcome.ok(
                f"the repository answers; an update is available: {available}",
                update_available=True,
                available=available,
            )
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return Outcome.failed(f"the package manager cannot check for agent updates: {detail[0]}")
