"""The pages and API calls a big fleet makes heavy cost the same number of queries at any size.

Timing is never asserted (``manage.py bench pages`` measures it); the number of queries is: a
page whose queries grow with its rows is the page that gets slow at 10,000 hosts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments import selectors
from deployments.choices import GateVerdict, HostRunStatus, RolloutStatus, WaveStatus
from deployments.models import HostRun, Profile, Rollout, StepResult
from deployments.services.rollouts import rollout_create, rollout_start
from hosts.choices import SnapshotPhase, StepStatus
from hosts.models import Host, Snapshot
from mdefleet.audit import SYSTEM
from tests.factories import (
    CredentialFactory,
    HostFactory,
    ProfileFactory,
    eligible_hosts,
    fernet_keys,  # noqa: F401 (fixture)
)

# Rollout tasks are enqueued on commit: they go to the real, flushed test Redis db (`broker`), where no
# worker takes them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys", "broker")]

POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "rollout-poll"}
STEPS = ("facts", "requirements", "conflicts", "network", "snapshot_pre", "install", "health", "snapshot_post")


@pytest.fixture
def profile() -> Profile:
    return ProfileFactory(name="query counts", onboarding=json.dumps({"onboardingInfo": "counted"}))


def snapshot(cpu: float, mem: float) -> dict[str, Any]:
    return {
        "cpu_busy_pct": cpu,
        "mem_total_mb": 7821.0,
        "mem_used_mb": mem,
        "filesystems": [{"mount": "/", "avail_kb": 9_000_000}, {"mount": "/var", "avail_kb": 5_000_000}],
        "top_processes": [{"pid": 1, "name": "systemd", "rss_kb": 14000, "cpu_pct": 0.1}],
        "agent_processes": [{"pid": 900, "name": "wdavdaemon", "rss_kb": 400_000, "cpu_pct": 3.0}],
        "samples": [{"interval_s": 1, "cpu_busy_pct": cpu}],
    }


def finished_rollout(profile: Profile, count: int, prefix: str) -> Rollout:
    """A completed three-wave rollout of ``count`` hosts: every run's steps, snapshots, one failure."""
    hosts = eligible_hosts(count, tags=("web", f"{prefix}-tag"), prefix=prefix)
    rollout = rollout_create(
        actor=SYSTEM,
        name=prefix,
        profile=profile,
        selection={"ids": [h.pk for h in hosts]},
        wave_plan="1, 50%, 100%",
    )
    rollout_start(actor=SYSTEM, rollout=rollout)
    now = timezone.now() - timedelta(minutes=5)
    runs = list(rollout.host_runs.order_by("id"))
    results, snapshots = [], []
    for i, run in enumerate(runs):
        failed = i == len(runs) - 1 and count > 1
        for step in STEPS:
            parsed = snapshot(5.0 + i % 7, 900.0 + i) if step.startswith("snapshot") else {"n": i}
            status = StepStatus.FAILED if failed and step == "install" else StepStatus.OK
            results.append(StepResult(host_run=run, step=step, status=status, parsed=parsed, finished_at=now))
            if step.startswith("snapshot"):
                snapshots.append(
                    Snapshot(
                        host_id=run.host_id,
                        phase=SnapshotPhase.PRE if step == "snapshot_pre" else SnapshotPhase.POST,
                        taken_at=now,
                        **Snapshot.fields_from(parsed),
                    )
                )
            if status == StepStatus.FAILED:
                break
    StepResult.objects.bulk_create(results)
    Snapshot.objects.bulk_create(snapshots)
    HostRun.objects.filter(rollout=rollout).update(status=HostRunStatus.OK, started_at=now, finished_at=now)
    if count > 1:
        HostRun.objects.filter(pk=runs[-1].pk).update(status=HostRunStatus.FAILED, reason="Install mdatp: no space")
    rollout.waves.update(
        status=WaveStatus.PASSED,
        gate_verdict=GateVerdict.PASS,
        gate_report={"verdict": "pass", "reasons": ["all hosts OK"], "numbers": {}},
        started_at=now,
        finished_at=now,
    )
    Rollout.objects.filter(pk=rollout.pk).update(status=RolloutStatus.COMPLETED, finished_at=now)
    return Rollout.objects.get(pk=rollout.pk)


def queries_of(call: Callable[[], Any]) -> int:
    call()  # warm the session, caches and the step catalogue
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code in (200, 286), response.status_code
    return len(queries)


def test_the_fleet_page_costs_the_same_queries_for_one_host_and_for_more_than_a_page(viewer_client: Any) -> None:
    HostFactory(discovered=True, tags=["web"])
    one = queries_of(lambda: viewer_client.get(reverse("hosts:fleet")))
    one_filtered = queries_of(lambda: viewer_client.get(reverse("hosts:fleet"), {"tag": "web"}))
    credentials = [CredentialFactory(), CredentialFactory()]
    for i in range(30):
        HostFactory(discovered=True, tags=[f"t{i % 5}", "all"], credential=credentials[i % 2])
    eligible_hosts(250, tags=("web", "db"), prefix="many")
    assert Host.objects.count() == 281
    many = queries_of(lambda: viewer_client.get(reverse("hosts:fleet")))
    filtered = queries_of(lambda: viewer_client.get(reverse("hosts:fleet"), {"tag": "web", "page": 2}))
    assert (one, one_filtered) == (many, filtered)


def test_the_detail_page_of_a_finished_rollout_costs_the_same_queries_for_two_hosts_and_forty(
    viewer_client: Any, profile: Profile
) -> None:
    counts = []
    for size in (2, 40):
        rollout = finished_rollout(profile, size, f"d{size}")
        counts.append(queries_of(lambda r=rollout: viewer_client.get(f"/rollouts/{r.pk}/")))
    assert counts[0] == counts[1], counts


def test_the_last_poll_of_a_finished_rollout_sends_everything_for_the_same_queries(
    viewer_client: Any, profile: Profile
) -> None:
    counts = []
    for size in (2, 40):
        rollout = finished_rollout(profile, size, f"p{size}")
        since = selectors.rollout_poll_cursor(rollout=rollout).encode()
        response = viewer_client.get(f"/rollouts/{rollout.pk}/?since={since}", **POLL)
        assert response.status_code == 286 and response.content.decode().count('class="sq q-') == size
        counts.append(queries_of(lambda r=rollout, s=since: viewer_client.get(f"/rollouts/{r.pk}/?since={s}", **POLL)))
    assert counts[0] == counts[1], counts


def test_the_api_rollout_detail_costs_the_same_queries_for_one_host_and_forty(
    api_client_for: Any, profile: Profile
) -> None:
    api = api_client_for("viewer")
    counts = []
    for size in (1, 40):
        rollout = finished_rollout(profile, size, f"a{size}")
        counts.append(queries_of(lambda r=rollout: api.get(f"/api/v1/rollouts/{r.pk}/")))
        assert api.get(f"/api/v1/rollouts/{rollout.pk}/").json()["id"] == rollout.pk
    assert counts[0] == counts[1], counts


def test_the_comparison_of_a_finished_rollout_costs_the_same_queries_for_two_hosts_and_forty(
    viewer_client: Any, profile: Profile
) -> None:
    counts = []
    for size in (2, 40):
        rollout = finished_rollout(profile, size, f"c{size}")
        page = reverse("deployments:rollout-comparison", args=[rollout.pk])
        counts.append(queries_of(lambda p=page: viewer_client.get(p)))
    assert counts[0] == counts[1], counts
