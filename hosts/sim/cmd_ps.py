"""ps, df and free, with the column layouts of procps / procps-ng and old / new coreutils."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from hosts.sim.registry import Ctx, command
from hosts.sim.vfs import FSError

if TYPE_CHECKING:
    from hosts.sim.machine import Mount, Proc

# --- ps ------------------------------------------------------------------------------------------

# format name -> (header, width, right-aligned)
_PS_FIELDS: dict[str, tuple[str, int, bool]] = {
    "pid": ("PID", 5, True),
    "ppid": ("PPID", 5, True),
    "user": ("USER", 8, False),
    "euser": ("EUSER", 8, False),
    "uid": ("UID", 5, True),
    "pcpu": ("%CPU", 4, True),
    "%cpu": ("%CPU", 4, True),
    "pmem": ("%MEM", 4, True),
    "%mem": ("%MEM", 4, True),
    "rss": ("RSS", 5, True),
    "rssize": ("RSS", 5, True),
    "rsz": ("RSZ", 5, True),
    "vsz": ("VSZ", 6, True),
    "vsize": ("VSZ", 6, True),
    "etime": ("ELAPSED", 11, True),
    "etimes": ("ELAPSED", 7, True),
    "time": ("TIME", 8, True),
    "cputime": ("TIME", 8, True),
    "comm": ("COMMAND", 15, False),
    "ucomm": ("COMMAND", 15, False),
    "ucmd": ("CMD", 15, False),
    "args": ("COMMAND", 27, False),
    "cmd": ("CMD", 27, False),
    "command": ("COMMAND", 27, False),
    "stat": ("STAT", 4, False),
    "s": ("S", 1, False),
    "nlwp": ("NLWP", 4, True),
    "thcount": ("THCNT", 5, True),
    "lwp": ("LWP", 5, True),
    "tid": ("TID", 5, True),
    "spid": ("SPID", 5, True),
    "tty": ("TT", 8, False),
    "tt": ("TT", 8, False),
    "ni": ("NI", 3, True),
    "psr": ("PSR", 3, True),
    "c": ("C", 2, True),
    "stime": ("STIME", 5, False),
    "start_time": ("START", 5, False),
}
_PID_FIELDS = {"pid", "ppid", "lwp", "tid", "spid"}


def _etime(seconds: float) -> str:
    t = max(0, int(seconds))
    ss, t = t % 60, t // 60
    mm, t = t % 60, t // 60
    hh, dd = t % 24, t // 24
    out = f"{dd}-" if dd else ""
    out += f"{hh:02d}:" if dd or hh else ""
    return out + f"{mm:02d}:{ss:02d}"


def _cputime(seconds: float) -> str:
    t = max(0, int(seconds))
    dd, rest = divmod(t, 86400)
    return (f"{dd}-" if dd else "") + f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def _tenths(value: float, cap: int | None = None) -> str:
    tenths = int(value * 10 + 1e-9)
    if cap is not None:
        tenths = min(tenths, cap)
        return f"{tenths // 10:2d}.{tenths % 10}"
    return str(tenths // 10) if tenths > 999 else f"{tenths // 10}.{tenths % 10}"


class _PsView:
    """Values of one process for each ps format specifier."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.now = ctx.state.clock.now()
        self.total_kb = ctx.state.machine.memory.total
        self.procps_ng = ctx.profile.procps >= (3, 3, 0)

    def user(self, proc: Proc) -> str:
        name = proc.user
        if len(name) > 8:
            return name[:7] + "+" if self.procps_ng else str(self.ctx.state.uid_of(name))
        return name

    def value(self, proc: Proc, field: str, tid: int | None = None) -> str:
        # One table of getters for all calls (below the class), not a dict of closures built per
        # call: ps renders every field of every process, and those closures were most of its time.
        return _PS_GETTERS[_PS_ALIASES.get(field, field)](self, proc, tid)

    def elapsed(self, proc: Proc) -> float:
        return max(0.0, self.now - proc.start)

    def sort_value(self, proc: Proc, field: str) -> float | str:
        numeric = {
            "pid": proc.pid,
            "ppid": proc.ppid,
            "pcpu": proc.pcpu,
            "%cpu": proc.pcpu,
            "pmem": proc.rss,
            "%mem": proc.rss,
            "rss": proc.rss,
            "rssize": proc.rss,
            "rsz": proc.rss,
            "vsz": proc.vsz,
            "vsize": proc.vsz,
            "etime": -proc.start,
            "etimes": -proc.start,
            "start_time": proc.start,
            "time": proc.pcpu * (self.now - proc.start),
            "nlwp": proc.threads,
            "uid": self.ctx.state.uid_of(proc.user),
        }
        if field in numeric:
            return numeric[field]
        return self.value(proc, field if field in _PS_FIELDS else "comm")


