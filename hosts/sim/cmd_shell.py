"""Shell builtins and the wrappers that run other commands: sh -c, sudo, timeout, env, exec."""

from __future__ import annotations

import asyncio
import re

from hosts.sim.parse import ParseError, Sequence, parse
from hosts.sim.registry import Ctx, command
from hosts.sim.shell import ExitShell, StringSource
from hosts.sim.vfs import FSError, allowed


def _usage_error(ctx: Ctx, message: str, usage: str) -> int:
    ctx.err(f"{ctx.name}: {message}\n{usage}")
    return 1


@command(":", "true", builtin=True)
async def true_(ctx: Ctx) -> int:
    return 0


@command("false", builtin=True)
async def false_(ctx: Ctx) -> int:
    return 1


@command("echo", builtin=True)
async def echo(ctx: Ctx) -> int:
    args = ctx.args
    newline, escapes = True, ctx.shell.dash
    while args and re.fullmatch(r"-[neE]+", args[0]) and not ctx.shell.dash:
        flags = args.pop(0)[1:]
        newline = newline and "n" not in flags
        escapes = ("e" in flags) or (escapes and "E" not in flags)
    if ctx.shell.dash and args and args[0] == "-n":
        args, newline = args[1:], False
    text = " ".join(args)
    if escapes:
        text, stop = unescape(text, stop_at_c=True)
        newline = newline and not stop
    ctx.out(text + ("\n" if newline else ""))
    return 0


def unescape(text: str, *, stop_at_c: bool = False) -> tuple[str, bool]:
    """Backslash escapes of echo -e / printf %b; returns (text, whether \\c stopped output)."""
    out, i = [], 0
    table = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\\": "\\", "e": "\x1b"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in table:
                out.append(table[nxt])
                i += 2
                continue
            if nxt == "c" and stop_at_c:
                return "".join(out), True
            if nxt == "0" or nxt.isdigit():
                digits = re.match(r"0?[0-7]{1,3}", text[i + 1 :])
                if digits:
                    out.append(chr(int(digits.group(0), 8) & 0xFF))
                    i += 1 + len(digits.group(0))
                    continue
            if nxt == "x":
                digits = re.match(r"[0-9a-fA-F]{1,2}", text[i + 2 :])
                if digits:
                    out.append(chr(int(digits.group(0), 16)))
                    i += 2 + len(digits.group(0))
                    continue
        out.append(c)
        i += 1
    return "".join(out), False


_PRINTF_SPEC = re.compile(r"%([-+ #0]*)(\d+)?(?:\.(\d+))?([sdiuxXocbf%])")


@command("printf", builtin=True)
async def printf(ctx: Ctx) -> int:
    if not ctx.args:
        ctx.err(f"{ctx.shell.prefix()}printf: usage: printf [-v var] format [arguments]\n")
        return 2
    fmt, args = unescape(ctx.args[0])[0], ctx.args[1:]
    status = 0
    while True:  # the format is reused while arguments remain, as printf(1) does
        text, consumed, failed = _printf_once(ctx, fmt, args)
        ctx.out(text)
        status = status or failed
        args = args[consumed:]
        if not args or not consumed:
            return status


def _printf_once(ctx: Ctx, fmt: str, args: list[str]) -> tuple[str, int, int]:
    consumed = failed = 0

    def render(match: re.Match[str]) -> str:
        nonlocal consumed, failed
        flags, width, precision, conv = match.groups()
        if conv == "%":
            return "%"
        value = args[consumed] if consumed < len(args) else ""
        consumed += 1
        if conv == "b":
            return unescape(value)[0]
        if conv == "c":
            return value[:1]
        if conv in "diuxXo":
            try:
                number = int(value or "0", 0)
            except ValueError:
                ctx.err(f"{ctx.shell.prefix()}printf: {value}: invalid number\n")
                failed, number = 1, 0
            return f"%{flags}{width or ''}{ {'i': 'd', 'u': 'd'}.get(conv, conv) }" % number
        if conv == "f":
            return f"%{flags}{width or ''}.{precision or 6}f" % float(value or 0)
        return f"%{flags}{width or ''}s" % (value if precision is None else value[: int(precision)])

    return _PRINTF_SPEC.sub(render, fmt), consumed, failed


