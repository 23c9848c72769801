"""``mdatp``, the Defender command-line client (``/opt/microsoft/mdatp/sbin/wdavdaemonclient``).

Installed with the package (``agent.py``); every subcommand the rollout steps use answers in the
layout of MDE-FACTS §2: ``health`` (padded ``name : value`` lines, ``[managed]`` suffixes, the
ATTENTION banner while unlicensed, ``--field`` and ``--output json``), ``connectivity test``,
``definitions update``, ``config real-time-protection|passive-mode|proxy``, ``threat list``,
``scan custom|quick|full``, ``edr tag set``, ``log level set``, ``diagnostic
real-time-protection-statistics`` (PERF: the ``counters`` JSON, or the ``--sort --top N`` text blocks)
and ``version``.
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING

from hosts.sim import agent as agent_model
from hosts.sim.cmd_net import KNOWN_PROXIES
from hosts.sim.registry import Ctx, command

if TYPE_CHECKING:
    from hosts.sim.state import HostState

ENDPOINTS = [
    "https://cdn.x.cp.wd.microsoft.com/ping",
    "https://eu-cdn.x.cp.wd.microsoft.com/ping",
    "https://wu-cdn.x.cp.wd.microsoft.com/ping",
    "https://x.cp.wd.microsoft.com/api/report",
    "https://winatp-gw-cus.microsoft.com/test",
    "https://winatp-gw-eus.microsoft.com/test",
    "https://winatp-gw-weu.microsoft.com/test",
    "https://winatp-gw-neu.microsoft.com/test",
    "https://winatp-gw-ukw.microsoft.com/test",
    "https://winatp-gw-uks.microsoft.com/test",
    "https://eu-v20.events.data.microsoft.com/ping",
    "https://us-v20.events.data.microsoft.com/ping",
    "https://uk-v20.events.data.microsoft.com/ping",
    "https://v20.events.data.microsoft.com/ping",
]
_USAGE = (
    "mdatp <command> [<args>]\n\nThe most commonly used commands are:\n"
    "    config          Configure product settings\n"
    "    connectivity    Connectivity related actions\n"
    "    definitions     Definitions related actions\n"
    "    diagnostic      Diagnostic related actions\n"
    "    edr             EDR related actions\n"
    "    exclusion       Exclusion related actions\n"
    "    health          Display product health information\n"
    "    log             Logging related actions\n"
    "    scan            Scan related actions\n"
    "    threat          Threat related actions\n"
    "    version         Display product version\n"
)
UPDATED = "Configuration property updated.\n"


def _option(args: list[str], name: str) -> str | None:
    if name in args:
        index = args.index(name)
        return args[index + 1] if index + 1 < len(args) else ""
    for arg in args:
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@command("mdatp", when=lambda p: p.pkg == "rpm")
async def mdatp(ctx: Ctx) -> int:
    state = ctx.state
    args = list(ctx.args)
    if not args or args[0] in ("help", "--help", "-h"):
        ctx.out(_USAGE)
        return 0 if args else 1
    if args[0] == "version":
        ctx.out(f"Product version: {state.agent.version}\n")
        return 0
    if not agent_model.running(state):
        ctx.err("Could not connect to daemon -- is the mdatp service running? (try: systemctl start mdatp)\n")
        return 1
    org, _ = agent_model.onboarding(state)
    if org is None:
        ctx.out(agent_model.ATTENTION)
    group, rest = args[0], args[1:]
    handlers = {
        "health": _health,
        "connectivity": _connectivity,
        "definitions": _definitions,
        "config": _config,
        "threat": _threat,
        "scan": _scan,
        "edr": _edr,
        "log": _log,
        "diagnostic": _diagnostic,
    }
    handler = handlers.get(group)
    if handler is None:
        ctx.err(f"Unknown command: {group}\n{_USAGE}")
        return 1
    return await handler(ctx, rest)


# --- health ---------------------------------------------------------------------------------------


async def _health(ctx: Ctx, args: list[str]) -> int:
    fields = agent_model.health(ctx.state)
    wanted = _option(args, "--field")
    as_json = _option(args, "--output") == "json"
    if wanted is not None:
        match = next((f for f in fields if f[0] == wanted), None)
        if match is None:
            ctx.err(f"Unknown field: {wanted}\n")
            return 1
        value = agent_model.json_value(match[1]) if as_json else match[1]
        ctx.out((json.dumps(value) if as_json else agent_model.render_value(value)) + "\n")
        return 0
    if as_json:
        ctx.out(json.dumps({name: agent_model.json_value(value) for name, value, _ in fields}, indent=2) + "\n")
        return 0
    for name, value, managed in fields:
        ctx.out(f"{name:<44}: {agent_model.render_value(value)}{' [managed]' if managed else ''}\n")
    return 0


# --- connectivity ---------------------------------------------------------------------------------


def _connection_error(ctx: Ctx) -> str:
    """Why the daemon's HTTPS requests fail on this host (libcurl code and text), '' when they pass."""
    proxy = agent_model.proxy(ctx.state)
    faults = ctx.state.faults
    if proxy:
        host = proxy.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        if host not in KNOWN_PROXIES:
            return "curl error 5: Couldn't resolve proxy name"
    if faults.get("no-egress"):
        return "curl error 28: Timeout was reached"
    if faults.get("tls-reset"):
        return "curl error 35: SSL connect error"
    if "tls-inspection" in faults:
        return "curl error 60: SSL peer certificate or SSH remote key was not OK"
    return ""


