from __future__ import annotations

from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """The rollout: profiles, waves, host runs, the step catalogue, the runner and gates."""

    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"
