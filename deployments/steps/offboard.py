"""The way back: offboard (the portal's offboarding JSON) and uninstall (the package manager).

Offboarding follows the documented JSON method: the package's ``mdatp_offboard.json`` goes to
/etc/opt/microsoft/mdatp/, after which the agent stops reporting and becomes unlicensed (the
package stays installed). Uninstalling removes the package with the host's package manager.
"""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker
from deployments.steps.files import atomic_write, landed, sha256
from deployments.steps.mdatp_output import parse_health
from deployments.steps.onboarding_file import OFFBOARD_JSON
from deployments.steps.packages import package_manager
from hosts.choices import StepStatus
from hosts.ssh import CommandResult


class OffboardStep(Step):
    """Writes mdatp_offboard.json (0600 root) from the offboarding package given with the job."""

    key = "offboard"
    number = 101
    title = "Deliver the offboarding package"

    def stdin(self, ctx: StepContext) -> str | None:
        return ctx.profile.offboarding

    def command(self, ctx: StepContext) -> str:
        return atomic_write(OFFBOARD_JSON, mode="0600")

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        if landed(result.stdout, sha256(ctx.profile.offboarding)):
            return Outcome.ok(f"{OFFBOARD_JSON} written", path=OFFBOARD_JSON)
        return Outcome.failed(f"the offboarding file did not land intact: {result.stderr.strip()[:200]}")


class OffboardVerifyStep(Step):
    """Polls ``mdatp health`` until the agent reports it is no longer licensed."""

    key = "offboard_verify"
    number = 102
    title = "Verify offboarding"
    attempts = 15  # the installer waits up to 150 s for licensed to turn false
    retry_delay = 10

    def command(self, ctx: StepContext) -> str:
        return "mdatp health"

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        health = parse_health(result.stdout)
        data = {k: health.get(k) for k in ("licensed", "healthy", "health_issues", "org_id", "app_version")}
        if result.exit_status == 127 or "licensed" not in health:
            return Outcome.failed("mdatp health gave no answer (is the agent installed?)", **data)
        if health.get("licensed") is False:
            return Outcome.ok("offboarded: the agent reports no licence", **data)
        return Outcome(StepStatus.FAILED, "still licensed after waiting for the offboarding", data, retry=True)


class UninstallStep(Step):
    """Removes the mdatp package when present (idempotent), and reports what is left."""

    key = "uninstall"
    number = 103
    title = "Uninstall mdatp"
    timeout = 600

    def command(self, ctx: StepContext) -> str:
        pm = package_manager(ctx.data("facts"))
        return join(
            # Two commands, not `a && b || c`: a failing remove must not read as "not installed".
            "rpm -q mdatp >/dev/null 2>&1 || echo 'mdatp is not installed'",
            f"rpm -q mdatp >/dev/null 2>&1 && {pm} -y remove mdatp",
            marker("rpm"),
            "rpm -q mdatp",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        before, _, rpm = result.stdout.partition("@@rpm")
        rpm = rpm.strip()
        if rpm.startswith("mdatp-"):
            lines = [ln for ln in (result.stdout + "\n" + result.stderr).splitlines() if ln.strip()]
            return Outcome.failed(f"mdatp is still installed ({rpm}): {' | '.join(lines[-3:-1])}")
        already = "mdatp is not installed" in before
        return Outcome.ok("mdatp was not installed" if already else "mdatp removed", removed=not already)
