"""The simulated fleet: one asyncssh listener per host on consecutive loopback ports, in one process.

``SimFleet(count, faults=..., seed=..., time_scale=...)`` then ``await fleet.start()`` (or
``fleet.start_in_thread()`` from synchronous code). Host ``i`` is ``fleet.hosts[i]`` and listens
on ``fleet.hosts[i].port`` (``base_port + i``); fault specs use these 0-based indexes (see
``hosts/sim/faults.py``). Faults can be changed while the fleet runs with ``set_faults`` and
``clear_faults``.

``time_scale`` is real seconds per simulated second: at 0.02 ``sleep 2`` takes 40 ms, a ``slow=2.5``
host adds 50 ms, ``curl --max-time 10`` against a dropped network gives up after 0.2 s, and the
hosts' clocks (uptime, /proc/stat, process ages) run fifty times faster. ``timeout N`` is the
exception: it counts real seconds, as the client that sent it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from hosts.sim import commands  # noqa: F401 - registers every command
from hosts.sim.faults import HostFaults, parse_host_faults, parse_spec
from hosts.sim.keys import client_key, derive_key, fleet_secret, public_line
from hosts.sim.profiles import PROFILES, Profile, assign_profile
from hosts.sim.shell import IO, Shell, Sink, Source
from hosts.sim.state import HostSpec, HostState, SimClock, make_spec

T = TypeVar("T")
logger = logging.getLogger(__name__)
LOGIN_USERS = ("root", "deploy")
MAX_SESSIONS = 10  # OpenSSH's MaxSessions default
_FLOOD_LINE = "Welcome to the production estate. Unauthorised access is prohibited and will be prosecuted.\n"


class SimHost:
    """One simulated host: where it listens, who it is, its keys, faults and what it was asked."""

    def __init__(self, fleet: SimFleet, index: int, port: int, spec: HostSpec, user: str) -> None:
        self.fleet = fleet
        self.index = index
        self.port = port
        self.address = fleet.address
        self.spec = spec
        self.user = user
        self.faults: HostFaults = {}
        self.command_log: list[str] = []
        self.connections_accepted = 0
        self.auth_successes = 0
        self._key = derive_key(fleet.secret, index, "host")
        self._alt_key: asyncssh.SSHKey | None = None
        self.host_key = public_line(self._key)
        self._state: HostState | None = None
        self._state_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._listening = False
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.served = True  # False: another process of the fleet serves this host (``keep_only``)

    def __repr__(self) -> str:
        return f"<SimHost {self.index} {self.hostname} {self.address}:{self.port} {self.profile}>"

    @property
    def hostname(self) -> str:
        return self.spec.hostname

    @property
    def profile(self) -> str:
        return self.spec.profile.name

    @property
    def tags(self) -> list[str]:
        return ["sim", self.spec.profile.short, self.spec.role]

    @property
    def state(self) -> HostState:
        """The host's files, processes and agent (built on first use)."""
        if self._state is None:
            with self._state_lock:
                if self._state is None:
                    self._state = HostState(self.spec, self.fleet.clock, lambda: self.faults)
        return self._state

    def reset_state(self) -> None:
        """Forget everything commands changed (files, agent): the host as freshly built."""
        with self._state_lock:
            self._state = None

    @property
    def presented_key(self) -> asyncssh.SSHKey:
        if self.faults.get("host-key"):
            if self._alt_key is None:
                self._alt_key = derive_key(self.fleet.secret, self.index, "rekeyed")
            return self._alt_key
        return self._key

    @property
    def presented_host_key(self) -> str:
        """The public key the host shows right now (differs from ``host_key`` under the host-key fault)."""
        return public_line(self.presented_key)


