"""Django admin for support staff: read-mostly, and credentials without their encrypted material."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from hosts.models import Credential, Discovery, DiscoveryHost, Host, HostCheck, Snapshot, Tag


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    """Credentials are created on the Credentials page (validated and encrypted there), not here."""

    list_display = ["name", "kind", "public_fingerprint", "created_at"]
    fields = ["name", "kind", "public_fingerprint", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "port", "ssh_user", "distro_id", "distro_version", "eligibility", "agent_state"]
    list_filter = ["eligibility", "agent_state", "distro_id", "tags"]
    search_fields = ["name", "address"]
    list_select_related = ["credential"]
    autocomplete_fields = ["tags"]
    readonly_fields = ["host_key", "host_key_fingerprint", "host_key_pinned_at"]


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["host", "phase", "taken_at", "cpu_busy_pct", "mem_used_mb"]
    list_filter = ["phase"]
    list_select_related = ["host"]
    raw_id_fields = ["host"]


class DiscoveryHostInline(admin.TabularInline):
    model = DiscoveryHost
    extra = 0
    raw_id_fields = ["host"]
    readonly_fields = ["status", "claimed_by", "heartbeat_at", "started_at", "finished_at", "reason"]


@admin.register(Discovery)
class DiscoveryAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "created_by", "created_at", "finished_at"]
    list_filter = ["status"]
    inlines = [DiscoveryHostInline]


@admin.register(HostCheck)
class HostCheckAdmin(admin.ModelAdmin):
    list_display = ["host", "step", "status", "exit_code", "duration_ms", "finished_at"]
    list_filter = ["step", "status"]
    list_select_related = ["host"]
    raw_id_fields = ["run", "host"]
