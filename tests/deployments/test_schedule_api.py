"""PUT /api/v1/rollouts/{id}/schedule/: a ticketing system moves a planned rollout's schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from deployments.choices import RolloutStatus
from deployments.models import Rollout
from deployments.services.rollouts import rollout_create
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)
from tests.problems import assert_problem, errors_by_path

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]

NIGHTS = {
    "start_at": "2026-12-01T20:00:00+01:00",
    "start_before": "2026-12-20T00:00:00+01:00",
    "schedule_timezone": "Europe/Berlin",
    "maintenance_windows": [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}],
    "blackout_dates": ["2026-12-24"],
}


@pytest.fixture
def rollout() -> Rollout:
    hosts = eligible_hosts(2, prefix="sched")
    return rollout_create(
        actor=SYSTEM,
        name="nightly",
        profile=ProfileFactory(),
        selection={"ids": [h.pk for h in hosts]},
        wave_plan=["1", "100%"],
    )


def url(rollout: Rollout) -> str:
    return f"/api/v1/rollouts/{rollout.pk}/schedule/"


def test_an_operator_replaces_the_schedule_and_it_is_audited_with_before_and_after(
    rollout: Rollout, api_client_for: Any
) -> None:
    response = api_client_for("operator").put(url(rollout), NIGHTS, format="json")
    assert response.status_code == 200, response.content
    rollout.refresh_from_db()
    assert rollout.start_at == datetime(2026, 12, 1, 20, tzinfo=ZoneInfo("Europe/Berlin"))
    assert rollout.schedule_timezone == "Europe/Berlin"
    assert rollout.maintenance_windows == [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}]
    assert rollout.blackout_dates == ["2026-12-24"]
    body = response.json()
    assert body["id"] == rollout.pk and body["window"]["scheduled"] is True
    event = AuditEvent.objects.get(action="rollout.schedule", target_id=str(rollout.pk))
    assert event.details["before"]["maintenance_windows"] == []
    assert event.details["after"]["blackout_dates"] == ["2026-12-24"]

    # The whole schedule is replaced: what is left out goes back to its default.
    response = api_client_for("operator").put(url(rollout), {"schedule_timezone": "UTC"}, format="json")
    assert response.status_code == 200
    rollout.refresh_from_db()
    assert (rollout.start_at, rollout.maintenance_windows, rollout.blackout_dates) == (None, [], [])


def test_bad_input_is_refused_by_path_and_changes_nothing(rollout: Rollout, api_client_for: Any) -> None:
    bad = {
        **NIGHTS,
        "schedule_timezone": "Mars/Olympus",
        "maintenance_windows": [{"days": ["tue"], "start": "25:00", "end": "02:00"}],
    }
    response = api_client_for("operator").put(url(rollout), bad, format="json")
    assert response.status_code == 400
    errors = errors_by_path(response.json())
    assert any("maintenance_windows" in path for path in errors), errors
    rollout.refresh_from_db()
    assert (rollout.start_at, rollout.schedule_timezone, rollout.maintenance_windows) == (None, "UTC", [])
    assert not AuditEvent.objects.filter(action="rollout.schedule").exists()


def test_a_started_rollout_keeps_its_schedule(rollout: Rollout, api_client_for: Any) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(status=RolloutStatus.RUNNING)
    response = api_client_for("operator").put(url(rollout), NIGHTS, format="json")
    assert_problem(response.json(), 409)
    rollout.refresh_from_db()
    assert rollout.maintenance_windows == [] and not AuditEvent.objects.filter(action="rollout.schedule").exists()


def test_a_viewer_may_not_and_a_stranger_must_log_in(rollout: Rollout, api_client_for: Any) -> None:
    assert api_client_for("viewer").put(url(rollout), NIGHTS, format="json").status_code == 403
    assert APIClient().put(url(rollout), NIGHTS, format="json").status_code == 401
    rollout.refresh_from_db()
    assert rollout.maintenance_windows == []
