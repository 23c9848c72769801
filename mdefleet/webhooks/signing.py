"""Signatures of deliveries, Stripe-style: ``X-Mdefleet-Signature: t=<unix ts>,v1=<hex HMAC>``.

The HMAC-SHA256 is keyed with the subscription's secret over ``f"{t}.{body}"`` (the raw body
bytes as sent). A receiver recomputes it, compares in constant time, and refuses a timestamp
older than its tolerance, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Mdefleet-Signature"
EVENT_HEADER = "X-Mdefleet-Event"
DELIVERY_HEADER = "X-Mdefleet-Delivery"
DEFAULT_TOLERANCE = 300


def secret_generate() -> str:
    """A new signing secret (shown once to the person or system that creates the subscription)."""
    return "whsec_" + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of X-Mdefleet-Signature for ``body`` sent at ``timestamp`` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` seconds.

    What a receiver runs (see README): several ``v1=`` values are accepted, so a sender may sign
    with an old and a new secret while a rotation is under way.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