_PS_GETTERS: dict[str, Callable[[_PsView, Proc, int | None], str]] = {
    "pid": lambda v, p, tid: str(p.pid),
    "lwp": lambda v, p, tid: str(p.pid if tid is None else tid),
    "ppid": lambda v, p, tid: str(p.ppid),
    "user": lambda v, p, tid: v.user(p),
    "euser": lambda v, p, tid: v.user(p),
    "uid": lambda v, p, tid: str(v.ctx.state.uid_of(p.user)),
    "pcpu": lambda v, p, tid: _tenths(p.pcpu),
    "pmem": lambda v, p, tid: _tenths(p.rss * 100 / v.total_kb, cap=999),
    "rss": lambda v, p, tid: str(p.rss),
    "vsz": lambda v, p, tid: str(p.vsz),
    "etime": lambda v, p, tid: _etime(v.elapsed(p)),
    "etimes": lambda v, p, tid: str(int(v.elapsed(p))),
    "time": lambda v, p, tid: _cputime(v.elapsed(p) * p.pcpu / 100),
    "comm": lambda v, p, tid: p.comm,
    "args": lambda v, p, tid: p.args,
    "stat": lambda v, p, tid: p.stat,
    "s": lambda v, p, tid: p.stat[:1],
    "nlwp": lambda v, p, tid: str(p.threads),
    "tty": lambda v, p, tid: "?",
    "ni": lambda v, p, tid: "0" if not p.kernel else "-20" if "<" in p.stat else "0",
    "psr": lambda v, p, tid: str(p.pid % v.ctx.state.machine.cores),
    "c": lambda v, p, tid: str(int(p.pcpu)),
    "stime": lambda v, p, tid: _stime(p.start, v.now),
    "start_time": lambda v, p, tid: _stime(p.start, v.now),
}
_PS_ALIASES = {
    "%cpu": "pcpu",
    "%mem": "pmem",
    "rssize": "rss",
    "rsz": "rss",
    "vsize": "vsz",
    "cputime": "time",
    "ucomm": "comm",
    "ucmd": "comm",
    "cmd": "args",
    "command": "args",
    "tt": "tty",
    "tid": "lwp",
    "spid": "lwp",
    "thcount": "nlwp",
}


def _stime(start: float, now: float) -> str:
    import time

    moment = time.gmtime(start)
    return time.strftime("%H:%M", moment) if now - start < 86400 else time.strftime("%b%d", moment)


def layout(rows: list[list[str]], widths: list[int], right: list[bool]) -> list[str]:
    """procps-ng column placement: overflow of one column is absorbed by the padding of the next ones."""
    lines = []
    for row in rows:
        out, actual, correct = [], 0, 0
        for index, text in enumerate(row):
            last = index == len(row) - 1
            dospace = 1 if index else 0
            if right[index]:
                space = correct - actual + max(0, widths[index] - len(text))
            else:
                space = correct - actual
            if space < 1:
                space = dospace
            out.append(" " * space + text)
            actual += space + len(text)
            correct += widths[index] + 1
            if last:
                break
        lines.append("".join(out).rstrip() if not row[-1] else "".join(out))
    return lines


