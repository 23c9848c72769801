"""The beat's daily job that forgets old delivered and failed webhook deliveries."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations

PRUNE = "mdefleet: prune old webhook deliveries"


def create_prune(apps: Any, schema_editor: Any) -> None:
    daily, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
        minute="30", hour="4", day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.update_or_create(
        name=PRUNE,
        defaults={
            "task": "mdefleet.webhooks.tasks.webhook_deliveries_prune_task",
            "crontab": daily,
            "interval": None,
            "enabled": True,
            "description": "Delete delivered and failed webhook deliveries older than MDEFLEET_WEBHOOK_RETENTION_DAYS.",
        },
    )


def remove_prune(apps: Any, schema_editor: Any) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=PRUNE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mdefleet", "0004_webhooks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_prune, remove_prune)]
