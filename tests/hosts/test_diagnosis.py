"""The high-CPU diagnosis: hot Defender process and thread, hot event sources, the seed's advice.

End to end on the simulated fleet (a cpu-regression fault makes the agent hot) through the host-job
runner, plus the parsers on real-format samples (PERF's text blocks, both JSON key spellings).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from deployments.steps.diagnose import advice_for, parse_rtp_statistics, parse_threads
from hosts.choices import JobKind
from hosts.discovery import discovery_execute
from hosts.models import Host, HostCheck
from hosts.selectors import latest_diagnoses
from hosts.services import host_job_start
from hosts.sim import SimFleet
from mdefleet.audit import SYSTEM
from tests.factories import HostCheckFactory, fernet_keys  # noqa: F401
from tests.fixtures_sim import sim_run
from tests.hosts.test_snapshot_jobs import onboard, sim_host

# Diagnoses are enqueued on commit: the messages go to the real, flushed test Redis db.
pytestmark = pytest.mark.usefixtures("broker")

ATTENTION = "ATTENTION: No license found. Contact your administrator for help.\n"
# PERF's documented `--sort --top 4` output (linux-support-perf.md).
PERF_TEXT = """=====================================
Process id: 560
Name: NetworkManager
Path: "/usr/sbin/NetworkManager"
Total files scanned: 261
Scan time (ns): "3070788919"
Status: Active
=====================================
Process id: 1709561
Name: snapd
Path: "/snap/snapd/23545/usr/lib/snapd/snapd"
Total files scanned: 247
Scan time (ns): "19926516003"
Status: Active
=====================================
"""


def diagnose(host: Host) -> HostCheck:
    job = host_job_start(actor=SYSTEM, hosts=[host], kind=JobKind.DIAGNOSE)
    discovery_execute(discovery_id=job.pk, worker="test")
    return HostCheck.objects.get(host=host, step="diagnose", run__discovery=job)


# --- on the simulated fleet ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_cpu_regression_is_traced_to_the_hot_process_thread_and_application(
    sim_fleet: SimFleet, viewer_client: Any, api_client_for: Any
) -> None:
    sim_fleet.set_faults(2, "cpu-regression=60")
    onboard(sim_fleet, 2)
    sim_run(sim_fleet, 2, "mdatp config real-time-protection --value enabled")
    sim_run(sim_fleet, 2, "mdatp config real-time-protection-statistics --value enabled")
    host = sim_host(sim_fleet, 2)
    assert api_client_for("viewer").get(f"/api/v1/hosts/{host.pk}/diagnosis/").status_code == 404

    check = diagnose(host)
    data = check.parsed

    assert check.status == "warn" and check.reason.startswith("Defender is hot"), check.reason
    assert data["agent_hot"] is True
    hot = data["hot_process"]
    assert hot["label"] == "wdavdaemon unprivileged"  # the antivirus engine carries most of the load
    assert hot["cpu_pct"] == max(p["cpu_pct"] for p in data["agent_processes"])
    # The hot thread is the hottest line of an independent `ps -L` of that process.
    listing = sim_run(sim_fleet, 2, f"ps -L -p {hot['pid']} -o lwp=,pcpu=").stdout.split("\n")
    rows = [line.split() for line in listing if line.strip()]
    hottest = max(rows, key=lambda r: float(r[1]))
    assert data["hot_thread"]["tid"] == int(hottest[0]) and data["hot_thread"]["cpu_pct"] == float(hottest[1])
    assert len(rows) == next(p for p in data["agent_processes"] if p["pid"] == hot["pid"])["threads"]
    # The process that triggers the most scans is the host's busiest application (its workload).
    assert data["statistics"] == "ok" and data["rtp_enabled"] is True
    top = data["event_sources"][0]
    assert top["path"] == data["busy_applications"][0]["exe"]
    assert top["files_scanned"] == max(s["files_scanned"] for s in data["event_sources"])
    commands = [c for step in data["advice"] for c in step["commands"]]
    assert f"mdatp exclusion process add --path {top['path']}" in commands
    assert any("client analyzer" in step["text"] for step in data["advice"])

    page = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "Suggested next steps" in page and "wdavdaemon unprivileged" in page and top["path"] in page
    body = api_client_for("viewer").get(f"/api/v1/hosts/{host.pk}/diagnosis/").json()
    assert body["step"] == "diagnose" and body["parsed"]["hot_process"]["pid"] == hot["pid"]


@pytest.mark.django_db(transaction=True)
def test_a_quiet_agent_in_passive_mode_is_not_hot_and_the_edr_tools_are_suggested(sim_fleet: SimFleet) -> None:
    onboard(sim_fleet, 0)  # passive by default: real-time protection off
    check = diagnose(sim_host(sim_fleet, 0))
    assert check.status == "ok" and check.reason.startswith("Defender is not hot"), check.reason
    assert check.parsed["rtp_enabled"] is False and check.parsed["statistics"] == "empty"
    commands = [c for step in check.parsed["advice"] for c in step["commands"]]
    assert "mdatp diagnostic hot-event-sources executables" in commands


@pytest.mark.django_db(transaction=True)
def test_a_host_without_the_agent_fails_the_diagnosis_with_the_reason(sim_fleet: SimFleet) -> None:
    check = diagnose(sim_host(sim_fleet, 1))
    assert check.status == "failed" and "no Defender process is running" in check.reason


# --- parsers and advice ------------------------------------------------------------------------------


def test_rtp_statistics_are_read_in_both_json_spellings_after_a_licence_banner() -> None:
    new = {"counters": [{"id": 7, "name": "java", "path": "/usr/bin/java", "totalFilesScanned": "2071",
                         "totalScanTime": "35706172777", "maxFileScanTime": "143635500", "isActive": True}]}  # fmt: skip
    old = {"counters": [{"id": "8", "name": "psql", "path": "/usr/bin/psql", "total_files_scanned": 9}]}
    parsed = parse_rtp_statistics(ATTENTION + json.dumps(new, indent=2))
    assert parsed == [
        {"pid": 7, "name": "java", "path": "/usr/bin/java", "files_scanned": 2071, "scan_time_ms": 35706.2,
         "max_file_scan_ms": 143.6},
    ]  # fmt: skip
    assert parse_rtp_statistics(json.dumps(old))[0]["files_scanned"] == 9  # type: ignore[index]


def test_rtp_statistics_text_blocks_are_read_as_perf_documents_them() -> None:
    parsed = parse_rtp_statistics(PERF_TEXT)
    assert [(s["pid"], s["name"], s["files_scanned"], s["scan_time_ms"]) for s in parsed or []] == [
        (560, "NetworkManager", 261, 3070.8),
        (1709561, "snapd", 247, 19926.5),
    ]
    assert parse_rtp_statistics("Unknown command: diagnostic\n") is None
    assert parse_rtp_statistics("=====================================\n") == []


def test_thread_names_with_spaces_are_cut_from_the_known_command_line() -> None:
    args = "/opt/microsoft/mdatp/sbin/wdavdaemon edr 12 11 --log_level info"
    agent = {501: {"args": args, "label": "wdavdaemon edr"}}
    text = f"  501   501  0.1 wdavdaemon      {args}\n  501   733 12.5 EDR Worker 1    {args}\n  999 999 50.0 x y\n"
    threads = parse_threads(text, agent)
    assert [(t["tid"], t["name"], t["cpu_pct"]) for t in threads] == [
        (733, "EDR Worker 1", 12.5),
        (501, "wdavdaemon", 0.1),
    ]


def test_the_auditd_note_and_global_scope_follow_the_findings() -> None:
    data = {
        "agent_hot": True,
        "hot_process": {"label": "wdavdaemon edr", "cpu_pct": 40.0, "pid": 1},
        "agent_processes": [{"name": "mdatp_audisp_plugin", "cpu_pct": 12.0}],
        "busy_applications": [{"exe": "/usr/bin/postmaster", "data_dirs": ["/var/lib/pgsql/data"]}],
        "event_sources": [],
        "rtp_enabled": True,
        "statistics": "empty",
    }
    advice = advice_for(data)
    commands = [c for step in advice for c in step["commands"]]
    assert "mdatp exclusion process add --path /usr/bin/postmaster --scope global" in commands
    assert "mdatp exclusion folder add --path /var/lib/pgsql/data --scope global" in commands
    assert "mdatp config real-time-protection-statistics --value enabled" in commands
    assert any(step["text"].startswith("AuditD note") for step in advice)


def test_advised_commands_quote_hostile_paths() -> None:
    data = {"event_sources": [{"path": "/opt/x; rm -rf /", "files_scanned": 5}], "busy_applications": []}
    commands = [c for step in advice_for(data) for c in step["commands"]]
    assert "mdatp exclusion process add --path '/opt/x; rm -rf /'" in commands


@pytest.mark.django_db
@pytest.mark.usefixtures("fernet_keys")
def test_latest_diagnoses_take_one_query_for_any_number_of_hosts(django_assert_num_queries: Any) -> None:
    first = HostCheckFactory(step="diagnose", parsed={"agent_hot": False})
    newer = HostCheckFactory(step="diagnose", host=first.host, parsed={"agent_hot": True})
    other = HostCheckFactory(step="diagnose")
    HostCheckFactory(step="facts", host=other.host)
    with django_assert_num_queries(1):
        found = latest_diagnoses([first.host_id, other.host_id, 987654])
        assert {k: v.pk for k, v in found.items()} == {first.host_id: newer.pk, other.host_id: other.pk}
        assert found[first.host_id].parsed == {"agent_hot": True}
    assert latest_diagnoses([]) == {}
