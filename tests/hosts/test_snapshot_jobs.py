"""Ad-hoc and periodic snapshots, several CPU samples per snapshot, and the fleet health refresh.

Jobs run through the product's host-job runner over real SSH against the simulated fleet; their
Celery messages really go to the test Redis db (the ``broker`` fixture), where no worker takes them.
"""

from __future__ import annotations

import statistics
import time
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django_celery_beat.models import PeriodicTask

from deployments.steps.base import StepContext
from deployments.steps.snapshot import AdhocSnapshotStep, SnapshotStep, median_busy
from hosts.choices import AgentState, DiscoveryStatus, JobKind, SnapshotPhase
from hosts.discovery import discovery_execute
from hosts.models import Credential, Discovery, Host, HostCheck, Snapshot
from hosts.services import HostJobInvalid, credential_create, fleet_job_start, host_job_start
from hosts.sim import SimFleet
from hosts.ssh import CommandResult
from hosts.tasks import fleet_health_refresh_task, periodic_snapshots_task
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.fixtures_sim import sim_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("broker")]

ONBOARD = (Path(__file__).resolve().parents[2] / "deployments" / "samples" / "mdatp_onboard.json").read_text()


def sim_host(fleet: SimFleet, index: int, **fields: Any) -> Host:
    sim = fleet.hosts[index]
    credential = Credential.objects.filter(name="sim").first() or credential_create(
        actor=SYSTEM, name="sim", kind="private_key", secret=fleet.client_private_key
    )
    return Host.objects.create(
        name=sim.hostname, address=sim.address, port=sim.port, ssh_user=sim.user, credential=credential,
        host_key=sim.host_key, use_sudo=sim.user != "root", **fields,
    )  # fmt: skip


def onboard(fleet: SimFleet, index: int) -> None:
    fleet.hosts[index].state.set_agent_installed(True)
    path = "/etc/opt/microsoft/mdatp/mdatp_onboard.json"
    sim_run(fleet, index, f"mkdir -p /etc/opt/microsoft/mdatp && cat > {path}", input=ONBOARD)
    # A fresh onboarding is unhealthy while its first definitions download (20 simulated seconds).
    for _ in range(50):
        if "up_to_date" in sim_run(fleet, index, "mdatp health --field definitions_status").stdout:
            break
        time.sleep(0.1)


def run(job: Discovery) -> Discovery:
    discovery_execute(discovery_id=job.pk, worker="test")
    job.refresh_from_db()
    return job


# --- the sampling plan ---------------------------------------------------------------------------


def stat(user: int, idle: int) -> str:
    return f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0"


def test_the_gated_cpu_figure_is_the_median_so_one_spike_decides_nothing() -> None:
    # Four readings, three intervals of 100 ticks each: 10% busy, a 90% spike, 20% busy.
    readings = ["@@stat0", stat(0, 0), "@@stat1", stat(10, 90), "@@stat2", stat(100, 100), "@@stat3", stat(120, 180)]
    out = "\n".join([*readings, "@@loadavg", "0.10 0.20 0.30 1/100 42", "@@agent"])
    ctx = StepContext(host_label="h", cpu_sample_seconds=5, cpu_samples=3)
    outcome = SnapshotStep().evaluate(
        ctx, CommandResult(command="", exit_status=1, stdout=out, stderr="", duration_ms=1)
    )
    samples = outcome.data["samples"]
    assert [s["cpu_busy_pct"] for s in samples] == [10.0, 90.0, 20.0]
    assert all(s["interval_s"] == 5 for s in samples)
    assert outcome.data["cpu_busy_pct"] == 20.0 == statistics.median([10.0, 90.0, 20.0])
    assert median_busy([{"cpu_busy_pct": None}, {"cpu_busy_pct": 30.0}]) == 30.0
    assert median_busy([{"cpu_busy_pct": None}]) is None


def test_the_command_reads_proc_stat_once_more_than_the_samples_it_takes() -> None:
    command = SnapshotStep().command(StepContext(host_label="h", cpu_sample_seconds=5, cpu_samples=3))
    assert command.count("head -n 1 /proc/stat") == 4 and command.count("sleep 5") == 3


def test_a_zero_interval_takes_one_reading_pair_and_no_sleep_worth_waiting_for() -> None:
    command = SnapshotStep().command(StepContext(host_label="h", cpu_sample_seconds=0, cpu_samples=3))
    assert command.count("head -n 1 /proc/stat") == 2 and command.count("sleep 0") == 1


