"""Service accounts: created by an admin with the token shown once, stored hashed, expiring, revocable.

The refusals (revoked, expired, too weak a role) are exercised over real HTTP against a live server.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from hosts.models import Host
from mdefleet.audit import SYSTEM, Actor
from mdefleet.models import AuditEvent, ServiceAccount
from mdefleet.service_accounts import (
    TokenRefused,
    service_account_authenticate,
    service_account_create,
    service_account_revoke,
    token_hash,
)
from tests.factories import CredentialFactory, fernet_keys  # noqa: F401 (fixture)
from tests.integration.http import ApiClient
from tests.problems import assert_problem, errors_by_path

ACCOUNTS = "/api/v1/service-accounts/"
HOSTS = "/api/v1/hosts/"

pytestmark = [pytest.mark.usefixtures("fernet_keys")]


def bearer(live_server: Any, token: str) -> ApiClient:
    return BearerClient(live_server.url, token)


class BearerClient(ApiClient):
    """The integration ApiClient, sending ``Authorization: Bearer <token>``."""

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        token, self.token = self.token, None
        try:
            return super().request(method, path, body, {"Authorization": f"Bearer {token}", **(headers or {})})
        finally:
            self.token = token


def new_host_body(credential: str) -> dict[str, Any]:
    return {"address": "10.9.9.9", "user": "deploy", "credential": credential}


# --- creating, showing once, storing hashed ------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_creates_an_account_and_sees_its_token_exactly_once(users: dict[str, User]) -> None:
    admin = APIClient()
    admin.force_authenticate(users["admin"])
    response = admin.post(ACCOUNTS, {"name": "servicenow-prod", "role": "operator"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    token = body["token"]
    assert token.startswith("mdf_") and len(token) >= 40
    assert response["Cache-Control"] == "no-store"
    account = ServiceAccount.objects.get(name="servicenow-prod")
    assert account.token_hash == token_hash(token) and token not in account.token_hash
    assert body["state"] == "active" and body["role"] == "operator"
    lifetime = account.expires_at - timezone.now()
    assert timedelta(days=89, hours=23) < lifetime <= timedelta(days=90)
    # Never again: not in the list, not in the detail, not in the audit trail.
    listed = admin.get(ACCOUNTS).content.decode() + admin.get(f"{ACCOUNTS}{account.pk}/").content.decode()
    assert token not in listed and '"token"' not in listed
    event = AuditEvent.objects.get(action="service_account.create")
    assert token not in json.dumps(event.details) and event.actor == users["admin"]
    assert event.details["role"] == "operator"


@pytest.mark.django_db
def test_expiry_is_bounded_and_never_never(users: dict[str, User]) -> None:
    admin = APIClient()
    admin.force_authenticate(users["admin"])
    too_far = (timezone.now() + timedelta(days=400)).isoformat()
    response = admin.post(ACCOUNTS, {"name": "jira", "role": "viewer", "expires_at": too_far}, format="json")
    assert response.status_code == 400
    assert "365 days" in errors_by_path(response.json())["expires_at"][0]
    bad_role = admin.post(ACCOUNTS, {"name": "jira", "role": "root"}, format="json")
    assert "role" in errors_by_path(bad_role.json())
    assert not ServiceAccount.objects.exists()


@pytest.mark.django_db
def test_only_admins_manage_service_accounts(api_client_for: Any) -> None:
    for role in ("viewer", "operator", "approver"):
        api = api_client_for(role)
        assert api.get(ACCOUNTS).status_code == 403
        refused = api.post(ACCOUNTS, {"name": f"x-{role}", "role": "viewer"}, format="json")
        assert_problem(refused.json(), 403)
    assert not ServiceAccount.objects.exists()


@pytest.mark.django_db
def test_a_service_account_cannot_mint_more_tokens(users: dict[str, User]) -> None:
    _, token = service_account_create(actor=SYSTEM, name="robot-admin", role="admin")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get(HOSTS).status_code == 200
    response = api.post(ACCOUNTS, {"name": "second", "role": "admin"}, format="json")
    assert response.status_code == 403 and "Service accounts cannot" in response.json()["detail"]
    assert ServiceAccount.objects.count() == 1


@pytest.mark.django_db
def test_revoking_is_audited_and_idempotent(users: dict[str, User]) -> None:
    account, _ = service_account_create(actor=SYSTEM, name="old-itsm", role="operator")
    admin = APIClient()
    admin.force_authenticate(users["admin"])
    first = admin.post(f"{ACCOUNTS}{account.pk}/revoke/")
    second = admin.post(f"{ACCOUNTS}{account.pk}/revoke/")
    assert first.status_code == second.status_code == 200
    assert first.json()["state"] == "revoked" and first.json()["revoked_by"] == "admin-user"
    assert AuditEvent.objects.filter(action="service_account.revoke").count() == 1
    account.refresh_from_db()
    assert account.user.is_active is False


@pytest.mark.django_db
def test_last_use_is_written_at_most_once_a_minute() -> None:
    account, token = service_account_create(actor=SYSTEM, name="poller", role="viewer")
    first = service_account_authenticate(token=token).last_used_at
    assert first is not None
    assert service_account_authenticate(token=token).last_used_at == first
    ServiceAccount.objects.filter(pk=account.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    assert service_account_authenticate(token=token).last_used_at > first


@pytest.mark.django_db
def test_unknown_revoked_and_expired_tokens_are_refused_by_name() -> None:
    account, token = service_account_create(actor=SYSTEM, name="ticketing", role="operator")
    with pytest.raises(TokenRefused, match="Invalid token"):
        service_account_authenticate(token=token + "x")
    ServiceAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(TokenRefused, match="expired"):
        service_account_authenticate(token=token)
    service_account_revoke(actor=SYSTEM, account=account)
    with pytest.raises(TokenRefused, match="revoked"):
        service_account_authenticate(token=token)


# --- over HTTP: what a ticketing system sees ------------------------------------------------------


def test_a_valid_token_works_as_bearer_and_as_token_and_acts_under_its_own_name(live_server: Any) -> None:
    credential = CredentialFactory(name="fleet-key")
    account, token = service_account_create(actor=SYSTEM, name="servicenow", role="operator")
    assert bearer(live_server, token).get(HOSTS).status == 200
    created = ApiClient(live_server.url, token).post(HOSTS, new_host_body(credential.name))  # "Token mdf_..."
    assert created.status == 201, created.body
    event = AuditEvent.objects.get(action="host.create")
    assert event.actor == account.user and event.actor_label == "svc-servicenow (token)"
    account.refresh_from_db()
    assert account.last_used_at is not None


@pytest.mark.parametrize("how", ["revoked", "expired", "unknown"])
def test_revoked_expired_and_unknown_tokens_get_401_and_change_nothing(live_server: Any, how: str) -> None:
    credential = CredentialFactory(name="fleet-key")
    account, token = service_account_create(actor=SYSTEM, name="itsm", role="admin")
    if how == "revoked":
        service_account_revoke(actor=Actor(label="admin"), account=account)
    elif how == "expired":
        ServiceAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    else:
        token = "mdf_" + "A" * 43
    events = AuditEvent.objects.count()
    api = bearer(live_server, token)
    for reply in (api.get(HOSTS), api.post(HOSTS, new_host_body(credential.name))):
        assert reply.status == 401, reply.body
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert_problem(reply.body, 401)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert {"revoked": "Token revoked.", "expired": "Token expired.", "unknown": "Invalid token."}[how] == reply.body[
        "detail"
    ]
    assert not Host.objects.exists() and AuditEvent.objects.count() == events


def test_a_token_with_too_weak_a_role_gets_403_and_changes_nothing(live_server: Any) -> None:
    credential = CredentialFactory(name="fleet-key")
    _, viewer_token = service_account_create(actor=SYSTEM, name="reporting", role="viewer")
    _, operator_token = service_account_create(actor=SYSTEM, name="itsm", role="operator")
    events = AuditEvent.objects.count()
    viewer = bearer(live_server, viewer_token)
    assert viewer.get(HOSTS).status == 200
    refused = viewer.post(HOSTS, new_host_body(credential.name))
    assert refused.status == 403 and assert_problem(refused.body, 403)
    # Credentials are admin-only, for reading too.
    assert bearer(live_server, operator_token).get("/api/v1/credentials/").status == 403
    assert bearer(live_server, operator_token).post(ACCOUNTS, {"name": "x", "role": "admin"}).status == 403
    assert not Host.objects.exists() and AuditEvent.objects.count() == events
    assert ServiceAccount.objects.count() == 2


# --- the page ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_creates_an_account_shows_the_token_once_and_revokes_it(admin_client_: Any) -> None:
    response = admin_client_.post(
        "/service-accounts/", {"name": "jira-sm", "role": "operator", "description": "JSM", "expires_in_days": 30}
    )
    assert response.status_code == 201
    account = ServiceAccount.objects.get(name="jira-sm")
    page = response.content.decode()
    token = page.split('id="created-token"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert token_hash(token) == account.token_hash and "Copy" in page
    assert response["Cache-Control"] == "no-store"
    assert token not in admin_client_.get("/service-accounts/").content.decode()
    assert timedelta(days=29) < account.expires_at - timezone.now() <= timedelta(days=30)
    revoked = admin_client_.post(f"/service-accounts/{account.pk}/revoke/")
    assert revoked.status_code == 302
    account.refresh_from_db()
    assert account.revoked_at is not None


@pytest.mark.django_db
def test_the_page_is_for_admins_only(operator_client: Any) -> None:
    assert operator_client.get("/service-accounts/").status_code == 403
    assert operator_client.post("/service-accounts/", {"name": "x", "role": "admin"}).status_code == 403
    assert not ServiceAccount.objects.exists()
