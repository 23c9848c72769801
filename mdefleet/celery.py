"""The Celery application; tasks are found in each app's tasks.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdefleet.settings")

app = Celery("mdefleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if os.environ.get("MDEFLEET_COUNT_QUERIES"):
    # `manage.py bench` only: count this worker's SQL queries into the file the variable names.
    from mdefleet.bench import query_counter_install

    query_counter_install(os.environ["MDEFLEET_COUNT_QUERIES"])