@command("ps")
async def ps(ctx: Ctx) -> int:
    args = list(ctx.args)
    fields: list[tuple[str, str | None]] = []
    select_all = False
    pids: set[int] = set()
    names: set[str] = set()
    users: set[str] = set()
    sort_keys: list[str] = []
    no_header = False
    full = bsd = threads = False

    def add_format(value: str) -> str | None:
        for item in _split_format(value):
            name, has_header, header = item.partition("=")
            if name not in _PS_FIELDS:
                return name
            fields.append((name, header if has_header else None))
        return None

    while args:
        arg = args.pop(0)
        value: str | None
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
            if name in ("--sort", "--format", "--pid", "--user") and not has_value:
                value = args.pop(0) if args else ""
            if name == "--sort":
                sort_keys += value.split(",")
            elif name == "--format":
                bad = add_format(value)
                if bad:
                    return _bad_format(ctx, bad)
            elif name == "--pid":
                pids |= {int(x) for x in value.replace(",", " ").split() if x.isdigit()}
            elif name == "--user":
                users |= set(value.split(","))
            elif name in ("--no-headers", "--no-heading"):
                no_header = True
            elif name not in ("--cols", "--columns", "--width"):
                return _bad_option(ctx)
            continue
        if arg.startswith("-") and len(arg) > 1:
            for position, flag in enumerate(arg[1:], 1):
                if flag in "opCuU":
                    value = arg[position + 1 :] or (args.pop(0) if args else "")
                    if flag == "o":
                        bad = add_format(value)
                        if bad:
                            return _bad_format(ctx, bad)
                    elif flag == "p":
                        pids |= {int(x) for x in value.replace(",", " ").split() if x.isdigit()}
                    elif flag == "C":
                        names |= set(value.split(","))
                    else:
                        users |= set(value.split(","))
                    break
                if flag in "eA":
                    select_all = True
                elif flag == "f":
                    full = True
                elif flag in "LT":
                    threads = True  # one row per thread (LWP / SPID)
                elif flag not in "wlHajxy":
                    return _bad_option(ctx)
            continue
        if arg in ("o", "O") and args:
            bad = add_format(args.pop(0))
            if bad:
                return _bad_format(ctx, bad)
        elif arg == "h":
            no_header = True
        elif set(arg) <= set("auxwfe"):
            bsd = True
            select_all = select_all or "x" in arg or "a" in arg
        else:
            return _bad_option(ctx)
    if not fields:
        if bsd:
            fields = [
                (f, None)
                for f in ("user", "pid", "pcpu", "pmem", "vsz", "rss", "tty", "stat", "start_time", "time", "command")
            ]
        elif full:
            fields = [
                ("user", "UID"),
                ("pid", None),
                ("ppid", None),
                ("c", None),
                ("stime", None),
                ("tty", "TTY"),
                ("time", None),
                ("cmd", None),
            ]
        else:
            fields = [("pid", None), ("tty", "TTY"), ("time", None), ("cmd", None)]
    procs = ctx.state.all_procs()
    if pids or names or users:
        procs = [p for p in procs if p.pid in pids or p.comm in names or p.user in users]
    elif not select_all:
        procs = [p for p in procs if p.pid == ctx.shell.pid or p.pid == ctx.pid]
    view = _PsView(ctx)
    procs.sort(key=lambda p: p.pid)
    for key in reversed([k for k in sort_keys if k]):
        name = key.lstrip("+-")
        procs.sort(key=lambda p, n=name: view.sort_value(p, n), reverse=key.startswith("-"))  # type: ignore[misc]
    pid_width = ctx.profile.pid_width
    widths, right, headers = [], [], []
    for name, header in fields:
        default_header, width, is_right = _PS_FIELDS[name]
        if name in _PID_FIELDS:
            width = pid_width
        text = default_header if header is None else header
        headers.append(text)
        widths.append(max(width, len(text)))
        right.append(is_right)
    if threads:
        pid_max = ctx.state.pid_max
        listed = [(t, tid) for p in procs for t, tid in thread_rows(p, pid_max)]
    else:
        listed = [(p, None) for p in procs]
    rows = [[view.value(p, name, tid) for name, _ in fields] for p, tid in listed]
    show_header = not no_header and any(headers)
    lines = layout(([headers] if show_header else []) + rows, widths, right)
    ctx.out("".join(line + "\n" for line in lines))
    return 0 if procs else 1


