"""High-CPU diagnosis (the seed's investigation): which Defender process and thread is hot, and why.

One compound command reads, on the host:

- the agent's processes (``ps``) and their threads (``ps -eLo pid,lwp,pcpu,comm,args``: the seed's
  ``ps -T`` per process, for every agent process at once);
- the busiest processes of the host (the application that makes the agent work);
- ``mdatp health --field real_time_protection_enabled`` and ``supplementary_events_subsystem``;
- ``mdatp diagnostic real-time-protection-statistics``: which processes trigger the most scans
  (PERF), as the sorted ``--top`` text and as ``--output json`` (both key spellings accepted, as the
  mdatp-xplat ``high_cpu_parser.py`` does).

The outcome carries the parsed figures and suggested next steps from the seed and PERF: exclusions
for the busy application's processes and paths (global scope when the EDR side is hot), the AuditD
note for ``mdatp_audisp_plugin``, and the support path (client analyzer, ``mdatp diagnostic create``).
Nothing on the host is changed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from deployments.steps.base import Outcome, Step, StepContext, sections
from deployments.steps.commands import join, marker, q
from deployments.steps.snapshot import AGENT_PATTERN, PS_FIELDS
from deployments.steps.support import no_output_reason
from hosts.parsers import parse_ps, process_name
from hosts.ssh import CommandResult

# The agent counts as hot from this much CPU (percent of one CPU, all its processes together).
HOT_AGENT_PCT = 25.0
TOP_THREADS = 10
TOP_SOURCES = 10
TOP_APPS = 5
STATS_TOP = 20

_STATS_BLOCK = re.compile(
    r"Process id:\s*(?P<id>\d+)\s*\n\s*Name:\s*(?P<name>.*?)\s*\n\s*Path:\s*\"?(?P<path>.*?)\"?\s*\n"
    r"\s*Total files scanned:\s*\"?(?P<files>\d+)\"?\s*\n\s*Scan time \(ns\):\s*\"?(?P<ns>\d+)\"?",
)
# Application data directories named on their command lines (seed 004's noisy applications).
_APP_DIRS = (
    ("postgres", re.compile(r"(?:^|\s)-D\s*(/\S+)")),
    ("postmaster", re.compile(r"(?:^|\s)-D\s*(/\S+)")),
    ("java", re.compile(r"-DJENKINS_HOME=(/\S+)")),
    ("java", re.compile(r"-Dcatalina\.base=(/\S+)")),
    ("java", re.compile(r"-Djira\.home=(/\S+)")),
)
_KNOWN_DIRS = {"jenkins.war": "/var/lib/jenkins", "oracle": "/u01/app/oracle/oradata"}


def agent_label(record: dict[str, Any]) -> str:
    """``wdavdaemon edr``, ``wdavdaemon unprivileged``, ``wdavdaemon`` (FANotify), ``telemetryd_v2``..."""
    return f"{record['name']} {record['role']}".strip()


def parse_threads(text: str, agent: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """``ps -eLo pid=,lwp=,pcpu=,comm=,args=`` lines of the agent's processes → threads, hottest first.

    A thread's name may hold spaces, so the process's known command line is cut off the end.
    """
    threads: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        pid, tid = int(parts[0]), int(parts[1])
        if pid not in agent:
            continue
        try:
            cpu = float(parts[2])
        except ValueError:
            continue
        rest = parts[3].rstrip()
        args = agent[pid]["args"]
        name = rest[: -len(args)].strip() if args and rest.endswith(args) else rest.split()[0]
        threads.append({"pid": pid, "tid": tid, "cpu_pct": cpu, "name": name, "process": agent[pid]["label"]})
    threads.sort(key=lambda t: (-t["cpu_pct"], t["tid"]))
    return threads


def _int(value: Any) -> int:
    try:
        return int(str(value).strip().strip('"'))
    except ValueError:
        return 0


def parse_rtp_statistics(text: str) -> list[dict[str, Any]] | None:
    """``real-time-protection-statistics`` (JSON ``counters`` or the ``--sort`` text blocks) → sources, busiest first.

    None when the text holds neither form (an error, an old agent without the command).
    """
    start = text.find("{")
    counters: list[dict[str, Any]] | None = None
    if start >= 0:
        try:
            document = json.loads(text[start:])
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("counters"), list):
            counters = []
            for item in document["counters"]:
                if not isinstance(item, dict):
                    continue
                files = item.get("totalFilesScanned", item.get("total_files_scanned"))
                scan_ns = item.get("totalScanTime", item.get("total_scan_time", item.get("scan_time_ns")))
                counters.append(
                    {
                        "pid": _int(item.get("id")),
                        "name": str(item.get("name") or ""),
                        "path": str(item.get("path") or ""),
                        "files_scanned": _int(files),
                        "scan_time_ms": round(_int(scan_ns) / 1_000_000, 1),
                        "max_file_scan_ms": round(_int(item.get("maxFileScanTime")) / 1_000_000, 1),
                    }
                )
    if counters is None:
        blocks = list(_STATS_BLOCK.finditer(text))
        if not blocks and "Process id:" not in text and "=====" not in text:
            return None
        counters = [
            {
                "pid": int(m["id"]),
                "name": m["name"],
                "path": m["path"],
                "files_scanned": int(m["files"]),
                "scan_time_ms": round(int(m["ns"]) / 1_000_000, 1),
                "max_file_scan_ms": None,
            }
            for m in blocks
        ]
    counters = [c for c in counters if c["files_scanned"] > 0]
    counters.sort(key=lambda c: (-c["files_scanned"], c["pid"]))
    return counters


def _last_value(text: str) -> str:
    """The value of ``mdatp health --field X`` (the line after an ATTENTION banner, unquoted)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("ATTENTION")]
    return lines[-1].strip('"') if lines else ""


