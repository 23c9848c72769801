"""Reading SSH keys: validating what a person pastes and computing fingerprints."""

from __future__ import annotations

import asyncssh


class KeyFormatError(ValueError):
    """A key that cannot be read; the message says why."""


def public_key_fingerprint(public_key: str) -> str:
    """SHA256 fingerprint of an OpenSSH public key line (``ssh-ed25519 AAAA... comment``)."""
    try:
        key = asyncssh.import_public_key(public_key.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise KeyFormatError(f"not an OpenSSH public key: {exc}") from exc
    return key.get_fingerprint("sha256")


def normalize_public_key(public_key: str) -> str:
    """The key as ``type base64`` (comment dropped), refused if it cannot be read."""
    try:
        key = asyncssh.import_public_key(public_key.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise KeyFormatError(f"not an OpenSSH public key: {exc}") from exc
    return key.export_public_key("openssh").decode().strip()


def private_key_fingerprint(private_key: str, passphrase: str = "") -> str:
    """SHA256 fingerprint of a private key's public half; refuses unreadable keys."""
    try:
        key = asyncssh.import_private_key(private_key.strip() + "\n", passphrase or None)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise KeyFormatError(f"not a private key this tool can read: {exc}") from exc
    return key.get_fingerprint("sha256")
