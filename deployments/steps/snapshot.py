"""Steps 5 and 16 — resource snapshot: CPU over an interval, load, memory, filesystems, processes."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker
from hosts.ssh import CommandResult

PS_FIELDS = "pid=,ppid=,user=,pcpu=,pmem=,rss=,vsz=,etime=,args="
# The agent's processes live under /opt/microsoft/mdatp; the bracket keeps grep from matching itself.
AGENT_PATTERN = "[/]opt/microsoft/mdatp/|[w]davdaemon|[t]elemetryd_v2|[m]datp_audisp_plugin|[c]rashpad_handler"


class SnapshotStep(Step):
    """Two /proc/stat readings around a sleep give CPU busy %; the rest is read once."""

    key = "snapshot_pre"
    number = 5
    title = "Resource snapshot (pre)"
    blocking = False
    phase = "pre"

    def command(self, ctx: StepContext) -> str:
        seconds = max(0, int(ctx.cpu_sample_seconds))
        return join(
            marker("stat0"),
            "head -n 1 /proc/stat",
            f"sleep {seconds}",
            marker("stat1"),
            "head -n 1 /proc/stat",
            marker("loadavg"),
            "cat /proc/loadavg",
            marker("meminfo"),
            "cat /proc/meminfo",
            marker("df"),
            "df -P -T -k -x devtmpfs -x squashfs -x overlay 2>/dev/null",
            marker("dfi"),
            "df -P -i -x devtmpfs -x squashfs -x overlay 2>/dev/null",
            marker("ps-cpu"),
            f"ps -eo {PS_FIELDS} --sort=-pcpu | head -n 25",
            marker("ps-rss"),
            f"ps -eo {PS_FIELDS} --sort=-rss | head -n 25",
            marker("agent"),
            f"ps -eo {PS_FIELDS} | grep -E '{AGENT_PATTERN}'",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        raise NotImplementedError


class PostSnapshotStep(SnapshotStep):
    """The same capture after the agent is in (step 16)."""

    key = "snapshot_post"
    number = 16
    title = "Resource snapshot (post)"
    phase = "post"