class SimFleet:
    """N simulated RHEL-family hosts behind real SSH on 127.0.0.1."""

    def __init__(
        self,
        count: int,
        *,
        faults: str = "",
        base_port: int = 0,
        seed: int = 0,
        time_scale: float = 1.0,
        client_keys: list[str] | None = None,
        password: str | None = None,
        state_dir: Path | None = None,
        profiles: list[str] | None = None,
        address: str = "127.0.0.1",
        deploy_every: int = 5,
    ) -> None:
        if count < 1:
            raise ValueError("a fleet needs at least one host")
        unknown = [p for p in profiles or [] if p not in PROFILES]
        if unknown:
            raise ValueError(f"unknown profiles {unknown}; known: {', '.join(PROFILES)}")
        self.count = count
        self.seed = seed
        self.base_port = base_port
        self.address = address
        self.password = password
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.clock = SimClock(time_scale)
        self.secret = fleet_secret(seed, self.state_dir)
        self.initial_faults = parse_spec(faults, count=count, seed=seed)
        self._profiles = profiles
        self.deploy_every = deploy_every
        self.client_private_key: str | None = None
        self.client_public_key: str | None = None
        self._authorized: set[bytes] = set()
        if client_keys:
            for line in client_keys:
                self._authorized.add(asyncssh.import_public_key(line).public_data)
        else:
            key, self.client_private_key = client_key(self.state_dir)
            self.client_public_key = public_line(key, "mdefleet-sim")
            self._authorized.add(key.public_data)
        self.hosts: list[SimHost] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # lifecycle --------------------------------------------------------------------------------
    def profile_for(self, index: int) -> Profile:
        if self._profiles:
            return PROFILES[self._profiles[index % len(self._profiles)]]
        return assign_profile(self.seed, index)

    def bind(self) -> None:
        """Bind every host's port and make its :class:`SimHost` (``start`` does it when not done yet)."""
        if self.hosts:
            return
        socks = _bind_consecutive(self.address, self.count, self.base_port)
        self.base_port = socks[0].getsockname()[1]
        for index, sock in enumerate(socks):
            spec = make_spec(self.seed, index, self.profile_for(index), self.count)
            deploy = self.deploy_every > 0 and index % self.deploy_every == self.deploy_every - 1
            host = SimHost(self, index, sock.getsockname()[1], spec, "deploy" if deploy else "root")
            host.faults = dict(self.initial_faults.get(index, {}))
            host._sock = sock
            self.hosts.append(host)

    def keep_only(self, indexes: set[int]) -> None:
        """Serve only these hosts from this process (after ``bind``, before ``start``); another
        process, forked after ``bind``, serves the rest on the sockets it inherited."""
        for host in self.hosts:
            if host.index not in indexes:
                host.served = False
                if host._sock is not None:
                    host._sock.close()
                    host._sock = None

    async def start(self) -> None:
        """Bind the ports and start listening (unreachable hosts only reserve theirs)."""
        self.loop = asyncio.get_running_loop()
        self.bind()
        # Listening sockets queue connections at once; asyncssh starts accepting just after.
        await asyncio.gather(*(self._sync_listener(host) for host in self.hosts if host.served))

    async def stop(self) -> None:
        for host in self.hosts:
            for conn in list(host.connections):
                conn.abort()
            if host._acceptor is not None:
                host._acceptor.close()
                host._acceptor = None
            if host._sock is not None:
                host._sock.close()
                host._sock = None
            host._listening = False

    def start_in_thread(self) -> SimFleet:
        """Run the fleet on its own event loop in a daemon thread (for sync callers)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()

        self._thread = threading.Thread(target=run, name="simfleet", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._thread is None or self.loop is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the fleet's loop from another thread and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    # faults -----------------------------------------------------------------------------------
    def set_faults(self, index: int, faults: str | dict[str, Any] | list[str]) -> None:
        """Replace host ``index``'s faults (``"slow=2,auth"``, a list, or ``{"slow": 2}``)."""
        self.hosts[index].faults = parse_host_faults(faults)
        self._apply(self.hosts[index])

    def add_fault(self, index: int, name: str, value: Any = True) -> None:
        faults = dict(self.hosts[index].faults)
        faults.update(parse_host_faults({name: value}))
        self.hosts[index].faults = faults
        self._apply(self.hosts[index])

    def clear_faults(self, index: int | None = None) -> None:
        """Lift every fault of one host (or of all hosts)."""
        for host in self.hosts if index is None else [self.hosts[index]]:
            host.faults = {}
            self._apply(host)

    def reset(self) -> None:
        """Faults back to the initial spec, every host's state, logs and counters forgotten."""
        for host in self.hosts:
            host.faults = dict(self.initial_faults.get(host.index, {}))
            host.reset_state()
            host.command_log.clear()
            host.connections_accepted = host.auth_successes = 0
            self._apply(host)

    def _apply(self, host: SimHost) -> None:
        if self.loop is None or not host.served:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.loop.create_task(self._sync_listener(host))
        else:
            self.call(self._sync_listener(host))

    async def _sync_listener(self, host: SimHost) -> None:
        """Make the listener match the faults: none when unreachable, the right key otherwise."""
        if host.faults.get("unreachable"):
            if host._listening:
                host._listening = False
                for conn in list(host.connections):
                    conn.abort()
                if host._acceptor is not None:
                    host._acceptor.close()
                    host._acceptor = None
                # Keep the port reserved but not listening: connections are refused.
                host._sock = _bind(self.address, host.port)
            return
        if host._listening:
            if host._acceptor is not None:
                host._acceptor.update(server_host_keys=[host.presented_key])
            return
        if host._sock is None:
            host._sock = _bind(self.address, host.port)
        sock, host._sock = host._sock, None
        sock.listen(128)
        host._listening = True
        host._acceptor = await asyncssh.listen(
            sock=sock,
            server_factory=lambda: SimSSHServer(host),
            server_host_keys=[host.presented_key],
            encoding=None,
            allow_scp=False,
            server_version=host.spec.profile.ssh_version,
            login_timeout=60,
        )

    # inventory --------------------------------------------------------------------------------
    def inventory(self, credential: str = "sim-fleet") -> list[dict[str, Any]]:
        """One record per host, as the product imports them (host_key is the key to pin)."""
        return [
            {
                "name": host.hostname,
                "address": host.address,
                "port": host.port,
                "user": host.user,
                "credential": credential,
                "tags": host.tags,
                "host_key": host.host_key,
                "use_sudo": host.user != "root",
            }
            for host in self.hosts
        ]

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, index: int) -> SimHost:
        return self.hosts[index]


