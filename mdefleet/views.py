"""Helpers shared by every app's page views: role checks, htmx fragment selection, service errors on forms."""

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


def form_errors_attach(form: Any, errors: dict[str, list[str]], field_map: dict[str, str] | None = None) -> None:
    """Put a service's refusal (messages by field) on the form fields they name, the rest on the form."""
    for key, messages in errors.items():
        field = (field_map or {}).get(key, key)
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)


def htmx_target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will swap (None for a normal or boosted request)."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.boosted:
        return None
    return htmx.target or ""
