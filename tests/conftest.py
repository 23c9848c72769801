"""Shared fixtures: role personas, the simulated fleet, a real sshd, real Celery workers.

The environment (DATABASE_URL, CELERY_BROKER_URL, MDEFLEET_FERNET_KEYS, DEBUG) is set by
`make test` before pytest starts: pytest-django reads the settings before this file loads.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = [
    "tests.fixtures_roles",
    "tests.fixtures_sim",
    "tests.integration.sshd",
    "tests.integration.worker",
    "tests.e2e.browser",
    "tests.broker",
]


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    """Personas hash passwords; the production hasher costs a quarter second per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