def _bind(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.setblocking(False)
    return sock


def _bind_consecutive(address: str, count: int, base_port: int) -> list[socket.socket]:
    """``count`` sockets bound to consecutive ports from ``base_port`` (0: find a free range)."""
    if base_port:
        socks: list[socket.socket] = []
        try:
            for offset in range(count):
                socks.append(_bind(address, base_port + offset))
        except OSError as exc:
            for sock in socks:
                sock.close()
            raise OSError(exc.errno, f"port {base_port + len(socks)} is not free: {exc.strerror}") from exc
        return socks
    # Below the kernel's ephemeral range (32768-60999 by default), so client source ports never collide.
    low, high = (10000, 32767) if count < 20000 else (1024, 65535)
    rng = random.Random()
    for _ in range(200):
        start = rng.randint(low, max(low, high - count))
        socks = []
        try:
            for offset in range(count):
                socks.append(_bind(address, start + offset))
            return socks
        except OSError:
            for sock in socks:
                sock.close()
    raise OSError(f"no {count} consecutive free ports found on {address}")


class SimSSHServer(asyncssh.SSHServer):
    """One SSH connection to a simulated host: authentication and session admission."""

    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.conn: asyncssh.SSHServerConnection | None = None
        self.sessions = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.host.connections_accepted += 1
        self.host.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.host.connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = (
            not self.host.faults.get("auth")
            and username in LOGIN_USERS
            and key.public_data in self.host.fleet._authorized
        )
        self.host.auth_successes += ok
        return ok

    def password_auth_supported(self) -> bool:
        return self.host.fleet.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        ok = not self.host.faults.get("auth") and username in LOGIN_USERS and password == self.host.fleet.password
        self.host.auth_successes += ok
        return ok

    def session_requested(self) -> asyncssh.SSHServerSession | bool:
        if self.sessions >= MAX_SESSIONS:
            return False
        assert self.conn is not None
        self.sessions += 1
        return SimSession(self, str(self.conn.get_extra_info("username")))


class ChannelSink(Sink):
    """stdout or stderr of the SSH channel (text re-encoded with surrogateescape, so raw bytes survive)."""

    def __init__(self, chan: Any, session: SimSession, stderr: bool) -> None:
        self.chan, self.session, self.stderr = chan, session, stderr
        # Writes made before the command next yields go out as one channel write (one SSH packet,
        # not one per line): output still streams whenever the command waits.
        self._pending: list[bytes] = []

    def write(self, text: str) -> None:
        if not text or self.session.closed:
            return
        data = text.encode("utf-8", "surrogateescape")
        if self.session.holding:
            self.session.held.append((self.stderr, data))
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Send what was written so far (before the exit status, and on the next loop turn)."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self.session.closed:
                self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            if self.stderr:
                self.chan.write_stderr(data)
            else:
                self.chan.write(data)
        except (BrokenPipeError, ConnectionError, asyncssh.Error, OSError):
            self.session.closed = True

    async def drain(self) -> None:
        self.flush()
        await self.session.writable.wait()


class ChannelSource(Source):
    """stdin of the SSH channel: data arrives until the client sends EOF."""

    def __init__(self) -> None:
        self.buffer = b""
        self.eof = False
        self.changed = asyncio.Event()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        self.changed.set()

    def close(self) -> None:
        self.eof = True
        self.changed.set()

    async def read(self) -> str:
        while not self.eof:
            self.changed.clear()
            await self.changed.wait()
        data, self.buffer = self.buffer, b""
        return data.decode("utf-8", "surrogateescape")

    async def readline(self) -> str:
        while b"\n" not in self.buffer and not self.eof:
            self.changed.clear()
            await self.changed.wait()
        line, sep, rest = self.buffer.partition(b"\n")
        self.buffer = rest
        return (line + sep).decode("utf-8", "surrogateescape")


class SimSession(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    """One exec (or shell) request: runs the command through the mini shell, with the host's faults."""

    def __init__(self, server: SimSSHServer, username: str) -> None:
        self.server = server
        self.host = server.host
        self.username = username
        self.command: str | None = None
        self.stdin = ChannelSource()
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = False
        self.holding = False  # under the drop fault, output is held back and cut short
        self.held: list[tuple[bool, bytes]] = []
        self.chan: Any = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        self.task = asyncio.ensure_future(self.run())

    def data_received(self, data: bytes, datatype: Any) -> None:
        self.stdin.feed(data)

    def eof_received(self) -> bool:
        self.stdin.close()
        return True  # keep the channel half open: the command may still write

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def signal_received(self, signal: str) -> None:
        if self.task is not None:
            self.task.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.sessions -= 1
        self.stdin.close()
        self.writable.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def run(self) -> None:
        host, fleet = self.host, self.host.fleet
        command = self.command
        if command is None:  # `ssh host < script`: the script comes on stdin
            command = await self.stdin.read()
            self.stdin = ChannelSource()
            self.stdin.close()
        host.command_log.append(command)
        faults = host.faults
        procs: list[int] = []
        sinks: list[ChannelSink] = []
        state: HostState | None = None
        try:
            if faults.get("slow"):
                await fleet.clock.sleep(float(faults["slow"]))
            if faults.get("hang"):
                await asyncio.Event().wait()  # until the client closes the channel
            state = host.state
            cred = state.cred(self.username)
            sshd = next((p.pid for p in state.machine.procs if p.comm == "sshd" and p.ppid == 1), 1)
            root = state.cred("root")
            procs.append(state.spawn(root, [f"sshd: {self.username}@notty"], sshd, comm="sshd").pid)
            shell_proc = state.spawn(cred, ["bash", "-c", command], procs[0])
            procs.append(shell_proc.pid)
            out, err = ChannelSink(self.chan, self, False), ChannelSink(self.chan, self, True)
            sinks.extend((out, err))
            self.holding = bool(faults.get("drop"))
            if faults.get("flood"):
                await self._flood(out, float(faults["flood"]))
            shell = Shell(state, cred, name="bash", pid=shell_proc.pid, session=self)
            status = await shell.run(command, IO(self.stdin, out, err))
            if self.holding:
                self._drop()
                return
            err.flush()
            await out.drain()
            if not self.closed:
                self.chan.exit(status)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            # A simulator bug must not look like a hung host: report it and end the command.
            logger.exception("simulated host %s failed on %r", host.hostname, command)
            for sink in sinks:
                sink.flush()
            if not self.closed:
                self.chan.write_stderr(f"mdefleet-sim: internal error: {exc!r}\n".encode())
                self.chan.exit(255)
        finally:
            if state is not None:
                for pid in procs:
                    state.reap(pid)

    async def _flood(self, out: ChannelSink, megabytes: float) -> None:
        # A login script that prints a banner in a loop: MB of text before the command's own output.
        per_block = 65536 // len(_FLOOD_LINE)
        lines = -(-int(megabytes * 1024 * 1024) // len(_FLOOD_LINE))  # whole lines: the banner ends in a newline
        while lines > 0 and not self.closed:
            count = min(per_block, lines)
            out.write(_FLOOD_LINE * count)
            lines -= count
            await out.drain()

    def _drop(self) -> None:
        """Send part of the output, then cut the TCP connection without an exit status."""
        data = b"".join(chunk for is_err, chunk in self.held if not is_err)
        if data:
            with contextlib.suppress(Exception):
                self.chan.write(data[: max(1, len(data) // 2)])
        conn = self.server.conn
        if conn is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(0.01, conn.abort)