@command("exit", builtin=True)
async def exit_(ctx: Ctx) -> int:
    status = ctx.shell.status
    if ctx.args:
        try:
            status = int(ctx.args[0]) & 0xFF
        except ValueError:
            ctx.err(f"{ctx.shell.prefix()}exit: {ctx.args[0]}: numeric argument required\n")
            status = 2
    raise ExitShell(status)


@command("cd", builtin=True)
async def cd(ctx: Ctx) -> int:
    target = ctx.args[0] if ctx.args else ctx.shell.vars.get("HOME", "/")
    path = ctx.path(target)
    try:
        node = ctx.state.vfs.stat(path, ctx.cred)
        if node.kind != "d":
            raise FSError("ENOTDIR", path)
        if not allowed(node, ctx.cred, 1):
            raise FSError("EACCES", path)
    except FSError as exc:
        ctx.err(f"{ctx.shell.prefix()}cd: {target}: {exc.reason}\n")
        return 1
    ctx.shell.cwd = path
    ctx.shell.vars["PWD"] = path
    return 0


@command("pwd", builtin=True)
async def pwd(ctx: Ctx) -> int:
    ctx.out(ctx.shell.cwd + "\n")
    return 0


@command("export", "readonly", "local", "declare", "typeset", builtin=True)
async def export(ctx: Ctx) -> int:
    for arg in ctx.args:
        if arg.startswith("-"):
            continue
        name, has_value, value = arg.partition("=")
        if has_value:
            ctx.shell.vars[name] = value
    return 0


@command("unset", builtin=True)
async def unset(ctx: Ctx) -> int:
    for name in ctx.args:
        if not name.startswith("-"):
            ctx.shell.vars.pop(name, None)
    return 0


@command("set", builtin=True)
async def set_(ctx: Ctx) -> int:
    args = list(ctx.args)
    while args:
        arg = args.pop(0)
        if arg == "--":
            ctx.shell.positional = [ctx.shell.positional[0], *args]
            return 0
        if arg in ("-o", "+o") and args:
            option = args.pop(0)
            if option == "pipefail":
                ctx.shell.pipefail = arg == "-o"
            elif option == "errexit":
                ctx.shell.errexit = arg == "-o"
            continue
        if arg[:1] in "-+" and len(arg) > 1:
            if "e" in arg:
                ctx.shell.errexit = arg[0] == "-"
            continue
        ctx.shell.positional = [ctx.shell.positional[0], arg, *args]
        return 0
    return 0


@command("shift", builtin=True)
async def shift(ctx: Ctx) -> int:
    count = int(ctx.args[0]) if ctx.args else 1
    ctx.shell.positional = [ctx.shell.positional[0], *ctx.shell.positional[1 + count :]]
    return 0


@command("umask", builtin=True)
async def umask(ctx: Ctx) -> int:
    args = [a for a in ctx.args if a != "-S"]
    if not args:
        ctx.out(f"{ctx.shell.umask:04o}\n")
        return 0
    if not re.fullmatch(r"[0-7]{1,4}", args[0]):
        ctx.err(f"{ctx.shell.prefix()}umask: {args[0]}: octal number out of range\n")
        return 1
    ctx.shell.umask = int(args[0], 8)
    return 0


@command("read", builtin=True)
async def read(ctx: Ctx) -> int:
    names = [a for a in ctx.args if not a.startswith("-")] or ["REPLY"]
    line = await ctx.io.stdin.readline()
    if not line:
        return 1
    words = line.rstrip("\n").split(None, len(names) - 1)
    for index, name in enumerate(names):
        ctx.shell.vars[name] = words[index] if index < len(words) else ""
    return 0


@command("eval", builtin=True)
async def eval_(ctx: Ctx) -> int:
    return await ctx.shell.exec_node(_parse(ctx, " ".join(ctx.args)), ctx.io)


