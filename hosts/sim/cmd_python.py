"""Python interpreters, as far as the rollout needs them: running the portal's onboarding script.

Which interpreter a host has follows its release: ``python`` (2.7) on RHEL/CentOS 7 and
``python`` 2.6 on 6, only ``/usr/libexec/platform-python`` on RHEL 8 family minimal installs,
``python3`` on RHEL 9 and Debian. Nothing is executed: the script is parsed (``ast``) and, when it
has the shape of ``MicrosoftDefenderATPOnboardingLinuxServer.py`` (a string literal holding the
onboarding JSON), the interpreter does what the script does: write that JSON to
``/etc/opt/microsoft/mdatp/mdatp_onboard.json`` (or ``--dest``), mode 0640. Anything else fails
with a Python-looking traceback.
"""

from __future__ import annotations

import ast
import json
import posixpath

from hosts.sim.agent import ONBOARD_JSON
from hosts.sim.registry import Ctx, command
from hosts.sim.vfs import FSError

_VERSIONS = {6: "Python 2.6.6", 7: "Python 2.7.5", 8: "Python 3.6.8", 9: "Python 3.9.18", 10: "Python 3.12.5"}


def _version(ctx: Ctx) -> str:
    if ctx.profile.distro_id == "debian":
        return "Python 3.11.2"
    return _VERSIONS.get(ctx.profile.major, "Python 3.9.18")


def _onboarding_blob(tree: ast.AST) -> str | None:
    """The script's string literal that is an onboarding JSON object (``onboardingInfo``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            if not text.startswith("{"):
                continue
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and "onboardingInfo" in data:
                return node.value
    return None


def _syntax_error(ctx: Ctx, script: str, text: str, exc: SyntaxError) -> None:
    line = exc.lineno or 1
    source = (text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else "").rstrip()
    offset = max(1, exc.offset or 1)
    ctx.err(f'  File "{script}", line {line}\n    {source.strip()}\n    {" " * (offset - 1)}^\n')
    ctx.err(f"SyntaxError: {exc.msg}\n")


async def _python(ctx: Ctx) -> int:
    args = list(ctx.args)
    if args[:1] in (["-V"], ["--version"]):
        # Python 2 prints its version on stderr.
        (ctx.err if _version(ctx).startswith("Python 2") else ctx.out)(_version(ctx) + "\n")
        return 0
    while args and args[0].startswith("-") and args[0] not in ("-c", "-m"):
        args.pop(0)  # -s, -E, -u ...
    if not args:
        ctx.err("mdefleet-sim: an interactive Python is not simulated\n")
        return 1
    if args[0] in ("-c", "-m"):
        ctx.err(f"mdefleet-sim: python {args[0]} is not simulated\n")
        return 1
    script, script_args = args[0], args[1:]
    try:
        text = ctx.state.vfs.read(ctx.path(script), ctx.cred)
    except FSError as exc:
        errno = {"ENOENT": 2, "EACCES": 13, "EISDIR": 21}.get(exc.code, 2)
        ctx.err(f"{ctx.name}: can't open file '{script}': [Errno {errno}] {exc.reason}\n")
        return 2
    try:
        tree = ast.parse(text, filename=script)
    except SyntaxError as exc:
        _syntax_error(ctx, script, text, exc)
        return 1
    blob = _onboarding_blob(tree)
    if blob is None:
        ctx.err(
            f'Traceback (most recent call last):\n  File "{script}", line 1, in <module>\n'
            "NotImplementedError: mdefleet-sim runs only Defender onboarding scripts\n"
        )
        return 1
    dest = ONBOARD_JSON
    if "--dest" in script_args and script_args.index("--dest") + 1 < len(script_args):
        dest = script_args[script_args.index("--dest") + 1]
    elif any(a.startswith("--dest=") for a in script_args):
        dest = next(a for a in script_args if a.startswith("--dest="))[len("--dest=") :]
    if dest == ONBOARD_JSON and ctx.cred.uid != 0:
        ctx.out(f"Run as root: sudo python3 {script}\n")
        return 1
    ctx.out(f"Generating {dest} ...\n")
    vfs, path = ctx.state.vfs, ctx.path(dest)
    try:
        directory = posixpath.dirname(path)
        if directory and vfs.lookup(directory) is None:
            vfs.mkdir(directory, ctx.cred, parents=True)
        vfs.write(path, blob, ctx.cred, mode=0o640, umask=0)
        vfs.stat(path).mode = 0o640
    except FSError as exc:
        ctx.out(f"[Errno 13] {exc.reason}: '{dest}'\n")
        return 1
    return 0


@command("python3", when=lambda p: p.distro_id == "debian" or p.major >= 9)
async def python3(ctx: Ctx) -> int:
    return await _python(ctx)


@command("python", when=lambda p: p.pkg == "rpm" and p.major <= 7)
async def python2(ctx: Ctx) -> int:
    return await _python(ctx)


@command("platform-python", when=lambda p: p.pkg == "rpm" and p.major == 8, path="/usr/libexec/platform-python")
async def platform_python(ctx: Ctx) -> int:
    return await _python(ctx)
