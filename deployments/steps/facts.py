"""Step 1 — facts: distro, version, kernel, arch, cores, memory; the support-matrix verdict."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker
from hosts.ssh import CommandResult


class FactsStep(Step):
    """Reads os-release (or redhat-release on RHEL 6), uname, nproc, meminfo, hostname."""

    key = "facts"
    number = 1
    title = "Facts and support matrix"

    def command(self, ctx: StepContext) -> str:
        return join(
            marker("os-release"),
            "cat /etc/os-release 2>/dev/null",
            marker("redhat-release"),
            "cat /etc/redhat-release 2>/dev/null",
            marker("kernel"),
            "uname -r",
            marker("arch"),
            "uname -m",
            marker("nproc"),
            "nproc --all",
            marker("meminfo"),
            "cat /proc/meminfo",
            marker("hostname"),
            "hostname",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        raise NotImplementedError
