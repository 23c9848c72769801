"""Enumerations of the inventory."""

from __future__ import annotations

from django.db import models


class CredentialKind(models.TextChoices):
    PRIVATE_KEY = "private_key", "Private key"
    PASSWORD = "password", "Password"


class Eligibility(models.TextChoices):
    UNKNOWN = "unknown", "Not discovered"
    ELIGIBLE = "eligible", "Eligible"
    INELIGIBLE = "ineligible", "Ineligible"


class AgentState(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    ABSENT = "absent", "Not installed"
    INSTALLED = "installed", "Installed, not onboarded"
    HEALTHY = "healthy", "Onboarded, healthy"
    UNHEALTHY = "unhealthy", "Onboarded, unhealthy"


class SnapshotPhase(models.TextChoices):
    PRE = "pre", "Pre-deployment"
    POST = "post", "Post-deployment"
    ADHOC = "adhoc", "Ad hoc"


class StepStatus(models.TextChoices):
    OK = "ok", "OK"
    WARN = "warn", "Warning"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class RunStatus(models.TextChoices):
    """Life of one host's run (in a discovery or a rollout wave)."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"

    @classmethod
    def terminal(cls) -> set[str]:
        return {cls.OK, cls.FAILED}


class DiscoveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class JobKind(models.TextChoices):
    """What a host job does: discovery (steps 1-5), the way back, or a look at the host as it is now."""

    DISCOVER = "discover", "Discovery"
    OFFBOARD = "offboard", "Offboard"
    UNINSTALL = "uninstall", "Uninstall"
    SNAPSHOT = "snapshot", "Snapshot"
    HEALTH = "health", "Health refresh"
    DIAGNOSE = "diagnose", "High-CPU diagnosis"
