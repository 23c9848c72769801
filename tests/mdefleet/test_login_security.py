"""Login: throttled per username and address, audited; htmx posts carry the CSRF token or are refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from mdefleet.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def login(client: Client, username: str, password: str, ip: str = "192.0.2.10") -> Any:
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_a_person_logs_in_and_the_login_is_audited(client: Client, users: dict[str, User]) -> None:
    response = login(client, "viewer-user", "pw-for-tests-1")
    assert response.status_code == 302 and response["Location"] == reverse("hosts:fleet")
    event = AuditEvent.objects.get(action="auth.login")
    assert (event.actor, event.source_ip) == (users["viewer"], "192.0.2.10")


def test_five_failures_lock_that_username_from_that_address_with_429(client: Client, users: dict[str, User]) -> None:
    for _ in range(5):
        assert login(client, "viewer-user", "wrong").status_code == 200
    # Even the right password is refused now: the attacker cannot tell the difference.
    refused = login(client, "viewer-user", "pw-for-tests-1")
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 5
    locked = AuditEvent.objects.get(action="auth.locked")
    assert locked.details["username"] == "viewer-user" and locked.source_ip == "192.0.2.10"
    assert not any("wrong" in str(e.details) for e in AuditEvent.objects.all())


def test_the_lock_holds_one_username_from_one_address_only(client: Client, users: dict[str, User]) -> None:
    for _ in range(5):
        login(client, "viewer-user", "wrong")
    assert login(Client(), "viewer-user", "pw-for-tests-1", ip="192.0.2.99").status_code == 302
    assert login(Client(), "operator-user", "pw-for-tests-1").status_code == 302


def test_the_lock_ends_with_its_window(client: Client, users: dict[str, User], settings: Any) -> None:
    settings.MDEFLEET_LOGIN_MAX_FAILURES = 2
    for _ in range(2):
        login(client, "viewer-user", "wrong")
    assert login(client, "viewer-user", "pw-for-tests-1").status_code == 429
    cache.clear()  # what the window's expiry does
    assert login(client, "viewer-user", "pw-for-tests-1").status_code == 302


def test_a_success_forgets_earlier_failures(client: Client, users: dict[str, User]) -> None:
    for _ in range(4):
        login(client, "viewer-user", "wrong")
    assert login(client, "viewer-user", "pw-for-tests-1").status_code == 302
    other = Client()
    for _ in range(4):
        assert login(other, "viewer-user", "wrong").status_code == 200


def test_a_spoofed_forwarded_for_does_not_reset_the_count(client: Client, users: dict[str, User]) -> None:
    for n in range(5):
        client.post(
            reverse("login"), {"username": "viewer-user", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        )
    assert login(client, "viewer-user", "pw-for-tests-1", ip="127.0.0.1").status_code == 429


# --- CSRF on htmx requests -------------------------------------------------------------------------


def test_an_htmx_post_needs_the_token_from_the_pages_hx_headers(users: dict[str, User]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["operator"])
    page = client.get(reverse("hosts:fleet"))
    match = re.search(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""", page.content.decode())
    assert match, "base.html must put the CSRF token in hx-headers on <body>"
    url = reverse("deployments:rollout-preview")
    headers = {"HX-Request": "true", "HX-Target": "preview"}

    without = client.post(url, {"name": "x"}, headers=headers)
    assert without.status_code == 403

    with_token = client.post(url, {"name": "x"}, headers={**headers, "X-CSRFToken": match.group(1)})
    assert with_token.status_code == 200


def test_production_cookies_are_secure_and_http_only() -> None:
    import subprocess
    import sys

    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS > 0, s.SECURE_PROXY_SSL_HEADER)"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "mdefleet.settings",
        "DEBUG": "0",
        "SECRET_KEY": "k" * 60,
        "MDEFLEET_FERNET_KEYS": "bGV0LXRoZS10ZXN0cy1oYXZlLWEta2V5LTMyYnl0ZXM=",
        "BEHIND_TLS_PROXY": "1",
        "PYTHONPATH": ".",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True True True True True ('HTTP_X_FORWARDED_PROTO', 'https')"
