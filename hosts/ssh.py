"""The one module that touches the network: an SSH session per host over asyncssh.

INTERFACE FILE — the types below are the contract used by the runner and the steps.
The implementation of HostSession / fetch_host_key is being written (see the helper task).
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class Secret:
    """Decrypted credential material, only ever held in memory for the session."""

    private_key: str = ""
    passphrase: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never leak secrets through logs or tracebacks
        return "Secret(***)"


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
