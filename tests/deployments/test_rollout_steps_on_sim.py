"""Steps 1-17 against the simulated fleet over real SSH, driven by the product's runner.

Each test builds the profile context the way a rollout does (the sample onboarding package, the
recommended managed settings, a cron file), runs the catalogue through ``run_hosts`` with an
in-memory sink, and reads the verdicts, the recorded commands and the simulated hosts' files.
Health polling is shortened (our own tuning, not a network boundary); simulated time runs 50x fast.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shlex
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deployments.cron import cron_lines
from deployments.execution import ProfileContext
from deployments.managed_settings import RECOMMENDED_BASELINE, build_managed_document, dump_managed_json
from deployments.runner import HostJob, HostResult, RunnerLimits, Sink, StepRecord, run_hosts
from deployments.steps.base import Step, StepContext
from deployments.steps.catalogue import rollout_steps, step_by_key
from deployments.steps.detection import TEST_FILE
from deployments.steps.health import HealthStep
from deployments.steps.onboarding_file import ONBOARD_JSON
from deployments.steps.schedules import CRON_FILE
from deployments.steps.settings_file import MANAGED_JSON
from hosts.choices import StepStatus
from hosts.sim import SimFleet
from hosts.ssh import Secret, Target
from tests.fixtures_sim import sim_run

SAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "samples"
ORG_ID = "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"
PROFILES = ["rhel-7.9", "rhel-8.10", "rhel-9.4", "centos-7.9", "ol-8.10", "rocky-9.4", "alma-9.4"]
PACKAGES = {"json": (SAMPLES / "mdatp_onboard.json").read_text(), "py": (SAMPLES / "MicrosoftDefenderATPOnboardingLinuxServer.py").read_text()}  # fmt: skip
LIMITS = RunnerLimits(connect_timeout=10, command_timeout=60, keepalive=15)
PROXY = "http://proxy.corp.example:3128"
HOSTILE = "http://proxy.corp.example:3128/'; touch /tmp/pwned; echo '$(id)`id`\nx"


class MemorySink(Sink):
    """Keeps every record and host result (the product's sink stores them in the database)."""

    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.hosts: dict[int, HostResult] = {}

    async def step_done(self, record: StepRecord) -> None:
        self.steps.append(record)

    async def host_done(self, result: HostResult) -> None:
        self.hosts[result.run_id] = result

    def of(self, run_id: int) -> dict[str, StepRecord]:
        return {record.step: record for record in self.steps if record.run_id == run_id}


def managed_json(**antivirus: Any) -> str:
    settings = copy.deepcopy(RECOMMENDED_BASELINE)
    settings["antivirusEngine"].update(antivirus)
    return dump_managed_json(build_managed_document(settings, [], ""))


def profile(kind: str = "json", **overrides: Any) -> ProfileContext:
    values: dict[str, Any] = {
        "channel": "prod",
        "agent_version": "",
        "proxy": "",
        "onboarding_kind": kind,
        "onboarding": PACKAGES[kind],
        "org_id": ORG_ID,
        "managed_json": managed_json(),
        "cron_file": cron_lines(
            SimpleNamespace(name="sim", scan_cron="0 2 * * 6", scan_type="quick", update_cron="0 3 1 * *")
        ),
        "settle_seconds": 0,
        "gates": {},
    }
    values.update(overrides)
    return ProfileContext(**values)


def target(fleet: SimFleet, index: int) -> Target:
    host = fleet.hosts[index]
    return Target(
        host_id=index,
        address=host.address,
        port=host.port,
        username=host.user,
        secret=Secret(private_key=fleet.client_private_key or ""),
        host_key=host.host_key,
        use_sudo=host.user != "root",
    )


def rollout(
    fleet: SimFleet,
    plan: dict[int, ProfileContext],
    steps: Sequence[Step] | None = None,
    results: dict[int, dict[str, dict[str, Any]]] | None = None,
) -> MemorySink:
    """Run the steps on the planned hosts at once; returns the sink with every record."""
    sink = MemorySink()
    jobs = [
        HostJob(
            run_id=index,
            target=target(fleet, index),
            steps=steps if steps is not None else rollout_steps(),
            context=StepContext(
                host_label=fleet.hosts[index].hostname,
                results=dict((results or {}).get(index, {})),
                proxy=ctx.proxy,
                cpu_sample_seconds=1,
                profile=ctx,
            ),
        )
        for index, ctx in plan.items()
    ]
    asyncio.run(run_hosts(jobs, sink, LIMITS))
    return sink


def statuses(sink: MemorySink, index: int) -> dict[str, str]:
    return {key: record.status for key, record in sink.of(index).items()}


def only(*keys: str) -> list[Step]:
    return [step_by_key(key) for key in keys]


def discovery_facts(sink: MemorySink, index: int) -> dict[str, dict[str, Any]]:
    return {"facts": sink.of(index)["facts"].parsed}


@pytest.fixture(autouse=True)
def quick_health_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    # 20 simulated seconds of first definitions at 50x: a few tenths of a real second.
    monkeypatch.setattr(HealthStep, "retry_delay", 0.1)
    monkeypatch.setattr(HealthStep, "attempts", 40)


@pytest.fixture(scope="module")
def fleet_module(sim_fleet_factory: Callable[..., SimFleet]) -> SimFleet:
    # Every supported profile twice (JSON package on the first, script on the second); 4 and 9 log in as deploy.
    return sim_fleet_factory(len(PROFILES) * 2, profiles=PROFILES, seed=11, deploy_every=5)


@pytest.fixture
def fleet(fleet_module: SimFleet) -> Iterator[SimFleet]:
    yield fleet_module
    fleet_module.reset()


def file_state(fleet: SimFleet, index: int, path: str) -> tuple[str, int, int, int] | None:
    node = fleet.hosts[index].state.vfs.lookup(path)
    return None if node is None else (node.text(), node.mode, node.uid, node.gid)


# --- the success path ------------------------------------------------------------------------------


def test_every_supported_profile_rolls_out_and_a_second_run_changes_nothing(fleet: SimFleet) -> None:
    plan = {index: profile("json" if index < len(PROFILES) else "py") for index in range(len(fleet.hosts))}
    assert {fleet.hosts[4].user, fleet.hosts[9].user} == {"deploy"}

    first = rollout(fleet, plan)

    keys = [step.key for step in rollout_steps()]
    for index in plan:
        host = fleet.hosts[index]
        seen = statuses(first, index)
        assert list(seen) == keys, (host.profile, seen)
        assert set(seen.values()) <= {StepStatus.OK, StepStatus.WARN}, (host.profile, first.hosts[index].reason)
        assert first.hosts[index].status == "ok"
        records = first.of(index)
        assert "installed" in records["install"].reason and "already" not in records["install"].reason
        assert records["detection"].status == StepStatus.OK
        assert records["detection"].reason == "EICAR quarantined and listed as Virus:DOS/EICAR_Test_File"
        assert host.state.vfs.lookup(TEST_FILE) is None
        agent = records["snapshot_post"].parsed["agent_processes"]
        shown = {p["args"].removeprefix("/opt/microsoft/mdatp/sbin/").split(" --")[0]: p for p in agent}
        assert {"wdavdaemon", "wdavdaemon edr 12 11", "wdavdaemon unprivileged 16 15", "telemetryd_v2"} <= set(shown)
        assert 100 <= shown["wdavdaemon"]["rss_kb"] / 1024 <= 300
        assert 300 <= shown["wdavdaemon unprivileged 16 15"]["rss_kb"] / 1024 <= 900
        assert records["snapshot_pre"].parsed["agent_processes"] == []
        deltas = records["compare"].parsed["deltas"]
        assert all(deltas[key] is not None for key in ("cpu_points", "mem_mb", "agent_rss_mb", "disk_mb")), deltas
        assert 500 <= deltas["agent_rss_mb"] <= 1024
        health = records["health"].parsed
        assert health["org_id"] == ORG_ID and health["licensed"] is True
        assert health["real_time_protection_enabled"] is True
        assert "real_time_protection_enabled" in health["managed_fields"]
        assert records["definitions_update"].parsed["status"] == "up_to_date"
        assert records["connectivity"].reason == "all 14 endpoints reachable"
        assert file_state(fleet, index, ONBOARD_JSON) is not None
        if host.user != "root":
            assert all(line.startswith("sudo -n ") for line in host.command_log)

    before = {i: [file_state(fleet, i, p) for p in (ONBOARD_JSON, MANAGED_JSON, CRON_FILE)] for i in plan}
    versions = {i: first.of(i)["definitions_update"].parsed["version"] for i in plan}

    second = rollout(fleet, plan)

    for index in plan:
        seen = statuses(second, index)
        assert list(seen) == keys
        # Discovery judges the host as before (a small host's memory still warns); the rest is all OK.
        assert [seen[k] for k in keys[:5]] == [statuses(first, index)[k] for k in keys[:5]]
        assert {seen[k] for k in keys[5:]} == {StepStatus.OK}, (fleet.hosts[index].profile, second.of(index))
        records = second.of(index)
        assert records["install"].reason.endswith("already installed")
        assert "repository already configured" in records["repository"].output
        assert [file_state(fleet, index, p) for p in (ONBOARD_JSON, MANAGED_JSON, CRON_FILE)] == before[index]
        assert records["definitions_update"].parsed["version"] > versions[index]


def test_a_json_package_lands_0600_root_and_a_script_leaves_only_its_output(fleet: SimFleet) -> None:
    rollout(fleet, {0: profile("json"), 7: profile("py")}, only("facts", "onboarding"))

    assert file_state(fleet, 0, ONBOARD_JSON) == (PACKAGES["json"], 0o600, 0, 0)
    written = file_state(fleet, 7, ONBOARD_JSON)
    assert written is not None and written[1:] == (0o640, 0, 0)
    assert '"onboardingInfo"' in written[0] and ORG_ID in written[0].replace("\\", "")
    assert fleet.hosts[7].state.vfs.lookup("/etc/opt/microsoft/mdatp/.mdefleet_onboarding.py") is None


def test_rhel_8_runs_the_script_with_the_platform_python(fleet: SimFleet) -> None:
    sink = rollout(fleet, {8: profile("py")}, only("facts", "onboarding"))

    assert fleet.hosts[8].profile == "rhel-8.10"
    assert statuses(sink, 8)["onboarding"] == StepStatus.OK
    ran = [argv[0] for argv in fleet.hosts[8].state.exec_log]
    assert "/usr/libexec/platform-python" in ran and "python3" in ran


def test_a_pinned_version_is_installed_and_the_newer_build_is_reported(fleet: SimFleet) -> None:
    sink = rollout(fleet, {1: profile(agent_version="101.25062.0010")})

    records = sink.of(1)
    assert records["install"].reason == "mdatp-101.25062.0010-1.x86_64 installed"
    assert "rpm -q mdatp-101.25062.0010 " in records["install"].command
    assert records["platform_update"].reason == ("the repository answers; an update is available: 101.25092.0003-1")
    assert records["health"].parsed["app_version"] == "101.25062.0010"


def test_a_pinned_version_the_repository_does_not_have_fails_the_install(fleet: SimFleet) -> None:
    sink = rollout(fleet, {2: profile(agent_version="101.20000.0000")})

    record = sink.of(2)["install"]
    assert record.status == StepStatus.FAILED
    assert "Error: Unable to find a match: mdatp-101.20000.0000" in record.reason


def test_an_insiders_repository_does_not_pass_for_the_production_one(fleet: SimFleet) -> None:
    # On RHEL 7 the insiders-fast repository is "packages-microsoft-com-prod-insiders-fast".
    add = "yum-config-manager --add-repo=https://packages.microsoft.com/config/rhel/7/insiders-fast.repo"
    assert sim_run(fleet, 0, add).exit_status == 0

    sink = rollout(fleet, {0: profile()}, only("facts", "repository"))

    record = sink.of(0)["repository"]
    assert record.status == StepStatus.OK and "repository already configured" not in record.output
    assert "repo saved to /etc/yum.repos.d/prod.repo" in record.output


# --- failures and their reasons ---------------------------------------------------------------------


def test_a_failed_package_transaction_stops_the_host(fleet: SimFleet) -> None:
    fleet.set_faults(2, "install-fail")

    sink = rollout(fleet, {2: profile()})

    seen = statuses(sink, 2)
    assert seen["install"] == StepStatus.FAILED and "health" not in seen
    reason = sink.of(2)["install"].reason
    assert reason.startswith("mdatp is not installed after dnf:") and "Error: Transaction failed" in reason
    assert "scriptlet failed" in sink.of(2)["install"].output
    assert sink.hosts[2].reason.startswith("Install mdatp: mdatp is not installed")


def test_an_unhealthy_agent_fails_health_with_its_issue(fleet: SimFleet) -> None:
    fleet.set_faults(1, "unhealthy")

    sink = rollout(fleet, {1: profile()})

    assert statuses(sink, 1)["health"] == StepStatus.FAILED
    assert sink.of(1)["health"].reason == "unhealthy: no active supplementary event provider"
    assert "connectivity" not in statuses(sink, 1)


def test_tls_inspection_fails_discovery_and_the_connectivity_test(fleet: SimFleet) -> None:
    fleet.set_faults(5, "tls-inspection=zscaler")
    blocked = rollout(fleet, {5: profile()})
    assert statuses(blocked, 5)["network"] == StepStatus.FAILED
    assert "repository" not in statuses(blocked, 5)
    assert "Zscaler" in blocked.of(5)["network"].reason

    # Installed while the proxy let Microsoft through, then inspection switched on.
    fleet.hosts[5].reset_state()
    fleet.clear_faults(5)
    installed = rollout(fleet, {5: profile()}, [s for s in rollout_steps() if s.number <= 11])
    assert statuses(installed, 5)["health"] == StepStatus.OK
    fleet.set_faults(5, "tls-inspection=zscaler")
    sink = rollout(fleet, {5: profile()}, only("connectivity"))

    record = sink.of(5)["connectivity"]
    assert record.status == StepStatus.FAILED and record.exit_code != 0
    assert record.reason.startswith("14 of 14 endpoints failed")
    assert "curl error 35/60: the connection is TLS-inspected" in record.reason


def test_a_cpu_regression_makes_compare_warn(fleet: SimFleet) -> None:
    fleet.set_faults(3, "cpu-regression=60")

    sink = rollout(fleet, {3: profile()})

    compare = sink.of(3)["compare"]
    assert compare.status == StepStatus.WARN
    assert compare.reason.startswith("regression: CPU busy +") and "(limit 25)" in compare.reason
    assert compare.parsed["deltas"]["cpu_points"] > 25
    hot = [p for p in sink.of(3)["snapshot_post"].parsed["agent_processes"] if p["name"] == "wdavdaemon"]
    assert max(p["cpu_pct"] for p in hot) >= 10


def test_a_package_from_another_tenant_fails_health_naming_both_orgs(fleet: SimFleet) -> None:
    other = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

    sink = rollout(fleet, {6: profile(org_id=other)})

    record = sink.of(6)["health"]
    assert record.status == StepStatus.FAILED
    assert record.reason == f"onboarded to org {ORG_ID}, the profile's package is for {other}"


def test_passive_mode_warns_at_health_and_detects_with_a_custom_scan(fleet: SimFleet) -> None:
    sink = rollout(fleet, {4: profile(managed_json=managed_json(enforcementLevel="passive"))})

    seen = statuses(sink, 4)
    assert seen["health"] == StepStatus.WARN
    assert sink.of(4)["health"].reason.endswith("but passive mode: files are not scanned on access")
    assert seen["detection"] == StepStatus.OK
    assert sink.of(4)["detection"].reason.startswith("custom scan detected EICAR (1 threat)")
    assert sink.of(4)["detection"].parsed["threats"][0]["status"] == "detected"
    assert fleet.hosts[4].state.vfs.lookup(TEST_FILE) is None  # the step removes what passive mode leaves
    assert seen["compare"] in (StepStatus.OK, StepStatus.WARN)


def test_allowed_threats_naming_eicar_fails_detection_with_the_hint(fleet: SimFleet) -> None:
    settings = managed_json(allowedThreats=["EICAR-Test-File (not a virus)"])

    sink = rollout(fleet, {0: profile(managed_json=settings)})

    record = sink.of(0)["detection"]
    assert record.status == StepStatus.FAILED
    assert record.reason.startswith("the EICAR test file was not quarantined within 5 s.")
    assert "allowedThreats" in record.reason
    assert "EICAR file still present" in record.output


# --- proxy and quoting -------------------------------------------------------------------------------


def test_a_static_proxy_reaches_the_package_manager_and_the_agent(fleet: SimFleet) -> None:
    sink = rollout(fleet, {2: profile(proxy=PROXY)})

    assert sink.hosts[2].status == "ok", sink.hosts[2].reason
    install = sink.of(2)["install"].command
    assert (
        f"https_proxy={PROXY} http_proxy={PROXY} dnf -y --enablerepo=packages-microsoft-com-prod install mdatp"
        in install
    )
    assert f"mdatp config proxy set --value {PROXY}" in install
    assert "Configuration property updated." in sink.of(2)["install"].output
    assert sink.of(2)["connectivity"].status == StepStatus.OK


def test_hostile_values_stay_inside_quotes_and_run_nothing(fleet: SimFleet) -> None:
    tag = "'; touch /tmp/pwned; echo '$(id)`id`\n"
    ctx = profile(proxy=HOSTILE, org_id=tag, managed_json=json_with_tag(tag))
    facts = rollout(fleet, {0: ctx}, only("facts"))

    for key in ("network", "repository", "settings", "install", "platform_update", "connectivity"):
        rollout(fleet, {0: ctx}, only(key), {0: discovery_facts(facts, 0)})

    host = fleet.hosts[0]
    assert host.state.vfs.lookup("/tmp/pwned") is None
    ran = [argv for argv in host.state.exec_log]
    assert not {argv[0] for argv in ran} & {"touch", "id"}
    # The proxy reached the tools whole, as one argument or one environment value.
    assert ["mdatp", "config", "proxy", "set", "--value", HOSTILE] in ran
    assert any(argv[:2] == ["curl", "-sS"] and HOSTILE in argv for argv in ran)
    inner = [shlex.split(command)[-1] for command in host.command_log]  # what `sh -c` ran
    carrying = [command for command in inner if "pwned" in command]
    assert len(carrying) == 4  # network, repository, install, platform_update
    for command in carrying:
        # Every occurrence sits inside the quoted value; nothing of it is left outside the quotes.
        assert shlex.quote(HOSTILE) in command and "pwned" not in command.replace(shlex.quote(HOSTILE), "")
    written = json.loads((file_state(fleet, 0, MANAGED_JSON) or ("{}",))[0])
    assert written["edr"]["tags"] == [{"key": "GROUP", "value": tag}]


def test_hostile_values_run_nothing_through_every_step_of_every_job(
    fleet: SimFleet, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step of the rollout and of the host jobs, one by one, with quotes, ``;``, ``$()``,
    backticks and newlines in the proxy, the org id, a tag and carried exclusion paths/names:
    the simulated host's exec log shows that nothing but the steps' own programs ran."""
    from deployments.steps.catalogue import job_steps
    from deployments.steps.offboard import OffboardVerifyStep

    settings.MDEFLEET_SNAPSHOT_SAMPLES = 1  # quoting is the point here, not the CPU figures
    monkeypatch.setattr(OffboardVerifyStep, "retry_delay", 0.1)  # the agent stays licensed: no offboarding package
    tag = "'; touch /tmp/pwned; echo '$(id)`id`\n"
    carried = [
        {"kind": "path", "value": "/srv/app'; touch /tmp/pwned; '/"},
        {"kind": "name", "value": "$(touch /tmp/pwned)`id`"},
        {"kind": "extension", "value": "log\n;id"},
    ]
    settings = copy.deepcopy(RECOMMENDED_BASELINE)
    settings["edr"] = {"tags": [{"key": "GROUP", "value": tag}]}
    managed = dump_managed_json(build_managed_document(settings, carried, HOSTILE))
    ctx = profile(proxy=HOSTILE, org_id=tag, managed_json=managed)
    facts = discovery_facts(rollout(fleet, {0: ctx}, only("facts")), 0)

    steps: list[Step] = list(rollout_steps())
    for kind in ("snapshot", "health", "diagnose", "offboard", "uninstall"):
        steps.extend(job_steps(kind))
    for step in steps:
        rollout(fleet, {0: ctx}, [step], {0: facts})

    host = fleet.hosts[0]
    assert host.state.vfs.lookup("/tmp/pwned") is None
    assert not {argv[0] for argv in host.state.exec_log} & {"touch", "id"}
    assert len({step.key for step in steps}) >= 20  # the 17 rollout steps and the jobs' own
    # The values did reach the host, whole: the delivered settings carry them verbatim.
    written = json.loads((file_state(fleet, 0, MANAGED_JSON) or ("{}",))[0])
    paths = [item.get("path") for item in written["antivirusEngine"]["exclusions"]]
    assert "/srv/app'; touch /tmp/pwned; '/" in paths
    assert ["mdatp", "config", "proxy", "set", "--value", HOSTILE] in host.state.exec_log


def json_with_tag(tag: str) -> str:
    settings = copy.deepcopy(RECOMMENDED_BASELINE)
    settings["edr"] = {"tags": [{"key": "GROUP", "value": tag}]}
    return dump_managed_json(build_managed_document(settings, [], ""))


# --- failure paths of the remaining steps -----------------------------------------------------------


def test_a_repository_the_host_cannot_reach_fails_the_repository_step(fleet: SimFleet) -> None:
    facts = rollout(fleet, {0: profile()}, only("facts"))
    fleet.set_faults(0, "no-egress")

    sink = rollout(fleet, {0: profile()}, only("repository", "install"), {0: discovery_facts(facts, 0)})

    assert statuses(sink, 0) == {"repository": StepStatus.FAILED}
    assert sink.of(0)["repository"].reason.startswith("repository packages-microsoft-com-prod is not configured")


def test_an_onboarding_script_that_is_not_the_portal_s_fails_onboarding(fleet: SimFleet) -> None:
    facts = rollout(fleet, {0: profile()}, only("facts"))
    broken = profile("py", onboarding="this is not ( a python script\n")

    sink = rollout(fleet, {0: broken}, only("onboarding", "settings"), {0: discovery_facts(facts, 0)})

    assert statuses(sink, 0) == {"onboarding": StepStatus.FAILED}
    assert "did not produce /etc/opt/microsoft/mdatp/mdatp_onboard.json" in sink.of(0)["onboarding"].reason
    assert fleet.hosts[0].state.vfs.lookup("/etc/opt/microsoft/mdatp/.mdefleet_onboarding.py") is None


def test_settings_that_cannot_be_written_fail_the_settings_step(fleet: SimFleet) -> None:
    facts = rollout(fleet, {9: profile()}, only("facts"))  # host 9 logs in as deploy (sudo -n)
    # A user without sudo rights cannot write under /etc: the atomic write fails and says so.
    plain = Target(**{**target(fleet, 9).__dict__, "use_sudo": False})
    sink = MemorySink()
    job = HostJob(
        run_id=9,
        target=plain,
        steps=only("settings", "schedules"),
        context=StepContext(host_label="h", results=discovery_facts(facts, 9), profile=profile()),
    )
    asyncio.run(run_hosts([job], sink, LIMITS))

    assert statuses(sink, 9) == {"settings": StepStatus.FAILED}
    assert sink.of(9)["settings"].reason.startswith("mdatp_managed.json did not land intact")
    assert "Permission denied" in sink.of(9)["settings"].reason
