"""A rollout on the real stack: HTTP API, real Celery workers, real SSH to the simulated fleet.

The canary wave passes, a later wave halts on its gate with the reason, and retry-failed after the
fault is lifted completes it. A worker killed with SIGKILL mid-wave leaves nothing lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from deployments.choices import HostRunStatus
from deployments.models import HostRun, StepResult
from deployments.services.rollouts import rollouts_tick
from hosts.sim import SimFleet
from mdefleet.models import AuditEvent
from tests.integration.http import ApiClient
from tests.integration.rollout_setup import discovered_fleet, profile_over_api, token_for
from tests.integration.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

SUPPORTED = ["rhel-9.4", "rhel-8.10", "rocky-9.4", "alma-9.4", "ol-8.10", "rhel-7.9", "centos-7.9", "rhel-9.4"]
FAST = {"MDEFLEET_CPU_SAMPLE_SECONDS": "1", "MDEFLEET_SSH_CONNECT_TIMEOUT": "5", "MDEFLEET_CLAIM_STALE_SECONDS": "4"}


def rollout_body(profile_id: int, host_ids: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "name": "Defender wave rollout",
        "profile": profile_id,
        "ticket": "CHG0031234",
        "selection": {"ids": host_ids},
        "wave_plan": ["1", "25%", "50%", "100%"],
        "gates": {
            "max_failed_per_wave": {"value": 0, "unit": "count"},
            "max_failed_total": {"value": 3, "unit": "count"},
        },
        "soak_seconds": 0,
        "settle_seconds": 0,
        **extra,
    }


def test_the_canary_passes_a_later_wave_halts_and_retry_after_the_fix_completes(
    live_server: Any, celery_workers: Callable[..., WorkerProcess], sim_fleet_factory: Callable[..., SimFleet]
) -> None:
    profiles = SUPPORTED + SUPPORTED[:4]
    fleet = sim_fleet_factory(len(profiles), profiles=profiles, faults="install-fail:3", seed=11, time_scale=0.05)
    hosts = discovered_fleet(fleet)
    assert all(h.eligibility == "eligible" for h in hosts), [(h.name, h.eligibility_reasons) for h in hosts]
    admin = ApiClient(live_server.url, token_for("admin"))
    operator = ApiClient(live_server.url, token_for("operator"))
    profile_id = profile_over_api(admin)

    created = operator.post("/api/v1/rollouts/", rollout_body(profile_id, [h.pk for h in hosts]))
    assert created.status == 201, created.body
    rollout_url = f"/api/v1/rollouts/{created.body['id']}/"
    assert [w["planned_size"] for w in created.body["waves"]] == [1, 2, 3, 6]
    assert operator.get("/api/v1/rollouts/?ticket=CHG0031234").body["count"] == 1

    celery_workers("w1", **FAST)
    assert operator.post(rollout_url + "start/").status == 200

    def status() -> str:
        return str(operator.get(rollout_url).body["status"])

    wait_for(lambda: status() in ("halted", "completed"), timeout=180, what="the rollout to halt")
    body = operator.get(rollout_url).body
    assert body["status"] == "halted"
    assert body["waves"][0]["gate_verdict"] == "pass"
    failed_wave = next(w for w in body["waves"] if w["gate_verdict"] == "fail")
    assert "1 of" in body["halt_reason"] and "failed" in body["halt_reason"]
    failed_run = HostRun.objects.get(status=HostRunStatus.FAILED)
    assert failed_run.host.port == fleet.hosts[3].port
    assert "Install" in failed_run.reason or "install" in failed_run.reason
    assert failed_wave["index"] == failed_run.wave.index

    fleet.clear_faults(3)
    assert operator.post(rollout_url + "retry-failed/").status == 200
    wait_for(lambda: status() in ("halted", "completed"), timeout=240, what="the rollout to complete")
    body = operator.get(rollout_url).body
    assert body["status"] == "completed", body["halt_reason"]
    assert HostRun.objects.filter(status=HostRunStatus.OK).count() == len(hosts)
    # The retried host resumed at its first step not done: steps before install ran once.
    retried = StepResult.objects.filter(host_run=failed_run)
    counts = Counter(r.step for r in retried)
    assert counts["facts"] == 1 and counts["repository"] == 1 and counts["install"] == 2
    # Every host ended onboarded with EICAR detected and both snapshots stored.
    for run in HostRun.objects.select_related("host"):
        done = {r.step: r.status for r in StepResult.objects.filter(host_run=run) if r.status != "failed"}
        assert done.get("detection") == "ok" and "snapshot_post" in done and "compare" in done, (run.host, done)
        assert run.host.agent_state == "healthy"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"rollout.create", "rollout.start", "rollout.retry_failed", "rollout.halt", "rollout.complete"} <= actions


def test_a_worker_killed_mid_wave_is_taken_over_and_no_step_is_lost_or_doubled(
    live_server: Any,
    celery_workers: Callable[..., WorkerProcess],
    sim_fleet_factory: Callable[..., SimFleet],
    settings: Any,
) -> None:
    settings.MDEFLEET_CLAIM_STALE_SECONDS = 4  # the tick below runs here, as beat would
    # Slow hosts (0.2 s a command) so the kill lands in the middle of the wave.
    fleet = sim_fleet_factory(8, profiles=SUPPORTED, faults="slow=0.2", seed=12, time_scale=0.05)
    hosts = discovered_fleet(fleet)
    admin = ApiClient(live_server.url, token_for("admin"))
    operator = ApiClient(live_server.url, token_for("operator"))
    profile_id = profile_over_api(admin)
    created = operator.post("/api/v1/rollouts/", rollout_body(profile_id, [h.pk for h in hosts], wave_plan=["100%"]))
    assert created.status == 201, created.body
    rollout_url = f"/api/v1/rollouts/{created.body['id']}/"

    first = celery_workers("w1", **FAST)
    assert operator.post(rollout_url + "start/").status == 200
    wait_for(lambda: StepResult.objects.filter(step="install").count() >= 2, timeout=120, what="installs to start")
    first.kill()
    killed_with = StepResult.objects.count()
    assert HostRun.objects.filter(status=HostRunStatus.RUNNING).exists()

    celery_workers("w2", **FAST)

    def finished() -> bool:
        rollouts_tick()  # what Celery beat runs every few seconds: takes over stale claims
        return str(operator.get(rollout_url).body["status"]) in ("completed", "halted")

    wait_for(finished, timeout=240, what="the second worker to finish the rollout")
    body = operator.get(rollout_url).body
    assert body["status"] == "completed", body["halt_reason"]
    assert StepResult.objects.count() > killed_with
    for run in HostRun.objects.all():
        assert run.status == HostRunStatus.OK
        good = [r.step for r in StepResult.objects.filter(host_run=run).exclude(status="failed")]
        assert len(good) == len(set(good)) == 17, (run.host_id, Counter(good))
    assert HostRun.objects.filter(claimed_by__startswith="w2").exists() or HostRun.objects.exclude(attempt=1).exists()
