"""Step 3 — conflicts: other antivirus holding fanotify, known conflicting services, AV processes."""

from __future__ import annotations

import re
from typing import Any

from deployments.steps.base import Outcome, Step, StepContext, sections
from deployments.steps.commands import join, marker
from deployments.steps.support import judge, no_output_reason
from hosts.parsers import parse_fanotify_holders, parse_ps_args, parse_systemctl_is_active, process_name
from hosts.ssh import CommandResult

# Services the official installer refuses to install beside (mde_installer.sh v0.8.4).
CONFLICTING_SERVICES = ["ds_agent", "cbsensor", "MFEcma"]
SERVICE_PRODUCTS = {
    "ds_agent": "Trend Micro Deep Security",
    "cbsensor": "VMware Carbon Black",
    "MFEcma": "McAfee/Trellix agent",
}

# What another antivirus must exclude so it does not scan Defender (seed checklist; MDE-FACTS §7).
MDATP_SBIN = "/opt/microsoft/mdatp/sbin/"
MDATP_PROCESSES = ["wdavdaemon", "crashpad_handler", "mdatp_audisp_plugin", "telemetryd_v2"]
MDATP_PROCESS_PATHS = [MDATP_SBIN + name for name in MDATP_PROCESSES]
MDATP_PATHS = ["/opt/microsoft/mdatp/", "/var/opt/microsoft/mdatp/", "/etc/opt/microsoft/mdatp/"]
EXCLUSIONS_FOR_OTHER_AV: dict[str, list[str]] = {"processes": MDATP_PROCESS_PATHS, "paths": MDATP_PATHS}
EXCLUSION_ADVICE = (
    f"add Defender's processes ({', '.join(MDATP_PROCESSES)} in {MDATP_SBIN}) "
    f"and paths ({', '.join(MDATP_PATHS)}) to its exclusions"
)

# Our own daemon holds fanotify once mdatp is installed: not a conflict.
OWN_FANOTIFY_HOLDER = MDATP_SBIN + "wdavdaemon"
# fanotify users Defender runs beside (PREREQ, Mar 2026), with what to watch.
TOLERATED_FANOTIFY_HOLDERS = {"fapolicyd": "supported beside Defender as long as `mdatp health` stays healthy"}

# Antivirus and EDR processes recognised by the basename of argv[0] (never by a substring of the
# command line: this step's own shell carries "ds_agent" in its arguments).
KNOWN_AV_PROCESSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), product)
    for pattern, product in (
        (r"^falcon-sensor$|^falcond$", "CrowdStrike Falcon"),
        (r"^sophos|^savd$|^savscand$", "Sophos"),
        (r"^clamd$|^clamonacc$", "ClamAV"),
        (r"^symcfgd$|^rtvscand$|^sisidsdaemon$|^sisamddaemon$", "Symantec Endpoint Protection"),
        (r"^esets|^oaeventd$", "ESET"),
        (r"^ds_agent$|^ds_am$", "Trend Micro Deep Security"),
        (r"^cbagentd$|^cbdaemon$|^cbsensor$", "VMware Carbon Black"),
        (r"^mfetpd$|^masvc$|^macmnsvc$|^isectpd$", "McAfee/Trellix"),
        (r"^bdsecd$", "Bitdefender"),
        (r"^kesl$|^klnagent$", "Kaspersky"),
        (r"^s1-agent$|^sentinelone", "SentinelOne"),
        (r"^cylancesvc$", "Cylance"),
    )
)
ACTIVE_STATES = {"active", "activating", "reloading"}


def known_av(name: str) -> str | None:
    """The product a process name belongs to, if it is a known antivirus."""
    return next((product for pattern, product in KNOWN_AV_PROCESSES if pattern.search(name)), None)


def is_own_agent(args: str) -> bool:
    """True for Defender's own processes (wdavdaemon and its helpers)."""
    return args.startswith("/opt/microsoft/mdatp/") or process_name(args)[0] == "wdavdaemon"


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
        missing = no_output_reason(result)
        if missing:
            return Outcome.failed(missing)
        parts = sections(result.stdout)
        failures: list[str] = []
        warnings: list[str] = []
        conflicting: list[dict[str, Any]] = []
        tolerated: list[dict[str, Any]] = []
        if "ps" not in parts or not parts["ps"].strip():
            warnings.append("could not list processes (ps)")
        if "fanotify" not in parts:
            warnings.append("could not look for fanotify holders")

        holders = parse_fanotify_holders(parts.get("fanotify", ""), parts.get("ps", ""))
        own_holds = False
        for holder in holders:
            pid, args = int(holder["pid"]), str(holder["args"])
            if not args:
                warnings.append(f"pid {pid} held fanotify but exited before it could be named: run discovery again")
            elif is_own_agent(args):
                own_holds = True
            elif tolerated_name := next((n for n in TOLERATED_FANOTIFY_HOLDERS if n in args), None):
                advice = TOLERATED_FANOTIFY_HOLDERS[tolerated_name]
                tolerated.append({"pid": pid, "args": args, "name": tolerated_name})
                warnings.append(f"{tolerated_name} uses fanotify (pid {pid}): {advice}")
            else:
                product = known_av(process_name(args)[0])
                conflicting.append({"kind": "fanotify", "pid": pid, "args": args, "product": product})
                failures.append(f"conflicting fanotify application: {args} — uninstall it or use passive mode")

        services = parse_systemctl_is_active(CONFLICTING_SERVICES, parts.get("services", ""))
        for service, state in services.items():
            if state in ACTIVE_STATES:
                product = SERVICE_PRODUCTS[service]
                conflicting.append({"kind": "service", "service": service, "state": state, "product": product})
                failures.append(
                    f"conflicting service {service} ({product}) is {state}: the installer refuses to run beside it"
                    " — uninstall it"
                )

        flagged_pids = {c["pid"] for c in conflicting if "pid" in c}
        flagged_products = {c["product"] for c in conflicting if c.get("product")}
        other_av: list[dict[str, Any]] = []
        for pid, args in parse_ps_args(parts.get("ps", "")).items():
            name = process_name(args)[0]
            product = known_av(name)
            if product and pid not in flagged_pids and product not in flagged_products:
                other_av.append({"pid": pid, "name": name, "product": product, "args": args})
        by_product: dict[str, list[str]] = {}
        for entry in other_av:
            by_product.setdefault(entry["product"], []).append(f"{entry['name']} pid {entry['pid']}")
        for product, seen in by_product.items():
            warnings.append(f"{product} is running ({', '.join(seen)}): {EXCLUSION_ADVICE}")

        data: dict[str, Any] = {
            "conflicting": conflicting,
            "other_av": other_av,
            "exclusions_for_other_av": {k: list(v) for k, v in EXCLUSIONS_FOR_OTHER_AV.items()} if other_av else {},
            "tolerated": tolerated,
            "fanotify_holders": holders,
            "agent_holds_fanotify": own_holds,
            "services": services,
        }
        return judge(failures, warnings, "no conflicting antivirus found", **data)
