"""Helpers for the simulator's tests: a host state without SSH, and a shell to run scripts on it."""

from __future__ import annotations

import asyncio
from typing import Any

import hosts.sim  # noqa: F401 - registers the commands
from hosts.sim.profiles import PROFILES
from hosts.sim.shell import IO, BufferSink, Shell, StringSource
from hosts.sim.state import HostState, SimClock, make_spec


def make_state(
    profile: str = "rhel-9.4",
    faults: dict[str, Any] | None = None,
    *,
    index: int = 0,
    seed: int = 1,
    time_scale: float = 0.01,
) -> HostState:
    """A simulated host's state, driven directly (faults may be changed through ``state.fault_box``)."""
    box = {"faults": dict(faults or {})}
    state = HostState(make_spec(seed, index, PROFILES[profile], 10), SimClock(time_scale), lambda: box["faults"])
    state.fault_box = box  # type: ignore[attr-defined]
    return state


def run(
    state: HostState, script: str, *, user: str = "root", stdin: str = "", name: str = "bash"
) -> tuple[int, str, str]:
    """Run a script in a fresh login shell on the state: (status, stdout, stderr)."""

    async def go() -> tuple[int, str, str]:
        out, err = BufferSink(), BufferSink()
        shell = Shell(state, state.cred(user), name=name, pid=4242)
        status = await shell.run(script, IO(StringSource(stdin), out, err))
        return status, out.value(), err.value()

    return asyncio.run(go())
