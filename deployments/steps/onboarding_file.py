"""Step 7 — onboarding: deliver the tenant's onboarding package (JSON file, or run the script)."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, q
from deployments.steps.files import atomic_write, landed, sha256
from hosts.ssh import CommandResult

MDATP_ETC = "/etc/opt/microsoft/mdatp"
ONBOARD_JSON = f"{MDATP_ETC}/mdatp_onboard.json"
OFFBOARD_JSON = f"{MDATP_ETC}/mdatp_offboard.json"
SCRIPT_PATH = f"{MDATP_ETC}/.mdefleet_onboarding.py"
# Interpreters tried in turn: python3 (RHEL 9), the platform Python (RHEL 8 family), python (RHEL 7).
PYTHONS = ("python3", "/usr/libexec/platform-python", "python")


class OnboardingStep(Step):
    """JSON packages are written atomically (0600 root); script packages are run then removed."""

    key = "onboarding"
    number = 7
    title = "Onboarding package"

    def stdin(self, ctx: StepContext) -> str | None:
        return ctx.profile.onboarding

    def command(self, ctx: StepContext) -> str:
        # A leftover offboarding file would keep the device offboarded (MDE-FACTS §6).
        clear = f"rm -f {q(OFFBOARD_JSON)}"
        if ctx.profile.onboarding_kind == "json":
            return join(clear, atomic_write(ONBOARD_JSON, mode="0600"))
        script = q(SCRIPT_PATH)
        # RHEL 8 family minimal installs have no python3 command, only the platform Python dnf uses.
        run = " || ".join(f"{python} {script}" for python in PYTHONS)
        return join(
            clear,
            atomic_write(SCRIPT_PATH, mode="0700"),
            f"({run}) >/dev/null 2>&1; rm -f {script}",
            f"test -s {q(ONBOARD_JSON)} && echo 'onboarding file present'",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        if ctx.profile.onboarding_kind == "json":
            if landed(result.stdout, sha256(ctx.profile.onboarding)):
                return Outcome.ok(f"{ONBOARD_JSON} written (0600 root:root)", path=ONBOARD_JSON)
            return Outcome.failed(f"the onboarding file did not land intact: {result.stderr.strip()[:200]}")
        if "onboarding file present" in result.stdout:
            return Outcome.ok(f"onboarding script ran; {ONBOARD_JSON} present", path=ONBOARD_JSON)
        return Outcome.failed(
            f"the onboarding script did not produce {ONBOARD_JSON} "
            "(is python3, /usr/libexec/platform-python or python installed?)"
        )
