"""Host jobs for ad-hoc snapshots, fleet health refresh and high-CPU diagnosis, and their beat schedules."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations, models

PERIODIC_SNAPSHOTS = "mdefleet: periodic snapshots"
HEALTH_REFRESH = "mdefleet: fleet health refresh"


def create_schedules(apps: Any, schema_editor: Any) -> None:
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    daily, _ = crontab_model.objects.get_or_create(
        minute="0", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
    )
    task_model.objects.update_or_create(
        name=PERIODIC_SNAPSHOTS,
        defaults={
            "task": "hosts.tasks.periodic_snapshots_task",
            "crontab": daily,
            "interval": None,
            "enabled": True,
            "description": "Ad-hoc snapshot of every host with the agent installed, so drift shows weeks later.",
        },
    )
    six_hours, _ = interval_model.objects.get_or_create(every=6, period="hours")
    task_model.objects.update_or_create(
        name=HEALTH_REFRESH,
        defaults={
            "task": "hosts.tasks.fleet_health_refresh_task",
            "interval": six_hours,
            "crontab": None,
            "enabled": True,
            "description": "mdatp health on every host with the agent installed: healthy, version, definitions.",
        },
    )


def remove_schedules(apps: Any, schema_editor: Any) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[PERIODIC_SNAPSHOTS, HEALTH_REFRESH]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0002_job_kind"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="host",
            name="definitions_updated_at",
            field=models.DateTimeField(blank=True, help_text="When the agent last took definitions", null=True),
        ),
        migrations.AlterField(
            model_name="discovery",
            name="kind",
            field=models.CharField(
                choices=[
                    ("discover", "Discovery"),
                    ("offboard", "Offboard"),
                    ("uninstall", "Uninstall"),
                    ("snapshot", "Snapshot"),
                    ("health", "Health refresh"),
                    ("diagnose", "High-CPU diagnosis"),
                ],
                default="discover",
                max_length=12,
            ),
        ),
        migrations.RunPython(create_schedules, remove_schedules),
    ]
