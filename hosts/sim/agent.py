"""Microsoft Defender for Endpoint on a simulated host: what the package, the daemon and its files do.

The rollout steps' commands drive this module: the package manager installs and removes the
agent (its files, user, service and processes), the onboarding file licenses it, the managed
settings file sets its modes, and files written with the EICAR string are quarantined (real-time
protection) or reported by a custom scan (passive and on-demand modes). ``mdatp`` itself
(``cmd_mdatp.py``) reads everything through :func:`health`.

Timing runs on the host's simulated clock: definitions are ``updating`` for ``SETTLE_SECONDS``
after the agent is onboarded, and a quarantine lands ``QUARANTINE_DELAY`` after the write. Due
events are applied by :func:`tick`, which the shell calls before every command.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import posixpath
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hosts.sim.cmd_net import EICAR
from hosts.sim.vfs import FSError

if TYPE_CHECKING:
    from hosts.sim.state import HostState

MDATP_ETC = "/etc/opt/microsoft/mdatp"
ONBOARD_JSON = f"{MDATP_ETC}/mdatp_onboard.json"
OFFBOARD_JSON = f"{MDATP_ETC}/mdatp_offboard.json"
MANAGED_JSON = f"{MDATP_ETC}/managed/mdatp_managed.json"
OPT = "/opt/microsoft/mdatp"
UNIT = "/usr/lib/systemd/system/mdatp.service"
INSTALL_LOG = "/var/log/microsoft/mdatp/install.log"

ATTENTION = "ATTENTION: No license found. Contact your administrator for help.\n"
THREAT_NAME = "Virus:DOS/EICAR_Test_File"
# Names under which allowedThreats lets EICAR through (the current one and the docs' older one).
EICAR_NAMES = {"virus:dos/eicar_test_file", "eicar-test-file (not a virus)"}
SETTLE_SECONDS = 20.0
QUARANTINE_DELAY = 0.6
RELEASE_RINGS = {"prod": "Production", "insiders-fast": "InsiderFast", "insiders-slow": "External"}
UNHEALTHY_ISSUE = "no active supplementary event provider"
PACKAGED_DEFINITIONS = 1650  # build number of the definitions shipped in the package (1.421.<n>.0)

_UNIT_TEXT = """[Unit]
Description=Microsoft Defender
After=network-online.target

[Service]
Type=simple
WorkingDirectory=/opt/microsoft/mdatp/sbin
ExecStart=/opt/microsoft/mdatp/sbin/wdavdaemon
NotifyAccess=main
LimitNOFILE=65536
Restart=always
StartLimitInterval=120
StartLimitBurst=3
Environment=MALLOC_ARENA_MAX=2 ENABLE_CRASHPAD=1

[Install]
WantedBy=multi-user.target
"""


@dataclass
class Threat:
    """One detection as ``mdatp threat list`` shows it."""

    id: str
    name: str
    path: str
    detected_at: float
    status: str  # quarantined | detected


# --- install and remove ---------------------------------------------------------------------------


def install(state: HostState, version: str, channel: str) -> None:
    """The package's payload and postinstall: files, user, service, processes (via the machine)."""
    vfs, now, agent = state.vfs, state.clock.now(), state.agent
    for directory in (
        f"{OPT}/sbin",
        f"{OPT}/conf",
        f"{OPT}/lib",
        "/var/opt/microsoft/mdatp/crash",
        "/var/opt/microsoft/mdatp/quarantine",
        "/var/log/microsoft/mdatp",
        f"{MDATP_ETC}/managed",
    ):
        vfs.add_dir(directory, 0o755)
    for name in ("wdavdaemon", "wdavdaemonclient", "telemetryd_v2", "crashpad_handler", "mdatp_audisp_plugin"):
        vfs.add_file(f"{OPT}/sbin/{name}", "\x7fELF\x02\x01\x01\x00", 0o755)
    vfs.add_file(f"{OPT}/conf/mdatp.service", _UNIT_TEXT)
    vfs.add_file(UNIT, _UNIT_TEXT)
    vfs.add_file("/etc/opt/microsoft/mdatp/logrorate.sh", "#!/bin/sh\n", 0o755)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    vfs.add_file(
        INSTALL_LOG,
        f"[{stamp}] preinstall start\nRelease ring: {RELEASE_RINGS.get(channel, 'Dogfood')}\n"
        f"Machine Guid: {machine_guid(state)}\n[{stamp}] postinstall end\n",
        0o600,
    )
    agent.installed = True
    agent.version = version
    agent.channel = channel
    agent.installed_at = now
    agent.extra["definitions"] = PACKAGED_DEFINITIONS
    agent.extra["definitions_at"] = now - 3 * 86400
    agent.extra.setdefault("local", {})


