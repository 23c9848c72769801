"""Rollout records: profiles (what to install), rollouts, waves, host runs and step results."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from deployments.choices import (
    Channel,
    GateVerdict,
    HostRunStatus,
    OnboardingKind,
    RolloutStatus,
    WaveStatus,
)
from hosts.models import Host, StepRecord


class Profile(models.Model):
    """What to install: channel, version pin, onboarding package, managed settings, cron jobs, proxy."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.PROD)
    agent_version = models.CharField(max_length=40, blank=True, help_text="Pin, e.g. 101.25092.0003; blank = latest")
    proxy = models.CharField(max_length=255, blank=True, help_text="Static proxy, http://host:port")

    onboarding_encrypted = models.TextField(blank=True, editable=False)
    onboarding_kind = models.CharField(max_length=10, choices=OnboardingKind.choices, blank=True)
    onboarding_filename = models.CharField(max_length=255, blank=True)
    onboarding_sha256 = models.CharField(max_length=64, blank=True)
    org_id = models.CharField(max_length=64, blank=True, help_text="Tenant (organization) id read from the package")
    onboarding_uploaded_at = models.DateTimeField(null=True, blank=True, editable=False)

    managed_settings = models.JSONField(default=dict, blank=True, help_text="mdatp_managed.json")
    carried_exclusions = models.JSONField(
        default=list, blank=True, help_text="Exclusions taken over from the previous antivirus"
    )
    scan_cron = models.CharField(max_length=120, blank=True, help_text="Scheduled scan, cron syntax")
    scan_type = models.CharField(max_length=10, default="quick")
    update_cron = models.CharField(max_length=120, blank=True, help_text="Agent update, cron syntax")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Rollout(models.Model):
    """A profile applied to a set of hosts in waves, with gates, soak time and approvals."""

    name = models.CharField(max_length=200)
    profile = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="rollouts")
    ticket = models.CharField(max_length=64, blank=True, db_index=True, help_text="External change reference")
    status = models.CharField(max_length=20, choices=RolloutStatus.choices, default=RolloutStatus.DRAFT, db_index=True)
    selection = models.JSONField(default=dict, blank=True, help_text="How the hosts were chosen (ids, tags, filter)")
    wave_plan = models.JSONField(default=list, help_text='Wave sizes, counts or percentages: ["1", "5%", "100%"]')
    gates = models.JSONField(default=dict, blank=True)
    soak_seconds = models.PositiveIntegerField(default=0)
    settle_seconds = models.PositiveIntegerField(default=60, help_text="Wait before the post snapshot")
    auto_promote = models.BooleanField(default=True)
    approval_timeout_seconds = models.PositiveIntegerField(default=24 * 3600)
    excluded_hosts = models.JSONField(default=list, blank=True, help_text="Ineligible hosts with their reasons")
    halt_reason = models.TextField(blank=True)
    current_wave = models.PositiveIntegerField(default=0)
    next_action_at = models.DateTimeField(null=True, blank=True, help_text="When soak ends or approval expires")

    # The schedule (deployments/schedules.py): waves start only after start_at, inside a window.
    start_at = models.DateTimeField(null=True, blank=True, help_text="Start no earlier than this")
    start_before = models.DateTimeField(
        null=True, blank=True, help_text="Cancelled if it could not start by then (scheduled rollouts)"
    )
    schedule_timezone = models.CharField(max_length=64, default="UTC", help_text="IANA zone of windows and dates")
    maintenance_windows = models.JSONField(
        default=list,
        blank=True,
        help_text='Weekly windows: [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}]',
    )
    blackout_dates = models.JSONField(default=list, blank=True, help_text='Days with no waves: ["2026-12-24"]')

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Wave(models.Model):
    """One wave of a rollout: its hosts run, then its gate is judged."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    index = models.PositiveIntegerField()
    planned_size = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=WaveStatus.choices, default=WaveStatus.PENDING)
    gate_verdict = models.CharField(max_length=20, choices=GateVerdict.choices, blank=True)
    gate_report = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "index"]
        constraints = [models.UniqueConstraint(fields=["rollout", "index"], name="wave_rollout_index_unique")]

    def __str__(self) -> str:
        return f"{self.rollout} wave {self.index + 1}"


class HostRun(models.Model):
    """One host in one wave: claimed by one worker at a time, resumed at its first step not done."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="host_runs")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="host_runs")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="host_runs")
    status = models.CharField(
        max_length=20, choices=HostRunStatus.choices, default=HostRunStatus.PENDING, db_index=True
    )
    attempt = models.PositiveIntegerField(default=0)
    current_step = models.CharField(max_length=40, blank=True)
    claimed_by = models.CharField(max_length=120, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["rollout", "host"], name="host_run_rollout_host_unique")]
        indexes = [models.Index(fields=["wave", "status"])]

    def __str__(self) -> str:
        return f"{self.rollout} {self.host}"


class StepResult(StepRecord):
    """One step of the checklist on one host in one attempt."""

    host_run = models.ForeignKey(HostRun, on_delete=models.CASCADE, related_name="steps")
    attempt = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["host_run", "step"])]

    def __str__(self) -> str:
        return f"{self.host_run} {self.step} {self.status}"


class AgentExpiryNotice(models.Model):
    """One announcement that a host's agent version expires soon: at most one per host and version."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")
    version = models.CharField(max_length=40)
    expires_on = models.DateField()
    notified_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-notified_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["host", "version"], name="agent_expiry_notice_unique")]

    def __str__(self) -> str:
        return f"{self.host_id} {self.version} expires {self.expires_on}"


class RolloutIdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a caller sent with ``POST /api/v1/rollouts/``: its body's hash and the answer.

    Unique per caller and key, so two concurrent requests with one key cannot both create a rollout.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    rollout = models.ForeignKey(Rollout, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    response_status = models.PositiveSmallIntegerField(default=201)
    response_body = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="rollout_idempotency_key_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.key}"
