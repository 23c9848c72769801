"""Step 2 — requirements: free disk, memory and cores against the documented minimums; fanotify."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker, q
from hosts.ssh import CommandResult


class RequirementsStep(Step):
    """Free space where the agent lives (/opt, /var), kernel fanotify options, SELinux mode, init."""

    key = "requirements"
    number = 2
    title = "System requirements"

    def command(self, ctx: StepContext) -> str:
        kernel = ctx.data("facts").get("kernel", "")
        return join(
            marker("df"),
            "df -P -k /opt /var /tmp",
            marker("kconfig"),
            # The kernel release comes from step 1's output: quoted like any remote value.
            f"grep -E '^CONFIG_FANOTIFY(_ACCESS_PERMISSIONS)?=' {q('/boot/config-' + kernel)} 2>/dev/null",
            marker("selinux"),
            "getenforce 2>/dev/null",
            marker("init"),
            "ps -p 1 -o comm=",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        raise NotImplementedError
