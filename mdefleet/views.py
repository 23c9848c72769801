"""Helpers shared by every app's page views: role checks and htmx fragment selection."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from mdefleet.roles import has_role

View = Callable[..., HttpResponse]


def role_required(role: str) -> Callable[[View], View]:
    """Anonymous callers go to the login page; logged-in callers below ``role`` get 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped

    return decorator


def htmx_target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will swap (None for a normal or boosted request)."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.boosted:
        return None
    return htmx.target or ""
