"""The rollout lists' FilterSets: one per list, shared by the page and the API with the same parameters."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from deployments.choices import Channel, HostRunStatus, RolloutStatus
from deployments.models import HostRun, Profile, Rollout
from hosts.filters import CreatedRangeFilterSet


class RolloutFilterSet(CreatedRangeFilterSet):
    """Rollouts by status, ticket, creation time and a free-text search over name and ticket."""

    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the name or the ticket")
    status = django_filters.ChoiceFilter(choices=RolloutStatus.choices, label="Status", empty_label="any status")
    ticket = django_filters.CharFilter(field_name="ticket", lookup_expr="iexact", label="Ticket")
    profile = django_filters.NumberFilter(field_name="profile_id", label="Profile id")
    tag = django_filters.CharFilter(
        method="by_tag", label="Host tag", help_text="Rollouts with at least one host carrying this tag"
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("name", "name"),
            ("status", "status"),
            ("ticket", "ticket"),
            ("started_at", "started_at"),
            ("finished_at", "finished_at"),
        ),
        label="Order by",
    )

    class Meta:
        model = Rollout
        fields = ["q", "status", "ticket", "profile", "tag", "created_after", "created_before"]

    def by_tag(self, queryset: QuerySet[Rollout], name: str, value: str) -> QuerySet[Rollout]:
        value = value.strip()
        if not value:
            return queryset
        runs = HostRun.objects.filter(rollout=OuterRef("pk"), host__tags__name=value)
        return queryset.filter(Exists(runs))

    def search(self, queryset: QuerySet[Rollout], name: str, value: str) -> QuerySet[Rollout]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(ticket__icontains=value))


class HostRunFilterSet(django_filters.FilterSet):
    """A rollout's host runs by status, wave number (1-based, as on screen) and host name."""

    status = django_filters.ChoiceFilter(choices=HostRunStatus.choices, label="Status", empty_label="any status")
    wave = django_filters.NumberFilter(method="by_wave", label="Wave", help_text="Wave number, 1 for the first")
    q = django_filters.CharFilter(method="search", label="Host", help_text="Part of the host's name or address")
    ordering = django_filters.OrderingFilter(
        fields=(("id", "id"), ("host__name", "host"), ("status", "status"), ("started_at", "started_at"),
                ("finished_at", "finished_at")),
        label="Order by",
    )  # fmt: skip

    class Meta:
        model = HostRun
        fields = ["status", "wave", "q"]

    def by_wave(self, queryset: QuerySet[HostRun], name: str, value: int) -> QuerySet[HostRun]:
        return queryset.filter(wave__index=int(value) - 1)

    def search(self, queryset: QuerySet[HostRun], name: str, value: str) -> QuerySet[HostRun]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(host__name__icontains=value) | Q(host__address__icontains=value))


class ProfileFilterSet(CreatedRangeFilterSet):
    """Profiles by text (name or description), channel and creation time; the page and the API share it."""

    q = django_filters.CharFilter(method="filter_q", label="Search", help_text="Part of the name or description")
    channel = django_filters.ChoiceFilter(choices=Channel.choices, empty_label="Any channel")
    ordering = django_filters.OrderingFilter(
        fields=(("name", "name"), ("channel", "channel"), ("created_at", "created_at"), ("updated_at", "updated_at")),
        label="Order by",
    )

    class Meta:
        model = Profile
        fields = ["q", "channel", "created_after", "created_before"]

    def filter_q(self, queryset: QuerySet[Profile], name: str, value: str) -> QuerySet[Profile]:
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))
