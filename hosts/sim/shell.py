"""The mini shell: runs parsed scripts against one simulated host's state.

A :class:`Shell` is one shell process (``bash -c`` from sshd, or a nested ``sh -c``) with its
credentials, variables and working directory. Commands come from the registry in
``hosts/sim/registry.py``; wrappers (``sudo``, ``timeout``, ``sh -c``, ``env``) are ordinary
commands that call back into :meth:`Shell.run_argv`, so nesting works at any depth.

Pipelines run their commands one after another, each reading the previous one's whole output:
every simulated command finishes on its own, so the result is the same as a real pipe's.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hosts.sim import parse as p
from hosts.sim.registry import REGISTRY, CommandSpec, Ctx
from hosts.sim.vfs import FSError, normpath

if TYPE_CHECKING:
    from hosts.sim.state import Cred, HostState


_PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class ExitShell(Exception):
    """``exit N`` (or ``exec``) ending the current shell."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# --- standard streams --------------------------------------------------------------------------


class Sink:
    """Where a command writes (stdout or stderr)."""

    def write(self, text: str) -> None:
        raise NotImplementedError

    async def drain(self) -> None:
        return None


class NullSink(Sink):
    """/dev/null."""

    def write(self, text: str) -> None:
        return None


class BufferSink(Sink):
    """Collects text (pipes, command substitution)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def value(self) -> str:
        return "".join(self.parts)


class FileSink(Sink):
    """A redirection into a file of the virtual filesystem, written when the command ends."""

    def __init__(self, state: HostState, cred: Cred, path: str, append: bool, umask: int = 0o022) -> None:
        self.state, self.cred, self.path = state, cred, path
        # Opening truncates or creates right away, as open(2) does; errors surface to the shell.
        state.vfs.write(path, "", cred, append=append, mode=0o666, umask=umask)
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def close(self) -> None:
        if self.parts:
            self.state.vfs.write(self.path, "".join(self.parts), self.cred, append=True)
            self.parts = []


class Source:
    """What a command reads on standard input."""

    async def read(self) -> str:
        raise NotImplementedError

    async def readline(self) -> str:
        raise NotImplementedError


class StringSource(Source):
    """Fixed input: a pipe's content, a file, or nothing."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.pos = 0

    async def read(self) -> str:
        rest, self.pos = self.text[self.pos :], len(self.text)
        return rest

    async def readline(self) -> str:
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end + 1
        line, self.pos = self.text[self.pos : end], end
        return line


@dataclass
class IO:
    """The three standard streams of a command."""

    stdin: Source
    stdout: Sink
    stderr: Sink
    files: list[FileSink] = field(default_factory=list)

    def copy(self) -> IO:
        return IO(self.stdin, self.stdout, self.stderr)


# --- the shell ---------------------------------------------------------------------------------


