"""The fleet's one FilterSet: the page, the API list and the "discover by filter" request all use it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.fields import IsoDateTimeField

from hosts.choices import AgentState, CredentialKind, DiscoveryStatus, Eligibility, JobKind, SnapshotPhase
from hosts.models import Credential, Discovery, Host, Snapshot, Tag
from hosts.selectors import distro_choices


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, normalised to UTC (PostgreSQL refuses offsets beyond ±15:59)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a date-time between the years 1 and 9999.", code="invalid") from None


class IsoDateTimeUtcFilter(django_filters.IsoDateTimeFilter):
    """IsoDateTimeFilter whose value is normalised to UTC: every list's created_after/created_before."""

    field_class = UtcIsoDateTimeField


class CreatedRangeFilterSet(django_filters.FilterSet):
    """``created_after`` / ``created_before`` on ``created_at``, shared by the API's lists."""

    created_after = IsoDateTimeUtcFilter(
        field_name="created_at", lookup_expr="gte", label="Created after", help_text="ISO 8601 date-time"
    )
    created_before = IsoDateTimeUtcFilter(
        field_name="created_at", lookup_expr="lt", label="Created before", help_text="ISO 8601 date-time"
    )


class HostFilterSet(django_filters.FilterSet):
    """Filters by tag, distro, eligibility, agent state and a free-text search over name and address."""

    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the name or address")
    tag = django_filters.ModelChoiceFilter(
        field_name="tags",
        to_field_name="name",
        queryset=Tag.objects.order_by("name"),
        label="Tag",
        empty_label="any tag",
    )
    distro = django_filters.ChoiceFilter(
        field_name="distro_id", choices=distro_choices, label="Distro", empty_label="any distro"
    )
    eligibility = django_filters.ChoiceFilter(choices=Eligibility.choices, label="Eligibility", empty_label="any")
    agent_state = django_filters.ChoiceFilter(choices=AgentState.choices, label="Agent", empty_label="any")
    created_after = IsoDateTimeUtcFilter(
        field_name="created_at", lookup_expr="gte", label="Added after", help_text="ISO 8601 date-time"
    )
    created_before = IsoDateTimeUtcFilter(
        field_name="created_at", lookup_expr="lt", label="Added before", help_text="ISO 8601 date-time"
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("name", "name"),
            ("address", "address"),
            ("distro_id", "distro"),
            ("eligibility", "eligibility"),
            ("agent_state", "agent_state"),
            ("last_discovered_at", "last_discovered_at"),
            ("created_at", "created_at"),
        ),
        label="Order by",
    )

    class Meta:
        model = Host
        fields = ["q", "tag", "distro", "eligibility", "agent_state", "created_after", "created_before"]

    def search(self, queryset: QuerySet[Host], name: str, value: str) -> QuerySet[Host]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(address__icontains=value))

    @property
    def active(self) -> dict[str, Any]:
        """The filter values that are set (for keeping them across pages and the discover form)."""
        if not self.is_bound or not self.is_valid():
            return {}
        active: dict[str, Any] = {}
        for key, value in self.form.cleaned_data.items():
            if value in (None, "", []):
                continue
            if isinstance(value, Tag):
                value = value.name
            elif isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            active[key] = value
        return active


def _created_range(field: str = "created_at", noun: str = "Created") -> tuple[Any, Any]:
    after = IsoDateTimeUtcFilter(
        field_name=field, lookup_expr="gte", label=f"{noun} after", help_text="ISO 8601 date-time"
    )
    before = IsoDateTimeUtcFilter(
        field_name=field, lookup_expr="lt", label=f"{noun} before", help_text="ISO 8601 date-time"
    )
    return after, before


class DiscoveryFilterSet(django_filters.FilterSet):
    """Host jobs (discoveries, snapshots, health refreshes, ...) by kind, status and creation time."""

    kind = django_filters.ChoiceFilter(choices=JobKind.choices, label="Kind", empty_label="any kind")
    status = django_filters.ChoiceFilter(choices=DiscoveryStatus.choices, label="Status", empty_label="any status")
    created_after, created_before = _created_range()
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("finished_at", "finished_at"), ("status", "status")),
        label="Order by",
    )

    class Meta:
        model = Discovery
        fields = ["kind", "status", "created_after", "created_before"]


class SnapshotFilterSet(django_filters.FilterSet):
    """One host's snapshots by phase and capture time."""

    phase = django_filters.ChoiceFilter(choices=SnapshotPhase.choices, label="Phase", empty_label="any phase")
    taken_after, taken_before = _created_range("taken_at", "Taken")
    ordering = django_filters.OrderingFilter(
        fields=(("taken_at", "taken_at"), ("cpu_busy_pct", "cpu_busy_pct"), ("mem_used_mb", "mem_used_mb")),
        label="Order by",
    )

    class Meta:
        model = Snapshot
        fields = ["phase", "taken_after", "taken_before"]


class CredentialFilterSet(django_filters.FilterSet):
    """Credentials by kind, name and creation time."""

    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")
    kind = django_filters.ChoiceFilter(choices=CredentialKind.choices, label="Kind", empty_label="any kind")
    created_after, created_before = _created_range()
    ordering = django_filters.OrderingFilter(
        fields=(("name", "name"), ("kind", "kind"), ("created_at", "created_at")), label="Order by"
    )

    class Meta:
        model = Credential
        fields = ["q", "kind", "created_after", "created_before"]
