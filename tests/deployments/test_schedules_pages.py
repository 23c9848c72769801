"""Schedule pages: the periodic jobs page by role (admin edits, audited; safety ticks stay on), the
schedule on the new-rollout form, the schedule edit page and its preview, and the API fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django_celery_beat.models import PeriodicTask

from deployments.choices import RolloutStatus
from deployments.models import Rollout
from deployments.services.rollouts import rollout_create
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]


def job(name: str) -> PeriodicTask:
    return PeriodicTask.objects.get(name=name)


def test_viewers_read_the_periodic_jobs_and_cannot_change_them(viewer_client: Any) -> None:
    page = viewer_client.get("/periodic-jobs/")
    assert page.status_code == 200
    for name in ("mdefleet: advance rollouts", "mdefleet: re-dispatch discoveries", "mdefleet: agent expiry warnings"):
        assert name.encode() in page.content
    assert b"<form" not in page.content.split(b'id="periodic-jobs"')[1]
    target = job("mdefleet: agent expiry warnings")
    refused = viewer_client.post(f"/periodic-jobs/{target.pk}/", {f"job{target.pk}-kind": "interval"})
    assert refused.status_code == 403


def test_an_admin_changes_a_jobs_schedule_and_it_is_audited(admin_client_: Any) -> None:
    target = job("mdefleet: agent expiry warnings")
    prefix = f"job{target.pk}-"
    response = admin_client_.post(
        f"/periodic-jobs/{target.pk}/",
        {f"{prefix}kind": "crontab", f"{prefix}crontab": "30 7 * * 1-5", f"{prefix}enabled": "on"},
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert (target.crontab.minute, target.crontab.hour, target.crontab.day_of_week) == ("30", "7", "1-5")
    event = AuditEvent.objects.get(action="periodic_job.update")
    assert event.details["after"]["schedule"].startswith("cron 30 7")
    response = admin_client_.post(
        f"/periodic-jobs/{target.pk}/", {f"{prefix}kind": "interval", f"{prefix}every": "6", f"{prefix}period": "hours"}
    )
    target.refresh_from_db()
    assert (target.interval.every, target.interval.period, target.enabled) == (6, "hours", False)


def test_a_safety_tick_cannot_be_disabled_nor_slowed_past_five_minutes(admin_client_: Any) -> None:
    tick = job("mdefleet: advance rollouts")
    prefix = f"job{tick.pk}-"
    off = admin_client_.post(
        f"/periodic-jobs/{tick.pk}/",
        {f"{prefix}kind": "interval", f"{prefix}every": "10", f"{prefix}period": "seconds"},
    )
    assert off.status_code == 400 and b"cannot be disabled" in off.content
    slow = admin_client_.post(
        f"/periodic-jobs/{tick.pk}/",
        {f"{prefix}kind": "interval", f"{prefix}every": "1", f"{prefix}period": "hours", f"{prefix}enabled": "on"},
    )
    assert slow.status_code == 400 and b"at least every 5 minutes" in slow.content
    tick.refresh_from_db()
    assert tick.enabled and tick.interval.every == 10
    assert not AuditEvent.objects.filter(action="periodic_job.update").exists()


def _plan() -> Rollout:
    return rollout_create(
        actor=SYSTEM,
        name="weekend",
        profile=ProfileFactory(),
        selection={"ids": [h.pk for h in eligible_hosts(2, prefix="wk")]},
        wave_plan="100%",
    )


def test_the_schedule_page_saves_a_valid_schedule_audited_and_refuses_a_bad_one(operator_client: Any) -> None:
    rollout = _plan()
    url = f"/rollouts/{rollout.pk}/schedule/"
    assert operator_client.get(url).status_code == 200
    bad = operator_client.post(url, {"schedule_timezone": "Europe/Berlin", "windows": "Tue 25:00-02:00"})
    assert bad.status_code == 400 and b"not a time HH:MM" in bad.content
    good = operator_client.post(
        url,
        {
            "schedule_timezone": "Europe/Berlin",
            "windows": "Tue, Thu 22:00-02:00",
            "blackout_dates": "2026-12-24",
            "start_at": "2026-12-01 20:00",
        },
    )
    assert good.status_code == 302
    rollout.refresh_from_db()
    assert rollout.maintenance_windows == [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}]
    assert rollout.start_at.isoformat() == "2026-12-01T19:00:00+00:00"  # 20:00 in Berlin
    assert AuditEvent.objects.filter(action="rollout.schedule", target_id=str(rollout.pk)).count() == 1
    detail = operator_client.get(f"/rollouts/{rollout.pk}/")
    assert b"Tue, Thu 22:00-02:00" in detail.content and b"Next openings" in detail.content


def test_viewers_cannot_edit_a_schedule(viewer_client: Any) -> None:
    rollout = _plan()
    assert viewer_client.post(f"/rollouts/{rollout.pk}/schedule/", {"schedule_timezone": "UTC"}).status_code == 403


def test_the_live_preview_lists_the_next_openings_in_the_chosen_zone(operator_client: Any) -> None:
    response = operator_client.post(
        "/rollouts/schedule-preview/",
        {"schedule_timezone": "America/New_York", "windows": "Sat 23:00-03:00"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="schedule-preview",
    )
    assert response.status_code == 200
    assert b"America/New_York" in response.content and b"Sat" in response.content
    assert b"23:00 E" in response.content  # EST or EDT
    bad = operator_client.post("/rollouts/schedule-preview/", {"schedule_timezone": "Nowhere/Else"})
    assert b"Fix the schedule fields" in bad.content


@pytest.mark.usefixtures("broker")  # starting enqueues on commit: to the flushed test Redis, never consumed
def test_the_api_plans_a_scheduled_rollout_and_says_what_it_waits_for(api_client_for: Any) -> None:
    hosts = eligible_hosts(2, prefix="api")
    body = {
        "name": "via API",
        "profile": ProfileFactory().pk,
        "selection": {"ids": [h.pk for h in hosts]},
        "wave_plan": "100%",
        "schedule_timezone": "Europe/Berlin",
        "maintenance_windows": [{"days": ["tue"], "start": "22:00", "end": "02:00"}],
        "blackout_dates": ["2026-12-24"],
        "start_at": "2099-01-01T00:00:00+01:00",
    }
    api = api_client_for("operator")
    created = api.post("/api/v1/rollouts/", json.dumps(body), content_type="application/json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["maintenance_windows"] == body["maintenance_windows"]
    assert data["blackout_dates"] == ["2026-12-24"]
    started = api.post(f"/api/v1/rollouts/{data['id']}/start/")
    assert started.json()["status"] == RolloutStatus.SCHEDULED
    assert started.json()["window"]["note"] == "waiting for window (opens Tue 22:00 CET)"
    bad = api.post(
        "/api/v1/rollouts/",
        json.dumps(
            {
                **body,
                "schedule_timezone": "CET-ish",
                "maintenance_windows": [{"days": ["tue"], "start": "x", "end": "y"}],
            }
        ),
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "schedule_timezone" in bad.content.decode() and "maintenance_windows" in bad.content.decode()
