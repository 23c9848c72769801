from __future__ import annotations

from django.apps import AppConfig


class MdefleetConfig(AppConfig):
    """Project-wide pieces: audit events, roles, API permissions."""

    name = "mdefleet"
    default_auto_field = "django.db.models.BigAutoField"