async def _connectivity(ctx: Ctx, args: list[str]) -> int:
    if args[:1] != ["test"]:
        ctx.err("Usage: mdatp connectivity test\n")
        return 1
    error = _connection_error(ctx)
    for url in ENDPOINTS:
        await ctx.sleep(2.0 if "28" in error else 0.15)
        ctx.out(f"Testing connection with {url} ... {'[ERROR] ' + error if error else '[OK]'}\n")
    return 1 if error else 0


# --- definitions, config, edr, log ------------------------------------------------------------------


async def _definitions(ctx: Ctx, args: list[str]) -> int:
    if args[:1] != ["update"]:
        ctx.err("Usage: mdatp definitions update\n")
        return 1
    await ctx.sleep(4)
    error = _connection_error(ctx)
    if error:
        ctx.err(f"Definitions update failed: could not download the update package ({error})\n")
        return 1
    agent_model.update_definitions(ctx.state)
    ctx.out("Definitions updated successfully.\n")
    return 0


async def _config(ctx: Ctx, args: list[str]) -> int:
    local: dict[str, object] = ctx.state.agent.extra.setdefault("local", {})
    if not args:
        ctx.err("Usage: mdatp config <setting> --value <value>\n")
        return 1
    setting, value = args[0], _option(args, "--value")
    if setting == "proxy":
        if args[1:2] == ["clear"]:
            local.pop("proxy", None)
            ctx.out(UPDATED)
            return 0
        if args[1:2] != ["set"] or not value:
            ctx.err("Usage: mdatp config proxy set --value <http://host:port>\n")
            return 1
        local["proxy"] = value
        ctx.out(UPDATED)
        return 0
    if value not in ("enabled", "disabled"):
        ctx.err(f"Invalid value for {setting}: expected enabled or disabled\n")
        return 1
    if setting == "real-time-protection":
        local["real_time_protection"] = value == "enabled"
        if value == "enabled":
            local["passive_mode"] = False
    elif setting == "passive-mode":
        local["passive_mode"] = value == "enabled"
        if value == "enabled":
            local["real_time_protection"] = False
    elif setting in (
        "behavior-monitoring",
        "cloud",
        "cloud-diagnostic",
        "cloud-automatic-sample-submission",
        "real-time-protection-statistics",
    ):
        local[setting] = value == "enabled"
    else:
        ctx.err(f"Unknown setting: {setting}\n")
        return 1
    ctx.out(UPDATED)
    return 0


async def _edr(ctx: Ctx, args: list[str]) -> int:
    if args[:2] == ["tag", "set"] and _option(args, "--name") and _option(args, "--value") is not None:
        ctx.state.agent.extra.setdefault("tags", {})[_option(args, "--name")] = _option(args, "--value")
        ctx.out(UPDATED)
        return 0
    ctx.err("Usage: mdatp edr tag set --name GROUP --value <tag>\n")
    return 1


async def _log(ctx: Ctx, args: list[str]) -> int:
    if args[:2] == ["level", "set"] and _option(args, "--level"):
        ctx.out("Log level configured successfully\n")
        return 0
    ctx.err("Usage: mdatp log level set --level error|warning|info|verbose|debug\n")
    return 1


# --- threats and scans ------------------------------------------------------------------------------


async def _threat(ctx: Ctx, args: list[str]) -> int:
    if args[:1] != ["list"]:
        ctx.err("Usage: mdatp threat list\n")
        return 1
    threats = agent_model.threats(ctx.state)
    if _option(args, "--output") == "json":
        items = [
            {
                "threat": {"tracking_id": t.id, "name": t.name, "type": "virus"},
                "history": [{"key": t.status, "value": int(t.detected_at * 1000)}],
                "path": t.path,
            }
            for t in threats
        ]
        ctx.out(json.dumps({"threats": {"scans": [{"threats": items}]}}, indent=2) + "\n")
        return 0
    for threat in threats:
        moment = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(threat.detected_at))
        ctx.out(
            f'Id: "{threat.id}"\nName: {threat.name}\nType: "virus"\nDetection time: {moment}\n'
            f'Status: "{threat.status}"\nPath: "{threat.path}"\n\n'
        )
    return 0


