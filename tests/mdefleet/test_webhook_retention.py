"""Old delivered and failed webhook deliveries are forgotten daily; pending ones never are."""

from __future__ import annotations

import uuid
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from mdefleet.audit import SYSTEM
from mdefleet.celery import app
from mdefleet.models import AuditEvent, WebhookAttempt, WebhookDelivery
from mdefleet.webhooks.choices import DeliveryStatus
from mdefleet.webhooks.services import webhook_deliveries_prune, webhook_subscription_create
from tests.factories import fernet_keys  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]


def delivery(subscription: object, status: str, age_days: float) -> WebhookDelivery:
    made = WebhookDelivery.objects.create(
        subscription=subscription, event="rollout.completed", event_id=uuid.uuid4(), payload={}, status=status
    )
    WebhookDelivery.objects.filter(pk=made.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    return made


def test_only_finished_deliveries_past_the_retention_go_with_their_attempts_and_it_is_audited(settings: object) -> None:
    settings.MDEFLEET_WEBHOOK_RETENTION_DAYS = 30  # type: ignore[attr-defined]
    subscription, _ = webhook_subscription_create(
        actor=SYSTEM, name="itsm", url="https://itsm.example.com/hook", events=["rollout.completed"]
    )
    old_ok = delivery(subscription, DeliveryStatus.DELIVERED, 31)
    WebhookAttempt.objects.create(delivery=old_ok, status_code=200)
    old_failed = delivery(subscription, DeliveryStatus.FAILED, 45)
    old_pending = delivery(subscription, DeliveryStatus.PENDING, 60)
    recent_ok = delivery(subscription, DeliveryStatus.DELIVERED, 29)

    assert webhook_deliveries_prune() == 2

    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {old_pending.pk, recent_ok.pk}
    assert not WebhookAttempt.objects.filter(delivery_id__in=[old_ok.pk, old_failed.pk]).exists()
    event = AuditEvent.objects.get(action="webhook.deliveries_pruned")
    assert event.details["deliveries"] == 2 and event.actor_label == "system"
    # Nothing left to forget: nothing deleted, nothing audited.
    assert webhook_deliveries_prune() == 0
    assert AuditEvent.objects.filter(action="webhook.deliveries_pruned").count() == 1


def test_the_beat_runs_the_prune_daily_with_a_task_celery_knows() -> None:
    # Tests flush the migration's rows, so its function is run here (twice: idempotent).
    migration = import_module("mdefleet.migrations.0005_webhook_retention")
    migration.create_prune(django_apps, None)
    migration.create_prune(django_apps, None)
    [job] = PeriodicTask.objects.filter(name="mdefleet: prune old webhook deliveries")
    assert job.enabled and (job.crontab.minute, job.crontab.hour) == ("30", "4")
    app.loader.import_default_modules()
    assert job.task in app.tasks
