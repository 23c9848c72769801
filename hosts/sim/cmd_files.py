"""File tools: mkdir, chmod, chown, mv, rm, cp, touch, ln, ls, stat, readlink, dirname, basename."""

from __future__ import annotations

import getopt
import posixpath
import re
import time

from hosts.sim.cmd_text import bad_option
from hosts.sim.registry import Ctx, command
from hosts.sim.vfs import FSError, Node, mode_string


def _split(ctx: Ctx, short: str, long: list[str] | None = None) -> tuple[set[str], dict[str, str], list[str]] | int:
    try:
        opts, rest = getopt.gnu_getopt(ctx.args, short, long or [])
    except getopt.GetoptError as exc:
        return bad_option(ctx, exc, f"Usage: {ctx.name} [OPTION]... FILE...\n")
    return {o for o, _ in opts}, dict(opts), rest


@command("mkdir")
async def mkdir(ctx: Ctx) -> int:
    parsed = _split(ctx, "pm:v", ["parents", "mode="])
    if isinstance(parsed, int):
        return parsed
    flags, values, names = parsed
    mode = int(values.get("-m", values.get("--mode", "755")), 8)
    status = 0
    for name in names:
        try:
            ctx.state.vfs.mkdir(ctx.path(name), ctx.cred, parents=bool(flags & {"-p", "--parents"}), mode=mode | 0o022)
            if "-m" in values:
                ctx.state.vfs.stat(ctx.path(name)).mode = mode
        except FSError as exc:
            ctx.err(f"mkdir: cannot create directory {ctx.qa(name)}: {exc.reason}\n")
            status = 1
    if not names:
        ctx.err("mkdir: missing operand\nTry 'mkdir --help' for more information.\n")
        return 1
    return status


def _apply_symbolic(mode: int, spec: str) -> int | None:
    for clause in spec.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwxXt]*)", clause)
        if not match:
            return None
        who, op, perms = match.groups()
        who = who or "a"
        bits = 0
        for target, shift in (("u", 6), ("g", 3), ("o", 0)):
            if target in who or "a" in who:
                for perm, value in (("r", 4), ("w", 2), ("x", 1), ("X", 1)):
                    if perm in perms:
                        bits |= value << shift
        if "t" in perms:
            bits |= 0o1000
        if op == "+":
            mode |= bits
        elif op == "-":
            mode &= ~bits
        else:
            mask = sum(7 << s for t, s in (("u", 6), ("g", 3), ("o", 0)) if t in who or "a" in who)
            mode = (mode & ~mask) | bits
    return mode


@command("chmod")
async def chmod(ctx: Ctx) -> int:
    args = [a for a in ctx.args if a not in ("-R", "-v", "-f")]
    if len(args) < 2:
        ctx.err("chmod: missing operand\nTry 'chmod --help' for more information.\n")
        return 1
    spec, names = args[0], args[1:]
    status = 0
    for name in names:
        try:
            node = ctx.state.vfs.stat(ctx.path(name), ctx.cred)
        except FSError as exc:
            ctx.err(f"chmod: cannot access {ctx.qa(name)}: {exc.reason}\n")
            status = 1
            continue
        if ctx.cred.uid not in (0, node.uid):
            ctx.err(f"chmod: changing permissions of {ctx.qa(name)}: Operation not permitted\n")
            status = 1
            continue
        new = int(spec, 8) if re.fullmatch(r"[0-7]{1,4}", spec) else _apply_symbolic(node.mode, spec)
        if new is None:
            ctx.err(f"chmod: invalid mode: {ctx.qa(spec)}\nTry 'chmod --help' for more information.\n")
            return 1
        node.mode = new
    return status