@command("source", ".", builtin=True)
async def source(ctx: Ctx) -> int:
    if not ctx.args:
        ctx.err(f"{ctx.shell.prefix()}source: filename argument required\n")
        return 2
    try:
        script = ctx.state.vfs.read(ctx.path(ctx.args[0]), ctx.cred)
    except FSError as exc:
        ctx.err(f"{ctx.shell.prefix()}{ctx.args[0]}: {exc.reason}\n")
        return 1
    return await ctx.shell.exec_node(_parse(ctx, script), ctx.io)


def _parse(ctx: Ctx, script: str) -> Sequence:
    try:
        return parse(script)
    except ParseError as exc:
        ctx.err(f"{ctx.shell.prefix()}{exc}\n")
        return Sequence([])


@command("exec", builtin=True)
async def exec_(ctx: Ctx) -> int:
    if not ctx.args:
        return 0
    status = await ctx.shell.run_argv(ctx.args, ctx.io)
    raise ExitShell(status)


@command("command", builtin=True)
async def command_(ctx: Ctx) -> int:
    args = list(ctx.args)
    mode = ""
    while args and args[0].startswith("-") and args[0] != "--":
        mode = args.pop(0)
    if args and args[0] == "--":
        args.pop(0)
    if not args:
        return 0
    if mode in ("-v", "-V"):
        status = 0
        for name in args:
            spec = ctx.shell.resolve(name)
            if spec is None:
                if mode == "-V":
                    ctx.err(f"{ctx.shell.prefix()}command: {name}: not found\n")
                status = 1
                continue
            path = name if spec.builtin else spec.install_path(ctx.profile) if "/" not in name else name
            ctx.out(
                f"{name} is a shell builtin\n"
                if mode == "-V" and spec.builtin
                else f"{name} is {path}\n"
                if mode == "-V"
                else f"{path}\n"
            )
        return status
    return await ctx.shell.run_argv(args, ctx.io)


@command("type", builtin=True)
async def type_(ctx: Ctx) -> int:
    status = 0
    for name in ctx.args:
        if name.startswith("-"):
            continue
        spec = ctx.shell.resolve(name)
        if spec is None:
            ctx.err(f"{ctx.shell.prefix()}type: {name}: not found\n")
            status = 1
        elif spec.builtin:
            ctx.out(f"{name} is a shell builtin\n")
        else:
            ctx.out(f"{name} is {spec.install_path(ctx.profile)}\n")
    return status


@command("which")
async def which(ctx: Ctx) -> int:
    status = 0
    for name in ctx.args:
        spec = ctx.shell.resolve(name)
        if spec is None or (spec.builtin and name not in ("echo", "printf", "test", "[", "true", "false")):
            path = ctx.env.get("PATH", "")
            ctx.err(f"/usr/bin/which: no {name} in ({path})\n")
            status = 1
        else:
            ctx.out(spec.install_path(ctx.profile) + "\n")
    return status


@command("kill", builtin=True)
async def kill(ctx: Ctx) -> int:
    status = 0
    for arg in ctx.args:
        if arg.startswith("-"):
            continue
        if not arg.isdigit() or ctx.state.find_proc(int(arg)) is None:
            ctx.err(f"{ctx.shell.prefix()}kill: ({arg}) - No such process\n")
            status = 1
    return status


@command("sh", "bash", path="", when=None)
async def sh(ctx: Ctx) -> int:
    """``sh -c 'script' [name [args]]``, ``sh FILE``, or a script on stdin."""
    args = list(ctx.args)
    script: str | None = None
    errexit = pipefail = False
    positional: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "-c":
            if not args:
                ctx.err(f"{ctx.name}: -c: option requires an argument\n")
                return 2
            script = args.pop(0)
            positional = args
            break
        if arg in ("-o", "+o") and args:
            pipefail = args.pop(0) == "pipefail" or pipefail
            continue
        if arg.startswith("--"):
            continue
        if arg.startswith("-") and len(arg) > 1:
            if "c" in arg[1:]:
                errexit = errexit or "e" in arg
                if not args:
                    ctx.err(f"{ctx.name}: -c: option requires an argument\n")
                    return 2
                script = args.pop(0)
                positional = args
                break
            errexit = errexit or "e" in arg
            continue
        try:
            script = ctx.state.vfs.read(ctx.path(arg), ctx.cred)
        except FSError as exc:
            ctx.err(f"{ctx.name}: {arg}: {exc.reason}\n")
            return 127
        positional = [arg, *args]
        break
    if script is None:
        script = await ctx.stdin()
        stdin = StringSource("")
    else:
        stdin = ctx.io.stdin
    name = ctx.name if ctx.name in ("sh", "bash") else "sh"
    child = ctx.shell.child(cred=ctx.cred, name=name, env=ctx.env, positional=positional or [name], pid=ctx.pid)
    child.errexit, child.pipefail = errexit, pipefail
    io = ctx.io.copy()
    io.stdin = stdin
    return await child.run(script, io)


