"""The fleet's one FilterSet: the page, the API list and the "discover by filter" request all use it."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet

from hosts.choices import AgentState, Eligibility
from hosts.models import Host, Tag
from hosts.selectors import distro_choices


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
        fields = ["q", "tag", "distro", "eligibility", "agent_state"]

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
