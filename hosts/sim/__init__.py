"""A simulated fleet of RHEL-family hosts behind real SSH, for the demo, the tests and the benchmark.

``SimFleet`` (``server.py``) listens on consecutive loopback ports, one asyncssh listener per host.
Each host answers commands through a mini POSIX shell (``parse.py``, ``shell.py``) whose commands
(``commands.py`` and the ``cmd_*.py`` modules, registered with ``registry.py``) read and change
that host's state (``state.py``): files (``vfs.py``, ``procfs.py``, ``files.py``) and a machine
derived from its seed (``build.py``, ``machine.py``): processes, mounts, memory, services,
packages and the Defender agent. The rollout's tools work too: yum/dnf against
packages.microsoft.com's layout (``cmd_pkg.py``, ``pmc.py``), the onboarding script's python
(``cmd_python.py``), and once installed the agent itself (``agent.py``: licence, health, modes,
EICAR quarantine) with its ``mdatp`` client (``cmd_mdatp.py``). Profiles (``profiles.py``) give
each host a distribution and the output formats of its tools; faults (``faults.py``) make hosts
unreachable, slow, full, unsafe or broken; keys (``keys.py``) are derived so restarts keep them.
Host indexes are 0-based everywhere.
"""

from __future__ import annotations

from hosts.sim.faults import FAULTS, FaultSpecError
from hosts.sim.profiles import PROFILE_ORDER, PROFILES
from hosts.sim.server import SimFleet, SimHost

__all__ = ["FAULTS", "PROFILES", "PROFILE_ORDER", "FaultSpecError", "SimFleet", "SimHost"]
