"""The way back: offboarding and uninstalling on simulated hosts, through the host-job runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployments.steps.offboard import OffboardVerifyStep
from hosts.choices import AgentState
from hosts.discovery import discovery_execute
from hosts.models import Host, HostCheck
from hosts.services import WayBackInvalid, credential_create, hosts_way_back_start
from hosts.sim import SimFleet
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.fixtures_sim import sim_run

pytestmark = pytest.mark.django_db(transaction=True)

ONBOARD = (Path(__file__).resolve().parents[2] / "deployments" / "samples" / "mdatp_onboard.json").read_text()
OFFBOARD = json.dumps({"offboardingInfo": json.dumps({"orgId": "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"})})


@pytest.fixture
def onboarded_host(sim_fleet: SimFleet, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Host:
    settings.MDEFLEET_CPU_SAMPLE_SECONDS = 0
    monkeypatch.setattr(OffboardVerifyStep, "retry_delay", 0.1)
    sim = sim_fleet.hosts[0]  # rhel-9.4, root
    sim.state.set_agent_installed(True)
    sim_run(
        sim_fleet,
        0,
        "mkdir -p /etc/opt/microsoft/mdatp && cat > /etc/opt/microsoft/mdatp/mdatp_onboard.json",
        input=ONBOARD,
    )
    credential = credential_create(actor=SYSTEM, name="sim", kind="private_key", secret=sim_fleet.client_private_key)
    return Host.objects.create(
        name=sim.hostname, address=sim.address, port=sim.port, ssh_user=sim.user, credential=credential,
        host_key=sim.host_key, use_sudo=False, agent_state=AgentState.HEALTHY, agent_version="101.24102.0000",
    )  # fmt: skip


def test_uninstall_removes_the_package_and_marks_the_agent_absent(sim_fleet: SimFleet, onboarded_host: Host) -> None:
    job = hosts_way_back_start(actor=SYSTEM, hosts=[onboarded_host], kind="uninstall")
    discovery_execute(discovery_id=job.pk, worker="test")

    onboarded_host.refresh_from_db()
    assert onboarded_host.agent_state == AgentState.ABSENT
    assert onboarded_host.agent_version == ""
    check = HostCheck.objects.get(host=onboarded_host, step="uninstall")
    assert check.status == "ok" and check.reason == "mdatp removed", check.output
    assert "rpm -q mdatp" in check.command
    assert sim_run(sim_fleet, 0, "rpm -q mdatp").exit_status == 1
    assert AuditEvent.objects.filter(action="host.uninstall").exists()
    # Idempotent: a second uninstall finds nothing to remove and still succeeds.
    again = hosts_way_back_start(actor=SYSTEM, hosts=[onboarded_host], kind="uninstall")
    discovery_execute(discovery_id=again.pk, worker="test")
    assert HostCheck.objects.filter(host=onboarded_host, step="uninstall").last().reason == "mdatp was not installed"


def test_offboarding_delivers_the_package_and_waits_until_the_agent_is_unlicensed(
    sim_fleet: SimFleet, onboarded_host: Host
) -> None:
    assert sim_run(sim_fleet, 0, "mdatp health --field licensed").stdout.strip() == "true"
    job = hosts_way_back_start(actor=SYSTEM, hosts=[onboarded_host], kind="offboard", offboarding_package=OFFBOARD)
    discovery_execute(discovery_id=job.pk, worker="test")

    steps = dict(HostCheck.objects.filter(host=onboarded_host).values_list("step", "status"))
    assert steps == {"facts": "ok", "offboard": "ok", "offboard_verify": "ok"}, steps
    onboarded_host.refresh_from_db()
    assert onboarded_host.agent_state == AgentState.INSTALLED
    assert onboarded_host.org_id == ""
    # The package travelled on stdin: never in a command line, and the job forgot it when done.
    assert all("offboardingInfo" not in c for c in sim_fleet.hosts[0].command_log)
    job.refresh_from_db()
    assert job.payload_encrypted == ""


@pytest.mark.parametrize(
    ("kind", "package", "message"),
    [
        ("reinstall", "", "mode must be"),
        ("offboard", "not json", "not JSON"),
        ("offboard", "[]", "JSON object"),
    ],
)
def test_a_bad_way_back_request_is_refused_and_saves_nothing(
    onboarded_host: Host, kind: str, package: str, message: str
) -> None:
    with pytest.raises(WayBackInvalid, match=message):
        hosts_way_back_start(actor=SYSTEM, hosts=[onboarded_host], kind=kind, offboarding_package=package)
    assert not AuditEvent.objects.filter(action__startswith="host.off").exists()
