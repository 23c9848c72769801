"""Webhook pages and API: admins only, secrets write-only (shown once when generated), audited changes,
deliveries with their attempts, redeliver and ping; query counts of the lists."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from mdefleet.webhooks import services
from tests.broker import Broker
from tests.factories import fernet_keys  # noqa: F401 (fixture)
from tests.problems import assert_problem, errors_by_path

TYPED_SECRET = "typed-secret-MARKER-7f3a9c"
API = "/api/v1/webhooks/"
DELIVER = "mdefleet.webhooks.tasks.webhook_deliver_task"

# Sends are enqueued on commit: they go to the real, flushed test Redis db, where no worker takes them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys", "broker")]


def subscription(name: str = "itsm", **kw: Any) -> WebhookSubscription:
    data = {"url": "https://itsm.example.com/hook", "events": ["rollout.completed"], "secret": TYPED_SECRET, **kw}
    return services.webhook_subscription_create(actor=SYSTEM, name=name, **data)[0]


def delivered(sub: WebhookSubscription) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        subscription=sub, event="rollout.completed", event_id="6f1c2d0e-0000-4000-8000-000000000001",
        payload={"event": "rollout.completed", "rollout": {"id": 7, "name": "web", "ticket": "CHG7"}},
        status="delivered", attempts=1,
    )  # fmt: skip
    WebhookAttempt.objects.create(delivery=delivery, status_code=204, latency_ms=12, response_excerpt="thanks")
    return delivery


def login(client: Client, users: dict[str, User], role: str) -> Client:
    client.force_login(users[role])
    return client


# --- pages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["none", "viewer", "operator", "approver"])
def test_only_admins_reach_the_webhook_pages(client: Client, users: dict[str, User], role: str) -> None:
    sub = subscription()
    delivery = delivered(sub)
    login(client, users, role)
    assert client.get(reverse("webhooks:list")).status_code == 403
    assert client.get(reverse("webhooks:detail", args=[sub.pk])).status_code == 403
    for name, args in [
        ("webhooks:list", []),
        ("webhooks:detail", [sub.pk]),
        ("webhooks:rotate-secret", [sub.pk]),
        ("webhooks:delete", [sub.pk]),
        ("webhooks:ping", [sub.pk]),
        ("webhooks:redeliver", [sub.pk, delivery.pk]),
    ]:
        assert client.post(reverse(name, args=args), {"name": "x"}).status_code == 403, name
    assert not AuditEvent.objects.filter(action__startswith="webhook.").exclude(action="webhook.create").exists()
    assert WebhookSubscription.objects.get().name == "itsm"


def test_anonymous_visitors_are_sent_to_the_login_page(client: Client) -> None:
    response = client.get(reverse("webhooks:list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_admin_creates_a_webhook_and_sees_the_generated_secret_exactly_once(
    client: Client, users: dict[str, User]
) -> None:
    login(client, users, "admin")
    response = client.post(
        reverse("webhooks:list"),
        {"name": "servicenow", "url": "https://itsm.example.com/hook", "events": ["rollout.completed", "gate.failed"],
         "active": "on", "secret": ""},
    )  # fmt: skip
    assert response.status_code == 201
    sub = WebhookSubscription.objects.get(name="servicenow")
    secret = services.webhook_secret(sub)
    assert secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert sub.events == ["gate.failed", "rollout.completed"] or sub.events == ["rollout.completed", "gate.failed"]
    for url in (reverse("webhooks:list"), reverse("webhooks:detail", args=[sub.pk])):
        assert secret not in client.get(url).content.decode()
    event = AuditEvent.objects.get(action="webhook.create")
    assert event.actor == users["admin"] and secret not in str(event.details)


def test_a_typed_secret_is_never_rendered_back(client: Client, users: dict[str, User]) -> None:
    login(client, users, "admin")
    response = client.post(
        reverse("webhooks:list"),
        {"name": "jira", "url": "https://jira.example.com/hook", "events": ["rollout.halted"], "secret": TYPED_SECRET},
    )
    assert response.status_code == 201 and TYPED_SECRET not in response.content.decode()
    sub = WebhookSubscription.objects.get(name="jira")
    assert services.webhook_secret(sub) == TYPED_SECRET
    # A refused edit re-renders the form: still without the secret.
    refused = client.post(
        reverse("webhooks:detail", args=[sub.pk]),
        {"name": "jira", "url": "gopher://x", "events": ["rollout.halted"], "secret": TYPED_SECRET + "-new"},
    )
    assert refused.status_code == 400 and TYPED_SECRET not in refused.content.decode()


def test_a_non_http_url_is_refused_on_the_page(client: Client, users: dict[str, User]) -> None:
    login(client, users, "admin")
    response = client.post(
        reverse("webhooks:list"), {"name": "x", "url": "file:///etc/passwd", "events": ["rollout.completed"]}
    )
    assert response.status_code == 200 and "http:// or https://" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_the_page_lists_deliveries_with_their_attempts(client: Client, users: dict[str, User]) -> None:
    sub = subscription()
    delivered(sub)
    login(client, users, "admin")
    page = client.get(reverse("webhooks:detail", args=[sub.pk])).content.decode()
    assert "rollout.completed" in page and "HTTP 204" in page and "12 ms" in page and "thanks" in page
    assert "CHG7" in page and TYPED_SECRET not in page
    fragment = client.get(reverse("webhooks:detail", args=[sub.pk]), headers={"HX-Request": "true",
                          "HX-Target": "deliveries"})  # fmt: skip
    assert fragment.content.decode().startswith('<div id="deliveries"') and "<html" not in fragment.content.decode()


def test_redeliver_and_ping_from_the_page_queue_a_send_and_are_audited(
    client: Client, users: dict[str, User], broker: Broker, django_capture_on_commit_callbacks: Any
) -> None:
    sub = subscription()
    delivery = delivered(sub)
    login(client, users, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("webhooks:redeliver", args=[sub.pk, delivery.pk]))
        client.post(reverse("webhooks:ping", args=[sub.pk]))
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.redeliver_requested
    ping = WebhookDelivery.objects.get(event="ping")
    assert broker.sent(DELIVER) == [(delivery.pk,), (ping.pk,)]
    assert {"webhook.redeliver", "webhook.ping"} <= set(AuditEvent.objects.values_list("action", flat=True))


def test_an_admin_edits_rotates_and_deletes_a_webhook(client: Client, users: dict[str, User]) -> None:
    sub = subscription()
    login(client, users, "admin")
    saved = client.post(
        reverse("webhooks:detail", args=[sub.pk]),
        {"name": "itsm", "url": "https://itsm2.example.com/hook", "events": ["rollout.aborted"], "secret": ""},
    )
    assert saved.status_code == 302
    sub.refresh_from_db()
    assert sub.url == "https://itsm2.example.com/hook" and not sub.active and sub.events == ["rollout.aborted"]
    assert services.webhook_secret(sub) == TYPED_SECRET  # an empty secret field keeps the secret
    rotated = client.post(reverse("webhooks:rotate-secret", args=[sub.pk]))
    new = services.webhook_secret(WebhookSubscription.objects.get(pk=sub.pk))
    assert new != TYPED_SECRET and new in rotated.content.decode()
    assert client.post(reverse("webhooks:delete", args=[sub.pk])).status_code == 302
    assert not WebhookSubscription.objects.exists()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["webhook.update", "webhook.update", "webhook.delete"]
    assert TYPED_SECRET not in str(list(AuditEvent.objects.values_list("details", flat=True)))


# --- API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_the_api_refuses_everyone_below_admin(api_client_for: Any, role: str) -> None:
    sub = subscription()
    delivery = delivered(sub)
    api = api_client_for(role)
    assert_problem(api.get(API).json(), 403)
    assert api.get(f"{API}{sub.pk}/").status_code == 403
    assert api.get(f"{API}{sub.pk}/deliveries/").status_code == 403
    assert api.post(API, {"name": "x", "url": "https://x.example.com", "events": ["rollout.completed"]},
                    format="json").status_code == 403  # fmt: skip
    assert api.patch(f"{API}{sub.pk}/", {"active": False}, format="json").status_code == 403
    assert api.delete(f"{API}{sub.pk}/").status_code == 403
    assert api.post(f"{API}{sub.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 403
    assert api.post(f"{API}{sub.pk}/ping/").status_code == 403
    assert WebhookSubscription.objects.get().active and WebhookDelivery.objects.count() == 1


def test_anonymous_api_calls_are_refused(client: Client) -> None:
    assert client.get(API).status_code in (401, 403)


def test_the_api_creates_with_a_generated_secret_returned_once(api_client_for: Any) -> None:
    api = api_client_for("admin")
    created = api.post(
        API, {"name": "snow", "url": "https://snow.example.com/h", "events": ["rollout.completed"]}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["generated_secret"]
    assert services.webhook_secret(WebhookSubscription.objects.get(pk=body["id"])) == secret
    assert "secret" not in body and created["Cache-Control"] == "no-store"
    assert secret not in api.get(API).content.decode()
    assert secret not in api.get(f"{API}{body['id']}/").content.decode()


def test_a_secret_sent_to_the_api_is_write_only(api_client_for: Any) -> None:
    api = api_client_for("admin")
    created = api.post(
        API,
        {"name": "jira", "url": "http://jira.example.com/h", "events": ["host.failed"], "secret": TYPED_SECRET},
        format="json",
    )
    assert created.status_code == 201 and TYPED_SECRET not in created.content.decode()
    assert "generated_secret" not in created.json()
    pk = created.json()["id"]
    patched = api.patch(f"{API}{pk}/", {"secret": TYPED_SECRET + "-2", "active": False}, format="json")
    assert patched.status_code == 200 and TYPED_SECRET not in patched.content.decode()
    assert patched.json()["active"] is False
    assert services.webhook_secret(WebhookSubscription.objects.get(pk=pk)) == TYPED_SECRET + "-2"
    for reply in (api.get(API), api.get(f"{API}{pk}/"), api.get(f"{API}{pk}/deliveries/")):
        assert TYPED_SECRET not in reply.content.decode()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"url": "ftp://x.example.com/h"}, "url"),
        ({"events": ["rollout.exploded"]}, "events[0]"),
        ({"events": []}, "events"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_the_api_refuses_bad_input_by_field(api_client_for: Any, change: dict[str, Any], path: str) -> None:
    body = {"name": "x", "url": "https://x.example.com/h", "events": ["rollout.completed"], **change}
    reply = api_client_for("admin").post(API, body, format="json")
    assert reply.status_code == 400
    assert path in errors_by_path(reply.json()), reply.json()
    assert not WebhookSubscription.objects.exists()


def test_a_duplicate_name_is_a_field_error(api_client_for: Any) -> None:
    subscription("itsm")
    reply = api_client_for("admin").post(
        API, {"name": "itsm", "url": "https://x.example.com/h", "events": ["rollout.completed"]}, format="json"
    )
    assert "name" in errors_by_path(reply.json())


def test_the_api_lists_deliveries_with_attempts_and_redelivers(api_client_for: Any) -> None:
    sub = subscription()
    delivery = delivered(sub)
    api = api_client_for("admin")
    listed = api.get(f"{API}{sub.pk}/deliveries/").json()
    assert listed["count"] == 1
    row = listed["results"][0]
    assert row["status"] == "delivered" and row["attempt_log"][0]["status_code"] == 204
    assert row["attempt_log"][0]["response_excerpt"] == "thanks" and row["payload"]["rollout"]["ticket"] == "CHG7"
    again = api.post(f"{API}{sub.pk}/deliveries/{delivery.pk}/redeliver/")
    assert again.status_code == 202 and again.json()["status"] == "pending"
    other = subscription("other")
    assert api.post(f"{API}{other.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 404
    pinged = api.post(f"{API}{sub.pk}/ping/")
    assert pinged.status_code == 202 and pinged.json()["event"] == "ping"


def test_the_api_deletes_and_audits(api_client_for: Any) -> None:
    sub = subscription()
    assert api_client_for("admin").delete(f"{API}{sub.pk}/").status_code == 204
    assert AuditEvent.objects.filter(action="webhook.delete", target_id=str(sub.pk)).exists()


def test_the_api_list_costs_the_same_queries_for_one_or_many_rows(api_client_for: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = api_client_for("admin")
    subscription("one")
    api.get(API)  # warm the token and role caches alike
    with CaptureQueriesContext(connection) as one:
        assert api.get(API).json()["count"] == 1
    for n in range(5):
        delivered(subscription(f"more-{n}"))
    with CaptureQueriesContext(connection) as many:
        assert api.get(API).json()["count"] == 6
    assert len(many) == len(one)
    first = WebhookSubscription.objects.get(name="more-0").pk
    api.get(f"{API}{first}/deliveries/")
    with CaptureQueriesContext(connection) as deliveries_one:
        assert api.get(f"{API}{first}/deliveries/").json()["count"] == 1
    sub = WebhookSubscription.objects.get(name="more-1")
    for _ in range(4):
        delivered(sub)
    with CaptureQueriesContext(connection) as deliveries_many:
        assert api.get(f"{API}{sub.pk}/deliveries/").json()["count"] == 5
    assert len(deliveries_many) == len(deliveries_one)
