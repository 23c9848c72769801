"""The demo's story holds: its CPU-regression hosts and its install failure land in wave 3 of
``1, 5%, 25%, 100%``, and the regression is well over the default CPU gate.

Real discovery over SSH against the demo's simulated fleet (same size, seed and faults).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deployments.gates import DEFAULT_GATES
from deployments.models import HostRun
from deployments.services.rollouts import rollout_create
from hosts.sim import SimFleet
from hosts.sim.faults import parse_spec
from mdefleet.audit import SYSTEM
from scripts.demo import FAULTS, HOSTS
from tests.factories import ProfileFactory, fernet_keys  # noqa: F401 (fixture)
from tests.integration.rollout_setup import discovered_fleet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fernet_keys")]


def test_the_demo_regressions_and_install_failure_fall_in_the_third_wave(
    sim_fleet_factory: Callable[..., SimFleet],
) -> None:
    fleet = sim_fleet_factory(HOSTS, faults=FAULTS, seed=1)
    hosts = discovered_fleet(fleet)
    by_index = {fleet.hosts.index(h): host for h in fleet.hosts for host in hosts if host.port == h.port}
    rollout = rollout_create(
        actor=SYSTEM,
        name="demo",
        profile=ProfileFactory(),
        selection={"ids": [h.pk for h in hosts]},
        wave_plan="1, 5%, 25%, 100%",
    )
    wave_of = dict(HostRun.objects.filter(rollout=rollout).values_list("host_id", "wave__index"))
    faults = parse_spec(FAULTS, count=HOSTS, seed=1)
    regressed = [i for i, f in faults.items() if "cpu-regression" in f]
    install_fail = [i for i, f in faults.items() if "install-fail" in f]
    assert regressed and install_fail
    assert {wave_of[by_index[i].pk] for i in regressed + install_fail} == {2}  # the third wave
    # Clearly over the default gate, whatever the simulated load's wobble.
    assert all(faults[i]["cpu-regression"] >= 2 * DEFAULT_GATES["regression"]["cpu_points"] for i in regressed)
