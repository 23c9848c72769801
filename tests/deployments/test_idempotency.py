"""Idempotency-Key on POST /api/v1/rollouts/: one key and one body make one rollout, ever."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from deployments.models import Profile, Rollout, RolloutIdempotencyKey
from hosts.models import Host
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)
from tests.integration.http import ApiClient
from tests.integration.rollout_setup import token_for
from tests.problems import assert_problem, errors_by_path

ROLLOUTS = "/api/v1/rollouts/"

# Rollout tasks are enqueued on commit: they go to the real, flushed test Redis db (`broker`), where no
# worker takes them.
pytestmark = [pytest.mark.usefixtures("fernet_keys", "broker")]


def body(profile: Profile, hosts: list[Host], **override: Any) -> dict[str, Any]:
    return {
        "name": "CHG0031234 Defender",
        "profile": profile.pk,
        "ticket": "CHG0031234",
        "selection": {"ids": [h.pk for h in hosts]},
        "wave_plan": ["1", "50%", "100%"],
        **override,
    }


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


@pytest.mark.django_db
def test_the_same_key_and_body_twice_make_one_rollout_and_the_same_answer(api_client_for: Any) -> None:
    profile, hosts = ProfileFactory(), eligible_hosts(4)
    api = api_client_for("operator")
    first = api.post(ROLLOUTS, body(profile, hosts), format="json", headers=key("chg-1"))
    # The same content with the keys in another order is the same body.
    reordered = dict(reversed(list(body(profile, hosts).items())))
    second = api.post(ROLLOUTS, reordered, format="json", headers=key("chg-1"))
    assert first.status_code == second.status_code == 201, first.json()
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Rollout.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_409_and_creates_nothing(api_client_for: Any) -> None:
    profile, hosts = ProfileFactory(), eligible_hosts(4)
    api = api_client_for("operator")
    assert api.post(ROLLOUTS, body(profile, hosts), format="json", headers=key("chg-2")).status_code == 201
    other = api.post(ROLLOUTS, body(profile, hosts, name="another"), format="json", headers=key("chg-2"))
    assert other.status_code == 409
    problem = assert_problem(other.json(), 409)
    assert "different request body" in problem["detail"] and problem["type"].endswith("idempotency-key-reused")
    assert Rollout.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_caller(api_client_for: Any) -> None:
    profile = ProfileFactory()
    one = api_client_for("operator").post(ROLLOUTS, body(profile, eligible_hosts(2)), format="json", headers=key("k"))
    two = api_client_for("admin").post(
        ROLLOUTS, body(profile, eligible_hosts(2, prefix="db")), format="json", headers=key("k")
    )
    assert one.status_code == two.status_code == 201 and one.json()["id"] != two.json()["id"]


@pytest.mark.django_db
def test_a_refused_request_does_not_use_up_its_key(api_client_for: Any) -> None:
    profile, hosts = ProfileFactory(), eligible_hosts(3)
    api = api_client_for("operator")
    refused = api.post(ROLLOUTS, body(profile, hosts, wave_plan=["1", "abc"]), format="json", headers=key("k2"))
    assert refused.status_code == 400 and "wave_plan[1]" in errors_by_path(refused.json())
    assert not RolloutIdempotencyKey.objects.exists()
    fixed = api.post(ROLLOUTS, body(profile, hosts), format="json", headers=key("k2"))
    assert fixed.status_code == 201


@pytest.mark.django_db
def test_a_key_older_than_a_day_is_forgotten(api_client_for: Any) -> None:
    profile = ProfileFactory()
    api = api_client_for("operator")
    first = api.post(ROLLOUTS, body(profile, eligible_hosts(2)), format="json", headers=key("k3"))
    RolloutIdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = api.post(ROLLOUTS, body(profile, eligible_hosts(2, prefix="db")), format="json", headers=key("k3"))
    assert first.status_code == again.status_code == 201 and first.json()["id"] != again.json()["id"]


@pytest.mark.django_db
def test_an_unusable_key_is_a_400_on_the_header(api_client_for: Any) -> None:
    profile = ProfileFactory()
    response = api_client_for("operator").post(
        ROLLOUTS, body(profile, eligible_hosts(2)), format="json", headers=key("x" * 300)
    )
    assert response.status_code == 400 and "Idempotency-Key" in errors_by_path(response.json())
    assert not Rollout.objects.exists()


def test_two_concurrent_requests_with_one_key_make_one_rollout(live_server: Any) -> None:
    profile, hosts = ProfileFactory(), eligible_hosts(30)
    api = ApiClient(live_server.url, token_for("operator"))
    data = body(profile, hosts)
    barrier = threading.Barrier(4)
    replies: list[Any] = []

    def send() -> None:
        barrier.wait()
        replies.append(api.post(ROLLOUTS, data, headers=key("chg-concurrent")))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r.status for r in replies] == [201] * 4, [r.body for r in replies]
    assert len({json.dumps(r.body, sort_keys=True) for r in replies}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in replies) == 3
    assert Rollout.objects.count() == 1 and RolloutIdempotencyKey.objects.count() == 1
