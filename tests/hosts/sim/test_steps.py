"""The commands the discovery steps send today, run against every profile over SSH."""

from __future__ import annotations

import re

import pytest

from deployments.steps.base import StepContext, sections
from deployments.steps.conflicts import ConflictsStep
from deployments.steps.facts import FactsStep
from deployments.steps.network import ENDPOINTS, NetworkStep
from deployments.steps.requirements import RequirementsStep
from deployments.steps.snapshot import SnapshotStep
from hosts.sim import PROFILE_ORDER, PROFILES, SimFleet
from hosts.ssh import CommandResult
from tests.fixtures_sim import SimResult, sim_run

pytestmark = pytest.mark.parametrize("index", range(len(PROFILE_ORDER)), ids=PROFILE_ORDER)


def as_result(result: SimResult) -> CommandResult:
    return CommandResult("cmd", result.exit_status, result.stdout, result.stderr, 10)


def context(fleet: SimFleet, index: int, proxy: str = "") -> StepContext:
    return StepContext(
        host_label=fleet.hosts[index].hostname,
        results={"facts": {"kernel": fleet.hosts[index].spec.kernel}},
        proxy=proxy,
    )


def test_facts(sim_fleet: SimFleet, index: int) -> None:
    host = sim_fleet.hosts[index]
    profile = PROFILES[host.profile]
    result = sim_run(sim_fleet, index, FactsStep().command(context(sim_fleet, index)))
    assert result.exit_status == 0 and result.stderr == ""
    parts = sections(result.stdout)
    assert parts["os-release"] == profile.release_files.get("/etc/os-release", "").removesuffix("\n")
    assert parts["redhat-release"] == profile.release_files.get("/etc/redhat-release", "").removesuffix("\n")
    assert parts["kernel"] == host.spec.kernel and parts["arch"] == "x86_64"
    assert int(parts["nproc"]) == host.spec.cores
    assert parts["meminfo"].startswith("MemTotal:") and parts["hostname"] == host.hostname


def test_requirements(sim_fleet: SimFleet, index: int) -> None:
    profile = PROFILES[sim_fleet.hosts[index].profile]
    result = sim_run(sim_fleet, index, RequirementsStep().command(context(sim_fleet, index)))
    assert result.exit_status == 0
    parts = sections(result.stdout)
    df = parts["df"].splitlines()
    assert df[0].startswith("Filesystem") and "1024-blocks" in df[0] and len(df) == 4
    assert df[1].split()[-1] == "/"
    kconfig = parts["kconfig"].splitlines()
    assert ("CONFIG_FANOTIFY=y" in kconfig) == (profile.fanotify != "none")
    assert ("CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y" in kconfig) == (profile.fanotify == "full")
    assert parts["selinux"] in (("Enforcing", "Permissive") if profile.selinux else ("",))
    assert parts["init"] == ("systemd" if profile.init == "systemd" else "init")


def test_conflicts(sim_fleet: SimFleet, index: int) -> None:
    profile = PROFILES[sim_fleet.hosts[index].profile]
    result = sim_run(sim_fleet, index, ConflictsStep().command(context(sim_fleet, index)))
    assert result.exit_status == 0
    parts = sections(result.stdout)
    assert parts["fanotify"] == ""
    if profile.init == "systemd":
        state = "unknown" if profile.systemd < 230 else "inactive"
        assert parts["services"] == "\n".join([state] * 3)
    else:
        assert parts["services"] == ""
    rows = parts["ps"].splitlines()
    assert re.fullmatch(r" +1 \S.*", rows[0]) and any("ps -eo pid=,args=" in row for row in rows)


def test_network(sim_fleet: SimFleet, index: int) -> None:
    result = sim_run(sim_fleet, index, NetworkStep().command(context(sim_fleet, index)))
    assert result.exit_status == 0
    parts = sections(result.stdout)
    assert [parts[f"probe-{i}"] for i in range(len(ENDPOINTS))] == [f"200 {url}" for url in ENDPOINTS]
    assert "Server certificate:" in parts["tls"]
    issuer = next(line for line in parts["tls"].splitlines() if "issuer: " in line)
    assert "Microsoft Azure RSA TLS Issuing CA" in issuer


def test_network_through_a_proxy(sim_fleet: SimFleet, index: int) -> None:
    command = NetworkStep().command(context(sim_fleet, index, proxy="http://proxy.corp.example:3128"))
    parts = sections(sim_run(sim_fleet, index, command).stdout)
    assert parts["probe-0"] == f"200 {ENDPOINTS[0]}"
    assert "Establish HTTP proxy tunnel to winatp-gw-cus.microsoft.com:443" in parts["tls"]


def test_snapshot(sim_fleet: SimFleet, index: int) -> None:
    result = sim_run(sim_fleet, index, SnapshotStep().command(context(sim_fleet, index)))
    assert result.exit_status == 1  # the agent grep finds nothing before the install
    parts = sections(result.stdout)
    first, second = ([int(x) for x in parts[name].split()[1:]] for name in ("stat0", "stat1"))
    assert parts["stat0"].startswith("cpu  ") and all(b >= a for a, b in zip(first, second, strict=True))
    assert sum(second) > sum(first)
    assert re.fullmatch(r"[\d.]+ [\d.]+ [\d.]+ \d+/\d+ \d+", parts["loadavg"])
    assert parts["meminfo"].startswith("MemTotal:")
    df = parts["df"].splitlines()
    assert "Type" in df[0] and all(line.split()[1] not in ("devtmpfs", "squashfs", "overlay") for line in df[1:])
    assert "Inodes" in parts["dfi"].splitlines()[0]
    cpu_rows = parts["ps-cpu"].splitlines()
    assert 10 < len(cpu_rows) <= 25 and len(parts["ps-rss"].splitlines()) <= 25
    assert all(len(row.split(None, 8)) == 9 for row in cpu_rows)
    assert parts["agent"] == ""


def test_network_keeps_each_curl_error_with_its_probe_in_either_order(sim_fleet: SimFleet, index: int) -> None:
    sim_fleet.set_faults(index, "tls-inspection=zscaler")
    host = sim_fleet.hosts[index]
    outcome = NetworkStep().evaluate(
        context(sim_fleet, index),
        as_result(sim_run(sim_fleet, index, NetworkStep().command(context(sim_fleet, index)))),
    )
    assert outcome.status == "failed"
    assert all(e["curl_code"] == 60 and e["http_code"] == "000" for e in outcome.data["endpoints"])
    first = sections(sim_run(sim_fleet, index, NetworkStep().command(context(sim_fleet, index))).stdout)["probe-0"]
    # curl before 7.66 prints the -w line first, later ones the error first.
    new_curl = tuple(int(x) for x in PROFILES[host.profile].curl.split(".")[:2]) >= (7, 66)
    assert first.splitlines()[0].startswith("curl: (60)" if new_curl else "000 ")
