"""Enqueueing that never breaks the caller: the database row is already the truth."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def enqueue(task: Any, *args: Any, copies: int = 1) -> bool:
    """Send ``copies`` messages for ``task(*args)``; a broker outage is logged, not raised.

    Work is written to the database before it is enqueued, and the periodic tick re-dispatches
    anything nobody picked up, so a lost message delays work instead of losing it.
    """
    try:
        for _ in range(copies):
            task.delay(*args)
    except Exception:  # any broker/transport error: kombu raises many kinds
        log.warning("could not enqueue %s%r; the periodic tick will dispatch it", task.name, args, exc_info=True)
        return False
    return True