def app_data_dirs(args: str) -> list[str]:
    """Data directories a known noisy application names on its command line (PostgreSQL -D, JENKINS_HOME...)."""
    name = process_name(args)[0]
    found: list[str] = []
    for app, pattern in _APP_DIRS:
        if name == app:
            found += pattern.findall(args)
    if not found:
        found += [directory for needle, directory in _KNOWN_DIRS.items() if needle in args]
    return list(dict.fromkeys(found))


def advice_for(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Suggested next steps (text and the commands to consider), from the seed and PERF, most specific first."""
    steps: list[dict[str, Any]] = []
    hot = data.get("hot_process") or {}
    label = hot.get("label", "")
    edr = label == "wdavdaemon edr"
    scope = " --scope global" if edr else ""
    sources = data.get("event_sources") or []
    apps = data.get("busy_applications") or []
    # Processes to exclude: those triggering the most scans, else the host's busiest applications.
    paths = list(dict.fromkeys([s["path"] for s in sources[:3] if s.get("path")] or [a["exe"] for a in apps[:2]]))
    if hot and data.get("agent_hot"):
        thread = data.get("hot_thread") or {}
        where = f" (thread {thread['tid']} at {thread['cpu_pct']}%)" if thread else ""
        steps.append(
            {
                "text": f"{label} is the hot Defender process at {hot['cpu_pct']}% CPU{where}. "
                + {
                    "wdavdaemon unprivileged": "It is the antivirus engine: real-time scans of files other "
                    "processes open are the load.",
                    "wdavdaemon edr": "It is the EDR engine: the load comes from events (processes, files, "
                    "network) it records; antivirus exclusions alone do not reduce it, global ones do.",
                    "wdavdaemon": "It is the FANotify front end: every file access on monitored mounts passes it.",
                    "mdatp_audisp_plugin": "It reads the AuditD stream (see the AuditD note below).",
                }.get(label, "Compare with the host's busiest applications below."),
                "commands": [],
            }
        )
    if paths:
        commands = [f"mdatp exclusion process add --path {q(path)}{scope}" for path in paths]
        for app in apps[:2]:
            commands += [f"mdatp exclusion folder add --path {q(d)}{scope}" for d in app.get("data_dirs", [])]
        who = "trigger the most scans" if sources else "are the busiest on the host"
        steps.append(
            {
                "text": f"Exclude the busy application: {', '.join(paths)} {who}. Evaluate carefully that each "
                "is trusted before excluding it (Configure and validate exclusions for Defender on Linux).",
                "commands": list(dict.fromkeys(commands)),
            }
        )
    if data.get("rtp_enabled") is True and data.get("statistics") == "empty":
        steps.append(
            {
                "text": "Real-time protection statistics are empty: they are on by default only on the insider "
                "channels. Enable them, let the workload run, and diagnose again.",
                "commands": ["mdatp config real-time-protection-statistics --value enabled"],
            }
        )
    if data.get("rtp_enabled") is False:
        steps.append(
            {
                "text": "Real-time protection is off, so antivirus scans are not the load: the EDR side is. Find "
                "the noisy files and executables with hot event sources (log level debug) or eBPF statistics, "
                "then add global exclusions.",
                "commands": [
                    "mdatp log level set --level debug",
                    "mdatp diagnostic hot-event-sources executables",
                    "mdatp diagnostic hot-event-sources files",
                    "mdatp diagnostic ebpf-statistics",
                    "mdatp log level set --level info",
                ],
            }
        )
    audisp = next((p for p in data.get("agent_processes", []) if p["name"] == "mdatp_audisp_plugin"), None)
    if audisp is not None or data.get("events_subsystem") == "auditd":
        steps.append(
            {
                "text": "AuditD note: this agent takes its supplementary events from AuditD"
                + (f" (mdatp_audisp_plugin at {audisp['cpu_pct']}% CPU)" if audisp else "")
                + ". A large, fast-rotating /var/log/audit/audit.log makes mdatp_audisp_plugin hot: see "
                "'Troubleshoot AuditD performance issues' (rules in /etc/audit/rules.d/mdatp.rules, events "
                "keyed mdatp), or move to the eBPF provider.",
                "commands": ["mdatp config ebpf-supplementary-event-provider --value enabled"],
            }
        )
    if data.get("agent_hot"):
        steps.append(
            {
                "text": "If it stays hot: run the Microsoft Defender for Endpoint client analyzer, collect "
                "diagnostic data and open a support case with it.",
                "commands": ["mdatp diagnostic create"],
            }
        )
    return steps


class DiagnoseStep(Step):
    """The seed's high-CPU investigation: hot agent process and thread, hot event sources, advice."""

    key = "diagnose"
    number = 18
    title = "High-CPU diagnosis"
    blocking = False
    timeout = 90

    def command(self, ctx: StepContext) -> str:
        agent_ps = f"ps -eo {PS_FIELDS} | grep -E {q(AGENT_PATTERN)}"
        return join(
            marker("agent"),
            agent_ps,
            marker("threads"),
            f"ps -eLo pid=,lwp=,pcpu=,comm=,args= | grep -E {q(AGENT_PATTERN)}",
            marker("top"),
            f"ps -eo {PS_FIELDS} --sort=-pcpu | head -n 25",
            marker("rtp"),
            "mdatp health --field real_time_protection_enabled 2>&1",
            marker("events"),
            "mdatp health --field supplementary_events_subsystem 2>&1",
            marker("stats_top"),
            f"mdatp diagnostic real-time-protection-statistics --sort --top {STATS_TOP} 2>&1",
            # The JSON last: on a busy host it is long, and a cut must not lose the other sections.
            marker("stats"),
            "mdatp diagnostic real-time-protection-statistics --output json 2>&1",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        missing = no_output_reason(result)
        if missing:
            return Outcome.failed(missing)
        parts = sections(result.stdout)
        agent_rows = parse_ps(parts.get("agent", ""))
        agent = {p["pid"]: {**p, "label": agent_label(dict(p))} for p in agent_rows}
        threads = parse_threads(parts.get("threads", ""), agent)
        counts: dict[int, int] = {}
        for thread in threads:
            counts[thread["pid"]] = counts.get(thread["pid"], 0) + 1
        agent_processes = sorted(
            (
                {
                    "pid": p["pid"],
                    "name": p["name"],
                    "label": p["label"],
                    "user": p["user"],
                    "cpu_pct": p["cpu_pct"],
                    "rss_kb": p["rss_kb"],
                    "threads": counts.get(p["pid"], 0),
                }
                for p in agent.values()
            ),
            key=lambda p: (-p["cpu_pct"], p["pid"]),
        )
        agent_cpu = round(sum(p["cpu_pct"] for p in agent_processes), 1)
        hot = agent_processes[0] if agent_processes and agent_processes[0]["cpu_pct"] > 0 else None
        hot_threads = [t for t in threads if hot and t["pid"] == hot["pid"]]
        hot_thread = hot_threads[0] if hot_threads and hot_threads[0]["cpu_pct"] > 0 else None
        if hot_thread and hot:
            hot_thread = {**hot_thread, "share_pct": round(100 * hot_thread["cpu_pct"] / hot["cpu_pct"], 1)}

        busy = []
        for p in parse_ps(parts.get("top", "")):
            if p["pid"] in agent or p["args"].startswith("[") or p["name"] in ("ps", "grep", "head", "sh", "bash"):
                continue
            exe = p["args"].split()[0] if p["args"].startswith("/") else p["name"]
            busy.append(
                {
                    "pid": p["pid"],
                    "name": p["name"],
                    "user": p["user"],
                    "cpu_pct": p["cpu_pct"],
                    "exe": exe,
                    "args": p["args"][:300],
                    "data_dirs": app_data_dirs(p["args"]),
                }
            )
        busy = busy[:TOP_APPS]

        rtp_raw = _last_value(parts.get("rtp", ""))
        rtp_enabled = {"true": True, "false": False}.get(rtp_raw)
        events = _last_value(parts.get("events", "")) or None
        sources = parse_rtp_statistics(parts.get("stats", ""))
        if sources is None:
            sources = parse_rtp_statistics(parts.get("stats_top", ""))
        statistics = "unavailable" if sources is None else "ok" if sources else "empty"
        data: dict[str, Any] = {
            "agent_processes": agent_processes,
            "agent_cpu_pct": agent_cpu,
            "agent_hot": agent_cpu >= HOT_AGENT_PCT,
            "hot_threshold_pct": HOT_AGENT_PCT,
            "hot_process": hot,
            "hot_thread": hot_thread,
            "threads": threads[:TOP_THREADS],
            "busy_applications": busy,
            "rtp_enabled": rtp_enabled,
            "events_subsystem": events if events and " " not in events else None,
            "statistics": statistics,
            "event_sources": (sources or [])[:TOP_SOURCES],
            "files_scanned_total": sum(s["files_scanned"] for s in sources or []),
        }
        data["advice"] = advice_for(data)
        if not agent_processes:
            return Outcome.failed("no Defender process is running (is mdatp installed and started?)", **data)
        if not data["agent_hot"]:
            return Outcome.ok(
                f"Defender is not hot: its {len(agent_processes)} processes use {agent_cpu}% CPU together "
                f"(below {HOT_AGENT_PCT:g}%)",
                **data,
            )
        reason = f"Defender is hot: {agent_cpu}% CPU, most in {hot['label'] if hot else '?'}"
        if hot:
            reason += f" ({hot['cpu_pct']}%"
            reason += f", thread {hot_thread['tid']} at {hot_thread['cpu_pct']}%)" if hot_thread else ")"
        if sources:
            top = sources[0]
            reason += f"; most scans from {top['name']} ({top['path']}, {top['files_scanned']:,} files)"
        return Outcome.warn(reason[:500], **data)
