"""The audit page: every recorded state change, filterable and paginated (viewer role and up).

Viewers read everything but secrets, and no audit event holds a secret, so the trail is theirs to
read too: a security team checks who changed what without needing a write role.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from mdefleet.audit_filters import AuditEventFilterSet
from mdefleet.models import AuditEvent
from mdefleet.roles import VIEWER
from mdefleet.views import htmx_target, role_required

PAGE_SIZE = 50


def audit_events() -> Any:
    """The trail, newest first, with only the columns the list shows (no join: the actor is denormalised)."""
    return AuditEvent.objects.order_by("-at", "-id")


@require_GET
@role_required(VIEWER)
def audit_list(request: HttpRequest) -> HttpResponse:
    """The audit trail with filters by actor, action, target and date range."""
    filterset = AuditEventFilterSet(request.GET or None, queryset=audit_events())
    events = filterset.qs if filterset.is_valid() else AuditEvent.objects.none()
    paginator = Paginator(events, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context: dict[str, Any] = {
        "filterset": filterset,
        "page": page,
        "events": list(page.object_list),
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "actions": AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct(),
    }
    if htmx_target(request) == "audit-table":
        return render(request, "mdefleet/partials/audit_table.html", context)
    return render(request, "mdefleet/audit.html", context)