def test_the_sampling_plan_defaults_to_the_setting(settings: Any) -> None:
    settings.MDEFLEET_SNAPSHOT_SAMPLES = 5
    assert StepContext(host_label="h").cpu_samples == 5


# --- ad-hoc snapshots on the simulated fleet -------------------------------------------------------


def test_an_adhoc_snapshot_stores_every_sample_and_their_median(sim_fleet: SimFleet, settings: Any) -> None:
    settings.MDEFLEET_CPU_SAMPLE_SECONDS = 1
    settings.MDEFLEET_SNAPSHOT_SAMPLES = 3
    host = sim_host(sim_fleet, 0)
    job = run(host_job_start(actor=SYSTEM, hosts=[host], kind=JobKind.SNAPSHOT))

    assert job.status == DiscoveryStatus.DONE and job.kind == JobKind.SNAPSHOT
    snap = Snapshot.objects.get(host=host)
    assert snap.phase == SnapshotPhase.ADHOC
    assert len(snap.samples) == 3 and all(s["interval_s"] == 1 for s in snap.samples)
    values = [s["cpu_busy_pct"] for s in snap.samples]
    assert all(v is not None for v in values)
    assert snap.cpu_busy_pct == round(statistics.median(values), 1)
    assert snap.mem_total_mb and snap.filesystems and snap.top_processes
    checks = dict(HostCheck.objects.filter(host=host).values_list("step", "status"))
    assert checks == {"facts": "ok", "snapshot_adhoc": "ok"}, checks
    command = HostCheck.objects.get(host=host, step="snapshot_adhoc").command
    assert command.count("/proc/stat") == 4
    host.refresh_from_db()
    assert host.last_seen_at is not None and host.distro_id == "rhel"
    assert host.eligibility == "unknown"  # an ad-hoc snapshot does not judge eligibility
    assert AuditEvent.objects.filter(action="host.snapshot").exists()


def test_a_look_job_of_another_kind_is_refused(sim_fleet: SimFleet) -> None:
    host = sim_host(sim_fleet, 0)
    with pytest.raises(HostJobInvalid, match="kind must be"):
        host_job_start(actor=SYSTEM, hosts=[host], kind="uninstall")
    with pytest.raises(HostJobInvalid, match="at least one host"):
        host_job_start(actor=SYSTEM, hosts=[], kind=JobKind.SNAPSHOT)
    assert not Discovery.objects.exists()


# --- periodic schedules -------------------------------------------------------------------------------


def test_the_migration_registers_both_schedules_enabled_once() -> None:
    # Transactional tests flush the migration's rows, so its function is run here (twice: idempotent).
    migration = import_module("hosts.migrations.0003_snapshot_jobs")
    migration.create_schedules(django_apps, None)
    migration.create_schedules(django_apps, None)
    assert PeriodicTask.objects.filter(name__startswith="mdefleet: periodic snapshots").count() == 1
    snapshots = PeriodicTask.objects.get(name="mdefleet: periodic snapshots")
    assert snapshots.task == "hosts.tasks.periodic_snapshots_task" and snapshots.enabled
    assert (snapshots.crontab.minute, snapshots.crontab.hour) == ("0", "3")
    health = PeriodicTask.objects.get(name="mdefleet: fleet health refresh")
    assert health.task == "hosts.tasks.fleet_health_refresh_task" and health.enabled
    assert (health.interval.every, health.interval.period) == (6, "hours")


def test_periodic_snapshots_visit_only_hosts_with_the_agent_and_never_pile_up(sim_fleet: SimFleet) -> None:
    with_agent = [sim_host(sim_fleet, i, agent_state=state) for i, state in enumerate(["healthy", "installed"])]
    sim_host(sim_fleet, 2, agent_state=AgentState.ABSENT)
    sim_host(sim_fleet, 3)  # never discovered

    job_id = periodic_snapshots_task()
    job = Discovery.objects.get(pk=job_id)
    assert job.kind == JobKind.SNAPSHOT and job.created_by is None
    assert sorted(job.host_runs.values_list("host_id", flat=True)) == sorted(h.pk for h in with_agent)
    # Beat fires again while that job is still open: nothing new.
    assert periodic_snapshots_task() is None
    assert Discovery.objects.count() == 1


def test_nothing_is_started_when_no_host_has_the_agent(sim_fleet: SimFleet) -> None:
    sim_host(sim_fleet, 0, agent_state=AgentState.ABSENT)
    assert fleet_job_start(actor=SYSTEM, kind=JobKind.HEALTH) is None
    assert not Discovery.objects.exists()