@command("chown", "chgrp")
async def chown(ctx: Ctx) -> int:
    args = [a for a in ctx.args if a not in ("-R", "-v", "-f", "-h")]
    if len(args) < 2:
        ctx.err(f"{ctx.name}: missing operand\nTry '{ctx.name} --help' for more information.\n")
        return 1
    owner, names = args[0], args[1:]
    user, _, grp = owner.partition(":") if ctx.name == "chown" else ("", "", owner)
    users = ctx.state.machine.users
    if user and user not in users and not user.isdigit():
        ctx.err(f"chown: invalid user: {ctx.qa(owner)}\n")
        return 1
    status = 0
    for name in names:
        try:
            node = ctx.state.vfs.stat(ctx.path(name), ctx.cred)
        except FSError as exc:
            ctx.err(f"{ctx.name}: cannot access {ctx.qa(name)}: {exc.reason}\n")
            status = 1
            continue
        if ctx.cred.uid != 0:
            ctx.err(f"{ctx.name}: changing ownership of {ctx.qa(name)}: Operation not permitted\n")
            status = 1
            continue
        if user:
            node.uid = int(user) if user.isdigit() else users[user][0]
        if grp:
            node.gid = int(grp) if grp.isdigit() else users.get(grp, (0, 0))[1]
    return status


@command("mv")
async def mv(ctx: Ctx) -> int:
    args = [a for a in ctx.args if a not in ("-f", "-v", "-T", "-n")]
    if len(args) < 2:
        ctx.err("mv: missing file operand\nTry 'mv --help' for more information.\n")
        return 1
    *sources, dest = args
    status = 0
    for src in sources:
        try:
            ctx.state.vfs.stat(ctx.path(src), ctx.cred, follow=False)
        except FSError as exc:
            ctx.err(f"mv: cannot stat {ctx.qa(src)}: {exc.reason}\n")
            status = 1
            continue
        try:
            ctx.state.vfs.rename(ctx.path(src), ctx.path(dest), ctx.cred)
        except FSError as exc:
            ctx.err(f"mv: cannot move {ctx.qa(src)} to {ctx.qa(dest)}: {exc.reason}\n")
            status = 1
    return status


@command("rm")
async def rm(ctx: Ctx) -> int:
    parsed = _split(ctx, "rRfvd", ["recursive", "force"])
    if isinstance(parsed, int):
        return parsed
    flags, _, names = parsed
    force = bool(flags & {"-f", "--force"})
    recursive = bool(flags & {"-r", "-R", "--recursive"})
    status = 0
    for name in names:
        try:
            node = ctx.state.vfs.stat(ctx.path(name), ctx.cred, follow=False)
            if node.kind == "d" and not recursive:
                ctx.err(f"rm: cannot remove {ctx.qa(name)}: Is a directory\n")
                status = 1
                continue
            ctx.state.vfs.remove(ctx.path(name), ctx.cred, recursive=recursive)
        except FSError as exc:
            if force and exc.code == "ENOENT":
                continue
            ctx.err(f"rm: cannot remove {ctx.qa(name)}: {exc.reason}\n")
            status = 1
    if not names and not force:
        ctx.err("rm: missing operand\nTry 'rm --help' for more information.\n")
        return 1
    return status


@command("cp")
async def cp(ctx: Ctx) -> int:
    parsed = _split(ctx, "rRpfavT", ["recursive", "preserve", "force", "archive"])
    if isinstance(parsed, int):
        return parsed
    flags, _, args = parsed
    if len(args) < 2:
        ctx.err("cp: missing file operand\nTry 'cp --help' for more information.\n")
        return 1
    *sources, dest = args
    vfs = ctx.state.vfs
    status = 0
    for src in sources:
        try:
            node = vfs.stat(ctx.path(src), ctx.cred)
            if node.kind == "d":
                ctx.err(f"cp: -r not specified; omitting directory {ctx.qa(src)}\n")
                status = 1
                continue
            text = vfs.read(ctx.path(src), ctx.cred)
        except FSError as exc:
            ctx.err(f"cp: cannot stat {ctx.qa(src)}: {exc.reason}\n")
            status = 1
            continue
        target = ctx.path(dest)
        existing = vfs.lookup(target)
        if existing is not None and existing.kind == "d":
            target = posixpath.join(target, posixpath.basename(src))
        try:
            vfs.write(target, text, ctx.cred, mode=node.mode)
            if flags & {"-p", "-a", "--preserve", "--archive"}:
                copy = vfs.stat(target)
                copy.mode, copy.uid, copy.gid = node.mode, node.uid, node.gid
        except FSError as exc:
            ctx.err(f"cp: cannot create regular file {ctx.qa(dest)}: {exc.reason}\n")
            status = 1
    return status