class Shell:
    """One shell process on a simulated host."""

    def __init__(
        self,
        state: HostState,
        cred: Cred,
        *,
        name: str = "bash",
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        positional: list[str] | None = None,
        pid: int = 0,
        session: Any = None,
    ) -> None:
        self.state = state
        self.cred = cred
        self.name = name
        self.vars: dict[str, str] = dict(env) if env is not None else state.login_env(cred)
        self.cwd = cwd or self.vars.get("HOME", "/")
        self.positional = positional or [name]
        self.status = 0
        self.pid = pid
        self.session = session  # the SSH session (for faults like drop); None in unit tests
        self.errexit = False
        self.pipefail = False
        self.umask = 0o022
        self._quiet_errexit = 0
        self._line = 1

    # flavour of messages --------------------------------------------------------------------
    @property
    def dash(self) -> bool:
        return self.name == "sh" and self.state.profile.sh == "dash"

    def prefix(self, line: int | None = None) -> str:
        """What the shell puts before its own error messages."""
        line = self._line if line is None else line
        if self.dash:
            return f"{self.name}: {line}: "
        if self.state.profile.bash >= (5, 1):
            return f"{self.name}: line {line}: "
        return f"{self.name}: "

    def child(
        self,
        *,
        cred: Cred | None = None,
        name: str | None = None,
        env: dict[str, str] | None = None,
        positional: list[str] | None = None,
        pid: int = 0,
    ) -> Shell:
        """A new shell process started from this one (``sh -c``, ``sudo``)."""
        shell = Shell(
            self.state,
            cred or self.cred,
            name=name or self.name,
            env=env if env is not None else self.exported(),
            cwd=self.cwd,
            positional=positional,
            pid=pid or self.pid,
            session=self.session,
        )
        shell.umask = self.umask
        return shell

    def exported(self) -> dict[str, str]:
        return dict(self.vars)

    # running --------------------------------------------------------------------------------
    async def run(self, script: str, io: IO) -> int:
        """Parse and run a whole script; ``exit`` ends it. Returns the exit status."""
        try:
            tree = p.parse(script)
        except p.ParseError as exc:
            if self.dash:
                io.stderr.write(f"{self.name}: 1: {exc}\n".replace("`", '"'))
            else:
                io.stderr.write(f"{self.name}: -c: line 1: {exc}\n")
            return 2
        try:
            self.status = await self.exec_node(tree, io)
        except ExitShell as done:
            self.status = done.status
        return self.status

    async def exec_node(self, node: p.Node, io: IO) -> int:
        if isinstance(node, p.Sequence):
            return await self._sequence(node, io)
        if isinstance(node, p.Simple):
            return await self._simple(node, io)
        if isinstance(node, p.Pipeline):
            return await self._pipeline(node, io)
        if isinstance(node, p.AndOr):
            return await self._and_or(node, io)
        return await self._compound(node, io)

    async def _sequence(self, node: p.Sequence, io: IO) -> int:
        status = self.status
        for item in node.items:
            status = await self.exec_node(item, io)
            self.status = status
            if self.errexit and status != 0 and not self._quiet_errexit and _errexit_applies(item):
                raise ExitShell(status)
        return status

    async def _and_or(self, node: p.AndOr, io: IO) -> int:
        self._quiet_errexit += 1
        try:
            status = await self.exec_node(node.first, io)
            self.status = status
            ran_last = not node.rest
            for index, (op, item) in enumerate(node.rest):
                if (op == "&&") == (status == 0):
                    last = index == len(node.rest) - 1
                    if last:
                        self._quiet_errexit -= 1
                    try:
                        status = await self.exec_node(item, io)
                    finally:
                        if last:
                            self._quiet_errexit += 1
                    self.status = status
                    ran_last = last
        finally:
            self._quiet_errexit -= 1
        if self.errexit and status != 0 and ran_last and not self._quiet_errexit:
            raise ExitShell(status)
        return status

    async def _pipeline(self, node: p.Pipeline, io: IO) -> int:
        if node.negate:
            self._quiet_errexit += 1
        try:
            source = io.stdin
            statuses: list[int] = []
            for index, command in enumerate(node.commands):
                last = index == len(node.commands) - 1
                sink: Sink = io.stdout if last else BufferSink()
                status = await self.exec_node(command, IO(source, sink, io.stderr))
                statuses.append(status)
                if not last:
                    assert isinstance(sink, BufferSink)
                    source = StringSource(sink.value())
            status = statuses[-1]
            if self.pipefail:
                status = next((s for s in reversed(statuses) if s), 0)
        finally:
            if node.negate:
                self._quiet_errexit -= 1
        return (0 if status else 1) if node.negate else status

    async def _compound(self, node: p.Node, io: IO) -> int:
        assert isinstance(node, (p.Group, p.If, p.For, p.While))
        try:
            io = await self._redirect(node.redirects, io)
        except _RedirectError as exc:
            io.stderr.write(exc.message)
            return 1
        try:
            if isinstance(node, p.Group):
                if node.subshell:
                    sub = self.child(pid=self.pid)
                    sub.errexit, sub.pipefail = self.errexit, self.pipefail
                    try:
                        return await sub.exec_node(node.body, io)
                    except ExitShell as done:
                        return done.status
                return await self.exec_node(node.body, io)
            if isinstance(node, p.If):
                for cond, body in node.clauses:
                    if await self._condition(cond, io) == 0:
                        return await self.exec_node(body, io)
                return await self.exec_node(node.orelse, io) if node.orelse else 0
            if isinstance(node, p.For):
                values = await self.expand_words(node.words, io) if node.words is not None else self.positional[1:]
                status = 0
                for value in values:
                    self.vars[node.name] = value
                    status = await self.exec_node(node.body, io)
                return status
            status = 0
            while (await self._condition(node.cond, io) == 0) != node.until:
                status = await self.exec_node(node.body, io)
            return status
        finally:
            for sink in io.files:
                sink.close()

    async def _condition(self, cond: p.Sequence, io: IO) -> int:
        self._quiet_errexit += 1
        try:
            return await self.exec_node(cond, io)
        finally:
            self._quiet_errexit -= 1

    async def _simple(self, node: p.Simple, io: IO) -> int:
        self._line = node.line
        try:
            argv = await self.expand_words(node.words, io)
        except _ExpansionError as exc:
            io.stderr.write(exc.message)
            return 1
        assigns = {name: await self.expand_single(word, io) for name, word in node.assigns}
        if not argv:
            self.vars.update(assigns)
            status = self.status if any(_has_cmd(w) for _, w in node.assigns) else 0
            if node.redirects:
                try:
                    redirected = await self._redirect(node.redirects, io)
                except _RedirectError as exc:
                    io.stderr.write(exc.message)
                    return 1
                for sink in redirected.files:
                    sink.close()
            return status
        try:
            cmd_io = await self._redirect(node.redirects, io)
        except _RedirectError as exc:
            io.stderr.write(exc.message)
            return 1
        try:
            env = {**self.exported(), **assigns} if assigns else None
            return await self.run_argv(argv, cmd_io, env=env)
        finally:
            for sink in cmd_io.files:
                sink.close()

    async def run_argv(
        self, argv: list[str], io: IO, *, env: dict[str, str] | None = None, cred: Cred | None = None
    ) -> int:
        """Run one command line (already expanded) with this shell's or the given environment."""
        name = argv[0]
        # Time-driven events (a quarantine that is due) land before the next command looks.
        self.state.tick()
        self.state.exec_log.append(list(argv))
        spec = self.resolve(name)
        if spec is None:
            return self._not_found(name, io)
        ctx = Ctx(
            shell=self,
            argv=argv,
            io=io,
            env=env if env is not None else self.exported(),
            cred=cred or self.cred,
            spec=spec,
        )
        if spec.builtin:
            return await spec.func(ctx)
        proc = self.state.spawn(ctx.cred, argv, ppid=self.pid)
        ctx.pid = proc.pid
        try:
            return await spec.func(ctx)
        finally:
            self.state.reap(proc.pid)

    def resolve(self, name: str) -> CommandSpec | None:
        """The command a name runs on this host (by name, or by a path that exists)."""
        if "/" in name:
            path = normpath(self.cwd, name)
            return self.state.command_at(path)
        spec = REGISTRY.get(name)
        if spec is None or not spec.available(self.state):
            return None
        if spec.path and posixpath.dirname(spec.path) not in _PATH_DIRS:
            return None  # installed off the PATH (/usr/libexec/platform-python): only by its path
        return spec

    def _not_found(self, name: str, io: IO) -> int:
        if "/" in name:
            path = normpath(self.cwd, name)
            try:
                node = self.state.vfs.stat(path)
                reason = "Is a directory" if node.kind == "d" else "Permission denied"
                io.stderr.write(f"{self.prefix()}{name}: {reason}\n")
                return 126
            except FSError:
                pass
            io.stderr.write(f"{self.prefix()}{name}: {'not found' if self.dash else 'No such file or directory'}\n")
            return 127
        io.stderr.write(f"{self.prefix()}{name}: {'not found' if self.dash else 'command not found'}\n")
        return 127

    # redirections ---------------------------------------------------------------------------
    async def _redirect(self, redirects: list[p.Redirect], io: IO) -> IO:
        if not redirects:
            return io
        fds: dict[int, Any] = {0: io.stdin, 1: io.stdout, 2: io.stderr}
        new = io.copy()
        for r in redirects:
            target = await self.expand_single(r.target, io)
            if r.op in (">&", "<&"):
                if target == "-":
                    fds[r.fd] = NullSink() if r.fd else StringSource("")
                elif target.isdigit() and int(target) in fds:
                    fds[r.fd] = fds[int(target)]
                elif r.op == ">&" and not target.isdigit():
                    sink = self._open_sink(target, False, new)
                    fds[1] = fds[2] = sink
                else:
                    raise _RedirectError(f"{self.prefix()}{target}: Bad file descriptor\n")
            elif r.op in ("<<", "<<-"):
                raise _RedirectError(f"{self.prefix()}here-documents are not supported by the simulator\n")
            elif r.op in ("<", "<>"):
                fds[r.fd] = self._open_source(target)
            elif r.op == "&>":
                sink = self._open_sink(target, False, new)
                fds[1] = fds[2] = sink
            else:
                fds[r.fd] = self._open_sink(target, r.op == ">>", new)
        new.stdin = fds[0] if isinstance(fds[0], Source) else StringSource("")
        new.stdout = fds[1] if isinstance(fds[1], Sink) else NullSink()
        new.stderr = fds[2] if isinstance(fds[2], Sink) else NullSink()
        return new

    def _open_sink(self, target: str, append: bool, io: IO) -> Sink:
        if target in ("/dev/null", "/dev/zero"):
            return NullSink()
        if target in ("/dev/stdout", "/dev/fd/1"):
            return io.stdout
        if target in ("/dev/stderr", "/dev/fd/2"):
            return io.stderr
        path = normpath(self.cwd, target)
        try:
            sink = FileSink(self.state, self.cred, path, append, self.umask)
        except FSError as exc:
            if self.dash:
                raise _RedirectError(f"{self.prefix()}cannot create {target}: {exc.reason}\n") from exc
            raise _RedirectError(f"{self.prefix()}{target}: {exc.reason}\n") from exc
        io.files.append(sink)
        return sink

    def _open_source(self, target: str) -> Source:
        if target in ("/dev/null", "/dev/zero"):
            return StringSource("")
        try:
            return StringSource(self.state.vfs.read(normpath(self.cwd, target), self.cred))
        except FSError as exc:
            if self.dash:
                raise _RedirectError(f"{self.prefix()}cannot open {target}: {exc.dash_reason}\n") from exc
            raise _RedirectError(f"{self.prefix()}{target}: {exc.reason}\n") from exc

    # expansion ------------------------------------------------------------------------------
    async def expand_words(self, words: list[p.Word], io: IO) -> list[str]:
        out: list[str] = []
        for word in words:
            out.extend(await self._expand(word, io))
        return out

    async def expand_single(self, word: p.Word, io: IO) -> str:
        chunks = await self._chunks(word, io)
        return "".join(text for text, _, _ in chunks)

    async def _chunks(self, word: p.Word, io: IO) -> list[tuple[str, bool, bool]]:
        """(text, quoted, splittable) for each part of a word, expansions done."""
        chunks: list[tuple[str, bool, bool]] = []
        for part in word.parts:
            if part.kind == "lit":
                chunks.append((part.text, part.quoted, False))
            elif part.kind == "tilde":
                home = self.vars.get("HOME", "/root") if not part.text else self.state.home_of(part.text)
                chunks.append((home or "~" + part.text, True, False))
            elif part.kind == "var":
                chunks.append((self._param(part.text), part.quoted, not part.quoted))
            elif part.kind == "arith":
                chunks.append((self._arith(part.text), part.quoted, not part.quoted))
            else:
                sub = self.child(pid=self.pid)
                buffer = BufferSink()
                status = await sub.run(part.text, IO(StringSource(""), buffer, io.stderr))
                self.status = status
                chunks.append((buffer.value().rstrip("\n"), part.quoted, not part.quoted))
        return chunks

    async def _expand(self, word: p.Word, io: IO) -> list[str]:
        chunks = await self._chunks(word, io)
        ifs = self.vars.get("IFS", " \t\n")
        fields: list[list[tuple[str, bool]]] = []
        current: list[tuple[str, bool]] = []
        has_content = False
        for text, quoted, splittable in chunks:
            if not splittable:
                current.append((text, quoted))
                has_content = has_content or quoted or bool(text)
                continue
            pieces = re.split(f"[{re.escape(ifs)}]+", text) if ifs else [text]
            for index, piece in enumerate(pieces):
                if index > 0 and (current or has_content):
                    fields.append(current)
                    current, has_content = [], False
                if piece:
                    current.append((piece, False))
                    has_content = True
        if current or has_content:
            fields.append(current)
        out: list[str] = []
        for chunks_of_field in fields:
            out.extend(self._glob(chunks_of_field))
        return out

    def _glob(self, chunks: list[tuple[str, bool]]) -> list[str]:
        text = "".join(t for t, _ in chunks)
        if not any(not quoted and any(c in t for c in "*?[") for t, quoted in chunks):
            return [text]
        pattern = "".join(
            t if not quoted else "".join(f"[{c}]" if c in "*?[]" else c for c in t) for t, quoted in chunks
        )
        matches = self.state.vfs.glob(pattern, self.cwd, self.cred)
        return matches or [text]

    def _param(self, expr: str) -> str:
        if expr.startswith("#") and len(expr) > 1:
            return str(len(self._param(expr[1:])))
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*|\d+|[?$#@*!-])(?::?([-=+?])(.*))?", expr, re.S)
        if not match:
            return ""
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        value = self._lookup(name)
        colon = ":" in expr[len(name) : len(name) + 1]
        unset = value is None or (colon and value == "")
        if op == "-":
            return arg if unset else value or ""
        if op == "=":
            if unset:
                self.vars[name] = arg
                return arg
            return value or ""
        if op == "+":
            return "" if unset else arg
        return value or ""

    def _lookup(self, name: str) -> str | None:
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(self.pid)
        if name == "#":
            return str(len(self.positional) - 1)
        if name in ("@", "*"):
            return " ".join(self.positional[1:])
        if name == "!":
            return ""
        if name == "-":
            return "hB" if not self.errexit else "ehB"
        if name.isdigit():
            index = int(name)
            return self.positional[index] if index < len(self.positional) else None
        return self.vars.get(name)

    def _arith(self, expr: str) -> str:
        text = re.sub(r"\$?([A-Za-z_][A-Za-z0-9_]*)", lambda m: self.vars.get(m.group(1), "0") or "0", expr)
        if not re.fullmatch(r"[\d\s+\-*/%()<>=!&|]*", text):
            return "0"
        text = text.replace("/", "//").replace("&&", " and ").replace("||", " or ")
        try:
            return str(int(eval(text, {"__builtins__": {}}, {})))  # noqa: S307 - digits and operators only
        except Exception:
            return "0"


class _RedirectError(Exception):
    """A redirection that could not be set up; ``message`` is what the shell prints."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _ExpansionError(_RedirectError):
    """A word that could not be expanded."""


def _has_cmd(word: p.Word) -> bool:
    return any(part.kind == "cmd" for part in word.parts)


def _errexit_applies(node: p.Node) -> bool:
    # And-or lists decide for themselves; a negated pipeline never triggers errexit.
    return not isinstance(node, p.AndOr) and not (isinstance(node, p.Pipeline) and node.negate)
