"""The one module that touches the network: an SSH session per host over asyncssh.

One :class:`HostSession` holds one connection per host for all of its commands. The host key is
checked against the pinned key only, authentication uses only the credential given (no agent, no
``~/.ssh``), and every command is bounded on the host itself so that giving up locally never
leaves a process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import shlex
import socket
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import asyncssh
from asyncssh.encryption import get_default_encryption_algs
from asyncssh.public_key import get_default_public_key_algs

logger = logging.getLogger(__name__)

# Seconds coreutils `timeout` waits after its TERM before it sends KILL to the command's group.
REMOTE_KILL_AFTER = 5
# Seconds the local wait outlives the remote bound, so the host's `timeout` normally reports first.
LOCAL_GRACE = 2.0
# Seconds we wait for a peer to acknowledge a channel or connection close before moving on.
CLOSE_WAIT = 2.0
# Exit statuses of coreutils `timeout` when it had to stop the command (after TERM, after KILL).
TIMEOUT_EXIT_STATUSES = (124, 137)
# Keepalives missed in a row before the connection counts as lost.
KEEPALIVE_COUNT_MAX = 3
# Ciphers asked for first. asyncssh's default, chacha20-poly1305, builds a cipher object per packet:
# measured at a third more CPU per host (client and server) than AES-GCM, which every OpenSSH since
# 6.2 offers. Older servers still agree on one of the defaults that follow.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class SSHFailure(Exception):
    """A host could not be used; ``kind`` is one of the constants below, ``str()`` a clear reason."""

    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    AUTH = "auth"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    CONNECTION_LOST = "connection_lost"
    PROTOCOL = "protocol"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __repr__(self) -> str:
        return f"SSHFailure({self.kind!r}, {str(self)!r})"


@dataclass(frozen=True)
class Secret:
    """Decrypted credential material, only ever held in memory for the session."""

    private_key: str = ""
    passphrase: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never leak secrets through logs or tracebacks
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class Target:
    """Where and how to connect to one host."""

    host_id: int
    address: str
    port: int
    username: str
    secret: Secret
    host_key: str = ""  # pinned OpenSSH public key line; empty = refuse to connect (unless TOFU fetch)
    use_sudo: bool = True

    @property
    def label(self) -> str:
        return f"{self.username}@{self.address}:{self.port}"


@dataclass
class CommandResult:
    """What one remote command did."""

    command: str
    exit_status: int | None
    stdout: str
    stderr: str
    duration_ms: int
    truncated: bool = False
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def combined(self) -> str:
        """stdout then stderr, for showing to a person."""
        if self.stderr:
            return f"{self.stdout}\n--- stderr ---\n{self.stderr}" if self.stdout else self.stderr
        return self.stdout


def remote_seconds(timeout: float) -> int:
    """Whole seconds (at least one) given to the host's `timeout` for a command bound of ``timeout``."""
    return max(1, math.ceil(timeout))


def wrap_command(command: str, *, use_sudo: bool, username: str, remote_timeout: float | None) -> str:
    """The command as sent: under ``sudo -n`` when needed and bounded on the host by coreutils `timeout`.

    The command travels as one ``shlex.quote``-d argument of ``sh -c``, so nothing in it is
    interpreted by the login shell, sudo or timeout. `timeout` runs inside sudo so that it has
    the privilege to signal what the command started. Without ``--foreground`` it puts itself in
    a new process group and signals the whole group, so pipelines and children die with the
    command: TERM at the bound, KILL ``REMOTE_KILL_AFTER`` seconds later. That holds even if our
    connection is gone, which no signal sent over SSH can promise.
    """
    if not command.strip():
        raise ValueError("empty command")
    argv: list[str] = []
    if use_sudo and username != "root":
        # -n: fail at once ("a password is required") instead of waiting for a prompt nobody sees.
        argv += ["sudo", "-n"]
    if remote_timeout is not None:
        argv += ["timeout", f"--kill-after={REMOTE_KILL_AFTER}", str(remote_seconds(remote_timeout))]
    if not argv:
        return command
    return shlex.join([*argv, "sh", "-c", command])


def key_fingerprint(key: str | asyncssh.SSHKey) -> str:
    """SHA256 fingerprint of a public key (an OpenSSH line or a loaded key), or '' if unreadable."""
    try:
        loaded = asyncssh.import_public_key(key.strip()) if isinstance(key, str) else key
    except (asyncssh.KeyImportError, ValueError):
        return ""
    return loaded.get_fingerprint("sha256")