def test_the_health_refresh_updates_the_agent_state_of_every_host(sim_fleet: SimFleet) -> None:
    onboard(sim_fleet, 0)
    sim_fleet.hosts[1].state.set_agent_installed(True)  # installed, never onboarded
    healthy = sim_host(sim_fleet, 0, agent_state=AgentState.INSTALLED)
    unlicensed = sim_host(sim_fleet, 1, agent_state=AgentState.HEALTHY)
    gone = sim_host(sim_fleet, 2, agent_state=AgentState.HEALTHY, agent_version="101.1.1")  # removed by hand

    job = run(Discovery.objects.get(pk=fleet_health_refresh_task()))

    assert job.kind == JobKind.HEALTH and job.status == DiscoveryStatus.DONE
    healthy.refresh_from_db()
    assert healthy.agent_state == AgentState.HEALTHY and healthy.agent_healthy is True
    assert healthy.agent_version == sim_run(sim_fleet, 0, "mdatp version").stdout.split(": ")[1].strip()
    assert healthy.definitions_version and healthy.definitions_updated_at is not None
    assert healthy.org_id
    unlicensed.refresh_from_db()
    assert unlicensed.agent_state == AgentState.INSTALLED and unlicensed.agent_healthy is False
    check = HostCheck.objects.get(host=unlicensed, step="health")
    assert check.status == "warn" and "not licensed" in check.reason
    gone.refresh_from_db()
    assert gone.agent_state == AgentState.ABSENT
    assert AuditEvent.objects.filter(action="host.health", actor=None).exists()


# --- pages and API ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "kind"), [("snapshot", "snapshot"), ("health", "health"), ("diagnose", "diagnose")])
def test_an_operator_starts_a_look_job_from_the_host_page(
    sim_fleet: SimFleet, operator_client: Any, url: str, kind: str
) -> None:
    host = sim_host(sim_fleet, 0)
    response = operator_client.post(f"/hosts/{host.pk}/{url}/")
    assert response.status_code == 302 and response["Location"] == f"/hosts/{host.pk}/"
    assert Discovery.objects.get().kind == kind
    response = operator_client.post(f"/hosts/{host.pk}/{url}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"discovery-progress" in response.content


def test_a_viewer_cannot_start_a_look_job_but_sees_the_buttons_hidden(sim_fleet: SimFleet, viewer_client: Any) -> None:
    host = sim_host(sim_fleet, 0)
    assert viewer_client.post(f"/hosts/{host.pk}/snapshot/").status_code == 403
    assert viewer_client.post(f"/hosts/{host.pk}/diagnose/").status_code == 403
    page = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "Diagnose high CPU" not in page and "High-CPU diagnosis" in page
    assert not Discovery.objects.exists()


def test_the_api_starts_snapshots_for_one_host_and_for_many(sim_fleet: SimFleet, api_client_for: Any) -> None:
    hosts = [sim_host(sim_fleet, i) for i in range(2)]
    operator = api_client_for("operator")
    one = operator.post(f"/api/v1/hosts/{hosts[0].pk}/snapshot/")
    assert one.status_code == 202 and one.json()["hosts"] == 1
    many = operator.post("/api/v1/hosts/snapshot/", {"ids": [h.pk for h in hosts]}, format="json")
    assert many.status_code == 202 and many.json()["hosts"] == 2
    job = Discovery.objects.get(pk=many.json()["id"])
    assert job.kind == JobKind.SNAPSHOT and job.host_runs.count() == 2
    assert operator.post("/api/v1/hosts/health/", {"ids": [999999]}, format="json").status_code == 400
    assert operator.post("/api/v1/hosts/diagnose/", {"filter": {"tag": "nope"}}, format="json").status_code == 400
    assert api_client_for("viewer").post(f"/api/v1/hosts/{hosts[0].pk}/snapshot/").status_code == 403


def test_the_host_page_shows_the_samples_behind_the_median(
    sim_fleet: SimFleet, viewer_client: Any, settings: Any
) -> None:
    settings.MDEFLEET_CPU_SAMPLE_SECONDS = 1
    host = sim_host(sim_fleet, 0)
    run(host_job_start(actor=SYSTEM, hosts=[host], kind=JobKind.SNAPSHOT))
    snap = Snapshot.objects.get(host=host)
    page = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "CPU busy (median)" in page
    assert " / ".join(str(s["cpu_busy_pct"]) for s in snap.samples) in page
    assert "Latest host job" in page and "Snapshot" in page


def test_the_adhoc_step_keeps_its_own_key() -> None:
    assert AdhocSnapshotStep().key == "snapshot_adhoc" and AdhocSnapshotStep().phase == "adhoc"
