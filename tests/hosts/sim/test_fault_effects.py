"""Each fault as a client sees it over SSH."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncssh
import pytest

from hosts.sim import SimFleet
from tests.fixtures_sim import sim_connect, sim_run

SPEC = (
    "slow=25:4,disk-full:9,low-memory:10,one-core:11,fanotify-off:12,conflicting-av:13,tls-inspection:14,"
    "install-fail:15,unhealthy:16,cpu-regression:17-19,hang:20,drop:21,flood:22,bad-utf8:23,fapolicyd:24,"
    "tls-reset:25,no-egress:26,conflicting-av=sophos:27"
)
CONFLICTS = "grep -l 'fanotify mnt_id' /proc/[0-9]*/fdinfo/* 2>/dev/null"


@pytest.fixture(scope="module")
def faulty(sim_fleet_factory: Callable[..., SimFleet]) -> SimFleet:
    # Every host plays RHEL 9 so that only the fault differs between them.
    return sim_fleet_factory(28, faults=SPEC, seed=5, profiles=["rhel-9.4"], deploy_every=0)


def test_slow_adds_latency_to_every_command(faulty: SimFleet) -> None:
    started = time.monotonic()
    sim_run(faulty, 5, "true")
    fast = time.monotonic() - started
    started = time.monotonic()
    assert sim_run(faulty, 4, "echo late").stdout == "late\n"
    assert time.monotonic() - started >= 0.5 > fast  # 25 simulated seconds at the test time scale


def test_disk_full_leaves_root_and_var_nearly_full(faulty: SimFleet) -> None:
    lines = sim_run(faulty, 9, "df -P -k / /var").stdout.splitlines()[1:]
    for line in lines:
        avail, pct = line.split()[3:5]
        assert int(pct[:-1]) >= 98 and int(avail) < 500 * 1024
    assert int(sim_run(faulty, 8, "df -P -k /").stdout.splitlines()[1].split()[4][:-1]) < 90


def test_low_memory_shows_768_mb_everywhere(faulty: SimFleet) -> None:
    out = sim_run(faulty, 10, "free -m; grep MemTotal /proc/meminfo").stdout.splitlines()
    total_mb = int(out[1].split()[1])
    assert 700 <= total_mb < 768
    assert int(out[3].split()[1]) // 1024 == total_mb


def test_one_core_is_one_core(faulty: SimFleet) -> None:
    out = sim_run(faulty, 11, "nproc; nproc --all; grep -c '^cpu[0-9]' /proc/stat").stdout
    assert out == "1\n1\n1\n"


def test_fanotify_off_unsets_access_permissions_in_the_kernel_config(faulty: SimFleet) -> None:
    command = "grep -E '^CONFIG_FANOTIFY(_ACCESS_PERMISSIONS)?=' /boot/config-$(uname -r); grep FANOTIFY_ACCESS /boot/config-$(uname -r)"
    assert sim_run(faulty, 12, command).stdout == "CONFIG_FANOTIFY=y\n# CONFIG_FANOTIFY_ACCESS_PERMISSIONS is not set\n"


def test_conflicting_av_holds_fanotify_and_runs_its_service(faulty: SimFleet) -> None:
    found = sim_run(faulty, 13, CONFLICTS)
    assert found.exit_status == 0
    paths = found.stdout.split()
    assert len(paths) == 1 and paths[0].startswith("/proc/") and "/fdinfo/" in paths[0]
    pid = paths[0].split("/")[2]
    assert sim_run(faulty, 13, f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout.startswith("/opt/ds_agent/ds_am ")
    assert "fanotify flags:" in sim_run(faulty, 13, f"cat {paths[0]}").stdout
    assert sim_run(faulty, 13, "systemctl is-active ds_agent cbsensor MFEcma").stdout == "active\ninactive\ninactive\n"
    assert sim_run(faulty, 8, CONFLICTS).exit_status == 1
    sophos = sim_run(faulty, 27, CONFLICTS).stdout.split()
    assert sim_run(faulty, 27, f"cat /proc/{sophos[0].split('/')[2]}/comm").stdout == "soapd\n"


def test_fapolicyd_holds_fanotify_too(faulty: SimFleet) -> None:
    pid = sim_run(faulty, 24, CONFLICTS).stdout.split("/")[2]
    assert sim_run(faulty, 24, f"cat /proc/{pid}/comm").stdout == "fapolicyd\n"


def test_tls_inspection_breaks_verification_and_shows_a_foreign_issuer(faulty: SimFleet) -> None:
    probe = "curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{url_effective}\\n' https://winatp-gw-cus.microsoft.com/test 2>&1"
    out = sim_run(faulty, 14, probe)
    assert out.exit_status == 60
    assert out.stdout.startswith("curl: (60) SSL certificate problem: unable to get local issuer certificate\n")
    assert out.stdout.endswith("000 https://winatp-gw-cus.microsoft.com/test\n")
    verbose = sim_run(
        faulty, 14, "curl -skv -o /dev/null --max-time 10 https://winatp-gw-cus.microsoft.com/test 2>&1"
    ).stdout
    issuer = next(line for line in verbose.splitlines() if line.startswith("*  issuer: "))
    assert "Microsoft" not in issuer and any(v in issuer for v in ("Zscaler", "Palo Alto", "Fortinet"))
    assert "SSL certificate verify result: unable to get local issuer certificate (20), continuing anyway." in verbose
    assert sim_run(faulty, 8, probe).stdout == "200 https://winatp-gw-cus.microsoft.com/test\n"


def test_tls_reset_and_no_egress_fail_with_curl_35_and_28(faulty: SimFleet) -> None:
    reset = sim_run(faulty, 25, "curl -sS -o /dev/null https://x.cp.wd.microsoft.com/api/report")
    assert reset.exit_status == 35 and reset.stderr.startswith(
        "curl: (35) OpenSSL SSL_connect: Connection reset by peer"
    )
    dropped = sim_run(
        faulty, 26, "curl -sS -o /dev/null --max-time 10 -w '%{http_code}' https://x.cp.wd.microsoft.com/ping"
    )
    assert dropped.exit_status == 28 and dropped.stdout == "000"
    assert dropped.stderr == "curl: (28) Connection timed out after 10001 milliseconds\n"


def test_rollout_flags_are_stored_for_the_rollout_steps(faulty: SimFleet) -> None:
    assert faulty.hosts[15].state.faults == {"install-fail": True}
    assert faulty.hosts[16].state.faults == {"unhealthy": True}


def test_cpu_regression_shows_once_the_agent_is_installed(faulty: SimFleet) -> None:
    sample = "head -n 1 /proc/stat; sleep 2; head -n 1 /proc/stat"

    def busy(index: int) -> float:
        first, second = (
            [int(x) for x in line.split()[1:]] for line in sim_run(faulty, index, sample).stdout.splitlines()
        )
        delta = [b - a for a, b in zip(first, second, strict=True)]
        return 1 - (delta[3] + delta[4]) / sum(delta)

    host = faulty.hosts[17]
    before = busy(17)
    assert "wdavdaemon" not in sim_run(faulty, 17, "ps -eo args=").stdout
    host.state.set_agent_installed(True)
    try:
        after = busy(17)
        assert after - before > 0.15
        agent = sim_run(faulty, 17, "ps -eo pcpu=,args= | grep -E '[w]davdaemon'").stdout.splitlines()
        assert len(agent) == 3 and max(float(line.split()[0]) for line in agent) >= 10
    finally:
        host.state.set_agent_installed(False)


def test_hang_never_finishes_until_the_client_gives_up(faulty: SimFleet) -> None:
    async def go() -> None:
        async with sim_connect(faulty, faulty.hosts[20]) as conn:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.run("echo never"), 0.5)

    asyncio.run(go())
    assert faulty.hosts[20].command_log[-1] == "echo never"


def test_drop_closes_the_connection_mid_command(faulty: SimFleet) -> None:
    full = len(sim_run(faulty, 8, "cat /proc/meminfo").raw_stdout)

    async def go() -> None:
        async with sim_connect(faulty, faulty.hosts[21]) as conn:
            cut = await conn.run("cat /proc/meminfo", encoding=None)
            # No exit status and part of the output: the TCP connection went away mid-command.
            assert cut.exit_status is None and 0 < len(cut.stdout) < full
            with pytest.raises((asyncssh.Error, ConnectionError, OSError)):
                await conn.run("true")

    asyncio.run(go())


def test_flood_prints_megabytes(faulty: SimFleet) -> None:
    out = sim_run(faulty, 22, "echo @@end")
    assert len(out.raw_stdout) >= 8 * 1024 * 1024 and out.stdout.endswith("@@end\n")


def test_bad_utf8_puts_invalid_bytes_in_process_arguments_and_mounts(faulty: SimFleet) -> None:
    raw = sim_run(faulty, 23, "ps -eo args=; df -P").raw_stdout
    assert b"caf\xe9" in raw and b"/mnt/donn\xe9es" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_faults_can_be_changed_while_the_fleet_runs(faulty: SimFleet) -> None:
    faulty.set_faults(8, "one-core,low-memory")
    try:
        assert sim_run(faulty, 8, "nproc").stdout == "1\n"
    finally:
        faulty.clear_faults(8)
    assert sim_run(faulty, 8, "nproc").stdout != "1\n"