class _CappedBuffer:
    """Keeps the first ``limit`` bytes of a stream and counts the rest without storing it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._kept = 0
        self._chunks: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - self._kept
        if room > 0:
            piece = data[:room]
            self._chunks.append(piece)
            self._kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total > self._kept

    def text(self) -> str:
        # Hosts may print anything; a cut at the cap may also split a character. NUL is valid
        # UTF-8 but PostgreSQL text and jsonb refuse it: one such byte would fail the whole batch.
        return b"".join(self._chunks).decode("utf-8", errors="replace").replace("\x00", "\ufffd")


class _CommandSession(asyncssh.SSHClientSession[bytes]):
    """Collects one command's stdout and stderr, capped, and how the channel ended."""

    def __init__(self, limit: int) -> None:
        self.stdout = _CappedBuffer(limit)
        self.stderr = _CappedBuffer(limit)
        self.error: Exception | None = None

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        # Draining past the cap (instead of closing) lets the command finish and report its status;
        # the host-side `timeout` bounds how long a chatty command can keep us reading.
        buffer = self.stderr if datatype == asyncssh.EXTENDED_DATA_STDERR else self.stdout
        buffer.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = exc


class _PinnedHostClient(asyncssh.SSHClient):
    """Remembers the key a host presented when it is not the pinned one, to name it in the error."""

    def __init__(self) -> None:
        self.presented: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        # asyncssh asks here only for keys outside known_hosts: the answer is always no.
        self.presented = key
        return False


