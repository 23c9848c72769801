"""Discovery end to end: import and discover over HTTP, a real Celery worker, real SSH to the fleet."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from hosts.models import Host, HostCheck, Snapshot
from hosts.sim import SimFleet
from mdefleet.models import AuditEvent
from tests.integration.http import ApiClient
from tests.integration.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

# One host per profile, then the faults a real fleet has, each on a supported distro.
PROFILES = [
    "rhel-9.4", "rhel-8.10", "rhel-7.9", "centos-7.9", "ol-8.10", "rocky-9.4", "alma-9.4", "rhel-6.10",
    "debian-12", "rhel-5.11", "rhel-9.4", "rhel-8.10", "rocky-9.4", "alma-9.4", "rhel-8.10", "rhel-9.4",
    "ol-8.10", "rhel-7.9", "rhel-9.4",
]  # fmt: skip
FAULTS = (
    "unreachable:10,host-key:11,auth:12,disk-full:13,fanotify-off:14,tls-inspection:15,"
    "conflicting-av:16,low-memory:17,one-core:18"
)
# Host index → a phrase its ineligibility reason must contain (lower case).
INELIGIBLE = {
    7: "rhel 6",
    8: "rhel-family",
    9: "5.11",
    10: "refused",
    11: "host key",
    12: "auth",
    13: "free",
    14: "fanotify",
    15: "tls inspection",
    16: "conflicting",
    17: "memory",
}


@pytest.fixture
def fleet(sim_fleet_factory: Callable[..., SimFleet]) -> SimFleet:
    return sim_fleet_factory(len(PROFILES), faults=FAULTS, profiles=PROFILES, time_scale=0.05, seed=7)


def token_for(role: str) -> str:
    from django.contrib.auth.models import Group

    user = User.objects.create_user(username=f"{role}-e2e", password="unused-pw-1")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return Token.objects.create(user=user).key


def test_a_discovery_started_over_http_is_run_by_a_worker_and_judges_every_host(
    live_server: Any, celery_workers: Callable[..., WorkerProcess], fleet: SimFleet
) -> None:
    admin = ApiClient(live_server.url, token_for("admin"))
    operator = ApiClient(live_server.url, token_for("operator"))
    anonymous = ApiClient(live_server.url, None)
    assert anonymous.get("/api/v1/hosts/").status == 401

    created = admin.post(
        "/api/v1/credentials/",
        {"name": "simfleet-key", "kind": "private_key", "secret": fleet.client_private_key},
    )
    assert created.status == 201, created.body
    assert "secret" not in created.body

    inventory = fleet.inventory(credential="simfleet-key")
    imported = operator.post("/api/v1/hosts/import/", {"format": "json", "content": json.dumps(inventory)})
    assert imported.status == 201, imported.body
    assert imported.body["created"] == len(PROFILES)

    celery_workers("w1", MDEFLEET_CPU_SAMPLE_SECONDS="1", MDEFLEET_SSH_CONNECT_TIMEOUT="5")
    ids = [h["id"] for h in imported.body["hosts"]]
    started = operator.post("/api/v1/hosts/discover/", {"ids": ids})
    assert started.status == 202, started.body

    def finished() -> bool:
        return bool(operator.get(started.body["url"]).body["finished"])

    wait_for(finished, timeout=120, what="the discovery to finish")

    hosts = {h.port - fleet.hosts[0].port: h for h in Host.objects.all()}
    for index, host in hosts.items():
        reasons = " ".join(host.eligibility_reasons).lower()
        if index in INELIGIBLE:
            assert host.eligibility == "ineligible", (index, PROFILES[index], host.eligibility_reasons)
            assert INELIGIBLE[index] in reasons, (index, host.eligibility_reasons)
        else:
            assert host.eligibility == "eligible", (index, PROFILES[index], host.eligibility_reasons)
            assert host.distro_id in {"rhel", "centos", "ol", "rocky", "almalinux"}
            assert host.cpu_cores and host.memory_mb
            assert host.agent_state == "absent"

    # Reachable hosts have a pre snapshot with real figures; unreachable ones have none.
    assert Snapshot.objects.filter(host=hosts[0], phase="pre").exists()
    snap = Snapshot.objects.get(host=hosts[0])
    assert snap.cpu_busy_pct is not None and 0 <= snap.cpu_busy_pct <= 100
    assert snap.mem_total_mb and snap.filesystems and snap.top_processes
    assert not Snapshot.objects.filter(host__in=[hosts[10], hosts[11], hosts[12]]).exists()

    # A mismatched host key stops the host before any command: only the connect record exists.
    assert list(HostCheck.objects.filter(host=hosts[11]).values_list("step", flat=True)) == ["connect"]
    assert fleet.hosts[11].command_log == []
    # ... and is audited, once, for that host only.
    mismatch = AuditEvent.objects.get(action="host.key_mismatch")
    assert mismatch.target_id == str(hosts[11].pk) and "host key mismatch" in mismatch.details["reason"]
    # Every reachable host was driven over exactly one connection.
    assert fleet.hosts[0].connections_accepted == 1

    # The API shows the same verdicts and snapshots.
    detail = operator.get(f"/api/v1/hosts/{hosts[15].pk}/")
    assert detail.body["eligibility"] == "ineligible"
    snapshots = operator.get(f"/api/v1/hosts/{hosts[0].pk}/snapshots/")
    assert snapshots.status == 200 and snapshots.body["count"] == 1
    assert AuditEvent.objects.filter(action="discovery.start").count() == 1
