"""The command registry: ``@command("name")`` handlers and the context they receive.

A handler is ``async def handler(ctx: Ctx) -> int``: it reads ``ctx.argv``, writes with
``ctx.out``/``ctx.err``, reads stdin with ``await ctx.stdin()`` and returns the exit status.
New commands (yum, dnf, mdatp, ...) are added by decorating a function in any module imported
by ``hosts/sim/commands.py``; the shell never changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hosts.sim.profiles import Profile
    from hosts.sim.shell import IO, Shell
    from hosts.sim.state import Cred, HostState

Handler = Callable[["Ctx"], Awaitable[int]]


@dataclass(frozen=True)
class CommandSpec:
    """A registered command: its handler, where it is installed and on which hosts."""

    name: str
    func: Handler
    sbin: bool = False  # installed in /usr/sbin rather than /usr/bin
    builtin: bool = False  # a shell builtin: no process, `command -v` prints the bare name
    when: Callable[[Profile], bool] | None = None
    path: str = ""  # an explicit install path (overrides bin/sbin)

    def available(self, state: HostState) -> bool:
        if self.when is not None and not self.when(state.profile):
            return False
        return state.command_installed(self.name)

    def install_path(self, profile: Profile) -> str:
        if self.path:
            return self.path
        if profile.major >= 7 or profile.distro_id == "debian":
            return f"/usr/{'sbin' if self.sbin else 'bin'}/{self.name}"
        # Before the /usr merge: coreutils, grep and friends in /bin, admin tools in /sbin.
        base = "/sbin" if self.sbin else "/bin"
        return f"{base}/{self.name}" if self.name in _ROOT_BIN else f"/usr{base}/{self.name}"


_ROOT_BIN = {
    "cat",
    "chmod",
    "chown",
    "cp",
    "date",
    "df",
    "echo",
    "false",
    "grep",
    "hostname",
    "ln",
    "ls",
    "mkdir",
    "mv",
    "nice",
    "ps",
    "rm",
    "sh",
    "bash",
    "sleep",
    "touch",
    "true",
    "uname",
    "rpm",
    "mount",
    "egrep",
    "sort",
    "cut",
    "getenforce",
    "sed",
    "awk",
    "gawk",
    "stat",
}

REGISTRY: dict[str, CommandSpec] = {}


def command(
    name: str,
    *aliases: str,
    sbin: bool = False,
    builtin: bool = False,
    when: Callable[[Profile], bool] | None = None,
    path: str = "",
) -> Callable[[Handler], Handler]:
    """Register a handler under ``name`` (and aliases)."""

    def register(func: Handler) -> Handler:
        for each in (name, *aliases):
            REGISTRY[each] = CommandSpec(each, func, sbin=sbin, builtin=builtin, when=when, path=path)
        return func

    return register


@dataclass
class Ctx:
    """What a handler gets: its argv, streams, environment, credentials and the host."""

    shell: Shell
    argv: list[str]
    io: IO
    env: dict[str, str]
    cred: Cred
    spec: CommandSpec
    pid: int = 0

    @property
    def state(self) -> HostState:
        return self.shell.state

    @property
    def profile(self) -> Profile:
        return self.shell.state.profile

    @property
    def name(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1]

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    def out(self, text: str) -> None:
        self.io.stdout.write(text)

    def err(self, text: str) -> None:
        self.io.stderr.write(text)

    async def stdin(self) -> str:
        return await self.io.stdin.read()

    def path(self, name: str) -> str:
        from hosts.sim.vfs import normpath

        return normpath(self.shell.cwd, name)

    def quote(self, name: str) -> str:
        """A file name in a ``tool: NAME: reason`` message: bare, or quoted when it needs it (coreutils ≥ 8.25)."""
        return f"'{name}'" if self.profile.coreutils >= (8, 25) and _needs_quotes(name) else name

    def qa(self, name: str) -> str:
        """A file name always quoted (``cannot stat 'x'``, ``cannot move 'a' to 'b'``)."""
        return f"`{name}'" if self.profile.coreutils < (8, 22) else f"'{name}'"

    async def sleep(self, seconds: float) -> None:
        await self.state.clock.sleep(seconds)

    def extra(self, key: str, default: Any = None) -> Any:
        return getattr(self.shell.session, key, default)


def _needs_quotes(name: str) -> bool:
    return any(c in name for c in " \t\n'\"\\$`*?[]{}()<>&|;!#~")
