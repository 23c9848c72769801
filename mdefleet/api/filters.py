"""The service-account list's FilterSet, shared by the page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from hosts.filters import CreatedRangeFilterSet
from mdefleet.models import ServiceAccount
from mdefleet.roles import ROLE_ORDER


class ServiceAccountFilterSet(CreatedRangeFilterSet):
    """Service accounts by role, state, creation time and a search over name and description."""

    q = django_filters.CharFilter(method="search", label="Search", help_text="Part of the name or description")
    role = django_filters.ChoiceFilter(choices=[(r, r) for r in ROLE_ORDER], label="Role", empty_label="any role")
    state = django_filters.ChoiceFilter(
        choices=[("active", "active"), ("expired", "expired"), ("revoked", "revoked")],
        method="by_state",
        label="State",
        empty_label="any state",
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("name", "name"),
            ("role", "role"),
            ("created_at", "created_at"),
            ("expires_at", "expires_at"),
            ("last_used_at", "last_used_at"),
        ),
        label="Order by",
    )

    class Meta:
        model = ServiceAccount
        fields = ["q", "role", "state", "created_after", "created_before"]

    def search(self, queryset: QuerySet[ServiceAccount], name: str, value: str) -> QuerySet[ServiceAccount]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))

    def by_state(self, queryset: QuerySet[ServiceAccount], name: str, value: str) -> QuerySet[ServiceAccount]:
        now = timezone.now()
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if value == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset.filter(revoked_at__isnull=True, expires_at__gt=now)
