"""Secrets at rest: Fernet tokens under MDEFLEET_FERNET_KEYS (newest key first, so keys rotate)."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = list(settings.MDEFLEET_FERNET_KEYS)
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured("MDEFLEET_FERNET_KEYS is empty.")
        # Development only: a key derived from SECRET_KEY, so the demo needs no setup.
        keys = [base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest()).decode()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured("MDEFLEET_FERNET_KEYS holds a value that is not a Fernet key.") from exc


def reset_keys() -> None:
    """Forget the cached keys (after settings change, e.g. in key rotation tests)."""
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    """Encrypt text; returns a URL-safe token."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a token made by :func:`encrypt` with any configured key."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("A stored secret cannot be decrypted with MDEFLEET_FERNET_KEYS.") from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key."""
    return _fernet().rotate(token.encode()).decode()


def is_current(token: str) -> bool:
    """True when the token is encrypted under the newest key (nothing for rotate_keys to do)."""
    primary = _fernet()._fernets[0]  # MultiFernet encrypts with its first key
    try:
        primary.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def generate_key() -> str:
    """A new Fernet key for MDEFLEET_FERNET_KEYS."""
    return Fernet.generate_key().decode()