@command("touch")
async def touch(ctx: Ctx) -> int:
    status = 0
    for name in (a for a in ctx.args if not a.startswith("-")):
        path = ctx.path(name)
        try:
            node = ctx.state.vfs.lookup(ctx.state.vfs.resolve(path))
            if node is None:
                ctx.state.vfs.write(path, "", ctx.cred)
            else:
                ctx.state.vfs.write(path, "", ctx.cred, append=True)
        except FSError as exc:
            ctx.err(f"touch: cannot touch {ctx.qa(name)}: {exc.reason}\n")
            status = 1
    return status


@command("ln")
async def ln(ctx: Ctx) -> int:
    args = [a for a in ctx.args if not a.startswith("-")]
    symbolic = any(a.startswith("-") and "s" in a for a in ctx.args)
    force = any(a.startswith("-") and "f" in a for a in ctx.args)
    if len(args) != 2:
        ctx.err("ln: missing file operand\nTry 'ln --help' for more information.\n")
        return 1
    target, link = args
    path = ctx.path(link)
    vfs = ctx.state.vfs
    try:
        if vfs.lookup(path) is not None:
            if not force:
                ctx.err(f"ln: failed to create {'symbolic ' if symbolic else ''}link {ctx.qa(link)}: File exists\n")
                return 1
            vfs.remove(path, ctx.cred)
        if symbolic:
            vfs.write(path, "", ctx.cred)
            node = vfs.stat(path, follow=False)
            node.kind, node.data, node.mode = "l", target, 0o777
        else:
            vfs.write(path, vfs.read(ctx.path(target), ctx.cred), ctx.cred)
    except FSError as exc:
        ctx.err(f"ln: failed to create link {ctx.qa(link)}: {exc.reason}\n")
        return 1
    return 0


@command("readlink")
async def readlink(ctx: Ctx) -> int:
    names = [a for a in ctx.args if not a.startswith("-")]
    status = 0
    for name in names:
        path = ctx.path(name)
        if "-f" in ctx.args:
            ctx.out(ctx.state.vfs.resolve(path) + "\n")
            continue
        node = ctx.state.vfs.lookup(path)
        if node is None or node.kind != "l":
            status = 1
            continue
        ctx.out(node.text() + "\n")
    return status


def _owner(ctx: Ctx, uid: int) -> str:
    return next((name for name, entry in ctx.state.machine.users.items() if entry[0] == uid), str(uid))


def _group(ctx: Ctx, gid: int) -> str:
    return next((name for name, entry in ctx.state.machine.users.items() if entry[1] == gid), str(gid))


def _size(node: Node) -> int:
    if node.kind == "d":
        return 4096 if node.mode != 0o555 else 0
    return len(node.text().encode("utf-8", "surrogateescape"))


