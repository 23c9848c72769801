"""The inventory REST API: token auth and roles, host CRUD, import, discover, snapshots, schema."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hosts.choices import RunStatus
from hosts.models import Credential, Discovery, Host
from mdefleet.models import AuditEvent
from tests.factories import (
    CredentialFactory,
    HostCheckFactory,
    HostFactory,
    SnapshotFactory,
    ed25519_private_key,
    ed25519_public_key,
    fernet_keys,  # noqa: F401
)
from tests.problems import errors_by_path

# Discoveries enqueue a Celery task on commit: it goes to the real, flushed test Redis db (`broker`).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys", "broker")]

HOSTS = "/api/v1/hosts/"


@pytest.fixture
def cred(db: Any) -> Credential:
    return CredentialFactory(name="fleet-key")


@pytest.fixture
def operator(api_client_for: Any) -> APIClient:
    return api_client_for("operator")


@pytest.fixture
def viewer(api_client_for: Any) -> APIClient:
    return api_client_for("viewer")


# --- authentication and roles -------------------------------------------------------------


def test_without_a_token_the_api_answers_401(db: Any) -> None:
    response = APIClient().get(HOSTS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["status"] == 401


def test_a_wrong_token_is_401(db: Any) -> None:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api.get(HOSTS).status_code == 401


def test_a_viewer_reads_but_cannot_write(viewer: APIClient, cred: Credential) -> None:
    host = HostFactory(credential=cred)
    assert viewer.get(HOSTS).status_code == 200
    assert viewer.get(f"{HOSTS}{host.pk}/").status_code == 200
    body = {"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key"}
    assert viewer.post(HOSTS, body, format="json").status_code == 403
    assert viewer.patch(f"{HOSTS}{host.pk}/", {"name": "x"}, format="json").status_code == 403
    assert viewer.delete(f"{HOSTS}{host.pk}/").status_code == 403
    assert viewer.post(f"{HOSTS}discover/", {"ids": [host.pk]}, format="json").status_code == 403
    assert viewer.post(f"{HOSTS}import/", {"content": "x"}, format="json").status_code == 403


def test_a_user_without_a_role_is_403(api_client_for: Any) -> None:
    assert api_client_for("none").get(HOSTS).status_code == 403


def test_the_token_works_over_real_http(live_server: Any, users: Any, cred: Credential) -> None:
    HostFactory(name="over-http", credential=cred)
    token = Token.objects.create(user=users["viewer"])
    headers = {"Authorization": f"Token {token.key}"}
    request = urllib.request.Request(f"{live_server.url}{HOSTS}", headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our own live server)
        body = json.load(response)
    assert [h["name"] for h in body["results"]] == ["over-http"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{live_server.url}{HOSTS}", timeout=10)  # noqa: S310
    assert refused.value.code == 401


# --- hosts CRUD ---------------------------------------------------------------------------


def test_an_operator_adds_a_host_with_tags_and_a_pinned_key(operator: APIClient, cred: Credential) -> None:
    key = ed25519_public_key()
    body = {
        "address": "Web01.Example.net",
        "user": "deploy",
        "credential": "fleet-key",
        "tags": ["web"],
        "host_key": key,
    }
    response = operator.post(HOSTS, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["name"] == "web01.example.net" and data["port"] == 22 and data["use_sudo"] is True
    assert data["tags"] == ["web"] and data["credential"] == "fleet-key"
    assert data["host_key_fingerprint"].startswith("SHA256:") and "host_key" not in data
    assert data["page_url"] == f"/hosts/{data['id']}/"
    assert AuditEvent.objects.filter(action="host.create").exists()
    assert AuditEvent.objects.get(action="host.pin_key").details["reason"] == "create"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"address": "10.0.0.1; reboot", "user": "deploy", "credential": "fleet-key"}, "address"),
        ({"address": "10.0.0.1", "user": "Root!", "credential": "fleet-key"}, "user"),
        ({"address": "10.0.0.1", "user": "deploy", "credential": "nope"}, "credential"),
        ({"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key", "port": 0}, "port"),
        ({"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key", "tags": ["a b"]}, "tags"),
        ({"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key", "host_key": "nope"}, "host_key"),
    ],
)
def test_a_bad_host_is_refused_with_the_field(operator: APIClient, cred: Credential, body: dict, field: str) -> None:
    response = operator.post(HOSTS, body, format="json")
    assert response.status_code == 400
    assert field in errors_by_path(response.json())
    assert not Host.objects.exists()


def test_a_duplicate_address_and_port_is_refused(operator: APIClient, cred: Credential) -> None:
    HostFactory(address="10.0.0.1", port=22, credential=cred)
    response = operator.post(HOSTS, {"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key"}, format="json")
    assert response.status_code == 400 and "already a host" in errors_by_path(response.json())["address"][0]


def test_patch_changes_the_allowed_fields_and_audits_connection_changes(operator: APIClient, cred: Credential) -> None:
    host = HostFactory(credential=cred, tags=["old"])
    other = CredentialFactory(name="other-key")
    body = {
        "name": "renamed",
        "port": 2222,
        "user": "ops",
        "credential": "other-key",
        "tags": ["new"],
        "use_sudo": False,
    }
    response = operator.patch(f"{HOSTS}{host.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    host.refresh_from_db()
    assert (host.name, host.port, host.ssh_user, host.credential, host.use_sudo) == (
        "renamed",
        2222,
        "ops",
        other,
        False,
    )
    assert list(host.tags.values_list("name", flat=True)) == ["new"]
    event = AuditEvent.objects.get(action="host.update")
    assert event.details["connection_changed"] is True
    assert event.details["changes"]["credential"] == {"before": "fleet-key", "after": "other-key"}
    assert event.details["changes"]["port"] == {"before": "22", "after": "2222"}


def test_patch_refuses_the_address_and_put_is_not_offered(operator: APIClient, cred: Credential) -> None:
    host = HostFactory(credential=cred)
    response = operator.patch(f"{HOSTS}{host.pk}/", {"address": "10.1.1.1"}, format="json")
    assert response.status_code == 400 and "address" in errors_by_path(response.json())
    put = operator.put(f"{HOSTS}{host.pk}/", {"name": "x"}, format="json")
    assert put.status_code == 405


def test_patch_refuses_a_port_that_another_host_has(operator: APIClient, cred: Credential) -> None:
    HostFactory(address="10.0.0.1", port=2222, credential=cred)
    host = HostFactory(address="10.0.0.1", port=22, credential=cred)
    assert operator.patch(f"{HOSTS}{host.pk}/", {"port": 2222}, format="json").status_code == 400


def test_delete_removes_the_host_and_audits_it(operator: APIClient, cred: Credential) -> None:
    host = HostFactory(credential=cred)
    assert operator.delete(f"{HOSTS}{host.pk}/").status_code == 204
    assert not Host.objects.exists()
    assert AuditEvent.objects.get(action="host.delete").target_id == str(host.pk)


def test_the_list_filters_and_orders_like_the_page(viewer: APIClient, cred: Credential) -> None:
    HostFactory(name="b-web", tags=["web"], credential=cred, discovered=True)
    HostFactory(name="a-web", tags=["web"], credential=cred)
    HostFactory(name="c-db", tags=["db"], credential=cred)
    names = lambda params: [h["name"] for h in viewer.get(HOSTS, params).json()["results"]]  # noqa: E731
    assert names({"tag": "web"}) == ["a-web", "b-web"]
    assert names({"tag": "web", "ordering": "-name"}) == ["b-web", "a-web"]
    assert names({"eligibility": "eligible"}) == ["b-web"]
    assert names({"q": "db"}) == ["c-db"]
    assert viewer.get(HOSTS, {"eligibility": "maybe"}).status_code == 400


def test_the_host_list_uses_the_same_number_of_queries_for_1_and_30_hosts(viewer: APIClient, db: Any) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = viewer.get(HOSTS)
        assert response.status_code == 200
        return len(ctx)

    HostFactory(tags=["web"], discovered=True)
    one = queries()
    for i in range(29):
        HostFactory(tags=[f"t{i % 3}", "all"], credential=CredentialFactory())
    assert viewer.get(HOSTS).json()["count"] == 30
    assert queries() == one


def test_no_host_field_exposes_a_secret(viewer: APIClient, cred: Credential) -> None:
    HostFactory(credential=cred)
    text = json.dumps(viewer.get(HOSTS).json())
    assert "PRIVATE KEY" not in text and "secret" not in text and "gAAAA" not in text


# --- import -------------------------------------------------------------------------------


def test_import_takes_a_json_body_with_csv_content(operator: APIClient, cred: Credential) -> None:
    content = "name,address,user,credential,tags\nweb,10.0.0.1,deploy,fleet-key,web;prod\n"
    response = operator.post(f"{HOSTS}import/", {"format": "csv", "content": content}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 1
    assert response.json()["hosts"][0]["address"] == "10.0.0.1"
    assert AuditEvent.objects.get(action="host.import").details["trust_on_first_use"] is False


def test_import_takes_a_multipart_file_and_the_tofu_choice(operator: APIClient, cred: Credential) -> None:
    content = json.dumps([{"address": "10.0.0.9", "user": "deploy", "credential": "fleet-key"}]).encode()
    upload = SimpleUploadedFile("hosts.json", content, content_type="application/json")
    response = operator.post(f"{HOSTS}import/", {"file": upload, "trust_on_first_use": "true"}, format="multipart")
    assert response.status_code == 201, response.json()
    assert Host.objects.get().trust_on_first_use is True


def test_import_errors_are_a_400_with_line_field_and_message(operator: APIClient, cred: Credential) -> None:
    content = "address,port,user,credential\n10.0.0.1,22,deploy,fleet-key\n10.0.0.2,99999,deploy,fleet-key\n"
    response = operator.post(f"{HOSTS}import/", {"format": "csv", "content": content}, format="json")
    assert response.status_code == 400
    (error,) = errors_by_path(response.json()).items()
    assert error == ("line[3].port", ["must be a number from 1 to 65535"])
    assert response.json()["errors"][0]["line"] == 3 and response.json()["errors"][0]["field"] == "port"
    assert not Host.objects.exists()


def test_an_import_request_without_content_gets_the_same_error_shape(operator: APIClient) -> None:
    response = operator.post(f"{HOSTS}import/", {"format": "xml"}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"line", "field", "message", "path"} <= set(errors[0]) and {e["field"] for e in errors} >= {"format"}


# --- discover and discoveries -------------------------------------------------------------


def test_discover_by_ids_answers_202_with_the_discovery(operator: APIClient, cred: Credential) -> None:
    hosts = HostFactory.create_batch(2, credential=cred)
    response = operator.post(f"{HOSTS}discover/", {"ids": [h.pk for h in hosts]}, format="json")
    assert response.status_code == 202
    data = response.json()
    discovery = Discovery.objects.get()
    assert data == {
        "id": discovery.pk,
        "hosts": 2,
        "url": f"/api/v1/discoveries/{discovery.pk}/",
        "page_url": f"/discoveries/{discovery.pk}/",
    }
    status = operator.get(data["url"]).json()
    assert (status["total"], status["done"], status["finished"], status["counts"]) == (2, 0, False, {"pending": 2})
    discovery.host_runs.update(status=RunStatus.OK)
    assert operator.get(data["url"]).json()["finished"] is True


def test_discover_by_filter_takes_the_matching_hosts(operator: APIClient, cred: Credential) -> None:
    web = HostFactory.create_batch(2, credential=cred, tags=["web"])
    HostFactory(credential=cred, tags=["db"])
    body = {"filter": {"tag": "web", "eligibility": "unknown"}}
    response = operator.post(f"{HOSTS}discover/", body, format="json")
    assert response.status_code == 202
    discovery = Discovery.objects.get()
    assert set(discovery.host_runs.values_list("host_id", flat=True)) == {h.pk for h in web}


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [999999]},
        {"filter": {"tga": "web"}},
        {"filter": {"eligibility": "maybe"}},
        {"filter": {"tag": "nothing-has-this"}},
        {},
        {"ids": [1], "filter": {}},
    ],
)
def test_discover_refuses_what_would_surprise(operator: APIClient, cred: Credential, body: dict) -> None:
    HostFactory(credential=cred, tags=["web"])
    assert operator.post(f"{HOSTS}discover/", body, format="json").status_code == 400
    assert not Discovery.objects.exists()


# --- snapshots and checks -----------------------------------------------------------------


def test_snapshots_are_listed_newest_first_and_paginated(viewer: APIClient, cred: Credential) -> None:
    from datetime import timedelta

    from django.utils import timezone

    host = HostFactory(credential=cred)
    now = timezone.now()
    for hours in (3, 1, 2):
        SnapshotFactory(host=host, taken_at=now - timedelta(hours=hours), cpu_busy_pct=float(hours))
    SnapshotFactory()  # another host's
    page = viewer.get(f"{HOSTS}{host.pk}/snapshots/", {"page_size": 2}).json()
    assert page["count"] == 3 and page["next"]
    assert [s["cpu_busy_pct"] for s in page["results"]] == [1.0, 2.0]
    assert page["results"][0]["filesystems"][0]["mount"] == "/"


def test_checks_are_the_latest_discoverys_step_results(viewer: APIClient, cred: Credential) -> None:
    host = HostFactory(credential=cred)
    HostCheckFactory(run__host=host, step="facts", reason="old")
    latest = HostCheckFactory(run__host=host, step="facts", reason="new", output="x" * 70_000)
    data = viewer.get(f"{HOSTS}{host.pk}/checks/").json()
    assert [c["reason"] for c in data] == ["new"]
    assert data[0]["discovery"] == latest.run.discovery_id
    assert len(data[0]["output"]) == 64 * 1024


# --- credentials --------------------------------------------------------------------------


def test_credentials_are_admin_only_even_to_read(api_client_for: Any) -> None:
    assert api_client_for("viewer").get("/api/v1/credentials/").status_code == 403
    assert api_client_for("operator").get("/api/v1/credentials/").status_code == 403
    assert api_client_for("approver").get("/api/v1/credentials/").status_code == 403
    assert api_client_for("admin").get("/api/v1/credentials/").status_code == 200


def test_an_admin_creates_a_credential_whose_secret_is_never_returned(api_client_for: Any) -> None:
    admin = api_client_for("admin")
    secret = ed25519_private_key()
    response = admin.post(
        "/api/v1/credentials/", {"name": "k1", "kind": "private_key", "secret": secret}, format="json"
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert set(data) == {"id", "name", "kind", "public_fingerprint", "host_count", "created_at"}
    assert data["public_fingerprint"].startswith("SHA256:") and data["host_count"] == 0
    listed = admin.get("/api/v1/credentials/").json()
    assert "PRIVATE KEY" not in json.dumps(listed) and listed["results"][0]["name"] == "k1"


def test_a_bad_private_key_is_refused_without_echoing_it(api_client_for: Any) -> None:
    body = {"name": "k1", "kind": "private_key", "secret": "-----BEGIN nonsense s3cr3t"}
    response = api_client_for("admin").post("/api/v1/credentials/", body, format="json")
    assert response.status_code == 400 and "s3cr3t" not in response.content.decode()


# --- schema and docs ----------------------------------------------------------------------


def test_the_schema_is_served_to_api_users(viewer: APIClient) -> None:
    response = viewer.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert {"/api/v1/hosts/", "/api/v1/hosts/import/", "/api/v1/hosts/discover/", "/api/v1/credentials/"} <= set(paths)
    assert APIClient().get("/api/schema/").status_code == 401


def test_the_docs_page_loads_without_external_urls(viewer_client: Any) -> None:
    response = viewer_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"https?://", html), re.findall(r"https?://[^\"' ]+", html)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/static/"), url
