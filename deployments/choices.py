"""Enumerations of profiles and rollouts."""

from __future__ import annotations

from django.db import models


class Channel(models.TextChoices):
    PROD = "prod", "Production"
    INSIDERS_SLOW = "insiders-slow", "Insiders slow"
    INSIDERS_FAST = "insiders-fast", "Insiders fast"


class OnboardingKind(models.TextChoices):
    PYTHON = "py", "Onboarding script (MicrosoftDefenderATPOnboardingLinuxServer.py)"
    JSON = "json", "Onboarding JSON (mdatp_onboard.json)"


class RolloutStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    SOAKING = "soaking", "Soaking"
    WAITING_APPROVAL = "waiting_approval", "Waiting for approval"
    PAUSED = "paused", "Paused"
    HALTED = "halted", "Halted"
    COMPLETED = "completed", "Completed"
    ABORTED = "aborted", "Aborted"

    @classmethod
    def active(cls) -> list[str]:
        """Statuses in which the rollout holds its hosts."""
        return [cls.DRAFT, cls.SCHEDULED, cls.RUNNING, cls.SOAKING, cls.WAITING_APPROVAL, cls.PAUSED, cls.HALTED]

    @classmethod
    def terminal(cls) -> list[str]:
        return [cls.COMPLETED, cls.ABORTED]


class WaveStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class GateVerdict(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class HostRunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
