"""Register the periodic safety-net ticks with the database beat scheduler."""

from __future__ import annotations

from typing import Any

from django.db import migrations

TICKS = [
    ("mdefleet: advance rollouts", "deployments.tasks.rollouts_tick_task", 10),
    ("mdefleet: re-dispatch discoveries", "hosts.tasks.discoveries_tick_task", 30),
]


def create(apps: Any, schema_editor: Any) -> None:
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in TICKS:
        interval, _ = interval_model.objects.get_or_create(every=seconds, period="seconds")
        task_model.objects.update_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def remove(apps: Any, schema_editor: Any) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[t[0] for t in TICKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mdefleet", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
