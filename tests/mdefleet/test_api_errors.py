"""One error shape across the API (RFC 9457 problem+json with field paths), and the list filters."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient

from deployments.models import Rollout
from deployments.services.rollouts import rollout_create
from mdefleet.audit import SYSTEM
from mdefleet.errors import PROBLEM_CONTENT_TYPE, exception_handler, flatten_errors
from tests.factories import HostFactory, ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)
from tests.problems import assert_problem, errors_by_path

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    return assert_problem(json.loads(response.content), status)


def test_401_403_404_405_are_problems(api_client_for: Any) -> None:
    body = problem(APIClient().get("/api/v1/rollouts/"), 401)
    assert body["title"] == "Not authenticated" and body["instance"] == "/api/v1/rollouts/"
    problem(api_client_for("viewer").post("/api/v1/rollouts/", {}, format="json"), 403)
    problem(api_client_for("viewer").get("/api/v1/rollouts/999999/"), 404)
    missing_route = problem(api_client_for("viewer").get("/api/v1/no-such-thing/"), 404)
    assert "No API endpoint" in missing_route["detail"]
    not_allowed = api_client_for("operator").put("/api/v1/hosts/1/", {}, format="json")
    problem(not_allowed, 405)
    assert "PATCH" in not_allowed["Allow"]


def test_400_names_every_refused_field_by_its_path(api_client_for: Any) -> None:
    profile, hosts = ProfileFactory(), eligible_hosts(3)
    data = {
        "name": "x",
        "profile": profile.pk,
        "selection": {"ids": [h.pk for h in hosts]},
        "wave_plan": ["1", "5%", "0%"],
    }
    body = problem(api_client_for("operator").post("/api/v1/rollouts/", data, format="json"), 400)
    assert list(errors_by_path(body)) == ["wave_plan[2]"]
    assert body["errors"][0]["code"] and body["detail"].startswith("wave_plan[2]: wave 3")
    missing = problem(api_client_for("operator").post("/api/v1/rollouts/", {}, format="json"), 400)
    assert {"name", "profile", "selection"} <= set(errors_by_path(missing))
    assert {e["code"] for e in missing["errors"]} == {"required"}


def test_nested_errors_get_indexed_paths() -> None:
    detail = {"tags": {0: ["bad tag"]}, "rows": [{}, {"port": ["too big"]}], "non_field_errors": ["whole"]}
    assert [e["path"] for e in flatten_errors(detail)] == ["tags[0]", "rows[1].port", ""]


def test_409_is_a_problem_with_the_reason(api_client_for: Any) -> None:
    rollout = rollout_create(
        actor=SYSTEM, name="r", profile=ProfileFactory(), selection={"ids": [eligible_hosts(1)[0].pk]}, wave_plan="1"
    )
    body = problem(api_client_for("operator").post(f"/api/v1/rollouts/{rollout.pk}/resume/"), 409)
    assert body["type"].endswith("action-refused") and body["detail"]


def test_429_is_a_problem_with_retry_after() -> None:
    response = exception_handler(Throttled(wait=30), {"request": None})
    assert response is not None and response.status_code == 429
    assert response["Retry-After"] == "30" and response.content_type == PROBLEM_CONTENT_TYPE
    assert response.data["status"] == 429 and response.data["retry_after"] == 30


# --- filters ---------------------------------------------------------------------------------------


def test_rollouts_are_found_by_ticket_created_range_tag_and_ordered(api_client_for: Any) -> None:
    profile = ProfileFactory()
    web = eligible_hosts(2, tags=("web",), prefix="web")
    db = eligible_hosts(2, tags=("db",), prefix="db")
    first = rollout_create(
        actor=SYSTEM, name="a", profile=profile, selection={"ids": [h.pk for h in web]}, wave_plan="1", ticket="CHG1"
    )
    second = rollout_create(
        actor=SYSTEM, name="b", profile=profile, selection={"ids": [h.pk for h in db]}, wave_plan="1", ticket="CHG2"
    )
    Rollout.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=3))
    api = api_client_for("viewer")

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/v1/rollouts/?{query}")
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["results"]]

    assert ids("ticket=CHG1") == [first.pk] and ids("ticket=chg2") == [second.pk]
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(f"created_after={since}") == [second.pk] and ids(f"created_before={since}") == [first.pk]
    assert ids("tag=web") == [first.pk]
    assert ids("ordering=name") == [first.pk, second.pk] and ids("ordering=-name") == [second.pk, first.pk]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/api/v1/rollouts/?status=exploded", "status"),
        ("/api/v1/rollouts/?created_after=yesterday", "created_after"),
        ("/api/v1/rollouts/?ordering=secret", "ordering"),
        ("/api/v1/hosts/?eligibility=maybe", "eligibility"),
        ("/api/v1/hosts/?created_before=31-12-2026", "created_before"),
        ("/api/v1/discoveries/?status=nope", "status"),
        ("/api/v1/profiles/?channel=beta", "channel"),
        ("/api/v1/credentials/?kind=cert", "kind"),
    ],
)
def test_a_bad_filter_value_is_a_400_on_the_parameter(api_client_for: Any, url: str, path: str) -> None:
    body = problem(api_client_for("admin").get(url), 400)
    assert path in errors_by_path(body)


def test_host_snapshots_filter_by_phase_and_bad_values_are_refused(api_client_for: Any) -> None:
    host = HostFactory()
    api = api_client_for("viewer")
    assert api.get(f"/api/v1/hosts/{host.pk}/snapshots/?phase=pre").status_code == 200
    body = problem(api.get(f"/api/v1/hosts/{host.pk}/snapshots/?phase=during"), 400)
    assert "phase" in errors_by_path(body)