def remove(state: HostState) -> None:
    """``rpm -e mdatp``: the payload goes, configuration under /etc/opt stays (as rpm leaves it)."""
    vfs, root = state.vfs, state.cred("root")
    for path in (OPT, "/var/opt/microsoft/mdatp", "/var/log/microsoft/mdatp", UNIT):
        if vfs.lookup(path) is not None:
            vfs.remove(path, root, recursive=True)
    state.agent.installed = False
    state.agent.version = ""
    state.agent.installed_at = 0.0


# --- identity -------------------------------------------------------------------------------------


def machine_guid(state: HostState) -> str:
    text = hashlib.blake2b(f"{state.spec.seed}:{state.spec.index}:mdatp-guid".encode(), digest_size=16).hexdigest()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def edr_machine_id(state: HostState, org_id: str) -> str:
    return hashlib.sha1(f"{machine_guid(state)}:{org_id}".encode()).hexdigest()  # noqa: S324 - an id, not security


# --- reading the agent's files --------------------------------------------------------------------


def _read(state: HostState, path: str) -> str | None:
    try:
        return state.vfs.read(path, state.cred("root"))
    except FSError:
        return None


def org_id_of(text: str) -> str | None:
    """The orgId inside an mdatp_onboard.json text (onboardingInfo → body → orgId), None if unreadable."""
    try:
        outer = json.loads(text)
        info = outer["onboardingInfo"]
        info = json.loads(info) if isinstance(info, str) else info
        body = info["body"]
        body = json.loads(body) if isinstance(body, str) else body
        org = body["orgId"]
    except (ValueError, KeyError, TypeError):
        return None
    return org.lower() if isinstance(org, str) and len(org) == 36 else None


def onboarding(state: HostState) -> tuple[str | None, float]:
    """(org id, since when) of the onboarding the agent took; None while unlicensed or offboarded."""
    if state.vfs.lookup(OFFBOARD_JSON) is not None:
        return None, 0.0
    node = state.vfs.lookup(ONBOARD_JSON)
    if node is None or node.kind != "f":
        return None, 0.0
    org = org_id_of(node.text())
    if org is None:
        return None, 0.0
    return org, max(state.agent.installed_at, node.mtime)


def managed(state: HostState) -> dict[str, Any]:
    """The managed settings (an unreadable or invalid file counts as none, as the daemon ignores it)."""
    text = _read(state, MANAGED_JSON)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def enforcement(state: HostState) -> tuple[str, bool]:
    """(real_time | passive | on_demand, whether the managed file decides it)."""
    level = _get(managed(state), "antivirusEngine.enforcementLevel")
    if level in ("real_time", "passive", "on_demand"):
        return str(level), True
    local = state.agent.extra.get("local", {})
    if local.get("real_time_protection") is True:
        return "real_time", False
    if local.get("passive_mode") is False:
        return "on_demand", False
    return "passive", False  # the default since 101.23062.0001


def allowed_threats(state: HostState) -> set[str]:
    names = _get(managed(state), "antivirusEngine.allowedThreats") or []
    return {str(n).strip().lower() for n in names if isinstance(n, str)}


def eicar_allowed(state: HostState) -> bool:
    return bool(allowed_threats(state) & EICAR_NAMES)


def excluded(state: HostState, path: str) -> bool:
    """Whether an antivirus exclusion (path or file name) of the managed file covers ``path``."""
    for item in _get(managed(state), "antivirusEngine.exclusions") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("$type")
        if kind == "excludedPath" and isinstance(item.get("path"), str):
            target = item["path"].rstrip("/") or "/"
            if path == target or (item.get("isDirectory") and path.startswith(target.rstrip("/") + "/")):
                return True
        if kind == "excludedFileExtension" and isinstance(item.get("extension"), str):
            if path.endswith(item["extension"]):
                return True
    return False


def proxy(state: HostState) -> str:
    """The static proxy the daemon uses: the managed one wins over ``mdatp config proxy set``."""
    value = _get(managed(state), "cloudService.proxy")
    if isinstance(value, str) and value:
        return value
    return str(state.agent.extra.get("local", {}).get("proxy", ""))


def running(state: HostState) -> bool:
    return state.agent.installed and state.service_active("mdatp") is not False


# --- definitions ----------------------------------------------------------------------------------


def definitions(state: HostState) -> tuple[str, str, float]:
    """(version, status, updated at): ``updating`` while the fresh onboarding settles, then current."""
    agent, now = state.agent, state.clock.now()
    org, since = onboarding(state)
    start = since if org else agent.installed_at
    if now - start < SETTLE_SECONDS:
        status = "updating"
    else:
        status = "up_to_date"
        if agent.extra.get("definitions", PACKAGED_DEFINITIONS) == PACKAGED_DEFINITIONS:
            # The first automatic update, done when the settling ended.
            agent.extra["definitions"] = PACKAGED_DEFINITIONS + 12
            agent.extra["definitions_at"] = start + SETTLE_SECONDS
    build = int(agent.extra.get("definitions", PACKAGED_DEFINITIONS))
    return f"1.421.{build}.0", status, float(agent.extra.get("definitions_at", now))


