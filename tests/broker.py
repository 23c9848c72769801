"""The real Redis broker, read back: what the code under test enqueued, without mocking Celery.

Tests use the real PostgreSQL and the real Redis broker, never a mock of either. Code that enqueues
(``task.delay``, ``mdefleet.tasks.enqueue``) really publishes through Celery to the test Redis db;
the ``broker`` fixture empties that db before and after the test and reads the published messages
back from kombu's queue lists without consuming them (tests run one at a time and no worker runs
unless ``celery_workers`` starts one, which flushes the same db first).

    def test_x(broker):
        ...
        assert broker.sent("deployments.tasks.rollout_run_task") == [(rollout.pk,)]

Enqueues made in ``transaction.on_commit`` reach Redis only when the callbacks run: in a
``django_db`` test that means ``django_capture_on_commit_callbacks(execute=True)``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
import redis
from django.conf import settings
from kombu.serialization import loads


class Message(NamedTuple):
    task: str  # full Celery name, e.g. "deployments.tasks.rollout_run_task"
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str


class Broker:
    """The messages in the test Redis db's Celery queues (kombu's Redis transport: one list per queue)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.MDEFLEET_WEBHOOK_QUEUE]

    def messages(self) -> list[Message]:
        """Every message published so far, oldest first within each queue (queues in ``self.queues`` order).

        kombu LPUSHes a JSON envelope whose base64 body is Celery's protocol 2 ``[args, kwargs, embed]``;
        LRANGE reads without consuming, newest first.
        """
        found = []
        for queue in self.queues:
            for raw in reversed(self.client.lrange(queue, 0, -1)):
                envelope = json.loads(raw)
                assert envelope["properties"]["body_encoding"] == "base64", envelope["properties"]
                body = base64.b64decode(envelope["body"])
                args, kwargs, _embed = loads(body, envelope["content-type"], envelope["content-encoding"])
                found.append(Message(envelope["headers"]["task"], tuple(args), kwargs, queue))
        return found

    def sent(self, task: str | None = None) -> list[tuple[Any, ...]]:
        """The argument tuples of the messages published so far, in publish order; only ``task``'s if given.

        The order is exact for one task (a task always goes to the same queue); without ``task``,
        one queue's messages come before the next queue's.
        """
        return [m.args for m in self.messages() if task is None or m.task == task]

    def names(self) -> list[str]:
        """The task names of the messages published so far (ordered as in ``sent()``)."""
        return [m.task for m in self.messages()]


@pytest.fixture
def broker() -> Iterator[Broker]:
    """The real Redis broker, flushed before and after the test; ``broker.sent(task)`` reads what was enqueued."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.fail(f"the broker fixture needs a redis:// CELERY_BROKER_URL (make test sets one), not {url!r}")
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield Broker(client)
    finally:
        client.flushdb()
        client.close()
