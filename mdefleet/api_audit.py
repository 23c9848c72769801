"""``GET /api/v1/audit/``: the audit trail, read-only, with the audit page's filters."""

from __future__ import annotations

from rest_framework import serializers, viewsets
from rest_framework.routers import DefaultRouter

from hosts.api.pagination import StandardPagination
from mdefleet.audit_filters import AuditEventFilterSet
from mdefleet.models import AuditEvent
from mdefleet.roles import VIEWER


class AuditEventSerializer(serializers.ModelSerializer):
    """One audit event: who, when, what, on what, from where, and its details (before/after)."""

    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "actor_label",
            "action",
            "target_type",
            "target_id",
            "target_label",
            "source_ip",
            "details",
        ]
        read_only_fields = fields


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first. Filters: actor, action (or a prefix such as ``rollout.``),
    target, target_type, target_id, since, until, source_ip."""

    queryset = AuditEvent.objects.select_related("actor").order_by("-at", "-id")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = StandardPagination
    ordering_fields = ["at", "action"]
    read_role = VIEWER


router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# JSON only: the ".json" suffix routes crashed the @action views (they take no format argument).
router.include_format_suffixes = False
router.register("audit", AuditEventViewSet, basename="audit-event")

app_name = "audit-api"
urlpatterns = router.urls
