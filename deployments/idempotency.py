"""``Idempotency-Key`` for planning rollouts: one key and one body make one rollout, ever (for 24 h).

The key row is inserted in the same transaction that creates the rollout. A second request with
the same key blocks on the unique index until the first commits, then finds the row and replays
the first answer (same status, same body); if the first rolled back (refused input), the second
proceeds as if alone. Keys are scoped per caller and kept for ``IDEMPOTENCY_TTL``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from deployments.models import Rollout, RolloutIdempotencyKey

HEADER = "Idempotency-Key"
IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyKeyInvalid(ValueError):
    """The header's value cannot be a key (empty, too long, control characters)."""


class IdempotencyKeyReused(Exception):
    """The key was used with another body; the caller must pick a new key for a new request."""


@dataclass(frozen=True)
class Outcome:
    """The answer to give: fresh, or replayed from the first request with this key."""

    status: int
    body: Any
    replayed: bool


def idempotency_key_clean(raw: str | None) -> str | None:
    """The header's key, None when absent; raises IdempotencyKeyInvalid when unusable."""
    if raw is None:
        return None
    key = raw.strip()
    if not key:
        raise IdempotencyKeyInvalid("must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid(f"at most {MAX_KEY_LENGTH} characters")
    if not key.isprintable() or not key.isascii():
        raise IdempotencyKeyInvalid("printable ASCII characters only")
    return key


def request_fingerprint(data: Any) -> str:
    """SHA-256 of the body as canonical JSON: key order and whitespace do not matter."""
    if hasattr(data, "lists"):  # a QueryDict from a form-encoded body
        data = {key: values if len(values) != 1 else values[0] for key, values in data.lists()}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def rollout_create_idempotent(
    *, user: Any, key: str, data: Any, create: Callable[[], tuple[int, Any, Rollout]]
) -> Outcome:
    """Run ``create`` once per (caller, key); replay its answer for the same body, refuse another body.

    ``create`` returns (status, body, rollout) or raises; a raise rolls the key back with the
    rollout, so a refused request can be corrected and sent again under the same key.
    """
    fingerprint = request_fingerprint(data)
    RolloutIdempotencyKey.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()
    for _ in range(3):
        with transaction.atomic():
            try:
                with transaction.atomic():
                    row = RolloutIdempotencyKey.objects.create(user=user, key=key, request_hash=fingerprint)
            except IntegrityError:
                row = None
            if row is not None:
                status, body, rollout = create()
                row.rollout = rollout
                row.response_status = status
                row.response_body = json.loads(JSONRenderer().render(body))
                row.save(update_fields=["rollout", "response_status", "response_body"])
                return Outcome(status=status, body=body, replayed=False)
        existing = RolloutIdempotencyKey.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # the first holder rolled back or expired meanwhile: try to take the key again
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReused(
                f"This {HEADER} was already used with a different request body in the last "
                f"{int(IDEMPOTENCY_TTL.total_seconds() // 3600)} hours; send a new key for a new rollout."
            )
        return Outcome(status=existing.response_status, body=existing.response_body, replayed=True)
    raise IdempotencyKeyReused(f"This {HEADER} is in use by a concurrent request; retry.")
