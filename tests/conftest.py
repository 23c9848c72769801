"""Shared fixtures: role personas, the simulated fleet, and settings the tests need."""

from __future__ import annotations

import os

# Tests run against the real PostgreSQL and Redis of the machine (make test sets these).
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdefleet")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("MDEFLEET_FERNET_KEYS", "bGV0LXRoZS10ZXN0cy1oYXZlLWEta2V5LTMyYnl0ZXM=")

pytest_plugins = ["tests.fixtures_roles"]