def update_definitions(state: HostState) -> str:
    """``mdatp definitions update``: the newest definitions, now."""
    definitions(state)
    agent = state.agent
    agent.extra["definitions"] = int(agent.extra.get("definitions", PACKAGED_DEFINITIONS)) + 1
    agent.extra["definitions_at"] = state.clock.now()
    return definitions(state)[0]


# --- health ---------------------------------------------------------------------------------------


def _date(t: float) -> str:
    return time.strftime("%b %d, %Y at %I:%M:%S %p", time.gmtime(t))


def _quoted(value: str) -> str:
    return json.dumps(value)


def _expiration(version: str) -> float:
    """Build date (from 101.YYMMX.NNNN) plus nine months."""
    digits = version.split(".")[1] if "." in version else "25010"
    year, month = 2000 + int(digits[:2]), int(digits[2:4])
    month += 9
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return float(calendar.timegm((year, month, 10, 13, 34, 28, 0, 0, 0)))


def engine_version(version: str) -> str:
    digits = version.split(".")[1] if "." in version else "25010"
    return f"1.1.{digits[:4]}0.{1000 + int(digits[4:5] or 0) * 2}"


def health(state: HostState) -> list[tuple[str, Any, bool]]:
    """``mdatp health`` fields in the daemon's order: (name, value, managed); None is ``unavailable``."""
    agent = state.agent
    settings = managed(state)
    org, _ = onboarding(state)
    level, level_managed = enforcement(state)
    defs_version, defs_status, defs_at = definitions(state)
    faults = state.faults
    rtp = level == "real_time"
    fanotify_ok = not faults.get("fanotify-off") and state.profile.fanotify != "none"
    issues: list[str] = []
    if org is None:
        issues.append("missing license")
    if faults.get("unhealthy"):
        issues.append(UNHEALTHY_ISSUE)
    conflicting = _conflicting(state)
    healthy = not issues and defs_status == "up_to_date"
    cloud = _get(settings, "cloudService.enabled")
    consent = _get(settings, "cloudService.automaticSampleSubmissionConsent")
    diagnostic = _get(settings, "cloudService.diagnosticLevel")
    auto_update = _get(settings, "cloudService.automaticDefinitionUpdateEnabled")
    behavior = _get(settings, "antivirusEngine.behaviorMonitoring")
    network = _get(settings, "networkProtection.enforcementLevel")
    tamper = _get(settings, "tamperProtection.enforcementLevel")
    tags = _get(settings, "edr.tags")
    group_ids = _get(settings, "edr.groupIds")
    minutes = max(0, int((state.clock.now() - defs_at) // 60))
    version = agent.version
    return [
        ("healthy", healthy, False),
        ("health_issues", issues, False),
        ("licensed", org is not None, False),
        ("engine_version", engine_version(version), False),
        ("engine_load_status", "Engine load succeeded" if rtp else "Engine not loaded", False),
        ("app_version", version, False),
        ("org_id", org, False),
        ("log_level", "info", False),
        ("machine_guid", machine_guid(state), False),
        ("release_ring", RELEASE_RINGS.get(agent.channel, "Dogfood"), False),
        ("product_expiration", ("date", _expiration(version)), False),
        ("cloud_enabled", cloud if isinstance(cloud, bool) else True, isinstance(cloud, bool)),
        ("cloud_automatic_sample_submission_consent", consent or "safe", consent is not None),
        ("cloud_diagnostic_enabled", diagnostic == "optional", diagnostic is not None),
        ("cloud_pin_certificate_thumbs", False, False),
        ("passive_mode_enabled", level == "passive", level_managed),
        ("behavior_monitoring", behavior or "disabled", behavior is not None),
        ("real_time_protection_enabled", rtp and fanotify_ok, level_managed),
        ("real_time_protection_available", fanotify_ok, False),
        ("real_time_protection_subsystem", "fanotify" if fanotify_ok else None, False),
        ("supplementary_events_subsystem", "ebpf", False),
        ("tamper_protection", tamper or "disabled", tamper is not None),
        ("automatic_definition_update_enabled", auto_update is not False, isinstance(auto_update, bool)),
        ("definitions_updated", ("date", defs_at), False),
        ("definitions_updated_minutes_ago", minutes, False),
        ("definitions_version", defs_version, False),
        ("definitions_status", defs_status, False),
        ("edr_early_preview_enabled", "disabled", False),
        ("edr_device_tags", tags if isinstance(tags, list) else [], isinstance(tags, list)),
        ("edr_group_ids", group_ids if isinstance(group_ids, str) else "", isinstance(group_ids, str)),
        ("edr_configuration_version", "30.199999.main.2025.09.12.02-C3E5A27E8B1D2B27A9E0D2B8C3F7E6B0F1D7E1B2", False),
        ("edr_machine_id", edr_machine_id(state, org) if org else None, False),
        ("conflicting_applications", conflicting, False),
        ("network_protection_status", "stopped", False),
        ("network_protection_enforcement_level", network or "disabled", network is not None),
        ("troubleshooting_mode", False, False),
    ]


def _conflicting(state: HostState) -> list[str]:
    """Other processes holding fanotify in blocking mode (fapolicyd is tolerated)."""
    names = []
    for proc in state.machine.procs:
        if proc.fanotify and "/opt/microsoft/mdatp/" not in proc.args and proc.comm != "fapolicyd":
            names.append(proc.args.split()[0])
    return names


def render_value(value: Any) -> str:
    """A health value as the text output shows it (strings quoted, dates bare, None ``unavailable``)."""
    if value is None:
        return "unavailable"
    if isinstance(value, tuple) and value and value[0] == "date":
        return _date(value[1])
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _quoted(value)
    return json.dumps(value, separators=(",", ":"))


def json_value(value: Any) -> Any:
    if isinstance(value, tuple) and value and value[0] == "date":
        return int(value[1] * 1000)
    return value


# --- EICAR and scans ------------------------------------------------------------------------------


def is_eicar(text: str) -> bool:
    """The test file: the EICAR string first, at most 128 bytes, only whitespace after it."""
    return text.startswith(EICAR) and len(text.encode()) <= 128 and not text[len(EICAR) :].strip()


def file_written(state: HostState, path: str) -> None:
    """The fanotify hook: a file was closed after writing. Real-time protection queues a quarantine."""
    if not state.agent.installed:
        return
    node = state.vfs.lookup(path)
    if node is None or node.kind != "f" or callable(node.data) or not is_eicar(node.text()):
        return
    if not running(state) or enforcement(state)[0] != "real_time":
        return
    if state.faults.get("fanotify-off") or state.profile.fanotify == "none":
        return
    if eicar_allowed(state) or excluded(state, path):
        return
    pending: list[tuple[float, str]] = state.agent.extra.setdefault("pending", [])
    pending.append((state.clock.now() + QUARANTINE_DELAY, path))


def tick(state: HostState) -> None:
    """Apply the quarantines that are due."""
    if not state.agent.installed:
        return
    pending: list[tuple[float, str]] = state.agent.extra.get("pending", [])
    if not pending:
        return
    now = state.clock.now()
    due = [item for item in pending if item[0] <= now]
    state.agent.extra["pending"] = [item for item in pending if item[0] > now]
    for when, path in due:
        node = state.vfs.lookup(path)
        if node is None or node.kind != "f" or not is_eicar(node.text()):
            continue
        _quarantine(state, path, when)


def _quarantine(state: HostState, path: str, when: float) -> None:
    try:
        state.vfs.remove(path, state.cred("root"))
    except FSError:
        return
    _record(state, path, when, "quarantined")


def _record(state: HostState, path: str, when: float, status: str) -> None:
    threats: list[Threat] = state.agent.extra.setdefault("threats", [])
    digest = hashlib.sha256(f"{state.spec.index}:{path}:{when}:{len(threats)}".encode()).hexdigest()
    threat_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    threats.append(Threat(threat_id, THREAT_NAME, path, when, status))


def threats(state: HostState) -> list[Threat]:
    return list(state.agent.extra.get("threats", []))


def scan(state: HostState, path: str) -> tuple[int, int]:
    """``mdatp scan custom``: (files scanned, threats found). Remediates unless in passive mode."""
    vfs, root = state.vfs, state.cred("root")
    files: list[str] = []

    def walk(current: str) -> None:
        node = vfs.lookup(current)
        if node is None:
            return
        if node.kind == "d":
            try:
                names = vfs.listdir(current, root)
            except FSError:
                return
            for name in names:
                walk(posixpath.join(current, name))
        elif node.kind == "f":
            files.append(current)

    walk(path)
    found = 0
    level = enforcement(state)[0]
    now = state.clock.now()
    for each in files:
        node = vfs.lookup(each)
        if node is None or callable(node.data) or not is_eicar(node.text()):
            continue
        if eicar_allowed(state) or excluded(state, each):
            continue
        found += 1
        if level == "passive":
            _record(state, each, now, "detected")  # passive mode never remediates
        else:
            _quarantine(state, each, now)
    return len(files), found
