"""Fixtures for the simulated fleet (a pytest plugin: add ``tests.fixtures_sim`` to ``pytest_plugins``).

- ``sim_fleet_factory``: session-scoped; ``make(count, faults=..., time_scale=..., **SimFleet kwargs)``
  starts a fleet on its own thread; every fleet it made is stopped at the end of the session.
- ``sim_fleet``: ten hosts, one per profile in ``PROFILE_ORDER`` (index 0 rhel-9.4 ... 9 rhel-5.11),
  no faults; shared by the session and reset (faults, files, logs) after each test.

``sim_run`` and ``sim_connect`` talk to a host over real SSH with its host key pinned.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncssh
import pytest

from hosts.sim import PROFILE_ORDER, SimFleet, SimHost

# Tests shrink simulated time: `sleep 2` takes 40 ms.
TEST_TIME_SCALE = 0.02


@dataclass
class SimResult:
    """What a command did on a simulated host (stdout/stderr decoded with replacement)."""

    exit_status: int | None
    stdout: str
    stderr: str
    raw_stdout: bytes


def sim_connect(fleet: SimFleet, host: SimHost, *, user: str | None = None, **kwargs: Any) -> Any:
    """``asyncssh.connect`` to a host with its inventory key pinned and the fleet's client key."""
    known = asyncssh.import_known_hosts(f"[{host.address}]:{host.port} {host.host_key}\n")
    options: dict[str, Any] = {"known_hosts": known, "username": user or host.user, "connect_timeout": 10}
    if fleet.client_private_key:
        options["client_keys"] = [asyncssh.import_private_key(fleet.client_private_key)]
    options.update(kwargs)
    return asyncssh.connect(host.address, host.port, **options)


async def sim_run_async(
    fleet: SimFleet,
    index: int,
    command: str,
    *,
    user: str | None = None,
    input: str | None = None,
    sudo: bool | None = None,
    timeout: float = 30,
) -> SimResult:
    host = fleet.hosts[index]
    user = user or host.user
    if sudo if sudo is not None else user != "root":
        command = "sudo -n sh -c " + shlex.quote(command)
    async with sim_connect(fleet, host, user=user) as conn:
        data = input.encode() if input is not None else None
        result = await asyncio.wait_for(conn.run(command, input=data, encoding=None), timeout)
    raw_out, raw_err = bytes(result.stdout or b""), bytes(result.stderr or b"")
    return SimResult(result.exit_status, raw_out.decode(errors="replace"), raw_err.decode(errors="replace"), raw_out)


def sim_run(fleet: SimFleet, index: int, command: str, **kwargs: Any) -> SimResult:
    """Run one command on host ``index`` over SSH (wrapped in ``sudo -n sh -c`` for non-root users)."""
    return asyncio.run(sim_run_async(fleet, index, command, **kwargs))


@pytest.fixture(scope="session")
def sim_fleet_factory() -> Iterator[Callable[..., SimFleet]]:
    fleets: list[SimFleet] = []

    def make(count: int = 10, *, faults: str = "", time_scale: float = TEST_TIME_SCALE, **kwargs: Any) -> SimFleet:
        fleet = SimFleet(count, faults=faults, time_scale=time_scale, **kwargs)
        fleet.start_in_thread()
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop_thread()


@pytest.fixture(scope="session")
def sim_fleet_session(sim_fleet_factory: Callable[..., SimFleet]) -> SimFleet:
    return sim_fleet_factory(len(PROFILE_ORDER), profiles=PROFILE_ORDER, seed=7)


@pytest.fixture
def sim_fleet(sim_fleet_session: SimFleet) -> Iterator[SimFleet]:
    yield sim_fleet_session
    sim_fleet_session.reset()
