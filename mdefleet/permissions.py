"""API permission: reads need viewer, writes need the view's ``required_role`` (operator by default)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from mdefleet.roles import OPERATOR, VIEWER, has_role


class RolePermission(BasePermission):
    """Checks the caller's role against the view's ``read_role`` and ``required_role``."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in SAFE_METHODS:
            return has_role(request.user, getattr(view, "read_role", VIEWER))
        return has_role(request.user, getattr(view, "required_role", OPERATOR))