@command("ls")
async def ls(ctx: Ctx) -> int:
    parsed = _split(ctx, "laAd1hRtrF", ["all", "directory"])
    if isinstance(parsed, int):
        return parsed
    flags, _, names = parsed
    long = "-l" in flags
    show_all = bool(flags & {"-a", "-A", "--all"})
    vfs = ctx.state.vfs
    status = 0
    entries: list[tuple[str, Node]] = []
    dirs: list[tuple[str, list[tuple[str, Node]]]] = []
    for name in names or ["."]:
        path = ctx.path(name)
        try:
            node = vfs.stat(path, ctx.cred)
        except FSError as exc:
            ctx.err(f"ls: cannot access {ctx.qa(name)}: {exc.reason}\n")
            status = 2
            continue
        if node.kind == "d" and not flags & {"-d", "--directory"}:
            try:
                children = [c for c in vfs.listdir(path, ctx.cred) if show_all or not c.startswith(".")]
            except FSError as exc:
                ctx.err(f"ls: cannot open directory {ctx.qa(name)}: {exc.reason}\n")
                status = 2
                continue
            rows = []
            for child in children:
                child_node = vfs.lookup(posixpath.join(path, child))
                if child_node is not None:
                    rows.append((child, child_node))
            dirs.append((name, rows))
        else:
            entries.append((name, node))

    def render(rows: list[tuple[str, Node]]) -> None:
        for name, node in rows:
            if not long:
                ctx.out(name + "\n")
                continue
            stamp = time.strftime("%b %e %H:%M", time.gmtime(node.mtime or ctx.state.boot))
            target = f" -> {node.text()}" if node.kind == "l" else ""
            ctx.out(
                f"{mode_string(node)}. 1 {_owner(ctx, node.uid)} {_group(ctx, node.gid)} {_size(node):>6} "
                f"{stamp} {name}{target}\n"
            )

    render(entries)
    for index, (name, rows) in enumerate(dirs):
        if len(dirs) + len(entries) > 1:
            ctx.out(("\n" if index or entries else "") + f"{name}:\n")
        if long:
            ctx.out(f"total {sum(_size(n) for _, n in rows) // 1024}\n")
        render(rows)
    return status


@command("stat")
async def stat(ctx: Ctx) -> int:
    args = list(ctx.args)
    fmt = None
    names = []
    while args:
        arg = args.pop(0)
        if arg in ("-c", "--format", "--printf") and args:
            fmt = args.pop(0)
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
        elif arg in ("-L", "--dereference"):
            continue
        else:
            names.append(arg)
    status = 0
    for name in names:
        try:
            node = ctx.state.vfs.stat(ctx.path(name), ctx.cred, follow=False)
        except FSError as exc:
            ctx.err(f"stat: cannot stat {ctx.qa(name)}: {exc.reason}\n")
            status = 1
            continue
        kind = {"d": "directory", "l": "symbolic link"}.get(node.kind) or (
            "regular file" if _size(node) else "regular empty file"
        )
        values = {
            "a": f"{node.mode & 0o7777:o}",
            "A": mode_string(node),
            "U": _owner(ctx, node.uid),
            "G": _group(ctx, node.gid),
            "u": str(node.uid),
            "g": str(node.gid),
            "s": str(_size(node)),
            "n": name,
            "F": kind,
            "Y": str(int(node.mtime)),
            "y": time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000", time.gmtime(node.mtime)),
            "i": str(abs(hash(name)) % 10_000_000),
            "h": "1",
            "%": "%",
        }
        if fmt is None:
            ctx.out(
                f"  File: {name}\n  Size: {values['s']:<15} Blocks: 8          IO Block: 4096   {kind}\n"
                f"Access: ({node.mode & 0o7777:04o}/{values['A']})  Uid: ({node.uid:>5}/{values['U']:>8})"
                f"   Gid: ({node.gid:>5}/{values['G']:>8})\nModify: {values['y']}\n"
            )
            continue
        ctx.out(re.sub(r"%(.)", lambda m, values=values: values.get(m.group(1), "?"), fmt) + "\n")
    return status


@command("dirname", "basename")
async def dirname(ctx: Ctx) -> int:
    names = [a for a in ctx.args if not a.startswith("-")]
    if not names:
        ctx.err(f"{ctx.name}: missing operand\nTry '{ctx.name} --help' for more information.\n")
        return 1
    if ctx.name == "basename":
        base = posixpath.basename(names[0].rstrip("/")) or "/"
        suffix = names[1] if len(names) > 1 else ""
        ctx.out((base[: -len(suffix)] if suffix and base.endswith(suffix) and base != suffix else base) + "\n")
        return 0
    for name in names:
        parent = posixpath.dirname(name.rstrip("/")) if name.rstrip("/") else "/"
        ctx.out((parent or ".") + "\n")
    return 0
