"""System information and administration: uname, nproc, hostname, id, uptime, getenforce,
systemctl, service and crontab (rpm, dpkg, yum and dnf live in ``cmd_pkg.py``)."""

from __future__ import annotations

import time

from hosts.sim.registry import Ctx, command
from hosts.sim.vfs import FSError


@command("uname")
async def uname(ctx: Ctx) -> int:
    order = "snrvmpio"
    longs = {
        "--kernel-name": "s",
        "--nodename": "n",
        "--kernel-release": "r",
        "--kernel-version": "v",
        "--machine": "m",
        "--processor": "p",
        "--hardware-platform": "i",
        "--operating-system": "o",
        "--all": "a",
    }
    wanted: set[str] = set()
    for arg in ctx.args:
        if arg in longs:
            wanted.add(longs[arg])
        elif arg.startswith("-") and set(arg[1:]) <= set(order + "a"):
            wanted |= set(arg[1:])
        else:
            ctx.err(
                f"uname: invalid option -- {ctx.qa(arg.lstrip('-')[:1])}\nTry 'uname --help' for more information.\n"
            )
            return 1
    debian = ctx.profile.distro_id == "debian"
    values = {
        "s": "Linux",
        "n": ctx.state.spec.hostname,
        "r": ctx.state.spec.kernel,
        "v": ctx.profile.kernel_build,
        "m": "x86_64",
        "p": "unknown" if debian else "x86_64",
        "i": "unknown" if debian else "x86_64",
        "o": "GNU/Linux",
    }
    if "a" in wanted:
        parts = [values[k] for k in order if not (k in "pi" and values[k] == "unknown")]
    else:
        parts = [values[k] for k in order if k in (wanted or {"s"})]
    ctx.out(" ".join(parts) + "\n")
    return 0


@command("nproc")
async def nproc(ctx: Ctx) -> int:
    cores = ctx.state.machine.cores
    for index, arg in enumerate(ctx.args):
        if arg.startswith("--ignore"):
            value = arg.split("=", 1)[1] if "=" in arg else ctx.args[index + 1] if index + 1 < len(ctx.args) else "0"
            cores = max(1, cores - int(value))
    ctx.out(f"{cores}\n")
    return 0


@command("hostname")
async def hostname(ctx: Ctx) -> int:
    name = ctx.state.spec.hostname
    args = ctx.args
    if not args or args[0] in ("-f", "--fqdn", "--long"):
        ctx.out(name + "\n")
        return 0
    if args[0] in ("-A", "--all-fqdns"):
        ctx.out(name + " \n")
        return 0
    if args[0] in ("-s", "--short"):
        ctx.out(name.split(".")[0] + "\n")
        return 0
    if args[0] in ("-i", "--ip-address", "-I", "--all-ip-addresses"):
        address = f"10.20.{ctx.state.spec.index // 250 % 250}.{ctx.state.spec.index % 250 + 4}"
        ctx.out(address + (" \n" if args[0] in ("-I", "--all-ip-addresses") else "\n"))
        return 0
    if ctx.cred.uid != 0:
        ctx.err("hostname: you must be root to change the host name\n")
        return 1
    return 0


@command("id")
async def id_(ctx: Ctx) -> int:
    args = [a for a in ctx.args if a.startswith("-")]
    names = [a for a in ctx.args if not a.startswith("-")]
    cred = ctx.state.cred(names[0]) if names else ctx.cred
    if names and names[0] not in ctx.state.machine.users:
        ctx.err(
            f"id: {ctx.qa(names[0])}: no such user\n"
            if ctx.profile.coreutils >= (8, 25)
            else f"id: {names[0]}: no such user\n"
        )
        return 1
    flags = "".join(a.lstrip("-") for a in args)
    group_name = {0: "root", 10: "wheel", 27: "sudo"}

    def gname(gid: int) -> str:
        return group_name.get(gid) or next((n for n, e in ctx.state.machine.users.items() if e[1] == gid), str(gid))

    if "u" in flags:
        ctx.out((cred.name if "n" in flags else str(cred.uid)) + "\n")
    elif "g" in flags and "G" not in flags:
        ctx.out((gname(cred.gid) if "n" in flags else str(cred.gid)) + "\n")
    elif "G" in flags:
        groups = sorted(cred.groups, key=lambda g: g != cred.gid)
        ctx.out(" ".join(gname(g) if "n" in flags else str(g) for g in groups) + "\n")
    else:
        groups = ",".join(f"{g}({gname(g)})" for g in sorted(cred.groups, key=lambda g: (g != cred.gid, g)))
        line = f"uid={cred.uid}({cred.name}) gid={cred.gid}({gname(cred.gid)}) groups={groups}"
        if ctx.profile.selinux and ctx.state.selinux != "Disabled" and not names:
            line += " context=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"
        ctx.out(line + "\n")
    return 0


