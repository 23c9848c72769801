"""The simulated Defender agent: licensing, health, managed settings, EICAR, scans and the onboarding script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deployments.steps.mdatp_output import parse_connectivity, parse_health, parse_threat_list
from hosts.sim.agent import SETTLE_SECONDS
from hosts.sim.cmd_net import EICAR
from hosts.sim.state import HostState
from tests.hosts.sim.util import make_state, run

SAMPLES = Path(__file__).resolve().parents[3] / "deployments" / "samples"
ORG_ID = "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"
ONBOARD = "/etc/opt/microsoft/mdatp/mdatp_onboard.json"
MANAGED = "/etc/opt/microsoft/mdatp/managed/mdatp_managed.json"
ATTENTION = "ATTENTION: No license found. Contact your administrator for help."


def installed(profile: str = "rhel-9.4", faults: dict[str, object] | None = None) -> HostState:
    state = make_state(profile, faults, time_scale=0.001)
    state.set_agent_installed(True, "101.25092.0003")
    return state


def put(state: HostState, path: str, text: str) -> None:
    status, _, err = run(state, f"mkdir -p $(dirname {path}) && cat > {path}", stdin=text)
    assert status == 0, err


def onboarded(profile: str = "rhel-9.4", enforcement: str | None = "real_time", **managed: object) -> HostState:
    state = installed(profile)
    put(state, ONBOARD, (SAMPLES / "mdatp_onboard.json").read_text())
    settings: dict[str, object] = {"antivirusEngine": {"enforcementLevel": enforcement, **managed}}
    if enforcement is None:
        settings = {"antivirusEngine": dict(managed)}
    put(state, MANAGED, json.dumps(settings))
    settle(state)
    return state


def settle(state: HostState) -> None:
    run(state, f"sleep {SETTLE_SECONDS + 1}")


def health(state: HostState) -> dict[str, object]:
    return parse_health(run(state, "mdatp health")[1])


def test_a_fresh_install_is_unlicensed_with_the_banner_on_every_command() -> None:
    state = installed()

    out = run(state, "mdatp health")[1].splitlines()

    assert out[0] == ATTENTION
    assert out[1] == "healthy                                     : false"
    assert out[2] == 'health_issues                               : ["missing license"]'
    assert "org_id                                      : unavailable" in out
    assert all(re.fullmatch(r"[a-z_]+ +: \S.*", line) and line.index(":") == 44 for line in out[1:])
    assert run(state, "mdatp health --field licensed")[1] == f"{ATTENTION}\nfalse\n"
    assert run(state, "mdatp version")[1] == "Product version: 101.25092.0003\n"


def test_the_onboarding_file_licenses_it_and_first_definitions_settle() -> None:
    state = installed()
    put(state, ONBOARD, (SAMPLES / "mdatp_onboard.json").read_text())

    first = health(state)
    settle(state)
    later = health(state)

    assert first["licensed"] is True and first["org_id"] == ORG_ID and "attention" not in first
    assert first["definitions_status"] == "updating" and first["healthy"] is False
    assert later["definitions_status"] == "up_to_date" and later["healthy"] is True
    assert later["health_issues"] == [] and re.fullmatch(r"[0-9a-f]{40}", str(later["edr_machine_id"]))
    assert run(state, "mdatp health --field org_id")[1] == f'"{ORG_ID}"\n'
    assert json.loads(run(state, "mdatp health --output json")[1])["healthy"] is True


def test_a_leftover_offboarding_file_keeps_it_unlicensed() -> None:
    state = onboarded()
    put(state, "/etc/opt/microsoft/mdatp/mdatp_offboard.json", '{"offboardingInfo": "{}"}')

    assert health(state)["licensed"] is False
    assert health(state)["health_issues"] == ["missing license"]


@pytest.mark.parametrize(
    ("level", "rtp", "passive"),
    [("real_time", True, False), ("passive", False, True), ("on_demand", False, False)],
)
def test_the_managed_enforcement_level_sets_real_time_protection(level: str, rtp: bool, passive: bool) -> None:
    state = onboarded(enforcement=level)

    fields = health(state)
    text = run(state, "mdatp health")[1]

    assert fields["real_time_protection_enabled"] is rtp and fields["passive_mode_enabled"] is passive
    assert re.search(r"^real_time_protection_enabled +: (true|false) \[managed\]$", text, re.M)
    assert set(fields["managed_fields"]) >= {"real_time_protection_enabled", "passive_mode_enabled"}  # type: ignore[arg-type]


def test_without_a_managed_level_it_is_passive_until_the_cli_enables_protection() -> None:
    state = onboarded(enforcement=None)

    assert health(state)["real_time_protection_enabled"] is False
    assert "managed_fields" not in health(state)
    assert run(state, "mdatp config real-time-protection --value enabled")[1] == "Configuration property updated.\n"
    assert health(state)["real_time_protection_enabled"] is True


def test_the_unhealthy_fault_reports_an_issue() -> None:
    state = onboarded()
    state.fault_box["faults"] = {"unhealthy": True}  # type: ignore[attr-defined]

    fields = health(state)

    assert fields["healthy"] is False and fields["health_issues"] == ["no active supplementary event provider"]


def test_definitions_update_brings_newer_definitions() -> None:
    state = onboarded()
    before = health(state)["definitions_version"]

    status, out, _ = run(state, "mdatp definitions update")

    assert (status, out) == (0, "Definitions updated successfully.\n")
    assert str(health(state)["definitions_version"]) > str(before)


def test_connectivity_test_lists_every_endpoint_and_fails_behind_tls_inspection() -> None:
    state = onboarded()

    status, out, _ = run(state, "mdatp connectivity test")
    rows = parse_connectivity(out)
    assert status == 0 and len(rows) == 14 and all(r["ok"] for r in rows)
    assert out.splitlines()[0] == "Testing connection with https://cdn.x.cp.wd.microsoft.com/ping ... [OK]"

    state.fault_box["faults"] = {"tls-inspection": "zscaler"}  # type: ignore[attr-defined]
    status, out, _ = run(state, "mdatp connectivity test")
    rows = parse_connectivity(out)
    assert status != 0 and not any(r["ok"] for r in rows)
    assert rows[0]["detail"] == "curl error 60: SSL peer certificate or SSH remote key was not OK"


def test_proxy_set_is_used_by_the_daemon() -> None:
    state = onboarded()

    assert run(state, "mdatp config proxy set --value http://nowhere.example:3128")[1] == (
        "Configuration property updated.\n"
    )
    assert "curl error 5" in run(state, "mdatp connectivity test")[1]
    run(state, "mdatp config proxy set --value http://proxy.corp.example:3128")
    assert run(state, "mdatp connectivity test")[0] == 0


def test_real_time_protection_quarantines_eicar_within_a_second() -> None:
    state = onboarded()

    run(state, "cat > /tmp/eicar.com.txt", stdin=EICAR)
    assert run(state, "test -e /tmp/eicar.com.txt")[0] == 0  # not yet: the scan takes a moment
    run(state, "sleep 1")

    assert run(state, "test -e /tmp/eicar.com.txt")[0] == 1
    threats = parse_threat_list(run(state, "mdatp threat list")[1])
    assert [(t["name"], t["type"], t["status"], t["path"]) for t in threats] == [
        ("Virus:DOS/EICAR_Test_File", "virus", "quarantined", "/tmp/eicar.com.txt")
    ]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", threats[0]["id"])
    assert run(state, "cat > /tmp/plain.txt && sleep 2 && cat /tmp/plain.txt", stdin="hello\n")[1] == "hello\n"


@pytest.mark.parametrize("name", ["EICAR-Test-File (not a virus)", "Virus:DOS/EICAR_Test_File"])
def test_allowed_threats_naming_eicar_lets_it_stay(name: str) -> None:
    state = onboarded(allowedThreats=[name])

    run(state, "cat > /tmp/eicar.com.txt; sleep 2", stdin=EICAR)

    assert run(state, "test -e /tmp/eicar.com.txt")[0] == 0
    assert run(state, "mdatp threat list")[1] == ""
    assert run(state, "mdatp scan custom --path /tmp/eicar.com.txt")[1].endswith("\t0 threat(s) detected\n")


def test_passive_mode_leaves_the_file_and_a_custom_scan_reports_it() -> None:
    state = onboarded(enforcement="passive")

    run(state, "cat > /tmp/eicar.com.txt; sleep 2", stdin=EICAR)
    status, out, _ = run(state, "mdatp scan custom --path /tmp/eicar.com.txt")

    assert status == 0 and out == "Scan has finished\n\t1 file(s) scanned\n\t1 threat(s) detected\n"
    assert run(state, "test -e /tmp/eicar.com.txt")[0] == 0
    assert parse_threat_list(run(state, "mdatp threat list")[1])[0]["status"] == "detected"


def test_on_demand_mode_quarantines_what_a_scan_finds() -> None:
    state = onboarded(enforcement="on_demand")
    run(state, "cat > /tmp/eicar.com.txt; sleep 2", stdin=EICAR)
    assert run(state, "test -e /tmp/eicar.com.txt")[0] == 0

    run(state, "mdatp scan custom --path /tmp")

    assert run(state, "test -e /tmp/eicar.com.txt")[0] == 1


def test_the_cpu_regression_fault_heats_the_agent_once_installed() -> None:
    state = make_state("rhel-9.4", {"cpu-regression": 40.0}, time_scale=0.001)
    before = state.machine.busy
    state.set_agent_installed(True, "101.25092.0003")

    assert state.machine.busy == pytest.approx(before + 0.4)
    hot = run(state, "ps -eo pcpu=,args= | grep -E '[w]davdaemon'")[1].splitlines()
    assert max(float(line.split()[0]) for line in hot) >= 10


def test_the_onboarding_script_writes_the_json_it_carries() -> None:
    state = make_state("rhel-9.4")
    put(state, "/root/onboard.py", (SAMPLES / "MicrosoftDefenderATPOnboardingLinuxServer.py").read_text())

    status, out, _ = run(state, "python3 /root/onboard.py")

    assert (status, out) == (0, f"Generating {ONBOARD} ...\n")
    written = json.loads(run(state, f"cat {ONBOARD}")[1])
    assert ORG_ID in written["onboardingInfo"].replace("\\", "")
    assert run(state, f"stat -c %a {ONBOARD}")[1] == "640\n"
    run(state, "cp /root/onboard.py /tmp/onboard.py && chmod 644 /tmp/onboard.py")
    assert run(state, "python3 /tmp/onboard.py", user="deploy")[1] == "Run as root: sudo python3 /tmp/onboard.py\n"
    assert run(state, "python3 /root/onboard.py", user="deploy")[2] == (
        "python3: can't open file '/root/onboard.py': [Errno 13] Permission denied\n"
    )


def test_garbage_fails_like_python_does() -> None:
    state = make_state("rhel-9.4")
    put(state, "/root/junk.py", "this is not python(\n")

    status, _, err = run(state, "python3 /root/junk.py")

    assert status == 1
    assert err.startswith('  File "/root/junk.py", line 1\n') and re.search(r"^SyntaxError: ", err, re.M)
    assert run(state, f"test -e {ONBOARD}")[0] == 1


@pytest.mark.parametrize(
    ("profile", "present", "absent"),
    [
        ("rhel-7.9", ["python"], ["python3", "/usr/libexec/platform-python"]),
        ("rhel-8.10", ["/usr/libexec/platform-python"], ["python3", "python", "platform-python"]),
        ("rhel-9.4", ["python3"], ["python", "/usr/libexec/platform-python"]),
    ],
)
def test_each_release_has_its_own_python(profile: str, present: list[str], absent: list[str]) -> None:
    state = make_state(profile)

    for name in present:
        assert run(state, f"command -v {name}")[0] == 0, name
    for name in absent:
        assert run(state, f"command -v {name}")[0] == 1, name


def test_umask_shapes_new_files() -> None:
    state = make_state("rhel-9.4")

    run(state, "umask 077 && echo x > /tmp/private && umask")

    assert run(state, "stat -c %a /tmp/private")[1] == "600\n"
    assert run(state, "umask 077; umask")[1] == "0077\n"
