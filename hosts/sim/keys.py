"""SSH keys of the simulated fleet: host keys derived from a secret, and the client key pair.

Host keys are ed25519 keys whose private half is a hash of (fleet secret, index, purpose): they
cost microseconds to make, need no storage, and stay the same across restarts with the same
secret. Without a state directory the secret is derived from the seed (tests get the same keys on
every run); with one, a random secret is created there once, so a demo's keys are not guessable.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import asyncssh
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat


def fleet_secret(seed: int, state_dir: Path | None) -> bytes:
    """The secret host keys derive from: stored in ``state_dir/fleet-secret`` if given."""
    if state_dir is None:
        return f"mdefleet-sim:{seed}".encode()
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "fleet-secret"
    if not path.exists():
        _write_private(path, secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode() + f":{seed}".encode()


def derive_key(secret: bytes, index: int, purpose: str) -> asyncssh.SSHKey:
    """A deterministic ed25519 key for host ``index`` (purpose ``host`` or ``rekeyed``)."""
    seed = hashlib.blake2b(secret + f":{purpose}:{index}".encode(), digest_size=32).digest()
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    return asyncssh.import_private_key(pem)


def public_line(key: asyncssh.SSHKey, comment: str = "") -> str:
    """``ssh-ed25519 AAAA... comment`` (the form an inventory pins)."""
    line = key.export_public_key("openssh").decode().strip()
    return f"{line} {comment}".strip()


def client_key(state_dir: Path | None) -> tuple[asyncssh.SSHKey, str]:
    """The client key pair the fleet authorises and its OpenSSH PEM (kept in ``state_dir/client-key``)."""
    path = state_dir / "client-key" if state_dir is not None else None
    if path is not None and path.exists():
        pem = path.read_text()
        return asyncssh.import_private_key(pem), pem
    key = asyncssh.generate_private_key("ssh-ed25519", comment="mdefleet-sim")
    pem = key.export_private_key("openssh").decode()
    if path is not None:
        _write_private(path, pem)
    return key, pem


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
