"""Inventory pages per role: fleet, discover, discovery progress, host detail, re-pin, credentials."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hosts.choices import DiscoveryStatus, RunStatus, StepStatus
from hosts.models import Credential, Discovery, DiscoveryHost, Host
from hosts.services import discovery_start
from mdefleet.audit import Actor
from mdefleet.models import AuditEvent
from tests.broker import Broker
from tests.factories import (
    CredentialFactory,
    HostCheckFactory,
    HostFactory,
    SnapshotFactory,
    ed25519_private_key,
    ed25519_public_key,
    fernet_keys,  # noqa: F401
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]

HTMX = {"HTTP_HX_REQUEST": "true"}
DISCOVERY_RUN = "hosts.tasks.discovery_run_task"


def htmx(target: str) -> dict[str, str]:
    return {**HTMX, "HTTP_HX_TARGET": target}


@pytest.fixture
def host(db: Any) -> Host:
    return HostFactory(discovered=True, tags=["web", "prod"])


@pytest.fixture
def discovery(host: Host, broker: Broker) -> Discovery:
    """Enqueued on commit (never, inside the test's transaction); a message would go to the flushed test Redis."""
    return discovery_start(actor=Actor(label="test"), hosts=[host])


def finish(discovery: Discovery, status: str = RunStatus.OK) -> None:
    discovery.host_runs.update(status=status, finished_at=timezone.now())
    Discovery.objects.filter(pk=discovery.pk).update(status=DiscoveryStatus.DONE, finished_at=timezone.now())


def page_urls(host: Host, discovery: Discovery) -> list[str]:
    check = HostCheckFactory(run=discovery.host_runs.get(), host=host)
    return [
        "/",
        f"/hosts/{host.pk}/",
        f"/discoveries/{discovery.pk}/",
        f"/hosts/{host.pk}/checks/{check.pk}/output/",
        f"/hosts/{host.pk}/host-key/",
        "/import/",
        "/credentials/",
    ]


# --- who may see what ---------------------------------------------------------------------


def test_every_page_sends_anonymous_people_to_the_login_page(client: Any, host: Host, discovery: Discovery) -> None:
    for url in page_urls(host, discovery):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


def test_a_user_without_a_role_is_refused(client: Any, users: Any, host: Host) -> None:
    client.force_login(users["none"])
    assert client.get("/").status_code == 403
    assert client.get(f"/hosts/{host.pk}/").status_code == 403


def test_a_viewer_reads_pages_but_not_operator_or_admin_ones(
    viewer_client: Any, host: Host, discovery: Discovery
) -> None:
    allowed = {"/", f"/hosts/{host.pk}/", f"/discoveries/{discovery.pk}/"}
    for url in page_urls(host, discovery):
        expected = 200 if url in allowed or "/output/" in url else 403
        assert viewer_client.get(url).status_code == expected, url


def test_an_operator_imports_but_does_not_manage_credentials_or_keys(operator_client: Any, host: Host) -> None:
    assert operator_client.get("/import/").status_code == 200
    assert operator_client.get("/credentials/").status_code == 403
    assert operator_client.get(f"/hosts/{host.pk}/host-key/").status_code == 403
    assert operator_client.post(f"/hosts/{host.pk}/host-key/", {"confirm": "on"}).status_code == 403


def test_the_login_page_renders(client: Any, db: Any) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_the_layout_loads_htmx_locally_and_sends_csrf_in_hx_headers(viewer_client: Any) -> None:
    html = viewer_client.get("/").content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert any(re.fullmatch(r"/static/django_htmx/htmx-2(\.min)?\.js", src) for src in scripts), scripts
    assert all(src.startswith("/static/") for src in scripts)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/", "?", "data:")), url
    body = re.search(r"<body hx-headers='([^']+)'>", html)
    assert body is not None and "X-CSRFToken" in json.loads(body.group(1))


def test_the_nav_shows_only_what_the_role_may_use(viewer_client: Any, users: Any, client: Any) -> None:
    html = viewer_client.get("/").content.decode()
    assert "API docs" in html and ">Import<" not in html and ">Credentials<" not in html
    client.force_login(users["admin"])
    html = client.get("/").content.decode()
    assert ">Import<" in html and ">Credentials<" in html and "admin-user" in html


# --- fleet --------------------------------------------------------------------------------


def test_the_fleet_shows_hosts_without_a_discover_button_for_viewers(viewer_client: Any, host: Host) -> None:
    html = viewer_client.get("/").content.decode()
    assert host.name in html and f"{host.address}:22" in html and "rhel 9.4" in html
    assert "Discover</button>" not in html and 'name="ids"' not in html


def test_operators_get_checkboxes_and_the_discover_button(operator_client: Any, host: Host) -> None:
    html = operator_client.get("/").content.decode()
    assert f'name="ids" value="{host.pk}"' in html
    assert "Discover</button>" in html and "data-select-page" in html and 'name="all_matching"' in html


def test_the_fleet_filters_by_tag_search_and_state(viewer_client: Any, host: Host) -> None:
    other = HostFactory(name="db-17", tags=["db"])
    by_tag = viewer_client.get("/", {"tag": "db"}).context["hosts"]
    assert by_tag == [other]
    assert viewer_client.get("/", {"q": "db-1"}).context["hosts"] == [other]
    assert viewer_client.get("/", {"eligibility": "eligible"}).context["hosts"] == [host]
    assert viewer_client.get("/", {"distro": "rhel"}).context["hosts"] == [host]
    assert viewer_client.get("/", {"agent_state": "unknown"}).context["hosts"] == [other]


def test_the_fleet_paginates_with_a_selectable_page_size(viewer_client: Any, db: Any) -> None:
    HostFactory.create_batch(30, credential=CredentialFactory())
    response = viewer_client.get("/", {"page_size": "25", "page": "2"})
    assert len(response.context["hosts"]) == 5
    assert response.context["page"].paginator.count == 30
    assert len(viewer_client.get("/").context["hosts"]) == 30


def test_an_htmx_filter_request_gets_only_the_table(viewer_client: Any, host: Host) -> None:
    response = viewer_client.get("/", {"q": host.name}, **htmx("fleet-table"))
    html = response.content.decode()
    assert '<div id="fleet-table"' in html and "<html" not in html
    assert 'hx-trigger="discoveryFinished from:body"' in html


def test_the_fleet_page_uses_the_same_number_of_queries_for_1_and_30_hosts(viewer_client: Any, db: Any) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = viewer_client.get("/")
        assert response.status_code == 200
        return len(ctx)

    HostFactory(discovered=True, tags=["web"])
    one = queries()
    for i in range(29):
        HostFactory(discovered=True, tags=[f"t{i % 4}", "all"], credential=CredentialFactory())
    assert viewer_client.get("/").context["page"].paginator.count == 30
    assert queries() == one


# --- discover -----------------------------------------------------------------------------


def test_an_operator_discovers_the_ticked_hosts(operator_client: Any, host: Host, broker: Broker) -> None:
    other, _skipped = HostFactory(), HostFactory()
    with pytest.MonkeyPatch.context():
        response = operator_client.post("/discover/", {"ids": [host.pk, other.pk]})
    discovery = Discovery.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/discoveries/{discovery.pk}/"
    assert set(discovery.host_runs.values_list("host_id", flat=True)) == {host.pk, other.pk}
    assert discovery.created_by.username == "operator-user"
    assert AuditEvent.objects.filter(action="discovery.start", target_id=str(discovery.pk)).exists()
    # The task is enqueued only once the transaction commits (never inside the test's transaction).
    assert broker.sent(DISCOVERY_RUN) == []


def test_the_discovery_task_is_enqueued_on_commit(
    operator_client: Any, host: Host, django_capture_on_commit_callbacks: Any, broker: Broker
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post("/discover/", {"ids": [host.pk]})
    assert broker.sent(DISCOVERY_RUN) == [(Discovery.objects.get().pk,)]


@pytest.mark.usefixtures("broker")
def test_an_operator_discovers_every_host_matching_the_filter(operator_client: Any, host: Host) -> None:
    HostFactory.create_batch(3, tags=["db"])
    operator_client.post("/discover/", {"all_matching": "1", "tag": "db", "ids": [host.pk]})
    runs = DiscoveryHost.objects.filter(discovery=Discovery.objects.get())
    assert runs.count() == 3 and not runs.filter(host=host).exists()


def test_discovering_nothing_is_refused(operator_client: Any, host: Host) -> None:
    response = operator_client.post("/discover/", {"next": "/?q=x"})
    assert response.status_code == 302 and response["Location"] == "/?q=x"
    assert not Discovery.objects.exists()
    response = operator_client.post("/discover/", {}, **htmx("discovery-panel"))
    assert b"Select at least one host" in response.content


def test_a_viewer_cannot_start_a_discovery(viewer_client: Any, host: Host) -> None:
    assert viewer_client.post("/discover/", {"ids": [host.pk]}).status_code == 403
    assert not Discovery.objects.exists()


@pytest.mark.usefixtures("broker")
def test_discover_over_htmx_answers_the_polling_progress_fragment(operator_client: Any, host: Host) -> None:
    response = operator_client.post("/discover/", {"ids": [host.pk]}, **htmx("discovery-panel"))
    html = response.content.decode()
    discovery = Discovery.objects.get()
    assert response.status_code == 200 and "<html" not in html
    assert 'id="discovery-progress"' in html and 'hx-trigger="every 1s"' in html
    assert f'hx-get="/discoveries/{discovery.pk}/"' in html


# --- discovery progress -------------------------------------------------------------------


def test_the_progress_fragment_polls_while_running_and_answers_286_when_finished(
    viewer_client: Any, discovery: Discovery
) -> None:
    url = f"/discoveries/{discovery.pk}/"
    running = viewer_client.get(url, **htmx("discovery-progress"))
    assert running.status_code == 200
    assert 'hx-trigger="every 1s"' in running.content.decode()
    assert "0</b> / 1 done" in running.content.decode()
    assert "HX-Trigger" not in running

    finish(discovery, RunStatus.FAILED)
    done = viewer_client.get(url, **htmx("discovery-progress"))
    html = done.content.decode()
    assert done.status_code == 286
    assert "every 1s" not in html and "1</b> / 1 done" in html and "failed <b>1</b>" in html
    assert json.loads(done["HX-Trigger"]) == {"discoveryFinished": {"id": discovery.pk}}


def test_the_progress_on_the_discovery_page_carries_the_host_list_out_of_band(
    viewer_client: Any, discovery: Discovery
) -> None:
    response = viewer_client.get(f"/discoveries/{discovery.pk}/", {"with": "hosts"}, **htmx("discovery-progress"))
    html = response.content.decode()
    assert 'id="discovery-hosts" hx-swap-oob="true"' in html


def test_the_discovery_page_refreshes_itself_without_javascript_until_done(
    viewer_client: Any, discovery: Discovery, host: Host
) -> None:
    html = viewer_client.get(f"/discoveries/{discovery.pk}/").content.decode()
    assert '<noscript><meta http-equiv="refresh"' in html
    assert host.name in html and "Pending" in html
    finish(discovery)
    html = viewer_client.get(f"/discoveries/{discovery.pk}/").content.decode()
    assert "http-equiv" not in html


# --- host detail --------------------------------------------------------------------------


def test_the_host_page_shows_facts_key_eligibility_snapshot_and_checks(viewer_client: Any, host: Host) -> None:
    host.host_key_fingerprint, host.eligibility_reasons = "SHA256:abc", ["warning: fanotify off"]
    host.save()
    SnapshotFactory(host=host)
    HostCheckFactory(run__host=host, step="facts", reason="RHEL 9.4 supported")
    html = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    for text in ["5.14.0-427", "web01.example.net", "SHA256:abc", "warning: fanotify off", "/boot", "88%",
                 "systemd", "RHEL 9.4 supported", "show output"]:  # fmt: skip
        assert text in html, text
    assert "Discover this host" not in html and "Re-pin host key" not in html


def test_operators_and_admins_get_their_buttons_on_the_host_page(client: Any, users: Any, host: Host) -> None:
    client.force_login(users["operator"])
    html = client.get(f"/hosts/{host.pk}/").content.decode()
    assert "Discover this host" in html and "Re-pin host key" not in html
    client.force_login(users["admin"])
    assert "Re-pin host key" in client.get(f"/hosts/{host.pk}/").content.decode()


def test_step_output_comes_on_demand_escaped_and_capped(viewer_client: Any, host: Host) -> None:
    check = HostCheckFactory(run__host=host, output="<script>alert(1)</script>\n" + "x" * 70_000)
    response = viewer_client.get(f"/hosts/{host.pk}/checks/{check.pk}/output/", **htmx(f"output-{check.pk}"))
    html = response.content.decode()
    assert "<html" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "first 64 KB shown" in html
    assert html.count("x") < 66_000
    other_host = HostFactory()
    assert viewer_client.get(f"/hosts/{other_host.pk}/checks/{check.pk}/output/").status_code == 404


def test_an_admin_re_pins_a_host_key_after_confirming(admin_client_: Any, host: Host) -> None:
    host.host_key, host.host_key_fingerprint = ed25519_public_key(), "SHA256:old"
    host.save()
    refused = admin_client_.post(f"/hosts/{host.pk}/host-key/", {})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    response = admin_client_.post(f"/hosts/{host.pk}/host-key/", {"confirm": "on"})
    assert response.status_code == 302
    host.refresh_from_db()
    assert (host.host_key, host.host_key_fingerprint, host.trust_on_first_use) == ("", "", True)
    event = AuditEvent.objects.get(action="host.clear_key")
    assert event.details["before"] == "SHA256:old"


def test_an_admin_pins_a_pasted_host_key(admin_client_: Any, host: Host) -> None:
    key = ed25519_public_key()
    admin_client_.post(f"/hosts/{host.pk}/host-key/", {"confirm": "on", "host_key": key})
    host.refresh_from_db()
    assert host.host_key == key and host.host_key_fingerprint.startswith("SHA256:")
    assert AuditEvent.objects.get(action="host.pin_key").details["reason"] == "re-pin"


# --- credentials --------------------------------------------------------------------------


def test_the_credentials_page_lists_name_kind_fingerprint_and_host_count(admin_client_: Any, host: Host) -> None:
    html = admin_client_.get("/credentials/").content.decode()
    assert host.credential.name in html and host.credential.public_fingerprint in html
    assert re.search(r'<td class="num">1</td>', html)
    assert "BEGIN OPENSSH" not in html


def test_a_credential_is_stored_and_never_rendered_back(admin_client_: Any) -> None:
    secret = ed25519_private_key()
    response = admin_client_.post("/credentials/", {"name": "fleet", "kind": "private_key", "secret": secret})
    assert response.status_code == 302
    credential = Credential.objects.get(name="fleet")
    assert credential.public_fingerprint.startswith("SHA256:") and secret not in credential.secret_encrypted
    html = admin_client_.get("/credentials/").content.decode()
    assert "fleet" in html and "PRIVATE KEY" not in html
    assert AuditEvent.objects.filter(action="credential.create").exists()


@pytest.mark.parametrize(
    "data",
    [
        {"name": "bad key", "kind": "private_key", "secret": "-----BEGIN OPENSSH PRIVATE KEY-----\nnotakey-s3cr3t"},
        {"name": "pw", "kind": "password", "secret": "hunter2-s3cr3t", "passphrase": "pp-s3cr3t"},
    ],
)
def test_a_failed_credential_submit_never_renders_the_secret(admin_client_: Any, data: dict[str, str]) -> None:
    response = admin_client_.post("/credentials/", data)
    html = response.content.decode()
    assert response.status_code == 200 and "errorlist" in html
    assert "s3cr3t" not in html
    assert not Credential.objects.exists()


def test_a_duplicate_credential_name_keeps_the_secret_out_of_the_page(admin_client_: Any) -> None:
    CredentialFactory(name="dup")
    response = admin_client_.post("/credentials/", {"name": "dup", "kind": "password", "secret": "pw-s3cr3t"})
    assert b"exists" in response.content and b"s3cr3t" not in response.content


def test_checks_are_listed_from_the_latest_discovery_only(viewer_client: Any, host: Host) -> None:
    HostCheckFactory(run__host=host, step="facts", reason="old run", status=StepStatus.FAILED)
    HostCheckFactory(run__host=host, step="facts", reason="new run")
    html = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "new run" in html and "old run" not in html
