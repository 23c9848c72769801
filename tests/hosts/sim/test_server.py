"""The fleet over real SSH: pinned host keys, authentication, listeners, runtime faults, scale."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from hosts.sim import SimFleet
from hosts.sim.keys import public_line
from tests.fixtures_sim import sim_connect, sim_run, sim_run_async


@pytest.fixture(scope="module")
def gatekeepers(sim_fleet_factory: Callable[..., SimFleet]) -> SimFleet:
    return sim_fleet_factory(6, faults="unreachable:1,host-key:2,auth:3", seed=11, password="s3cret")


def test_every_host_presents_the_key_its_inventory_record_pins(sim_fleet: SimFleet) -> None:
    keys = {host.host_key for host in sim_fleet.hosts}
    assert len(keys) == len(sim_fleet.hosts)
    for index in (0, 4):
        assert sim_run(sim_fleet, index, "echo ok").stdout == "ok\n"


def test_a_host_under_the_host_key_fault_fails_verification_until_lifted(gatekeepers: SimFleet) -> None:
    host = gatekeepers.hosts[2]
    assert host.presented_host_key != host.host_key
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        sim_run(gatekeepers, 2, "true")
    gatekeepers.clear_faults(2)
    try:
        assert sim_run(gatekeepers, 2, "echo back").stdout == "back\n"
    finally:
        gatekeepers.set_faults(2, "host-key")


def test_an_auth_fault_refuses_every_credential(gatekeepers: SimFleet) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        sim_run(gatekeepers, 3, "true")
    with pytest.raises(asyncssh.PermissionDenied):
        sim_run_password(gatekeepers, 3, "s3cret")


def test_password_authentication_works_when_the_fleet_has_one(gatekeepers: SimFleet) -> None:
    assert sim_run_password(gatekeepers, 0, "s3cret") == "root\n"
    with pytest.raises(asyncssh.PermissionDenied):
        sim_run_password(gatekeepers, 0, "wrong")


def sim_run_password(fleet: SimFleet, index: int, password: str) -> str:
    async def go() -> str:
        async with sim_connect(fleet, fleet.hosts[index], client_keys=None, password=password, user="root") as conn:
            return (await conn.run("whoami", encoding="utf-8")).stdout

    return asyncio.run(go())


def test_an_unreachable_host_refuses_connections_and_comes_back_when_lifted(gatekeepers: SimFleet) -> None:
    with pytest.raises(OSError) as refused:
        sim_run(gatekeepers, 1, "true")
    assert isinstance(refused.value, ConnectionRefusedError) or "refused" in str(refused.value).lower()
    gatekeepers.clear_faults(1)
    try:
        assert sim_run(gatekeepers, 1, "hostname").stdout == gatekeepers.hosts[1].hostname + "\n"
    finally:
        gatekeepers.set_faults(1, "unreachable")
    with pytest.raises(OSError):
        sim_run(gatekeepers, 1, "true")


def test_unknown_users_and_unknown_keys_are_refused(gatekeepers: SimFleet) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        sim_run(gatekeepers, 0, "true", user="oracle")
    other = asyncssh.generate_private_key("ssh-ed25519")

    async def go() -> None:
        async with sim_connect(gatekeepers, gatekeepers.hosts[0], client_keys=[other]):
            pass

    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(go())


def test_the_fleet_logs_commands_and_counts_connections(sim_fleet: SimFleet) -> None:
    host = sim_fleet.hosts[1]

    async def go() -> None:
        async with sim_connect(sim_fleet, host) as conn:
            for command in ("uname -r", "hostname"):
                await conn.run(command)

    asyncio.run(go())
    assert host.command_log == ["uname -r", "hostname"]
    assert host.connections_accepted == 1


def test_a_non_root_inventory_user_needs_sudo_for_privileged_reads(sim_fleet: SimFleet) -> None:
    host = sim_fleet.hosts[4]
    assert host.user == "deploy" and sim_fleet.inventory()[4]["use_sudo"] is True
    plain = sim_run(sim_fleet, 4, "cat /etc/sudoers", sudo=False)
    assert plain.exit_status == 1 and plain.stderr == "cat: /etc/sudoers: Permission denied\n"
    wrapped = sim_run(sim_fleet, 4, "cat /etc/sudoers; id -u")
    assert wrapped.exit_status == 0 and wrapped.stdout.endswith("\n0\n")
    assert host.command_log[-1].startswith("sudo -n sh -c ")


def test_stdin_reaches_the_command(sim_fleet: SimFleet) -> None:
    result = sim_run(
        sim_fleet, 0, "cat > /tmp/in.json && mv /tmp/in.json /tmp/out.json && cat /tmp/out.json", input='{"k": "v"}\n'
    )
    assert (result.exit_status, result.stdout) == (0, '{"k": "v"}\n')


def test_more_than_ten_parallel_sessions_on_one_connection_are_refused(sim_fleet: SimFleet) -> None:
    async def go() -> int:
        async with sim_connect(sim_fleet, sim_fleet.hosts[0]) as conn:
            results = await asyncio.gather(*(conn.run("sleep 5") for _ in range(12)), return_exceptions=True)
        return sum(isinstance(r, asyncssh.ChannelOpenError) for r in results)

    assert asyncio.run(go()) == 2


def test_the_inventory_lists_every_host_with_the_key_to_pin(gatekeepers: SimFleet) -> None:
    records = gatekeepers.inventory()
    assert [r["port"] for r in records] == [gatekeepers.base_port + i for i in range(6)]
    assert records[2]["host_key"] == gatekeepers.hosts[2].host_key != gatekeepers.hosts[2].presented_host_key
    assert set(records[0]) >= {"name", "address", "port", "user", "credential", "tags", "host_key"}
    assert records[4]["user"] == "deploy" and records[0]["user"] == "root"
    json.dumps(records)
    key = asyncssh.import_private_key(gatekeepers.client_private_key)
    assert public_line(key, "mdefleet-sim") == gatekeepers.client_public_key


def test_restarting_with_the_same_state_dir_keeps_keys(tmp_path: Path) -> None:
    first = SimFleet(2, seed=5, state_dir=tmp_path)
    second = SimFleet(2, seed=5, state_dir=tmp_path)
    assert first.client_private_key == second.client_private_key
    assert (tmp_path / "client-key").stat().st_mode & 0o777 == 0o600
    assert first.secret == second.secret != SimFleet(2, seed=5).secret


def test_two_hundred_hosts_answer_concurrently(sim_fleet_factory: Callable[..., SimFleet]) -> None:
    fleet = sim_fleet_factory(200, seed=2)

    async def go() -> list[str]:
        return [
            r.stdout for r in await asyncio.gather(*(sim_run_async(fleet, i, "sleep 5; hostname") for i in range(200)))
        ]

    started = time.monotonic()
    outputs = asyncio.run(go())
    elapsed = time.monotonic() - started
    assert outputs == [host.hostname + "\n" for host in fleet.hosts]
    assert all(host.connections_accepted == 1 for host in fleet.hosts)
    # Each command sleeps 5 simulated seconds (0.1 s here); one after another they would take 20 s.
    assert elapsed < 15
