"""Inventory records: credentials, hosts with their pinned key and facts, snapshots, discovery."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from hosts.choices import (
    AgentState,
    CredentialKind,
    DiscoveryStatus,
    Eligibility,
    JobKind,
    RunStatus,
    SnapshotPhase,
    StepStatus,
)


class Credential(models.Model):
    """An SSH private key or password, encrypted at rest and never shown back."""

    name = models.SlugField(max_length=80, unique=True)
    kind = models.CharField(max_length=20, choices=CredentialKind.choices)
    secret_encrypted = models.TextField(editable=False)
    passphrase_encrypted = models.TextField(blank=True, editable=False)
    public_fingerprint = models.CharField(max_length=120, blank=True, help_text="SHA256 of the public key, if a key")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A free label for grouping hosts (role, site, application)."""

    name = models.SlugField(max_length=64, unique=True, allow_unicode=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Host(models.Model):
    """One server reached over SSH, with its pinned host key, facts and the agent's last known state."""

    name = models.CharField(max_length=255, db_index=True)
    address = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=22)
    ssh_user = models.CharField(max_length=64)
    use_sudo = models.BooleanField(default=True, help_text="Prefix commands with sudo -n when not root")
    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="hosts")
    tags = models.ManyToManyField(Tag, blank=True, related_name="hosts")

    host_key = models.TextField(blank=True, help_text="Pinned public host key, OpenSSH format")
    host_key_fingerprint = models.CharField(max_length=120, blank=True)
    host_key_pinned_at = models.DateTimeField(null=True, blank=True)
    trust_on_first_use = models.BooleanField(
        default=False, help_text="Pin the key the host presents at first contact (recorded in the audit trail)"
    )

    distro_id = models.CharField(max_length=40, blank=True, db_index=True)
    distro_version = models.CharField(max_length=40, blank=True)
    distro_name = models.CharField(max_length=120, blank=True)
    kernel = models.CharField(max_length=120, blank=True)
    arch = models.CharField(max_length=20, blank=True)
    cpu_cores = models.PositiveIntegerField(null=True, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True)
    facts = models.JSONField(default=dict, blank=True)

    eligibility = models.CharField(
        max_length=20, choices=Eligibility.choices, default=Eligibility.UNKNOWN, db_index=True
    )
    eligibility_reasons = models.JSONField(default=list, blank=True)

    agent_state = models.CharField(max_length=20, choices=AgentState.choices, default=AgentState.UNKNOWN, db_index=True)
    agent_version = models.CharField(max_length=40, blank=True)
    definitions_version = models.CharField(max_length=40, blank=True)
    definitions_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the agent last took definitions"
    )
    agent_healthy = models.BooleanField(null=True, blank=True)
    org_id = models.CharField(max_length=64, blank=True)
    real_time_protection = models.BooleanField(null=True, blank=True)
    conflicting_applications = models.JSONField(default=list, blank=True)

    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_discovered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["address", "port"], name="host_address_port_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def distro_label(self) -> str:
        return f"{self.distro_id} {self.distro_version}".strip()


class Snapshot(models.Model):
    """One resource-utilization capture of one host (CPU, load, memory, filesystems, processes)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="snapshots")
    phase = models.CharField(max_length=10, choices=SnapshotPhase.choices, default=SnapshotPhase.ADHOC)
    taken_at = models.DateTimeField(db_index=True)
    cpu_busy_pct = models.FloatField(null=True, blank=True)
    load_1 = models.FloatField(null=True, blank=True)
    load_5 = models.FloatField(null=True, blank=True)
    load_15 = models.FloatField(null=True, blank=True)
    mem_total_mb = models.FloatField(null=True, blank=True)
    mem_used_mb = models.FloatField(null=True, blank=True)
    mem_available_mb = models.FloatField(null=True, blank=True)
    swap_total_mb = models.FloatField(null=True, blank=True)
    swap_used_mb = models.FloatField(null=True, blank=True)
    filesystems = models.JSONField(default=list, blank=True)
    top_processes = models.JSONField(default=list, blank=True)
    agent_processes = models.JSONField(default=list, blank=True)
    samples = models.JSONField(default=list, blank=True, help_text="Per-sample CPU figures")

    class Meta:
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["host", "-taken_at"])]

    def __str__(self) -> str:
        return f"{self.host} {self.phase} {self.taken_at:%Y-%m-%d %H:%M}"

    # The figures a snapshot step parses, by the names of these fields.
    DATA_FIELDS = (
        "cpu_busy_pct", "load_1", "load_5", "load_15", "mem_total_mb", "mem_used_mb", "mem_available_mb",
        "swap_total_mb", "swap_used_mb", "filesystems", "top_processes", "agent_processes", "samples",
    )  # fmt: skip

    @classmethod
    def fields_from(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Model field values from a snapshot step's parsed data (missing figures stay None)."""
        return {name: data.get(name) for name in cls.DATA_FIELDS}

    @property
    def agent_rss_mb(self) -> float:
        return round(sum(p.get("rss_kb", 0) for p in self.agent_processes) / 1024, 1)

    @property
    def agent_cpu_pct(self) -> float:
        return round(sum(p.get("cpu_pct", 0.0) for p in self.agent_processes), 1)


class Discovery(models.Model):
    """A job over a set of hosts: discovery (facts to pre-snapshot), or offboarding / uninstalling."""

    kind = models.CharField(max_length=12, choices=JobKind.choices, default=JobKind.DISCOVER)
    # The offboarding package for an offboard job (encrypted; cleared when the job ends).
    payload_encrypted = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=DiscoveryStatus.choices, default=DiscoveryStatus.QUEUED)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "discoveries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class DiscoveryHost(models.Model):
    """One host within a discovery: claimed by one worker at a time, with a heartbeat."""

    discovery = models.ForeignKey(Discovery, on_delete=models.CASCADE, related_name="host_runs")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="discovery_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    claimed_by = models.CharField(max_length=120, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["discovery", "host"], name="discovery_host_unique")]

    def __str__(self) -> str:
        return f"{self.discovery} {self.host}"


class StepRecord(models.Model):
    """Fields shared by every recorded step: what ran, how it ended and why."""

    step = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=StepStatus.choices)
    exit_code = models.IntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    command = models.TextField(blank=True)
    output = models.TextField(blank=True, help_text="Trimmed stdout and stderr")
    parsed = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    finished_at = models.DateTimeField()

    class Meta:
        abstract = True


class HostCheck(StepRecord):
    """One discovery step's result on one host."""

    run = models.ForeignKey(DiscoveryHost, on_delete=models.CASCADE, related_name="checks")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="checks")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["host", "step", "-id"])]

    def __str__(self) -> str:
        return f"{self.host} {self.step} {self.status}"
