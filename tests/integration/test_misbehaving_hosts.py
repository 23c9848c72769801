"""Hosts that misbehave in the middle of one wave, on the real stack: each ends alone, the wave goes on.

One wave holds healthy hosts and hosts that hang, drop the connection in the middle of a command,
print megabytes, print bytes that are not UTF-8, or print NUL bytes (which PostgreSQL text refuses).
The hosts are discovered while healthy, then turn bad; a real Celery worker runs the wave with a
3 s command bound. A host that hangs, drops or floods must end as a failed step with a reason a
person can act on, within its bound; one that prints garbage is read with the garbage replaced;
every healthy host finishes all its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deployments.choices import HostRunStatus
from deployments.models import HostRun, Rollout, StepResult
from hosts.sim import SimFleet
from tests.integration.http import ApiClient
from tests.integration.rollout_setup import discovered_fleet, profile_over_api, token_for
from tests.integration.test_rollout_end_to_end import FAST, rollout_body
from tests.integration.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

COMMAND_TIMEOUT = 3
# hosts/ssh.py lets the host's own `timeout` answer first and waits LOCAL_GRACE (2 s) beyond the bound.
LATEST_END_MS = (COMMAND_TIMEOUT + 2 + 2) * 1000
PROFILES = ["rhel-9.4", "rhel-8.10", "rocky-9.4", "alma-9.4", "ol-8.10", "rhel-9.4", "rhel-8.10"]
HANG, DROP, FLOOD, BAD_UTF8, NUL = 0, 1, 2, 3, 4
HEALTHY = (5, 6)


def plant_nul_bytes(fleet: SimFleet, index: int) -> None:
    """os-release with NUL bytes in it: the facts step prints it as it is."""
    vfs = fleet.hosts[index].state.vfs
    node = vfs.lookup("/etc/os-release")
    assert node is not None
    vfs.add_file("/etc/os-release", node.text() + "BUILD_ID=\x00\x00nul\x00\n")


def test_hosts_that_hang_drop_flood_or_print_garbage_fail_alone_and_the_wave_goes_on(
    live_server: Any, celery_workers: Callable[..., WorkerProcess], sim_fleet_factory: Callable[..., SimFleet]
) -> None:
    fleet = sim_fleet_factory(len(PROFILES), profiles=PROFILES, seed=41, time_scale=0.05)
    hosts = discovered_fleet(fleet)
    assert all(h.eligibility == "eligible" for h in hosts), [(h.name, h.eligibility_reasons) for h in hosts]
    fleet.set_faults(HANG, "hang")
    fleet.set_faults(DROP, "drop")
    fleet.set_faults(FLOOD, "flood=8")
    fleet.set_faults(BAD_UTF8, "bad-utf8")
    plant_nul_bytes(fleet, NUL)

    admin = ApiClient(live_server.url, token_for("admin"))
    operator = ApiClient(live_server.url, token_for("operator"))
    profile_id = profile_over_api(admin)
    body = rollout_body(
        profile_id,
        [h.pk for h in hosts],
        wave_plan=["100%"],
        gates={"max_failed_per_wave": {"value": 5, "unit": "count"}, "max_failed_total": {"value": 5, "unit": "count"}},
    )
    created = operator.post("/api/v1/rollouts/", body)
    assert created.status == 201, created.body
    rollout_url = f"/api/v1/rollouts/{created.body['id']}/"
    worker = celery_workers("w1", **FAST, MDEFLEET_SSH_COMMAND_TIMEOUT=str(COMMAND_TIMEOUT))
    assert operator.post(rollout_url + "start/").status == 200

    def finished() -> bool:
        return Rollout.objects.values_list("status", flat=True).get() in ("completed", "halted")

    try:
        wait_for(finished, timeout=150, what="the wave to finish")
    except AssertionError as error:
        runs = list(HostRun.objects.values_list("host__port", "status", "current_step", "reason"))
        raise AssertionError(f"{error}\n{runs}\n{worker.log()}") from None

    runs = {run.host.port: run for run in HostRun.objects.select_related("host")}
    by_index = {i: runs[fleet.hosts[i].port] for i in range(len(PROFILES))}

    def last_failed(index: int) -> StepResult:
        run = by_index[index]
        assert run.status == HostRunStatus.FAILED, (index, run.status, run.reason)
        assert run.attempt == 1, f"host {index} was run {run.attempt} times: its failure was not stored at once"
        failed = StepResult.objects.filter(host_run=run, status="failed").order_by("-id")
        assert failed.count() == 1, (index, list(failed.values_list("step", "reason")))
        step = failed.get()
        assert step.duration_ms <= LATEST_END_MS, (index, step.step, step.duration_ms)
        return step

    hung = last_failed(HANG)
    assert hung.step == "facts" and "timed out after" in hung.reason and "stopped" in hung.reason, hung.reason
    assert by_index[HANG].reason.startswith("Facts"), by_index[HANG].reason

    dropped = last_failed(DROP)
    assert "connection" in dropped.reason and "lost during the command" in dropped.reason, dropped.reason

    flooded = last_failed(FLOOD)
    for name, step in (("hang", hung), ("drop", dropped), ("flood", flooded)):
        print(f"{name}: {step.step} failed in {step.duration_ms} ms: {step.reason}")
    assert "printed more than" in flooded.reason and "login script" in flooded.reason, flooded.reason
    assert len(flooded.output) < 20_000, "stored output must stay bounded"

    # Bytes that are not UTF-8, and NUL bytes, are shown replaced: the host is read and installed
    # like any other (a NUL stored as it is would have failed the whole batch in PostgreSQL).
    for index in (BAD_UTF8, NUL):
        garbled = by_index[index]
        assert garbled.status == HostRunStatus.OK and garbled.attempt == 1, (index, garbled.reason)
        outputs = "".join(StepResult.objects.filter(host_run=garbled).values_list("output", flat=True))
        assert "\ufffd" in outputs and "\x00" not in outputs

    for index in HEALTHY:
        run = by_index[index]
        assert run.status == HostRunStatus.OK, (index, run.reason)
        good = list(StepResult.objects.filter(host_run=run).exclude(status="failed").values_list("step", flat=True))
        assert len(good) == len(set(good)) == 17, good

    reply = operator.get(rollout_url)
    assert reply.body["status"] == "completed", reply.body["halt_reason"]
