"""In a real browser: select the fleet, press Discover, watch it finish without reloading the page."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from hosts.importing import parse_inventory
from hosts.models import Host
from hosts.services import credential_create, host_import
from hosts.sim import SimFleet
from mdefleet.audit import SYSTEM
from tests.e2e.browser import ARTIFACTS, login
from tests.integration.worker import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# The Django live server runs in a thread of this process; Playwright's sync API needs this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_an_operator_discovers_the_fleet_and_sees_verdicts_without_a_reload(
    live_server: Any,
    celery_workers: Callable[..., WorkerProcess],
    sim_fleet_factory: Callable[..., SimFleet],
    browser_page: Any,
) -> None:
    fleet = sim_fleet_factory(12, faults="unreachable:10,disk-full:11", seed=3, time_scale=0.05)
    credential_create(actor=SYSTEM, name="simfleet-key", kind="private_key", secret=fleet.client_private_key)
    parsed = parse_inventory(content=json.dumps(fleet.inventory(credential="simfleet-key")), fmt="json")
    assert parsed.ok, parsed.errors
    host_import(actor=SYSTEM, rows=parsed.rows, trust_on_first_use=False)
    user = User.objects.create_user(username="olga", password="operator-pw-42")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    celery_workers("w1", MDEFLEET_CPU_SAMPLE_SECONDS="1", MDEFLEET_SSH_CONNECT_TIMEOUT="5")

    page = browser_page
    login(page, live_server.url, "olga", "operator-pw-42")
    page.goto(f"{live_server.url}/")
    page.evaluate("window.__notReloaded = true")
    page.check("input[data-select-page]")
    page.click("button:has-text('Discover')")
    page.wait_for_selector("#discovery-progress.finished", timeout=90_000)
    # The table refreshed itself (discoveryFinished): verdicts are on the page, in the same document.
    page.wait_for_selector("#fleet-table .badge.s-eligible", timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True
    table = page.inner_text("#fleet-table")
    assert "Ineligible" in table and "Eligible" in table
    page.screenshot(path=str(ARTIFACTS / "discovery-finished.png"), full_page=True)

    unreachable = Host.objects.get(port=fleet.hosts[10].port)
    assert unreachable.eligibility == "ineligible" and "refused" in " ".join(unreachable.eligibility_reasons)
    page.goto(f"{live_server.url}/hosts/{Host.objects.get(port=fleet.hosts[0].port).pk}/")
    detail = page.inner_text("main")
    assert "Eligible" in detail and "CPU" in detail
    page.screenshot(path=str(ARTIFACTS / "host-detail.png"), full_page=True)
