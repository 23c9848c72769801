"""Run the simulated fleet until interrupted: ports, inventory file and client key for the demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hosts.sim import SimFleet
from hosts.sim.faults import FaultSpecError

FAULT_HELP = (
    "Faults as NAME[=VALUE][:TARGETS], comma-separated. TARGETS are 0-based host indexes (host i listens on "
    "--base-port + i): 3, 4-6, 1+5+9, 5%% of the fleet, or nothing for every host. Faults: unreachable, "
    "slow=SECONDS, host-key, auth, disk-full, low-memory, one-core, fanotify-off, conflicting-av[=trend|mcafee|"
    "carbonblack|sophos], fapolicyd, tls-inspection[=zscaler|paloalto|fortinet], tls-reset, no-egress, install-fail, "
    "unhealthy, cpu-regression=POINTS, hang, drop, flood=MB, bad-utf8. "
    'Example: "unreachable:3,slow=2.5:4-6,host-key:7,cpu-regression:5%%".'
)


class Command(BaseCommand):
    """Starts N simulated RHEL-family SSH hosts on consecutive loopback ports and serves until Ctrl-C."""

    help = "Run a simulated fleet of SSH hosts on 127.0.0.1 (one port per host, 0-based host indexes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hosts", type=int, default=50, help="Number of hosts (default 50).")
        parser.add_argument("--faults", default="", help=FAULT_HELP)
        parser.add_argument("--base-port", type=int, default=2200, help="Port of host 0 (0: any free range).")
        parser.add_argument("--address", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--seed", type=int, default=0, help="Seed for profiles, sizes and keys (default 0).")
        parser.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="Real seconds per simulated second: 0.1 makes `sleep 2` take 0.2 s.",
        )
        parser.add_argument("--state-dir", type=Path, help="Keeps the host-key secret and client key across restarts.")
        parser.add_argument("--inventory-out", type=Path, help="Write the inventory (JSON list) here once listening.")
        parser.add_argument("--client-key-out", type=Path, help="Write the client private key here (mode 0600).")
        parser.add_argument("--credential", default="sim-fleet", help="Credential name used in the inventory.")
        parser.add_argument("--password", help="Also accept this password for root and deploy.")
        parser.add_argument(
            "--deploy-every",
            type=int,
            default=5,
            help="Every Nth host logs in as 'deploy' with sudo instead of root (0: none).",
        )
        parser.add_argument(
            "--control-file",
            type=Path,
            help="Watched file of fault changes while running, one per line: "
            "'clear 33', 'clear all', 'set 33 slow=2,auth', 'reset' (every host fresh, counters zeroed); "
            "consumed once applied.",
        )
        parser.add_argument(
            "--stats-file",
            type=Path,
            help="Write per-host counters (connections accepted, auth successes) as JSON here on SIGUSR1 and at exit.",
        )
        parser.add_argument("--run-for", type=float, default=0, help="Stop after this many seconds (0: until Ctrl-C).")
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="Serve the fleet from this many processes, host i from process i %% N (one Python process "
            "holds one core: a benchmark's fleet needs more). Counters, resets and faults span them all.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # pids of the forked processes serving the other slices (``--processes``)
        self.helpers: list[int] = []
        try:
            fleet = SimFleet(
                options["hosts"],
                faults=options["faults"],
                base_port=options["base_port"],
                seed=options["seed"],
                time_scale=options["time_scale"],
                password=options["password"],
                state_dir=options["state_dir"],
                address=options["address"],
                deploy_every=options["deploy_every"],
            )
        except (FaultSpecError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        try:
            if options["processes"] > 1:
                self._fork(fleet, options)
            asyncio.run(self._serve(fleet, options))
        except OSError as exc:
            raise CommandError(f"cannot listen: {exc}") from exc

    # --- several processes (``--processes N``): this one serves slice 0 and speaks for all -----------

    def _fork(self, fleet: SimFleet, options: dict[str, Any]) -> None:
        """Bind every port here, then fork a helper per other slice; each keeps only its own sockets."""
        count = options["processes"]
        fleet.bind()
        for k in range(1, count):
            pid = os.fork()
            if pid == 0:  # the helper: serve slice k until SIGTERM, then leave without Django's exit path
                code = 0
                try:
                    fleet.keep_only(set(range(k, fleet.count, count)))
                    asyncio.run(self._serve_helper(fleet, options, k))
                except BaseException:  # a helper must never return into the parent's code
                    import traceback

                    traceback.print_exc()
                    code = 1
                finally:
                    os._exit(code)
            self.helpers.append(pid)
        fleet.keep_only(set(range(0, fleet.count, count)))

    async def _serve_helper(self, fleet: SimFleet, options: dict[str, Any], k: int) -> None:
        await fleet.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stats_path, control_path = options["stats_file"], options["control_file"]
        if stats_path is not None:
            loop.add_signal_handler(signal.SIGUSR1, self._write_stats, fleet, _part(stats_path, k))
        watcher = None
        if control_path is not None:
            watcher = asyncio.create_task(self._watch_helper_control(fleet, _part(control_path, k), stop))
        await stop.wait()
        if watcher is not None:
            watcher.cancel()
        if stats_path is not None:
            self._write_stats(fleet, _part(stats_path, k))
        await fleet.stop()

    async def _watch_helper_control(self, fleet: SimFleet, path: Path, stop: asyncio.Event) -> None:
        """A helper applies what the first process forwards, then says so in ``<path>.done``."""
        while not stop.is_set():
            await asyncio.sleep(0.05)
            if not path.exists():
                continue
            lines = path.read_text().splitlines()
            path.unlink(missing_ok=True)
            for line in lines:
                with contextlib.suppress(ValueError, IndexError, FaultSpecError):
                    self._apply_words(fleet, line.split(maxsplit=2))
            _write(path.with_name(path.name + ".done"), "\n".join(lines) + "\n", 0o644)

    async def _forward_control(self, lines: list[str], control_path: Path, timeout: float = 60) -> None:
        """Hand the lines to every helper and wait until each has applied them."""
        for k in range(1, len(self.helpers) + 1):
            _part(control_path, k).with_name(_part(control_path, k).name + ".done").unlink(missing_ok=True)
            _write(_part(control_path, k), "\n".join(lines) + "\n", 0o644)
        deadline = asyncio.get_running_loop().time() + timeout
        for k in range(1, len(self.helpers) + 1):
            done = _part(control_path, k).with_name(_part(control_path, k).name + ".done")
            while not done.exists() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)

    async def _merged_stats(self, fleet: SimFleet, path: Path, timeout: float = 10) -> None:
        """Ask every helper for its counters, then write them summed with this process's own."""
        parts = [_part(path, k) for k in range(1, len(self.helpers) + 1)]
        for part in parts:
            part.unlink(missing_ok=True)
        for pid in self.helpers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)
        deadline = asyncio.get_running_loop().time() + timeout
        while not all(p.exists() for p in parts) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        self._write_stats(fleet, path, parts)

    def _stop_helpers(self, timeout: float = 20) -> None:
        for pid in self.helpers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for pid in self.helpers:
            while time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        break
                    time.sleep(0.05)
                    continue
                break
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    async def _serve(self, fleet: SimFleet, options: dict[str, Any]) -> None:
        await fleet.start()
        try:
            self._report(fleet, options)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            if options["run_for"]:
                loop.call_later(options["run_for"], stop.set)
            stats_path = options["stats_file"]
            if stats_path is not None and self.helpers:
                pending: set[asyncio.Task[None]] = set()

                def ask() -> None:
                    task = asyncio.ensure_future(self._merged_stats(fleet, stats_path))
                    pending.add(task)
                    task.add_done_callback(pending.discard)

                loop.add_signal_handler(signal.SIGUSR1, ask)
            elif stats_path is not None:
                loop.add_signal_handler(signal.SIGUSR1, self._write_stats, fleet, stats_path)
            watcher = None
            if options["control_file"] is not None:
                watcher = asyncio.create_task(self._watch_control(fleet, options["control_file"], stop))
            await stop.wait()
            if watcher is not None:
                watcher.cancel()
        finally:
            if self.helpers:
                self._stop_helpers()  # each writes its final counters as it stops
            if options["stats_file"] is not None:
                parts = [_part(options["stats_file"], k) for k in range(1, len(self.helpers) + 1)]
                self._write_stats(fleet, options["stats_file"], parts)
            await fleet.stop()
        self.stdout.write("simulated fleet stopped")

    async def _watch_control(self, fleet: SimFleet, path: Path, stop: asyncio.Event) -> None:
        """Apply fault changes written to the control file (so a demo can lift a fault live)."""
        while not stop.is_set():
            await asyncio.sleep(1)
            if not path.exists():
                continue
            lines = path.read_text().splitlines()
            path.unlink(missing_ok=True)
            if self.helpers:  # every process applies the change before it is reported applied
                await self._forward_control(lines, path)
            for line in lines:
                self._apply_control(fleet, line.split(maxsplit=2))

    def _apply_words(self, fleet: SimFleet, words: list[str]) -> None:
        if words == ["reset"]:
            fleet.reset()
        elif words[:2] == ["clear", "all"]:
            fleet.clear_faults()
        elif len(words) == 2 and words[0] == "clear":
            fleet.clear_faults(int(words[1]))
        elif len(words) == 3 and words[0] == "set":
            fleet.set_faults(int(words[1]), words[2])
        elif words:
            raise ValueError("expected 'clear N', 'clear all', 'set N SPEC' or 'reset'")

    def _apply_control(self, fleet: SimFleet, words: list[str]) -> None:
        try:
            self._apply_words(fleet, words)
        except (ValueError, IndexError, FaultSpecError) as exc:
            self.stderr.write(f"control: {' '.join(words)!r} ignored: {exc}")
            return
        if words:
            self.stdout.write(f"control: applied {' '.join(words)!r}")
            self.stdout.flush()

    def _write_stats(self, fleet: SimFleet, path: Path, parts: list[Path] | None = None) -> None:
        """Per-host counters for a benchmark: one connection per host is what a rollout should open.

        ``parts``: the helpers' own counter files, summed in by port.
        """
        hosts = [
            {"port": h.port, "connections_accepted": h.connections_accepted, "auth_successes": h.auth_successes}
            for h in fleet.hosts
        ]
        by_port = {h["port"]: h for h in hosts}
        for part in parts or []:
            with contextlib.suppress(OSError, ValueError):
                for other in json.loads(part.read_text())["hosts"]:
                    mine = by_port.get(other["port"])
                    if mine is not None:
                        mine["connections_accepted"] += other["connections_accepted"]
                        mine["auth_successes"] += other["auth_successes"]
        _write(path, json.dumps({"hosts": hosts}) + "\n", 0o644)

    def _report(self, fleet: SimFleet, options: dict[str, Any]) -> None:
        first, last = fleet.hosts[0].port, fleet.hosts[-1].port
        self.stdout.write(f"simulated fleet: {len(fleet)} hosts on {fleet.address}:{first}-{last} (seed {fleet.seed})")
        for host in fleet.hosts:
            if len(fleet) <= 100 or host.faults:
                faults = ",".join(k if v is True or v == "" else f"{k}={v}" for k, v in host.faults.items())
                line = f"  {host.port}  {host.index:>4}  {host.hostname:<22} {host.profile:<11} {host.user:<6} {faults}"
                self.stdout.write(line.rstrip())
        key_path = options["client_key_out"]
        if key_path is not None and fleet.client_private_key:
            _write(key_path, fleet.client_private_key, 0o600)
            self.stdout.write(f"client key: {key_path}")
        inventory_path = options["inventory_out"]
        if inventory_path is not None:
            # Written last, and atomically: its appearance tells a waiting script the fleet is up.
            _write(inventory_path, json.dumps(fleet.inventory(options["credential"]), indent=2) + "\n", 0o644)
            self.stdout.write(f"inventory: {inventory_path}")
        self.stdout.write("Ctrl-C stops the fleet.")
        self.stdout.flush()


def _part(path: Path, k: int) -> Path:
    """Helper ``k``'s own file beside ``path`` (``stats.json`` -> ``stats.json.2``)."""
    return path.with_name(f"{path.name}.{k}")


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
