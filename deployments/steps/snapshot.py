"""Steps 5 and 16 (and ad-hoc) — resource snapshot: CPU over several intervals, load, memory, filesystems, processes.

The sampling plan (``ctx.cpu_samples`` readings of ``ctx.cpu_sample_seconds`` each) gives one CPU
busy % per interval; every sample is kept and the median is the figure the gates judge.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from deployments.steps.base import Outcome, Step, StepContext, sections
from deployments.steps.commands import join, marker
from deployments.steps.support import judge, no_output_reason
from hosts.parsers import (
    Process,
    cpu_busy_pct,
    parse_df,
    parse_df_inodes,
    parse_loadavg,
    parse_meminfo,
    parse_proc_stat_cpu,
    parse_ps,
)
from hosts.ssh import CommandResult

PS_FIELDS = "pid=,ppid=,user=,pcpu=,pmem=,rss=,vsz=,etime=,args="
# The agent's processes live under /opt/microsoft/mdatp; the bracket keeps grep from matching itself.
# crashpad_handler must start a word: Chrome's and Electron apps' chrome_crashpad_handler is not ours.
AGENT_PATTERN = "[/]opt/microsoft/mdatp/|[w]davdaemon|[t]elemetryd_v2|[m]datp_audisp_plugin|[ /][c]rashpad_handler"
# The keys of a process in Snapshot.top_processes / agent_processes.
PROCESS_KEYS = ("pid", "ppid", "user", "cpu_pct", "mem_pct", "rss_kb", "vsz_kb", "elapsed_s", "name", "args")


def process_record(process: Process) -> dict[str, Any]:
    """A parsed ps line in the shape the Snapshot model stores."""
    record: dict[str, Any] = dict(process)
    return {key: record[key] for key in PROCESS_KEYS}


def top_processes(by_cpu: list[Process], by_rss: list[Process]) -> list[dict[str, Any]]:
    """The union of the top-by-CPU and top-by-RSS lists, CPU first, each pid once."""
    seen: set[int] = set()
    merged: list[dict[str, Any]] = []
    for process in [*by_cpu, *by_rss]:
        if process["pid"] not in seen:
            seen.add(process["pid"])
            merged.append(process_record(process))
    return merged


def filesystems(df_text: str, dfi_text: str) -> list[dict[str, Any]]:
    """Every mounted filesystem once (bind mounts dropped), with its inode use joined by mount point."""
    inodes = {row["mount"]: row for row in parse_df_inodes(dfi_text)}
    merged: list[dict[str, Any]] = []
    for row in parse_df(df_text, with_type=True, dedupe=True):
        usage = inodes.get(row["mount"])
        merged.append(
            {
                **row,
                "inodes": usage["inodes"] if usage else None,
                "inodes_used": usage["inodes_used"] if usage else None,
                "inodes_use_pct": usage["inodes_use_pct"] if usage else None,
            }
        )
    return merged


def sample_plan(ctx: StepContext) -> tuple[int, int]:
    """(readings of CPU busy %, seconds each): one reading when the interval is zero (the benchmark)."""
    seconds = max(0, int(ctx.cpu_sample_seconds))
    samples = max(1, int(ctx.cpu_samples)) if seconds else 1
    return samples, seconds


def cpu_samples(parts: dict[str, str], interval: int) -> list[dict[str, Any]]:
    """CPU busy % between each consecutive pair of ``statN`` readings, in order (None where no time passed)."""
    readings = []
    index = 0
    while f"stat{index}" in parts:
        readings.append(parse_proc_stat_cpu(parts[f"stat{index}"]))
        index += 1
    samples = []
    for first, second in itertools.pairwise(readings):
        if first and second:
            samples.append({"interval_s": interval, "cpu_busy_pct": cpu_busy_pct(first, second)})
    return samples


def median_busy(samples: list[dict[str, Any]]) -> float | None:
    """The gated figure: the median of the samples that have one, so a single spike decides nothing."""
    values = [s["cpu_busy_pct"] for s in samples if s["cpu_busy_pct"] is not None]
    return round(statistics.median(values), 1) if values else None


class SnapshotStep(Step):
    """N+1 /proc/stat readings with sleeps between give N CPU busy % samples (median kept); the rest is read once."""

    key = "snapshot_pre"
    number = 5
    title = "Resource snapshot (pre)"
    blocking = False
    phase = "pre"

    def command(self, ctx: StepContext) -> str:
        samples, seconds = sample_plan(ctx)
        readings: list[str] = [marker("stat0"), "head -n 1 /proc/stat"]
        for index in range(1, samples + 1):
            readings += [f"sleep {seconds}", marker(f"stat{index}"), "head -n 1 /proc/stat"]
        return join(
            *readings,
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
        # The compound command's exit status is grep's (1 when the agent is not running): not judged.
        missing = no_output_reason(result)
        if missing:
            return Outcome.failed(missing)
        parts = sections(result.stdout)
        absent: list[str] = []
        warnings: list[str] = []

        interval = max(0, int(ctx.cpu_sample_seconds))
        samples = cpu_samples(parts, interval)
        busy = median_busy(samples)
        if not samples:
            absent.append("CPU counters (/proc/stat)")
        elif busy is None:
            warnings.append("CPU busy % could not be computed: the counters did not move between readings")

        load = parse_loadavg(parts.get("loadavg", ""))
        if load is None:
            absent.append("load average")
        memory = parse_meminfo(parts.get("meminfo", ""))
        if memory["total_mb"] is None:
            absent.append("memory (/proc/meminfo)")
        mounts = filesystems(parts.get("df", ""), parts.get("dfi", ""))
        if not mounts:
            absent.append("filesystems (df)")
        elif all(fs["inodes"] is None for fs in mounts):
            absent.append("inode use (df -i)")
        by_cpu = parse_ps(parts.get("ps-cpu", ""))
        by_rss = parse_ps(parts.get("ps-rss", ""))
        if not by_cpu and not by_rss:
            absent.append("processes (ps)")
        if "agent" not in parts:
            absent.append("agent processes")
        agent = [process_record(p) for p in parse_ps(parts.get("agent", ""))]
        if self.phase == "post" and "agent" in parts and not agent:
            warnings.append("no Defender process is running after the install")
        if absent:
            warnings.insert(0, "missing from the snapshot: " + ", ".join(absent))

        data: dict[str, Any] = {
            "cpu_busy_pct": busy,
            "load_1": load["load_1"] if load else None,
            "load_5": load["load_5"] if load else None,
            "load_15": load["load_15"] if load else None,
            "mem_total_mb": memory["total_mb"],
            "mem_used_mb": memory["used_mb"],
            "mem_available_mb": memory["available_mb"],
            "swap_total_mb": memory["swap_total_mb"],
            "swap_used_mb": memory["swap_used_mb"],
            "filesystems": mounts,
            "top_processes": top_processes(by_cpu, by_rss),
            "agent_processes": agent,
            "samples": samples,
        }
        # The summary is only shown when nothing is missing, so every figure in it is known.
        summary = "" if warnings else self._summary(data, interval)
        return judge([], warnings, summary, **data)

    def _summary(self, data: dict[str, Any], interval: int) -> str:
        """One line a person can read: CPU, load, memory, the fullest filesystem."""
        fullest = max(data["filesystems"], key=lambda fs: fs["use_pct"] or 0, default=None)
        samples = data["samples"]
        if len(samples) > 1:
            each = ", ".join("—" if s["cpu_busy_pct"] is None else f"{s['cpu_busy_pct']}" for s in samples)
            cpu = f"CPU {data['cpu_busy_pct']}% busy (median of {len(samples)} samples of {interval} s: {each})"
        else:
            cpu = f"CPU {data['cpu_busy_pct']}% busy over {interval} s"
        parts = [
            cpu,
            f"load {data['load_1']} / {data['load_5']} / {data['load_15']}",
            f"memory {data['mem_used_mb']:,.0f} of {data['mem_total_mb']:,.0f} MB used",
            f"{len(data['filesystems'])} filesystems",
        ]
        if fullest is not None:
            parts.append(f"fullest {fullest['mount']} at {fullest['use_pct']}%")
        parts.append(f"{len(data['agent_processes'])} Defender processes")
        return ", ".join(parts)


class PostSnapshotStep(SnapshotStep):
    """The same capture after the agent is in (step 16)."""

    key = "snapshot_post"
    number = 16
    title = "Resource snapshot (post)"
    phase = "post"


class AdhocSnapshotStep(SnapshotStep):
    """The same capture at any time: from the host page, the API or the periodic schedule."""

    key = "snapshot_adhoc"
    number = 5
    title = "Resource snapshot (ad hoc)"
    phase = "adhoc"
