"""Schedules: start time, deadline, maintenance windows and blackout dates on rollouts; the
``scheduled`` status; agent-expiry notices; the daily agent-expiry periodic task."""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

EXPIRY_TASK = "mdefleet: agent expiry warnings"


def create_expiry_task(apps: Any, schema_editor: Any) -> None:
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = crontab_model.objects.get_or_create(
        minute="0", hour="6", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    task_model.objects.update_or_create(
        name=EXPIRY_TASK,
        defaults={
            "task": "deployments.tasks.agent_expiry_warn_task",
            "crontab": crontab,
            "interval": None,
            "enabled": True,
            "description": "Hosts whose agent version expires within 30 days: announced by webhook once per version",
        },
    )


def remove_expiry_task(apps: Any, schema_editor: Any) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=EXPIRY_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0002_profile_onboarding_uploaded_at"),
        ("hosts", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="rollout",
            name="blackout_dates",
            field=models.JSONField(blank=True, default=list, help_text='Days with no waves: ["2026-12-24"]'),
        ),
        migrations.AddField(
            model_name="rollout",
            name="maintenance_windows",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text='Weekly windows: [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}]',
            ),
        ),
        migrations.AddField(
            model_name="rollout",
            name="schedule_timezone",
            field=models.CharField(default="UTC", help_text="IANA zone of windows and dates", max_length=64),
        ),
        migrations.AddField(
            model_name="rollout",
            name="start_at",
            field=models.DateTimeField(blank=True, help_text="Start no earlier than this", null=True),
        ),
        migrations.AddField(
            model_name="rollout",
            name="start_before",
            field=models.DateTimeField(
                blank=True, help_text="Cancelled if it could not start by then (scheduled rollouts)", null=True
            ),
        ),
        migrations.AlterField(
            model_name="rollout",
            name="status",
            field=models.CharField(
                choices=[
                    ("draft", "Draft"),
                    ("scheduled", "Scheduled"),
                    ("running", "Running"),
                    ("soaking", "Soaking"),
                    ("waiting_approval", "Waiting for approval"),
                    ("paused", "Paused"),
                    ("halted", "Halted"),
                    ("completed", "Completed"),
                    ("aborted", "Aborted"),
                ],
                db_index=True,
                default="draft",
                max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="AgentExpiryNotice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("version", models.CharField(max_length=40)),
                ("expires_on", models.DateField()),
                ("notified_at", models.DateTimeField(auto_now_add=True)),
                (
                    "host",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="hosts.host"),
                ),
            ],
            options={
                "ordering": ["-notified_at", "-id"],
                "constraints": [models.UniqueConstraint(fields=("host", "version"), name="agent_expiry_notice_unique")],
            },
        ),
        migrations.RunPython(create_expiry_task, remove_expiry_task),
    ]