@command("sudo")
async def sudo(ctx: Ctx) -> int:
    args = list(ctx.args)
    user = "root"
    non_interactive = False
    while args and args[0].startswith("-"):
        arg = args.pop(0)
        if arg == "--":
            break
        if arg in ("-u", "--user") and args:
            user = args.pop(0)
        elif arg.startswith("-u") and len(arg) > 2:
            user = arg[2:]
        elif arg in ("-n", "--non-interactive"):
            non_interactive = True
        elif arg in ("-E", "-H", "-S", "-i", "-s", "--preserve-env", "-k"):
            continue
        elif re.fullmatch(r"-[nEHSk]+", arg):
            non_interactive = non_interactive or "n" in arg
        else:
            ctx.err(f"sudo: invalid option -- '{arg.lstrip('-')[:1]}'\nusage: sudo -h | -K | -k | -V\n")
            return 1
    if not args:
        ctx.err("usage: sudo -h | -K | -k | -V\n")
        return 1
    if ctx.cred.uid != 0 and ctx.cred.name != "deploy":
        if non_interactive:
            ctx.err("sudo: a password is required\n")
        else:
            ctx.err(f"{ctx.cred.name} is not in the sudoers file.  This incident will be reported.\n")
        return 1
    if user not in ctx.state.machine.users:
        ctx.err(f"sudo: unknown user: {user}\nsudo: unable to initialize policy plugin\n")
        return 1
    target = ctx.state.cred(user)
    env = ctx.state.login_env(target)
    env["PATH"] = "/sbin:/bin:/usr/sbin:/usr/bin"
    env.update({"SUDO_USER": ctx.cred.name, "SUDO_UID": str(ctx.cred.uid), "SUDO_COMMAND": " ".join(args)})
    runner = ctx.shell.child(cred=target, env=env, pid=ctx.pid)
    spec = runner.resolve(args[0])
    if spec is None:
        ctx.err(f"sudo: {args[0]}: command not found\n")
        return 1
    return await runner.run_argv(args, ctx.io)


def duration(text: str) -> float | None:
    """``2``, ``1.5``, ``3s``, ``2m``, ``1h``, ``1d`` in seconds (None if invalid)."""
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", text)
    if not match:
        return None
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@command("timeout")
async def timeout(ctx: Ctx) -> int:
    args = list(ctx.args)
    while args and args[0].startswith("-") and args[0] != "--":
        arg = args.pop(0)
        if arg in ("-s", "--signal", "-k", "--kill-after") and args:
            args.pop(0)
    if args and args[0] == "--":
        args.pop(0)
    if len(args) < 2:
        ctx.err("timeout: missing operand\nTry 'timeout --help' for more information.\n")
        return 125
    seconds = duration(args[0])
    if seconds is None:
        ctx.err(f"timeout: invalid time interval '{args[0]}'\nTry 'timeout --help' for more information.\n")
        return 125
    runner = ctx.shell.child(pid=ctx.pid)
    task = asyncio.ensure_future(runner.run_argv(args[1:], ctx.io, env=ctx.env))
    if seconds == 0:
        return await task
    try:
        # Real seconds, not simulated ones: the client that sent `timeout N` counts N on its own clock.
        return await asyncio.wait_for(task, seconds)
    except TimeoutError:
        return 124


