"""The audit trail: append-only, on a filterable paginated page and in the read-only API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mdefleet.audit import Actor, audit_record
from mdefleet.models import AuditEvent
from tests.factories import HostFactory, fernet_keys  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]


def events(users: dict[str, User]) -> list[AuditEvent]:
    host = HostFactory(name="web-017")
    alice = Actor(user=users["operator"], label="operator-user", source_ip="192.0.2.7")
    made = [
        audit_record(actor=alice, action="rollout.start", target=host, details={"before": "draft"}),
        audit_record(actor=alice, action="rollout.pause", target=host),
        audit_record(actor=Actor(label="system"), action="rollout.complete"),
        audit_record(
            actor=Actor(user=users["admin"], label="admin-user"),
            action="profile.update",
            details={"before": {"channel": "prod"}, "after": {"channel": "insiders-slow"}},
        ),
    ]
    old = audit_record(actor=alice, action="host.delete", target=host)
    AuditEvent.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=40))
    return made


def test_an_event_cannot_be_changed_or_deleted_through_the_app(users: dict[str, User]) -> None:
    event = events(users)[0]
    event.action = "rollout.nothing"
    with pytest.raises(RuntimeError, match="append-only"):
        event.save()
    with pytest.raises(RuntimeError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "rollout.start"


def test_the_api_is_read_only(api_client_for: Any, users: dict[str, User]) -> None:
    event = events(users)[0]
    admin = api_client_for("admin")
    assert admin.post("/api/v1/audit/", {"action": "x"}, format="json").status_code == 405
    assert admin.patch(f"/api/v1/audit/{event.pk}/", {"action": "x"}, format="json").status_code == 405
    assert admin.delete(f"/api/v1/audit/{event.pk}/").status_code == 405
    assert AuditEvent.objects.get(pk=event.pk).action == "rollout.start"


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ("actor=operator", ["host.delete", "rollout.pause", "rollout.start"]),
        ("action=rollout.", ["rollout.complete", "rollout.pause", "rollout.start"]),
        ("action=rollout.pause", ["rollout.pause"]),
        ("target=web-017", ["host.delete", "rollout.pause", "rollout.start"]),
        ("target_type=hosts.host&action=host", ["host.delete"]),
        ("source_ip=192.0.2.7&action=rollout", ["rollout.pause", "rollout.start"]),
    ],
)
def test_the_api_filters_like_the_page(api_client_for: Any, users: dict[str, User], query: str, actions: list) -> None:
    events(users)
    body = api_client_for("viewer").get(f"/api/v1/audit/?{query}").json()
    assert sorted(e["action"] for e in body["results"]) == actions


def test_a_date_range_selects_by_day(api_client_for: Any, users: dict[str, User]) -> None:
    events(users)
    today = timezone.now().date()
    recent = api_client_for("viewer").get(
        f"/api/v1/audit/?actor=operator&since={today - timedelta(days=1)}&until={today}"
    )
    assert recent.json()["count"] == 2
    old = api_client_for("viewer").get(f"/api/v1/audit/?until={today - timedelta(days=30)}").json()
    assert [e["action"] for e in old["results"]] == ["host.delete"]


def test_an_event_says_who_when_what_on_what_from_where_and_before_after(
    api_client_for: Any, users: dict[str, User]
) -> None:
    events(users)
    body = api_client_for("viewer").get("/api/v1/audit/?action=profile.update").json()["results"][0]
    assert body["actor"] == "admin-user" and body["actor_label"] == "admin-user" and body["at"]
    assert body["details"] == {"before": {"channel": "prod"}, "after": {"channel": "insiders-slow"}}
    start = api_client_for("viewer").get("/api/v1/audit/?action=rollout.start").json()["results"][0]
    assert (start["target_type"], start["target_label"], start["source_ip"]) == ("hosts.host", "web-017", "192.0.2.7")


def test_the_page_filters_and_paginates_for_a_viewer(viewer_client: Any, users: dict[str, User]) -> None:
    events(users)
    page = viewer_client.get(reverse("audit") + "?action=rollout.&actor=operator").content.decode()
    rows = page[page.index("<tbody>") :]
    assert "?action=rollout.start" in rows and "?action=rollout.pause" in rows and "profile.update" not in rows
    fragment = viewer_client.get(reverse("audit") + "?target=web-017", headers={"HX-Request": "true",
                                                                             "HX-Target": "audit-table"})  # fmt: skip
    assert fragment.content.decode().startswith('<div id="audit-table"')
    assert "<html" not in fragment.content.decode()


def test_a_bad_date_is_explained_not_ignored(viewer_client: Any, users: dict[str, User]) -> None:
    events(users)
    page = viewer_client.get(reverse("audit") + "?since=yesterday").content.decode()
    assert "since:" in page and "No event matches." in page


def test_a_malformed_address_filter_is_a_400_not_a_crash(api_client_for: Any, users: dict[str, User]) -> None:
    events(users)
    response = api_client_for("viewer").get("/api/v1/audit/?source_ip=not-an-address")
    assert response.status_code == 400


def test_people_without_a_role_do_not_see_the_trail(client: Any, users: dict[str, User], api_client_for: Any) -> None:
    client.force_login(users["none"])
    assert client.get(reverse("audit")).status_code == 403
    assert api_client_for("none").get("/api/v1/audit/").status_code == 403


def _queries(run: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        run()
    return len(ctx.captured_queries)


def test_page_and_api_cost_the_same_queries_for_one_event_and_many(
    viewer_client: Any, api_client_for: Any, users: dict[str, User]
) -> None:
    actor = Actor(user=users["operator"], label="operator-user")
    audit_record(actor=actor, action="rollout.start")
    api = api_client_for("viewer")
    page_one = _queries(lambda: viewer_client.get(reverse("audit")))
    api_one = _queries(lambda: api.get("/api/v1/audit/"))
    for n in range(60):
        audit_record(actor=Actor(user=users["admin"] if n % 2 else None, label=f"actor-{n}"), action="rollout.pause")
    assert _queries(lambda: viewer_client.get(reverse("audit"))) == page_one
    assert _queries(lambda: api.get("/api/v1/audit/")) == api_one