@command("whoami")
async def whoami(ctx: Ctx) -> int:
    ctx.out(ctx.cred.name + "\n")
    return 0


@command("uptime")
async def uptime(ctx: Ctx) -> int:
    up = int(ctx.state.uptime())
    days, rest = divmod(up, 86400)
    clock = time.strftime("%H:%M:%S", time.gmtime(ctx.state.clock.now()))
    span = (
        f"{days} days, {rest // 3600:2d}:{rest % 3600 // 60:02d}"
        if days
        else f"{rest // 3600:2d}:{rest % 3600 // 60:02d}"
    )
    loads = ctx.state.loadavg().split()[:3]
    ctx.out(f" {clock} up {span},  1 user,  load average: {', '.join(loads)}\n")
    return 0


@command("getenforce", sbin=True, when=lambda p: p.selinux)
async def getenforce(ctx: Ctx) -> int:
    ctx.out(ctx.state.selinux + "\n")
    return 0


# --- services --------------------------------------------------------------------------------------


def _unit(name: str) -> str:
    return name[: -len(".service")] if name.endswith(".service") else name


@command("systemctl", when=lambda p: p.init == "systemd")
async def systemctl(ctx: Ctx) -> int:
    args = [a for a in ctx.args if not a.startswith("-")]
    quiet = any(a in ("-q", "--quiet") for a in ctx.args)
    props = [a.split("=", 1)[1] for a in ctx.args if a.startswith("--property=")]
    if "-p" in ctx.args:
        index = ctx.args.index("-p")
        if index + 1 < len(ctx.args):
            props.append(ctx.args[index + 1])
            if ctx.args[index + 1] in args:
                args.remove(ctx.args[index + 1])
    if not args:
        ctx.out("  UNIT                      LOAD   ACTIVE SUB     DESCRIPTION\n")
        return 0
    verb, units = args[0], [_unit(u) for u in args[1:]]
    state = ctx.state
    modern = ctx.profile.systemd >= 230
    if verb == "is-active":
        if not units:
            ctx.err("Too few arguments.\n")
            return 1
        any_active = False
        for unit in units:
            active = state.service_active(unit)
            any_active = any_active or bool(active)
            if not quiet:
                ctx.out(("active" if active else "inactive" if active is False or modern else "unknown") + "\n")
        return 0 if any_active else 3
    if verb == "is-enabled":
        status = 1
        for unit in units:
            service = state.machine.services.get(unit)
            if service is None:
                ctx.err(f"Failed to get unit file state for {unit}.service: No such file or directory\n")
                continue
            if not quiet:
                ctx.out(("enabled" if service.enabled else "disabled") + "\n")
            status = 0 if service.enabled else status
        return status
    if verb == "status":
        return _status(ctx, units[0] if units else "")
    if verb == "show":
        for unit in units:
            active = state.service_active(unit)
            service = state.machine.services.get(unit)
            values = {
                "ActiveState": "active" if active else "inactive",
                "SubState": "running" if active else "dead",
                "LoadState": "loaded" if service else "not-found",
                "MainPID": str(service.main_pid if service and active else 0),
                "UnitFileState": ("enabled" if service.enabled else "disabled") if service else "",
            }
            for name in props or list(values):
                ctx.out(f"{name}={values.get(name, '')}\n")
        return 0
    if verb in ("start", "stop", "restart", "reload", "enable", "disable", "daemon-reload", "try-restart"):
        if ctx.cred.uid != 0:
            what = "reload daemon" if verb == "daemon-reload" else f"{verb} {units[0] if units else ''}.service"
            ctx.err(f"Failed to {what}: Interactive authentication required.\n")
            if verb != "daemon-reload":
                ctx.err(f"See system logs and 'systemctl status {units[0] if units else ''}.service' for details.\n")
            return 1
        for unit in units:
            if unit not in state.machine.services:
                ctx.err(
                    f"Failed to {verb} {unit}.service: Unit {unit}.service not found.\n"
                    if modern
                    else f"Failed to {verb} {unit}.service: Unit not found.\n"
                )
                return 5
            if verb in ("start", "restart", "try-restart", "reload"):
                state.service_overrides[unit] = True
            elif verb == "stop":
                state.service_overrides[unit] = False
            elif verb in ("enable", "disable"):
                state.machine.services[unit].enabled = verb == "enable"
        return 0
    ctx.err(f"Unknown operation '{verb}'.\n")
    return 1