class HostSession:
    """One SSH connection to one host, reused for every command of the host's run.

    Use as ``async with HostSession(target, ...) as session: await session.run(...)``.
    """

    def __init__(
        self,
        target: Target,
        *,
        connect_timeout: float,
        command_timeout: float,
        keepalive: int = 15,
        max_output: int = 65536,
        handshakes: asyncio.Semaphore | None = None,
    ) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.keepalive = keepalive
        self.max_output = max_output
        self._handshakes = handshakes
        self._conn: asyncssh.SSHClientConnection | None = None
        # Steps run in order; one channel at a time also stays far below OpenSSH's MaxSessions (10).
        self._channel_lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"HostSession({self.target.label}, {state})"

    async def __aenter__(self) -> HostSession:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection: pinned host key only, the target's credential only."""
        if self._conn is not None:
            return
        target = self.target
        pinned = _pinned_key(target)
        client_keys = _client_keys(target)
        client = _PinnedHostClient()
        # Only the handshake holds the semaphore: it bounds handshakes in flight, not open sessions.
        gate: contextlib.AbstractAsyncContextManager[Any] = self._handshakes or contextlib.nullcontext()
        async with gate:
            try:
                self._conn = await asyncssh.connect(
                    target.address,
                    target.port,
                    client_factory=lambda: client,
                    username=target.username,
                    # Trust exactly the pinned key, by key rather than by host pattern, so a host
                    # reached by another name or port is still checked against the same key.
                    known_hosts=([pinned], [], []),
                    server_host_key_algs=_host_key_algs(pinned),
                    encryption_algs=encryption_algs(),
                    # Nothing from the worker's own ~/.ssh: no config, CA bundle, agent or default keys.
                    config=None,
                    x509_trusted_certs=None,
                    x509_trusted_cert_paths=[],
                    client_keys=client_keys,
                    password=target.secret.password or None,
                    agent_path=None,
                    agent_forwarding=False,
                    pkcs11_provider=None,
                    client_host_keysign=False,
                    host_based_auth=False,
                    gss_kex=False,
                    gss_auth=False,
                    canonicalize_hostname=False,
                    request_pty=False,
                    x11_forwarding=False,
                    connect_timeout=self.connect_timeout,
                    login_timeout=self.connect_timeout,
                    keepalive_interval=self.keepalive,
                    keepalive_count_max=KEEPALIVE_COUNT_MAX,
                )
            except (asyncssh.Error, OSError) as exc:
                raise _connect_failure(exc, target, pinned, client, self.connect_timeout) from None
        logger.debug("ssh: connected to %s", target.label)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.close()
        with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
            async with asyncio.timeout(CLOSE_WAIT):
                await conn.wait_closed()

    async def run(self, command: str, *, stdin: str | None = None, timeout: float | None = None) -> CommandResult:
        """Run one command; a non-zero exit is a result, only losing the host raises :class:`SSHFailure`."""
        conn = self._require_connection()
        target = self.target
        bound = remote_seconds(self.command_timeout if timeout is None else timeout)
        wrapped = wrap_command(command, use_sudo=target.use_sudo, username=target.username, remote_timeout=bound)
        async with self._channel_lock:
            started = time.monotonic()
            try:
                channel, session = await conn.create_session(
                    lambda: _CommandSession(self.max_output), wrapped, encoding=None
                )
            except asyncssh.ChannelOpenError as exc:
                if conn.is_closed():
                    raise SSHFailure(SSHFailure.CONNECTION_LOST, f"connection to {target.label} was lost") from None
                raise SSHFailure(
                    SSHFailure.PROTOCOL, f"{target.label} refused to start the command: {exc.reason}"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise SSHFailure(
                    SSHFailure.CONNECTION_LOST, f"connection to {target.label} was lost: {_reason(exc)}"
                ) from None
            timed_out = False
            try:
                # A command may exit before reading its input; what it did not read is not an error.
                with contextlib.suppress(BrokenPipeError):
                    if stdin is not None:
                        channel.write(stdin.encode("utf-8"))
                    # EOF even without stdin: a command that reads (cat, rpm --import -) must not wait.
                    channel.write_eof()
                async with asyncio.timeout(bound + LOCAL_GRACE):
                    await channel.wait_closed()
            except TimeoutError:
                timed_out = True
                await _abandon(channel)
            except BaseException:
                # Cancelled (rollout aborted, worker shutting down): do not leave the command running.
                _stop(channel)
                raise
            elapsed = time.monotonic() - started

        status = None if timed_out else _exit_status(channel)
        if session.error is not None and status is None and not timed_out:
            raise SSHFailure(
                SSHFailure.CONNECTION_LOST,
                f"connection to {target.label} was lost during the command: {_reason(session.error)}",
            )
        if status in TIMEOUT_EXIT_STATUSES and elapsed >= bound:
            # The host's `timeout` stopped it: the status is timeout's, not the command's.
            timed_out, status = True, None
        return CommandResult(
            command=command,
            exit_status=status,
            stdout=session.stdout.text(),
            stderr=session.stderr.text(),
            duration_ms=int(elapsed * 1000),
            truncated=session.stdout.truncated or session.stderr.truncated,
            timed_out=timed_out,
        )

    def _require_connection(self) -> asyncssh.SSHClientConnection:
        if self._conn is None:
            raise RuntimeError("HostSession is not connected: use it as `async with HostSession(...)`")
        if self._conn.is_closed():
            raise SSHFailure(SSHFailure.CONNECTION_LOST, f"connection to {self.target.label} was lost")
        return self._conn


async def fetch_host_key(address: str, port: int, *, timeout: float) -> str:
    """The host's public key as an OpenSSH line, read from the handshake without authenticating (TOFU)."""
    target_label = f"{address}:{port}"
    try:
        async with asyncio.timeout(timeout):
            key = await asyncssh.get_server_host_key(address, port, config=None)
    except TimeoutError:
        raise SSHFailure(SSHFailure.TIMEOUT, f"no SSH handshake with {target_label} within {timeout:g}s") from None
    except (asyncssh.Error, OSError) as exc:
        raise _network_failure(exc, target_label) from None
    if key is None:
        raise SSHFailure(SSHFailure.PROTOCOL, f"{target_label} presented no host key")
    return key.export_public_key("openssh").decode().strip()


def _pinned_key(target: Target) -> asyncssh.SSHKey:
    if not target.host_key.strip():
        raise SSHFailure(
            SSHFailure.HOST_KEY_UNKNOWN,
            f"no host key is pinned for {target.label}: pin it (or allow trust on first use) — nothing was run",
        )
    try:
        return asyncssh.import_public_key(target.host_key.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise SSHFailure(
            SSHFailure.HOST_KEY_UNKNOWN, f"the pinned host key of {target.label} cannot be read — nothing was run"
        ) from None


def _host_key_algs(pinned: asyncssh.SSHKey) -> list[str]:
    # The pinned key's algorithms first, so a host holding several keys signs with the pinned one
    # (as OpenSSH does); the rest after them, so a host that lost that key type still presents a key
    # and the failure names it instead of ending in a bare disconnect. Only the pinned key is trusted.
    preferred = [alg.decode() for alg in pinned.sig_algorithms]
    others = [alg.decode() for alg in get_default_public_key_algs() if alg.decode() not in preferred]
    return preferred + others


def encryption_algs() -> list[str]:
    """The ciphers offered, cheapest first (``PREFERRED_CIPHERS``), then the rest of asyncssh's defaults."""
    rest = [alg.decode() for alg in get_default_encryption_algs() if alg.decode() not in PREFERRED_CIPHERS]
    return [*PREFERRED_CIPHERS, *rest]


def _client_keys(target: Target) -> list[asyncssh.SSHKey] | None:
    # None (not []) when there is no key: asyncssh reads ~/.ssh/id_* for an empty list.
    secret = target.secret
    if not secret.private_key:
        return None
    try:
        return [asyncssh.import_private_key(secret.private_key.strip() + "\n", secret.passphrase or None)]
    except (asyncssh.KeyImportError, ValueError):
        raise SSHFailure(
            SSHFailure.AUTH, f"the private key for {target.label} cannot be read (wrong passphrase?)"
        ) from None


def _connect_failure(
    exc: BaseException, target: Target, pinned: asyncssh.SSHKey, client: _PinnedHostClient, timeout: float
) -> SSHFailure:
    """A connection error as the failure a person can act on."""
    where = f"{target.address}:{target.port}"
    if isinstance(exc, TimeoutError):
        return SSHFailure(SSHFailure.TIMEOUT, f"no SSH handshake with {where} within {timeout:g}s")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        presented = "host presented another key"
        if client.presented is not None:
            presented = f"host presented {key_fingerprint(client.presented)}"
            if client.presented.get_algorithm() != pinned.get_algorithm():
                presented += f" ({client.presented.get_algorithm()}, no {pinned.get_algorithm()} key)"
        return SSHFailure(
            SSHFailure.HOST_KEY_MISMATCH,
            f"host key mismatch on {where}: pinned {key_fingerprint(pinned)}, {presented} — nothing was run; "
            "re-pin only if the host was reinstalled",
        )
    if isinstance(exc, asyncssh.KeyExchangeFailed) and "host key" in str(exc.reason):
        return SSHFailure(
            SSHFailure.HOST_KEY_MISMATCH,
            f"host key mismatch on {where}: pinned {key_fingerprint(pinned)} ({pinned.get_algorithm()}), "
            "host offers no key type we know — nothing was run",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return SSHFailure(SSHFailure.AUTH, f"authentication refused for {target.label}")
    return _network_failure(exc, where)


def _network_failure(exc: BaseException, where: str) -> SSHFailure:
    """Failures before or around the handshake: resolution, TCP, the SSH transport."""
    if isinstance(exc, TimeoutError):
        return SSHFailure(SSHFailure.TIMEOUT, f"no answer from {where} in time")
    if isinstance(exc, socket.gaierror):
        return SSHFailure(SSHFailure.UNREACHABLE, f"cannot resolve {where}: {exc.strerror}")
    if isinstance(exc, ConnectionRefusedError):
        return SSHFailure(SSHFailure.UNREACHABLE, f"connection refused by {where}")
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return SSHFailure(SSHFailure.UNREACHABLE, f"no route to {where}")
        if exc.errno == errno.ETIMEDOUT:
            return SSHFailure(SSHFailure.TIMEOUT, f"connection to {where} timed out")
        return SSHFailure(SSHFailure.UNREACHABLE, f"cannot connect to {where}: {exc.strerror or exc}")
    if isinstance(exc, asyncssh.ConnectionLost):
        # asyncssh's login timer closes the connection with a ConnectionLost of its own.
        if "timeout" in str(exc.reason).lower():
            return SSHFailure(SSHFailure.TIMEOUT, f"{where} did not finish the SSH login in time")
        # e.g. sshd dropping the connection under MaxStartups, or a firewall resetting it.
        return SSHFailure(SSHFailure.UNREACHABLE, f"connection closed by {where} during the handshake")
    return SSHFailure(SSHFailure.PROTOCOL, f"SSH error with {where}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", "") or exc or type(exc).__name__)


def _exit_status(channel: asyncssh.SSHClientChannel[bytes]) -> int | None:
    # A command killed by a signal reads as a shell would report it: 128 + signal number.
    code = channel.get_returncode()
    if code is not None and code < 0:
        return 128 - code
    return code


def _stop(channel: asyncssh.SSHClientChannel[bytes]) -> None:
    """Ask the host to stop the command (best effort) and close the channel without waiting."""
    # Best effort only: sshd >= 7.9 signals the session's process group as the login user, which
    # misses what runs under sudo; it refuses on root logins and older servers ignore it. The
    # host-side `timeout` is what ends the command for sure, at its bound.
    with contextlib.suppress(asyncssh.Error, OSError):
        channel.terminate()
    channel.close()


async def _abandon(channel: asyncssh.SSHClientChannel[bytes]) -> None:
    """Stop the command and wait briefly for the channel to close."""
    _stop(channel)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_WAIT):
            await channel.wait_closed()
