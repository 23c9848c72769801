"""The ``broker`` fixture (tests/broker.py) reads back what Celery really published to Redis."""

from __future__ import annotations

from django.conf import settings

from deployments.tasks import rollout_advance_task, rollout_run_task
from hosts.tasks import discovery_run_task
from mdefleet.tasks import enqueue
from mdefleet.webhooks.tasks import webhook_deliver_task
from tests.broker import Broker

RUN = "deployments.tasks.rollout_run_task"
DELIVER = "mdefleet.webhooks.tasks.webhook_deliver_task"


def test_a_delay_is_read_back_with_its_arguments(broker: Broker) -> None:
    assert broker.sent() == []  # flushed before the test
    rollout_run_task.delay(42)
    assert broker.sent(RUN) == [(42,)]
    assert broker.sent(RUN) == [(42,)]  # reading consumes nothing


def test_each_task_is_read_in_publish_order_from_its_own_queue(broker: Broker) -> None:
    rollout_run_task.delay(1)
    webhook_deliver_task.delay(7)  # routed to the webhook queue
    rollout_advance_task.delay(2)
    assert enqueue(discovery_run_task, 3, copies=2) is True
    rollout_run_task.delay(4)
    assert broker.sent(RUN) == [(1,), (4,)]
    assert broker.sent(DELIVER) == [(7,)]
    assert broker.sent("hosts.tasks.discovery_run_task") == [(3,), (3,)]
    assert broker.names() == [
        RUN,
        "deployments.tasks.rollout_advance_task",
        "hosts.tasks.discovery_run_task",
        "hosts.tasks.discovery_run_task",
        RUN,
        DELIVER,
    ]
    assert [m.queue for m in broker.messages() if m.task == DELIVER] == [settings.MDEFLEET_WEBHOOK_QUEUE]
    assert broker.sent("no.such.task") == []
