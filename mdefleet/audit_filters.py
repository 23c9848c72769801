"""One filter set for the audit trail, used by the audit page and ``GET /api/v1/audit/``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from mdefleet.models import AuditEvent


class IPAddressFilter(django_filters.CharFilter):
    """An exact address; anything else is a 400 with the reason, never a database cast error."""

    field_class = forms.GenericIPAddressField


class AuditEventFilterSet(django_filters.FilterSet):
    """Who (actor), what (action, or its prefix such as ``rollout.``), on what (target), when (since/until)."""

    actor = django_filters.CharFilter(method="filter_actor", label="Actor")
    action = django_filters.CharFilter(method="filter_action", label="Action")
    target = django_filters.CharFilter(method="filter_target", label="Target")
    target_type = django_filters.CharFilter(field_name="target_type", label="Target type")
    target_id = django_filters.CharFilter(field_name="target_id", label="Target id")
    since = django_filters.DateTimeFilter(field_name="at", lookup_expr="gte", label="Since")
    until = django_filters.DateTimeFilter(method="filter_until", label="Until")
    source_ip = IPAddressFilter(field_name="source_ip", label="From address")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target", "target_type", "target_id", "since", "until", "source_ip"]

    def filter_actor(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        return queryset.filter(actor_label__icontains=value.strip())

    def filter_action(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        value = value.strip()
        # "rollout." (or "rollout") selects every rollout action; a full name selects only it.
        if value.endswith(".") or "." not in value:
            return queryset.filter(action__startswith=value.rstrip(".") + ".") | queryset.filter(action=value)
        return queryset.filter(action=value)

    def filter_until(self, queryset: QuerySet[AuditEvent], name: str, value: datetime) -> QuerySet[AuditEvent]:
        # A bare date means the whole of that day.
        if len(str(self.data.get("until", "")).strip()) <= 10:
            return queryset.filter(at__lt=value + timedelta(days=1))
        return queryset.filter(at__lte=value)

    def filter_target(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        value = value.strip()
        return queryset.filter(Q(target_label__icontains=value) | Q(target_type=value) | Q(target_id=value))

    @property
    def active(self) -> dict[str, Any]:
        """The filters in use, for keeping them across pages."""
        if not self.is_bound:
            return {}
        return {k: v for k, v in self.data.items() if k in self.base_filters and v not in ("", None)}
