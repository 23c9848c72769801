"""Celery tasks of outgoing webhooks: thin, they take ids and call one service.

They run on the MDEFLEET_WEBHOOK_QUEUE queue (settings.CELERY_TASK_ROUTES), so a dedicated
worker (``celery worker -Q webhooks``) can keep slow receivers away from rollout workers.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, soft_time_limit=120)
def webhook_deliver_task(delivery_id: int) -> str:
    """Send one due delivery once (retries are scheduled in its row, not in the broker)."""
    from mdefleet.webhooks.services import webhook_delivery_attempt

    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True)
def webhook_deliveries_tick_task() -> int:
    """Periodic: re-dispatch due deliveries (retries, and messages the broker lost)."""
    from mdefleet.webhooks.services import webhook_deliveries_tick

    return webhook_deliveries_tick()


@shared_task(acks_late=True)
def webhook_deliveries_prune_task() -> int:
    """Periodic (daily): forget delivered and failed deliveries past MDEFLEET_WEBHOOK_RETENTION_DAYS."""
    from mdefleet.webhooks.services import webhook_deliveries_prune

    return webhook_deliveries_prune()
