"""Fault specs: which simulated hosts misbehave, and how.

A spec is a comma-separated list of ``NAME[=VALUE][:TARGETS]`` items, for example
``unreachable:3,slow=2.5:4-6,auth:8+12,cpu-regression:5%,flood=16:22``.

TARGETS are **0-based host indexes** (host ``i`` listens on ``base_port + i`` and is
``fleet.hosts[i]``): a single index ``3``, a range ``4-6`` (inclusive), several joined with ``+``
(``1+5+9-11``), a share of the fleet ``5%`` (a stable, seeded pick), or ``all``/omitted for
every host. Indexes beyond the fleet are ignored.

Faults and their values (default in brackets):

- ``unreachable``: nothing listens on the port (connection refused)
- ``slow=SECONDS`` [1.0]: added latency before every command
- ``host-key``: the host presents another key than the one in its inventory record
- ``auth``: every authentication attempt is refused
- ``disk-full=PCT`` [98]: ``/`` and ``/var`` nearly full (< 500 MB free)
- ``low-memory``: 768 MB of RAM
- ``one-core``: a single CPU core
- ``fanotify-off``: the kernel config has ``# CONFIG_FANOTIFY_ACCESS_PERMISSIONS is not set``
- ``conflicting-av=VENDOR`` [trend]: another antivirus holds fanotify (trend, mcafee, carbonblack, sophos)
- ``fapolicyd``: fapolicyd runs and holds fanotify (the installer only warns)
- ``tls-inspection=VENDOR`` [by host]: HTTPS is re-signed by a corporate CA (zscaler, paloalto, fortinet)
- ``tls-reset``: HTTPS handshakes are reset (curl error 35)
- ``no-egress``: outbound HTTPS is dropped (curl error 28 after --max-time)
- ``install-fail``: the mdatp package's %pre scriptlet fails (yum/dnf: transaction failed, exit 1)
- ``unhealthy``: ``mdatp health`` says ``healthy false`` with the issue "no active supplementary event provider"
- ``cpu-regression=POINTS`` [25]: once mdatp is installed, CPU busy rises by POINTS and wdavdaemon is hot
- ``hang``: commands never finish
- ``drop``: the connection is closed in the middle of a command
- ``flood=MB`` [8]: every command's output starts with MB megabytes of login-script noise
- ``bad-utf8``: process arguments and a mount point contain bytes that are not UTF-8
"""

from __future__ import annotations

import math
from typing import Any

from hosts.sim.profiles import pick

# name -> (value type, default value); bool faults take no value.
FAULTS: dict[str, tuple[type, Any]] = {
    "unreachable": (bool, True),
    "slow": (float, 1.0),
    "host-key": (bool, True),
    "auth": (bool, True),
    "disk-full": (float, 98.0),
    "low-memory": (bool, True),
    "one-core": (bool, True),
    "fanotify-off": (bool, True),
    "conflicting-av": (str, "trend"),
    "fapolicyd": (bool, True),
    "tls-inspection": (str, ""),
    "tls-reset": (bool, True),
    "no-egress": (bool, True),
    "install-fail": (bool, True),
    "unhealthy": (bool, True),
    "cpu-regression": (float, 25.0),
    "hang": (bool, True),
    "drop": (bool, True),
    "flood": (float, 8.0),
    "bad-utf8": (bool, True),
}
AV_VENDORS = ("trend", "mcafee", "carbonblack", "sophos")
TLS_VENDORS = ("zscaler", "paloalto", "fortinet")

HostFaults = dict[str, Any]


class FaultSpecError(ValueError):
    """A fault spec that cannot be read; the message says which item and why."""


def parse_item(item: str) -> tuple[str, Any, str]:
    """``NAME[=VALUE][:TARGETS]`` → (name, value, targets text)."""
    head, _, targets = item.strip().partition(":")
    name, has_value, raw = head.strip().partition("=")
    name = name.strip().lower()
    if name not in FAULTS:
        known = ", ".join(sorted(FAULTS))
        raise FaultSpecError(f"unknown fault {name!r} in {item!r}; known faults: {known}")
    kind, default = FAULTS[name]
    if not has_value:
        return name, default, targets.strip()
    raw = raw.strip()
    if kind is bool:
        raise FaultSpecError(f"fault {name!r} takes no value ({item!r})")
    if kind is float:
        try:
            value: Any = float(raw)
        except ValueError as exc:
            raise FaultSpecError(f"fault {name!r} needs a number, got {raw!r}") from exc
        if value < 0:
            raise FaultSpecError(f"fault {name!r} needs a positive number, got {raw!r}")
        return name, value, targets.strip()
    vendors = AV_VENDORS if name == "conflicting-av" else TLS_VENDORS
    if raw not in vendors:
        raise FaultSpecError(f"fault {name!r}: vendor {raw!r} is not one of {', '.join(vendors)}")
    return name, raw, targets.strip()


def parse_targets(targets: str, *, count: int, seed: int, salt: str) -> list[int]:
    """Host indexes named by a TARGETS text (0-based; see the module docstring)."""
    if targets in ("", "all", "*"):
        return list(range(count))
    chosen: set[int] = set()
    for part in targets.split("+"):
        part = part.strip()
        try:
            if part.endswith("%"):
                share = float(part[:-1])
                wanted = min(count, math.ceil(count * share / 100)) if share > 0 else 0
                ranked = sorted(range(count), key=lambda i: pick(seed, i, "fault:" + salt, 1 << 62))
                chosen.update(ranked[:wanted])
            elif "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise FaultSpecError(f"empty range {part!r}")
                chosen.update(i for i in range(low, high + 1) if i < count)
            elif int(part) < count:
                chosen.add(int(part))
        except ValueError as exc:
            if isinstance(exc, FaultSpecError):
                raise
            raise FaultSpecError(f"bad host target {part!r} (use 3, 4-6, 1+5 or 5%)") from exc
    return sorted(chosen)


def parse_spec(spec: str, *, count: int, seed: int = 0) -> dict[int, HostFaults]:
    """The faults of every host named in ``spec``: {index: {fault: value}}."""
    result: dict[int, HostFaults] = {}
    for item in _items(spec):
        name, value, targets = parse_item(item)
        for index in parse_targets(targets, count=count, seed=seed, salt=name):
            result.setdefault(index, {})[name] = value
    return result


def parse_host_faults(spec: str | dict[str, Any] | list[str]) -> HostFaults:
    """Faults for one host from ``"slow=2,auth"``, ``["slow=2", "auth"]`` or ``{"slow": 2, "auth": True}``."""
    if isinstance(spec, dict):
        faults: HostFaults = {}
        for name, value in spec.items():
            if value is None or value is False:
                continue
            text = name if value is True else f"{name}={value}"
            parsed, parsed_value, _ = parse_item(text)
            faults[parsed] = parsed_value
        return faults
    items = spec if isinstance(spec, list) else _items(spec)
    faults = {}
    for item in items:
        name, value, targets = parse_item(item)
        if targets:
            raise FaultSpecError(f"{item!r}: targets are not allowed when setting one host's faults")
        faults[name] = value
    return faults


def _items(spec: str) -> list[str]:
    return [item for item in (x.strip() for x in spec.split(",")) if item]
