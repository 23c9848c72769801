"""Agent-version expiry: release dates, nine months, the 30-day warning, the panel and the announcement."""

from __future__ import annotations

from datetime import date
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments import expiry
from deployments.models import AgentExpiryNotice
from deployments.services.expiry import agent_expiry_announce
from hosts.models import Host
from mdefleet.audit import SYSTEM
from tests.factories import HostFactory


def test_a_listed_build_expires_nine_months_after_its_release_notes_date() -> None:
    release = expiry.agent_release("101.24102.0000")
    assert release is not None
    assert (release.released, release.source, release.expires) == (
        date(2025, 1, 8),
        "release notes",
        date(2025, 10, 8),
    )


def test_an_unlisted_build_is_dated_from_its_encoded_month_erring_early() -> None:
    release = expiry.agent_release("101.25092.0003_external")
    assert release is not None
    assert (release.released, release.source, release.expires) == (
        date(2025, 10, 1),
        "version month",
        date(2026, 7, 1),
    )


def test_the_release_table_never_dates_a_build_before_its_encoded_fallback() -> None:
    """What the database prefilter relies on: the fallback is never later than the listed date."""
    for version, released in expiry.release_table().items():
        assert expiry.encoded_release(version) <= released, version


def test_old_scheme_and_unreadable_versions() -> None:
    old = expiry.agent_release("101.62.74")
    assert old is not None and old.expires < date(2023, 1, 1)
    assert expiry.agent_release("") is None
    assert expiry.agent_release("not-a-version") is None


def test_nine_months_from_a_month_end_lands_on_the_last_day() -> None:
    assert expiry.add_months(date(2024, 5, 31), 9) == date(2025, 2, 28)


@pytest.mark.parametrize(
    ("today", "expiring"),
    [
        (date(2025, 9, 7), False),  # 31 days before 2025-10-08
        (date(2025, 9, 8), True),  # 30 days before
        (date(2025, 10, 9), True),  # expired
    ],
)
def test_the_warning_starts_thirty_days_before_expiry(today: date, expiring: bool) -> None:
    assert expiry.is_expiring(expiry.agent_release("101.24102.0000"), today) is expiring


@pytest.mark.django_db
def test_expiring_hosts_are_found_in_one_query_soonest_first() -> None:
    HostFactory(name="old", agent_version="101.24092.0002")  # expires 2025-08-14
    HostFactory(name="soon", agent_version="101.24102.0000")  # expires 2025-10-08
    HostFactory(name="fresh", agent_version="101.25092.0003")  # expires 2026-07-01
    HostFactory(name="none", agent_version="")
    with CaptureQueriesContext(connection) as queries:
        found = expiry.expiring_hosts(today=date(2025, 9, 20))
    assert len(queries) == 1
    assert [(h["name"], h["expired"], h["days_left"]) for h in found] == [("old", True, -37), ("soon", False, 18)]


@pytest.mark.django_db
def test_each_host_and_version_is_announced_once(settings: Any) -> None:
    host = HostFactory(name="db-01", agent_version="101.24102.0000")
    with mock.patch("deployments.services.expiry._emit_fleet_event") as emit:
        assert agent_expiry_announce(today=date(2025, 9, 20)) == 1
        assert agent_expiry_announce(today=date(2025, 9, 21)) == 0
        payload = emit.call_args.args[1]
        assert emit.call_count == 1 and emit.call_args.args[0] == "agent.expiring"
        assert payload["version"] == "101.24102.0000" and payload["hosts"][0]["name"] == "db-01"
        # Upgraded to a version that in turn expires: announced again, for that version.
        Host.objects.filter(pk=host.pk).update(agent_version="101.24092.0002")
        assert agent_expiry_announce(today=date(2025, 9, 22)) == 1
    assert AgentExpiryNotice.objects.filter(host=host).count() == 2


@pytest.mark.django_db
def test_the_expiry_panel_and_page_list_the_hosts_for_viewers(viewer_client: Any, client: Any) -> None:
    HostFactory(name="db-expired", agent_version="101.23092.0012")
    page = viewer_client.get("/agents/expiring/")
    assert page.status_code == 200 and b"db-expired" in page.content
    panel = viewer_client.get("/agents/expiring/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="agents-expiring-slot")
    assert b'id="agents-expiring"' in panel.content and b"<html" not in panel.content
    viewer_client.logout()
    assert client.get("/agents/expiring/").status_code == 302


@pytest.mark.django_db
def test_the_daily_task_announces_expiring_versions_to_webhook_subscribers(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from deployments.tasks import agent_expiry_warn_task
    from mdefleet.models import WebhookDelivery
    from mdefleet.webhooks.services import webhook_subscription_create

    webhook_subscription_create(
        actor=SYSTEM, name="itsm", url="http://127.0.0.1:9/hook", events=["agent.expiring"], secret="s" * 32
    )
    HostFactory(name="ancient", agent_version="101.23092.0012")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert agent_expiry_warn_task.run() == 1
    # The delivery rows are written on commit; run that part, not the sending.
    callbacks[0]()
    assert AgentExpiryNotice.objects.filter(version="101.23092.0012").count() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "agent.expiring"
    assert delivery.payload["version"] == "101.23092.0012" and delivery.payload["hosts"][0]["name"] == "ancient"
    assert "rollout" not in delivery.payload