def _status(ctx: Ctx, unit: str) -> int:
    state = ctx.state
    service = state.machine.services.get(unit)
    if service is None:
        ctx.err(f"Unit {unit}.service could not be found.\n")
        return 4
    active = state.service_active(unit)
    pad = "     " if ctx.profile.systemd >= 252 else "   "
    preset = "preset: disabled" if ctx.profile.systemd >= 252 else "vendor preset: disabled"
    started = state.agent.installed_at if unit == "mdatp" and state.agent.installed else state.boot + 30
    since = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    dot = "●" if active else "○" if ctx.profile.systemd >= 252 else "●"
    lines = [
        f"{dot} {unit}.service - {service.description}",
        f"{pad}Loaded: loaded ({service.unit_path}; {'enabled' if service.enabled else 'disabled'}; {preset})",
    ]
    if active:
        lines.append(f"{pad}Active: active (running) since {since}; {_ago(state.clock.now() - started)} ago")
        proc = state.find_proc(service.main_pid)
        if proc is not None:
            lines.append(f"{pad[:-2]}Main PID: {proc.pid} ({proc.comm})")
            lines.append(f"{pad}CGroup: /system.slice/{unit}.service")
            lines.append(f"{pad}        └─{proc.pid} {proc.args}")
    else:
        lines.append(f"{pad}Active: inactive (dead)")
    ctx.out("\n".join(lines) + "\n")
    return 0 if active else 3


def _ago(seconds: float) -> str:
    """systemd's timespan: "145 days", "3h 12min", "41s"."""
    seconds = int(max(0, seconds))
    if seconds >= 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}min"
    if seconds >= 60:
        return f"{seconds // 60}min {seconds % 60}s"
    return f"{seconds}s"


@command("service", sbin=True, when=lambda p: p.init != "systemd")
async def service(ctx: Ctx) -> int:
    if len(ctx.args) < 2:
        ctx.out("Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]\n")
        return 1
    name, action = ctx.args[0], ctx.args[1]
    state = ctx.state
    unit = state.machine.services.get(name)
    if unit is None:
        ctx.err(f"{name}: unrecognized service\n")
        return 1
    if action == "status":
        active = state.service_active(name)
        label = "openssh-daemon" if name == "sshd" else name
        if active:
            ctx.out(f"{label} (pid  {unit.main_pid}) is running...\n")
            return 0
        ctx.out(f"{label} is stopped\n")
        return 3
    if ctx.cred.uid != 0:
        return 4
    state.service_overrides[name] = action in ("start", "restart")
    return 0


# --- cron ----------------------------------------------------------------------------------------


@command("crontab")
async def crontab(ctx: Ctx) -> int:
    """cronie's crontab: the table is a file in the spool (Debian: crontabs/<user>); cron.d is just files."""
    args = list(ctx.args)
    user = ctx.cred.name
    if "-u" in args:
        index = args.index("-u")
        if index + 1 >= len(args):
            ctx.err("crontab: option requires an argument -- 'u'\n")
            return 1
        user = args[index + 1]
        del args[index : index + 2]
        if ctx.cred.uid != 0 and user != ctx.cred.name:
            ctx.err("must be privileged to use -u\n")
            return 1
    spool = "/var/spool/cron/crontabs" if ctx.profile.distro_id == "debian" else "/var/spool/cron"
    path = f"{spool}/{user}"
    vfs, root = ctx.state.vfs, ctx.state.cred("root")
    if args in (["-l"], ["-r"]):
        node = vfs.lookup(path)
        if node is None:
            ctx.err(f"no crontab for {user}\n")
            return 1
        if args == ["-l"]:
            ctx.out(node.text())
        else:
            vfs.remove(path, root)
        return 0
    if len(args) != 1:
        ctx.err("usage:\tcrontab [-u user] file\n\tcrontab [-u user] [ -e | -l | -r ]\n")
        return 1
    if args[0] == "-":
        text = await ctx.stdin()
    else:
        try:
            text = vfs.read(ctx.path(args[0]), ctx.cred)
        except FSError as exc:
            ctx.err(f"{args[0]}: {exc.reason}\n")
            return 1
    if text and not text.endswith("\n"):
        ctx.err("new crontab file is missing newline before EOF, can't install.\n")
        return 1
    vfs.add_dir(spool, 0o700)
    vfs.add_file(path, text, 0o600, ctx.state.uid_of(user))
    return 0