def thread_rows(proc: Proc, pid_max: int) -> list[tuple[Proc, int]]:
    """The process's threads as (process with the thread's CPU share, thread id); the first is the main thread.

    Each thread inherits the process's name; CPU is split unevenly (a seeded power law), so one or two
    threads carry most of it, as on a real busy daemon.
    """
    count = max(1, proc.threads)
    if count == 1:
        return [(proc, proc.pid)]
    rng = random.Random(f"threads:{proc.pid}")
    weights = [rng.random() ** 4 for _ in range(count)]
    total = sum(weights) or 1.0
    span = max(1000, pid_max - 300)
    out = []
    for index, weight in enumerate(weights):
        tid = proc.pid if index == 0 else 300 + (proc.pid + index * 1009) % span
        out.append((dataclasses.replace(proc, pcpu=round(proc.pcpu * weight / total, 2)), tid))
    return out


def _bad_format(ctx: Ctx, name: str) -> int:
    ctx.err(f'error: unknown user-defined format specifier "{name}"\n' + _PS_USAGE)
    return 1


def _bad_option(ctx: Ctx) -> int:
    ctx.err("error: unsupported option (BSD syntax)\n" + _PS_USAGE)
    return 1


_PS_USAGE = (
    "\nUsage:\n ps [options]\n\n Try 'ps --help <simple|list|output|threads|misc|all>'\n"
    "  or 'ps --help <s|l|o|t|m|a>'\n for additional help text.\n\nFor more details see ps(1).\n"
)


def _split_format(value: str) -> list[str]:
    # "pid=,args=" splits on commas; a header after "=" runs to the end of the item.
    return [item for item in value.replace(" ", ",").split(",") if item]


# --- df ------------------------------------------------------------------------------------------


def _human(kb: int, si: bool, new_style: bool) -> str:
    size = kb * 1024.0
    base = 1000.0 if si else 1024.0
    units = "KMGTPE"
    unit = -1
    while size >= base and unit < len(units) - 1:
        size /= base
        unit += 1
    if unit < 0:
        return str(int(size))
    if size < 10:
        value = math.ceil(size * 10) / 10
        if value >= 10:
            return f"{math.ceil(value)}{units[unit]}"
        return f"{value:.1f}{units[unit]}"
    return f"{math.ceil(size)}{units[unit]}"


@command("df")
async def df(ctx: Ctx) -> int:
    args = list(ctx.args)
    posix = print_type = inodes = show_all = False
    human = ""
    block = 1024
    exclude: set[str] = set()
    only: set[str] = set()
    paths: list[str] = []
    while args:
        arg = args.pop(0)
        if arg in ("-x", "--exclude-type", "-t", "--type") and args:
            (exclude if arg in ("-x", "--exclude-type") else only).add(args.pop(0))
        elif arg.startswith("--exclude-type="):
            exclude.add(arg.split("=", 1)[1])
        elif arg.startswith("-x") and len(arg) > 2:
            exclude.add(arg[2:])
        elif arg == "--portability":
            posix = True
        elif arg in ("--print-type",):
            print_type = True
        elif arg in ("--inodes",):
            inodes = True
        elif arg.startswith("-") and len(arg) > 1 and not arg.startswith("--"):
            for flag in arg[1:]:
                if flag == "P":
                    posix = True
                elif flag == "T":
                    print_type = True
                elif flag == "i":
                    inodes = True
                elif flag == "k":
                    block = 1024
                elif flag == "m":
                    block = 1048576
                elif flag in "hH":
                    human = flag
                elif flag == "a":
                    show_all = True
                elif flag == "l":
                    continue
                else:
                    ctx.err(f"df: invalid option -- {ctx.qa(flag)}\nTry {ctx.qa('df --help')} for more information.\n")
                    return 1
        else:
            paths.append(arg)
    mounts = ctx.state.machine.mounts
    rows: list[Mount] = []
    status = 0
    if paths:
        for path in paths:
            full = ctx.path(path)
            try:
                ctx.state.vfs.stat(full, ctx.cred)
            except FSError as exc:
                ctx.err(f"df: {ctx.quote(path) if ctx.profile.coreutils >= (8, 25) else ctx.qa(path)}: {exc.reason}\n")
                status = 1
                continue
            rows.append(_containing(mounts, full))
    else:
        rows = [m for m in mounts if (show_all or not (m.dummy or m.bind))]
    rows = [m for m in rows if m.fstype not in exclude and (not only or m.fstype in only)]
    if not rows:
        if status == 0:
            ctx.err("df: no file systems processed\n")
        return 1
    if ctx.profile.modern_df:
        ctx.out(_df_table(rows, posix, print_type, inodes, human, block))
    else:
        ctx.out(_df_old(rows, posix, print_type, inodes, human, block))
    return status


