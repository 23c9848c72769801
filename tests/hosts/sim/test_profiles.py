"""Each distribution profile as a client sees it: release files, kernel, init, package world."""

from __future__ import annotations

import asyncio

import pytest

from hosts.sim import PROFILE_ORDER, PROFILES, SimFleet
from hosts.sim.profiles import assign_profile
from tests.fixtures_sim import sim_connect


def run_many(fleet: SimFleet, index: int, *commands: str) -> list[tuple[int | None, str, str]]:
    """Several commands over one connection, as the host's own user (no sudo)."""

    async def go() -> list[tuple[int | None, str, str]]:
        async with sim_connect(fleet, fleet.hosts[index]) as conn:
            results = [await conn.run(command, encoding="utf-8") for command in commands]
        return [(r.exit_status, str(r.stdout), str(r.stderr)) for r in results]

    return asyncio.run(go())


@pytest.mark.parametrize("index", range(len(PROFILE_ORDER)), ids=PROFILE_ORDER)
def test_release_files_kernel_and_init_match_the_profile(sim_fleet: SimFleet, index: int) -> None:
    host = sim_fleet.hosts[index]
    profile = PROFILES[host.profile]
    os_release, redhat, kernel, arch, init = run_many(
        sim_fleet, index, "cat /etc/os-release", "cat /etc/redhat-release", "uname -r", "uname -m", "ps -p 1 -o comm="
    )
    expected = profile.release_files.get("/etc/os-release")
    if expected is None:
        assert os_release[0] == 1 and os_release[2] == "cat: /etc/os-release: No such file or directory\n"
    else:
        assert os_release == (0, expected, "")
    expected = profile.release_files.get("/etc/redhat-release")
    assert redhat[1] == (expected or "")
    assert kernel[1] == host.spec.kernel + "\n" and arch[1] == "x86_64\n"
    assert init[1] == ("systemd\n" if profile.init == "systemd" else "init\n")
    assert host.hostname.startswith(profile.short + "-")


def test_rhel_6_has_no_systemctl(sim_fleet: SimFleet) -> None:
    index = PROFILE_ORDER.index("rhel-6.10")
    assert PROFILES["rhel-6.10"].release_files["/etc/redhat-release"] == (
        "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n"
    )
    direct, wrapped, service = run_many(
        sim_fleet, index, "systemctl is-active sshd", "sudo -n sh -c 'systemctl is-active sshd'", "service sshd status"
    )
    assert direct == (127, "", "bash: systemctl: command not found\n")
    assert wrapped == (127, "", "sh: systemctl: command not found\n")
    assert service[1].startswith("openssh-daemon (pid ")


def test_debian_is_a_dpkg_world(sim_fleet: SimFleet) -> None:
    index = PROFILE_ORDER.index("debian-12")
    os_release, rpm, dpkg, getenforce = run_many(
        sim_fleet, index, "grep ^ID= /etc/os-release", "rpm -q mdatp", "dpkg -s bash", "getenforce"
    )
    assert os_release[1] == "ID=debian\n"
    assert rpm == (127, "", "bash: line 1: rpm: command not found\n")
    assert dpkg[0] == 0 and "Status: install ok installed" in dpkg[1]
    assert getenforce[0] == 127


def test_oracle_linux_runs_uek_or_rhck_kernels() -> None:
    kernels = {
        profile.kernels[0] if len(profile.kernels) == 1 else kernel
        for profile in [PROFILES["ol-8.10"]]
        for kernel in profile.kernels
    }
    assert any("uek" in k for k in kernels) and any("uek" not in k for k in kernels)


def test_a_seeded_fleet_is_mostly_rhel_8_and_9_family() -> None:
    names = [assign_profile(3, i).name for i in range(1000)]
    modern = sum(n in ("rhel-9.4", "rhel-8.10", "rocky-9.4", "alma-9.4", "ol-8.10") for n in names)
    assert modern > 650 and all(names.count(p) > 0 for p in PROFILE_ORDER)
    assert names == [assign_profile(3, i).name for i in range(1000)]
