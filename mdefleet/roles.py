"""Roles are Django groups with a fixed order: each role can do what the ones below it can."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

VIEWER = "viewer"
OPERATOR = "operator"
APPROVER = "approver"
ADMIN = "admin"
ROLE_ORDER = [VIEWER, OPERATOR, APPROVER, ADMIN]


def user_role(user: Any) -> str | None:
    """The highest role a user holds, ``admin`` for superusers, None for anonymous or roleless users."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_mdefleet_role", "unset")
    if cached != "unset":
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = None
    for candidate in ROLE_ORDER:
        if candidate in names:
            role = candidate
    user._mdefleet_role = role
    return role


def has_role(user: Any, required: str) -> bool:
    """True when the user's role is at least ``required``."""
    role = user_role(user)
    return role is not None and ROLE_ORDER.index(role) >= ROLE_ORDER.index(required)


def roles_context(request: HttpRequest) -> dict[str, Any]:
    """Template context: the caller's role and what it allows, for showing only usable actions."""
    user = getattr(request, "user", None)
    return {
        "role": user_role(user),
        "can_operate": has_role(user, OPERATOR),
        "can_approve": has_role(user, APPROVER),
        "can_admin": has_role(user, ADMIN),
    }