@command("env")
async def env(ctx: Ctx) -> int:
    args = list(ctx.args)
    values = dict(ctx.env)
    while args:
        if args[0] in ("-i", "--ignore-environment", "-"):
            values = {}
            args.pop(0)
        elif args[0] == "-u" and len(args) > 1:
            args.pop(0)
            values.pop(args.pop(0), None)
        elif "=" in args[0] and not args[0].startswith("="):
            name, _, value = args.pop(0).partition("=")
            values[name] = value
        else:
            break
    if not args:
        ctx.out("".join(f"{k}={v}\n" for k, v in values.items()))
        return 0
    if ctx.shell.resolve(args[0]) is None:
        ctx.err(
            f"env: '{args[0]}': No such file or directory\n"
            if ctx.profile.coreutils >= (8, 25)
            else f"env: {args[0]}: No such file or directory\n"
        )
        return 127
    return await ctx.shell.run_argv(args, ctx.io, env=values)


@command("nohup", "nice", "stdbuf", "ionice")
async def passthrough(ctx: Ctx) -> int:
    args = list(ctx.args)
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("-n", "-c", "-o", "-e", "-i") and args:
            args.pop(0)
    if not args:
        if ctx.name == "nice":
            ctx.out("0\n")
            return 0
        ctx.err(f"{ctx.name}: missing operand\n")
        return 125
    return await ctx.shell.run_argv(args, ctx.io)


@command("sleep")
async def sleep(ctx: Ctx) -> int:
    if not ctx.args:
        ctx.err("sleep: missing operand\nTry 'sleep --help' for more information.\n")
        return 1
    total = 0.0
    for arg in ctx.args:
        seconds = duration(arg)
        if seconds is None:
            ctx.err(f"sleep: invalid time interval {ctx.qa(arg)}\nTry 'sleep --help' for more information.\n")
            return 1
        total += seconds
    await ctx.sleep(total)
    return 0


@command("test", "[", builtin=True)
async def test(ctx: Ctx) -> int:
    args = list(ctx.args)
    if ctx.argv[0] == "[":
        if not args or args[-1] != "]":
            ctx.err(f"{ctx.shell.prefix()}[: missing `]'\n")
            return 2
        args = args[:-1]
    try:
        return 0 if _test(ctx, args) else 1
    except _TestError as exc:
        ctx.err(f"{ctx.shell.prefix()}{ctx.argv[0]}: {exc}\n")
        return 2


class _TestError(Exception):
    """A malformed test expression (test prints it and exits 2)."""


def _test(ctx: Ctx, args: list[str]) -> bool:
    if not args:
        return False
    if "-o" in args[1:-1]:
        i = args.index("-o", 1)
        return _test(ctx, args[:i]) or _test(ctx, args[i + 1 :])
    if "-a" in args[1:-1]:
        i = args.index("-a", 1)
        return _test(ctx, args[:i]) and _test(ctx, args[i + 1 :])
    if args[0] == "!":
        return not _test(ctx, args[1:])
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        if op == "-z":
            return operand == ""
        if op == "-n":
            return operand != ""
        vfs, path = ctx.state.vfs, ctx.path(operand)
        try:
            node = vfs.stat(path, ctx.cred, follow=op not in ("-L", "-h"))
        except FSError:
            if op in ("-e", "-f", "-d", "-s", "-r", "-w", "-x", "-L", "-h", "-b", "-c", "-p", "-S"):
                return False
            raise _TestError(f"{op}: unary operator expected") from None
        checks = {
            "-e": True,
            "-f": node.kind == "f",
            "-d": node.kind == "d",
            "-L": node.kind == "l",
            "-h": node.kind == "l",
            "-s": node.kind == "d" or bool(node.text()),
            "-r": allowed(node, ctx.cred, 4),
            "-w": allowed(node, ctx.cred, 2),
            "-x": allowed(node, ctx.cred, 1),
        }
        if op not in checks:
            raise _TestError(f"{op}: unary operator expected")
        return checks[op]
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        if op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
            try:
                a, b = int(left), int(right)
            except ValueError:
                bad = left if not left.lstrip("-").isdigit() else right
                raise _TestError(f"{bad}: integer expression expected") from None
            return {"-eq": a == b, "-ne": a != b, "-lt": a < b, "-le": a <= b, "-gt": a > b, "-ge": a >= b}[op]
        raise _TestError(f"{op}: binary operator expected")
    raise _TestError("too many arguments")
