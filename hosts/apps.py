from __future__ import annotations

from django.apps import AppConfig


class HostsConfig(AppConfig):
    """The inventory: hosts, credentials, host keys, facts, snapshots, discovery."""

    name = "hosts"
    default_auto_field = "django.db.models.BigAutoField"
