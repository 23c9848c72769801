"""Login throttling: after MDEFLEET_LOGIN_MAX_FAILURES failed logins for one username from one
address within MDEFLEET_LOGIN_WINDOW_SECONDS, that pair is refused (429) until the window ends.

Counts live in the cache (set CACHE_URL to Redis when several web processes serve the app).
Failed logins and lockouts are audited; the password tried never is.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from mdefleet.audit import Actor, audit_record, client_ip


def _key(username: str, ip: str | None) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{ip or '-'}".encode()).hexdigest()
    return f"mdefleet:login-failures:{digest}"


def login_blocked(*, username: str, ip: str | None) -> bool:
    """True when this username and address used up their failed attempts for the window."""
    return int(cache.get(_key(username, ip), 0)) >= settings.MDEFLEET_LOGIN_MAX_FAILURES


def login_failed(*, username: str, ip: str | None) -> int:
    """Count one failed login; returns the failures so far in the window. Audited, and the lockout too."""
    key = _key(username, ip)
    cache.add(key, 0, timeout=settings.MDEFLEET_LOGIN_WINDOW_SECONDS)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.MDEFLEET_LOGIN_WINDOW_SECONDS)
        failures = 1
    actor = Actor(label=f"anonymous ({username[:100]})", source_ip=ip)
    audit_record(actor=actor, action="auth.login_failed", details={"username": username[:150], "failures": failures})
    if failures == settings.MDEFLEET_LOGIN_MAX_FAILURES:
        audit_record(
            actor=actor,
            action="auth.locked",
            details={"username": username[:150], "minutes": settings.MDEFLEET_LOGIN_WINDOW_SECONDS // 60},
        )
    return failures


def login_succeeded(*, username: str, ip: str | None) -> None:
    """Forget the failures of this username and address."""
    cache.delete(_key(username, ip))


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view with failed attempts counted per username and address."""

    redirect_authenticated_user = True
    http_method_names = ["get", "post", "head", "options"]  # FormView would take PUT as a login

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))[:150]
        if username and login_blocked(username=username, ip=client_ip(request)):
            form = self.get_form()
            minutes = max(1, settings.MDEFLEET_LOGIN_WINDOW_SECONDS // 60)
            form.add_error(
                None,
                f"Too many failed logins for this user from your address: try again in {minutes} minutes.",
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        username = str(form.data.get("username", ""))[:150]
        if username:
            login_failed(username=username, ip=client_ip(self.request))
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        login_succeeded(username=form.get_user().get_username(), ip=client_ip(self.request))
        audit_record(actor=Actor.from_request(self.request), action="auth.login", target=form.get_user())
        return response
