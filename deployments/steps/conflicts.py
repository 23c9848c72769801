"""Step 3 — conflicts: other antivirus holding fanotify, known conflicting services, AV processes."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker
from hosts.ssh import CommandResult

# Services the official installer refuses to install beside (mde_installer.sh v0.8.4).
CONFLICTING_SERVICES = ["ds_agent", "cbsensor", "MFEcma"]


class ConflictsStep(Step):
    """Finds fanotify holders the way the installer does, plus active AV services and processes."""

    key = "conflicts"
    number = 3
    title = "Conflicting antivirus"

    def command(self, ctx: StepContext) -> str:
        return join(
            marker("fanotify"),
            "grep -l 'fanotify mnt_id' /proc/[0-9]*/fdinfo/* 2>/dev/null",
            marker("services"),
            "systemctl is-active " + " ".join(CONFLICTING_SERVICES) + " 2>/dev/null",
            marker("ps"),
            "ps -eo pid=,args=",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        raise NotImplementedError
