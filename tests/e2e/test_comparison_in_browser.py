"""In a real browser: the comparison page of a finished rollout puts the worst host first and draws
its charts; the printable report renders too. Screenshots are saved as test artifacts."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from deployments.models import HostRun
from hosts.models import Snapshot
from tests.deployments.test_comparison_report import build
from tests.e2e.browser import ARTIFACTS, login
from tests.factories import fernet_keys  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fernet_keys")]

# The Django live server runs in a thread of this process; Playwright's sync API needs this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_a_viewer_sees_the_worst_host_first_and_the_charts_drawn(live_server: Any, browser_page: Any) -> None:
    built = build(40)
    over = sorted(((v, n) for n, v in built.cpu.items() if v is not None and v > 25), reverse=True)
    assert over, "the seed must produce CPU regressions"
    worst_value, worst_name = over[0]
    # Each host's snapshots over time (pre, post and a later ad-hoc one) for the host detail's timeline.
    now = timezone.now()
    Snapshot.objects.bulk_create(
        Snapshot(
            host=run.host,
            phase=phase,
            taken_at=now - timedelta(hours=hours),
            cpu_busy_pct=cpu,
            mem_total_mb=8000.0,
            mem_used_mb=mem,
        )
        for run in HostRun.objects.filter(rollout=built.rollout).select_related("host")
        for hours, phase, cpu, mem in (
            (30, "adhoc", 9.0, 3000.0),
            (2, "pre", 10.0, 3100.0),
            (1, "post", 42.0, 3900.0),
            (0, "adhoc", 38.0, 3850.0),
        )
    )
    user = User.objects.create_user(username="vera", password="viewer-pw-42")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])

    page = browser_page
    login(page, live_server.url, "vera", "viewer-pw-42")
    page.goto(live_server.url + reverse("deployments:rollout-comparison", args=[built.rollout.pk]))
    first = page.locator("#regressed-table tbody tr").first
    first_text = first.inner_text()
    # The furthest over any limit comes first: the worst CPU host unless a memory regression is further over.
    assert worst_name in first_text or "Memory" in first_text, first_text
    assert page.get_by_text(f"CPU +{worst_value:g} points, limit 25").first.is_visible()
    assert "gate: fail" in page.inner_text(".cmp-gates")

    charts = page.locator("svg.chart")
    assert charts.count() >= 8
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 30, index
    assert page.locator("svg.chart rect").count() > 20  # bars drawn, not empty frames
    assert page.locator("#distribution-table").is_visible()  # the table beside the charts
    page.screenshot(path=str(ARTIFACTS / "comparison.png"), full_page=True)
    page.locator(".cmp-regressed").screenshot(path=str(ARTIFACTS / "comparison-regressed.png"))
    page.locator(".cmp-gates").screenshot(path=str(ARTIFACTS / "comparison-gates.png"))

    first.locator("a").first.click()
    page.wait_for_selector("#host-figures")
    assert "Processes that appeared or grew" in page.inner_text("main")
    timeline = page.locator("#timeline-h + figure svg.chart")
    assert timeline.is_visible() and timeline.locator("circle").count() == 8  # 4 snapshots, 2 series
    page.screenshot(path=str(ARTIFACTS / "comparison-host.png"), full_page=True)

    page.goto(live_server.url + reverse("deployments:rollout-report", args=[built.rollout.pk]))
    assert "Rollout report" in page.inner_text("h1")
    assert page.locator("svg.chart").first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