async def _scan(ctx: Ctx, args: list[str]) -> int:
    kind = args[0] if args else ""
    if kind == "custom":
        path = _option(args, "--path")
        if not path:
            ctx.err("Usage: mdatp scan custom --path <path>\n")
            return 1
        if ctx.state.vfs.lookup(ctx.path(path)) is None:
            ctx.err(f"Path does not exist: {path}\n")
            return 1
        target = ctx.path(path)
    elif kind in ("quick", "full"):
        target = "/tmp" if kind == "quick" else "/home"
    else:
        ctx.err("Usage: mdatp scan quick|full|custom --path <path>\n")
        return 1
    await ctx.sleep(1.5)
    scanned, found = agent_model.scan(ctx.state, target)
    ctx.out(f"Scan has finished\n\t{scanned} file(s) scanned\n\t{found} threat(s) detected\n")
    return 0


# --- diagnostic ---------------------------------------------------------------------------------------

_DIAGNOSTIC_USAGE = "Usage: mdatp diagnostic real-time-protection-statistics [--output json] [--sort --top <n>]\n"
_RULE = "=" * 37 + "\n"


def statistics_enabled(state: HostState) -> bool:
    """Statistics are on by default on the insider channels (PERF); elsewhere after ``config ... --value enabled``."""
    agent = state.agent
    local = agent.extra.get("local", {})
    if "real-time-protection-statistics" in local:
        return bool(local["real-time-protection-statistics"])
    return agent.channel in ("insiders-fast", "dogfood")


def rtp_counters(state: HostState) -> list[dict[str, object]]:
    """Per-process scan counters since the agent started, as ``--output json`` lists them.

    Only gathered while real-time protection is on and statistics are enabled. Busy processes (the
    host's workload) trigger most scans; under the cpu-regression fault they trigger many times more,
    which is what makes the daemon hot.
    """
    if agent_model.enforcement(state)[0] != "real_time" or not statistics_enabled(state):
        return []
    minutes = max(1.0, (state.clock.now() - state.agent.installed_at) / 60)
    regression = "cpu-regression" in state.faults
    procs = [p for p in state.all_procs() if not p.kernel and "/opt/microsoft/mdatp/" not in p.args]
    exe_of = {p.comm: p.args.split()[0] for p in procs if p.args.startswith("/")}
    counters: list[dict[str, object]] = []
    for proc in procs:
        rng = random.Random(f"rtp:{proc.pid}")
        rate = rng.uniform(0.0, 2.0) + proc.pcpu * 6
        if regression and proc.pcpu >= 1.0:
            rate *= 40
        files = int(rate * minutes)
        if files <= 0:
            continue
        average_ns = int(rng.uniform(0.4, 12.0) * 1_000_000)
        path = proc.args.split()[0] if proc.args.startswith("/") else exe_of.get(proc.comm, f"/usr/sbin/{proc.comm}")
        counters.append(
            {
                "id": proc.pid,
                "isActive": True,
                "maxFileScanTime": str(int(average_ns * rng.uniform(3, 20))),
                "name": proc.comm,
                "path": path,
                "resourceScanTime": "0",
                "scannedFilePaths": None,
                "totalEventsSent": "0",
                "totalFilesScanned": str(files),
                "totalScanTime": str(files * average_ns),
            }
        )
    return counters


async def _diagnostic(ctx: Ctx, args: list[str]) -> int:
    if args[:1] != ["real-time-protection-statistics"]:
        ctx.err(_DIAGNOSTIC_USAGE)
        return 1
    await ctx.sleep(0.3)
    counters = rtp_counters(ctx.state)
    if "--sort" in args:
        counters.sort(key=lambda c: int(str(c["totalFilesScanned"])), reverse=True)
        top = _option(args, "--top")
        if top is not None:
            if not top.isdigit():
                ctx.err(_DIAGNOSTIC_USAGE)
                return 1
            counters = counters[: int(top)]
    if _option(args, "--output") == "json":
        ctx.out(json.dumps({"counters": counters}, indent=2, sort_keys=True) + "\n")
        return 0
    ctx.out(_RULE)
    for c in counters:
        ctx.out(
            f'Process id: {c["id"]}\nName: {c["name"]}\nPath: "{c["path"]}"\n'
            f'Total files scanned: {c["totalFilesScanned"]}\nScan time (ns): "{c["totalScanTime"]}"\n'
            f"Status: Active\n{_RULE}"
        )
    return 0