def _containing(mounts: list[Mount], path: str) -> Mount:
    """The mount a path lives on: the last-mounted one with the longest matching mount point."""
    best: Mount | None = None
    for mount in mounts:
        if mount.bind:
            continue
        inside = path == mount.target or path.startswith(mount.target.rstrip("/") + "/")
        if inside and (best is None or len(mount.target) >= len(best.target)):
            best = mount
    assert best is not None, "every path is on /"
    return best


def _pct(used: int, avail: int) -> str:
    total = used + avail
    if total <= 0:
        return "-"
    return f"{-(-used * 100 // total)}%"


def _df_values(m: Mount, inodes: bool, human: str, block: int) -> list[str]:
    if inodes:
        if not m.inodes:
            return ["0", "0", "0", "-"]
        return [str(m.inodes), str(m.iused), str(m.inodes - m.iused), _pct(m.iused, m.inodes - m.iused)]
    if human:
        return [_human(x, human == "H", True) for x in (m.size_kb, m.used_kb, m.avail_kb)] + [
            _pct(m.used_kb, m.avail_kb)
        ]
    scale = block // 1024
    return [str(-(-x // scale)) for x in (m.size_kb, m.used_kb, m.avail_kb)] + [_pct(m.used_kb, m.avail_kb)]


def _df_table(rows: list[Mount], posix: bool, print_type: bool, inodes: bool, human: str, block: int) -> str:
    """coreutils ≥ 8.21: a table whose columns widen to fit, single spaces between them."""
    if inodes:
        heads = ["Inodes", "IUsed", "IFree", "IUse%"]
    elif human:
        heads = ["Size", "Used", "Avail", "Use%"]
    elif posix:
        heads = [f"{block}-blocks", "Used", "Available", "Capacity"]
    else:
        heads = [f"{'1K' if block == 1024 else '1M'}-blocks", "Used", "Available", "Use%"]
    header = ["Filesystem"] + (["Type"] if print_type else []) + heads + ["Mounted on"]
    mins = [14] + ([4] if print_type else []) + [5, 5, 5, 4] + [0]
    right = [False] + ([False] if print_type else []) + [True] * 4 + [False]
    table = [header]
    for m in rows:
        table.append([m.source] + ([m.fstype] if print_type else []) + _df_values(m, inodes, human, block) + [m.target])
    widths = [max(mins[i], *(len(r[i]) for r in table)) for i in range(len(header))]
    lines = []
    for row in table:
        cells = []
        for i, cell in enumerate(row):
            if i == len(row) - 1:
                cells.append(cell)
            else:
                cells.append(cell.rjust(widths[i]) if right[i] else cell.ljust(widths[i]))
        lines.append(" ".join(cells) + "\n")
    return "".join(lines)


def _df_old(rows: list[Mount], posix: bool, print_type: bool, inodes: bool, human: str, block: int) -> str:
    """coreutils ≤ 8.10 (RHEL 5/6): fixed widths, long device names wrap unless -P."""
    out = ["Filesystem    Type" if print_type else "Filesystem        "]
    adjust = 0
    if inodes:
        width, use_width = 7, 5
        out.append("    Inodes   IUsed   IFree IUse%")
    elif human:
        width, use_width = (6 if human == "H" else 5), 4
        out.append("     Size   Used  Avail Use%" if human == "H" else "    Size  Used Avail Use%")
    else:
        width, use_width = 9, 8 if posix else 4
        if posix:
            out.append(f" {block}-blocks      Used Available Capacity")
            adjust = max(0, len(str(block)) - 4)
        else:
            out.append(f" {'1K' if block == 1024 else '1M':>4}-blocks      Used Available Use%")
    out.append(" Mounted on\n")
    for m in rows:
        disk, fstype = m.source, m.fstype
        if print_type:
            if len(disk) + len(fstype) < 18:
                out.append(f"{disk}{fstype:>{18 - len(disk)}}  ")
            elif not posix:
                out.append(f"{disk}\n{fstype:>18}  ")
            else:
                out.append(f"{disk} {fstype}")
        elif len(disk) > 20 and not posix:
            out.append(f"{disk}\n{'':20}")
        else:
            out.append(f"{disk:<20}")
        total, used, avail, pct = _df_values(m, inodes, human, block)
        out.append(f" {total:>{width + adjust}} {used:>{width}} {avail:>{width}} ")
        out.append(f"{pct:>{use_width}}" if pct != "-" else f"{'-':>{use_width}}")
        out.append(f" {m.target}\n")
    return "".join(out)


# --- free ----------------------------------------------------------------------------------------


@command("free")
async def free(ctx: Ctx) -> int:
    shift, human, total_row, wide = 0, False, False, False
    for arg in ctx.args:
        if arg in ("-b", "--bytes"):
            shift = -10
        elif arg in ("-k", "--kilo", "--kibi"):
            shift = 0
        elif arg in ("-m", "--mega", "--mebi"):
            shift = 10
        elif arg in ("-g", "--giga", "--gibi"):
            shift = 20
        elif arg in ("-h", "--human"):
            human = True
        elif arg in ("-t", "--total"):
            total_row = True
        elif arg in ("-w", "--wide"):
            wide = True
        elif arg.startswith("-") and set(arg[1:]) <= set("bkmghtw"):
            for flag in arg[1:]:
                shift = {"b": -10, "k": 0, "m": 10, "g": 20}.get(flag, shift)
                human, total_row, wide = human or flag == "h", total_row or flag == "t", wide or flag == "w"
        else:
            ctx.err(f"free: invalid option -- {ctx.qa(arg.lstrip('-')[:1])}\n")
            return 1
    mem = ctx.state.machine.memory
    procps = ctx.profile.procps

    def fmt(kb: int) -> str:
        if human:
            return _free_human(kb, procps >= (3, 3, 12))
        return str(kb << 10) if shift < 0 else str(kb >> shift)

    swap_used = mem.swap_total - mem.swap_free
    if procps < (3, 3, 0):
        used = mem.total - mem.free
        lines = ["             total       used       free     shared    buffers     cached"]
        lines.append(
            f"{'Mem:':<7}"
            + "".join(f" {fmt(v):>10}" for v in (mem.total, used, mem.free, mem.shmem, mem.buffers, mem.cached))
        )
        real_used = used - mem.buffers - mem.cached
        lines.append(f"-/+ buffers/cache: {fmt(real_used):>10} {fmt(mem.free + mem.buffers + mem.cached):>10}")
        lines.append(f"{'Swap:':<7}" + "".join(f" {fmt(v):>10}" for v in (mem.swap_total, swap_used, mem.swap_free)))
        if total_row:
            lines.append(
                f"{'Total:':<7}"
                + "".join(
                    f" {fmt(v):>10}" for v in (mem.total + mem.swap_total, used + swap_used, mem.free + mem.swap_free)
                )
            )
        ctx.out("".join(line + "\n" for line in lines))
        return 0
    label = 8 if procps >= (3, 3, 17) else 7
    cache = mem.cached + mem.sreclaimable
    used = mem.total - mem.free - mem.buffers - cache
    if wide:
        head = ["total", "used", "free", "shared", "buffers", "cache", "available"]
        values = [mem.total, used, mem.free, mem.shmem, mem.buffers, cache, mem.available]
    else:
        head = ["total", "used", "free", "shared", "buff/cache", "available"]
        values = [mem.total, used, mem.free, mem.shmem, mem.buffers + cache, mem.available]
    lines = [" " * label + "".join(f" {h:>11}" for h in head)]
    lines.append(f"{'Mem:':<{label}}" + "".join(f" {fmt(v):>11}" for v in values))
    lines.append(f"{'Swap:':<{label}}" + "".join(f" {fmt(v):>11}" for v in (mem.swap_total, swap_used, mem.swap_free)))
    if total_row:
        lines.append(
            f"{'Total:':<{label}}"
            + "".join(
                f" {fmt(v):>11}" for v in (mem.total + mem.swap_total, used + swap_used, mem.free + mem.swap_free)
            )
        )
    ctx.out("".join(line + "\n" for line in lines))
    return 0


def _free_human(kb: int, binary_suffix: bool) -> str:
    value = float(kb)
    for unit in "MGTP":
        value /= 1024
        if value < 1024:
            suffix = unit + ("i" if binary_suffix else "")
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return f"{kb}K"
