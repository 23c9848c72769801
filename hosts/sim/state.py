"""Per-host state of the simulated fleet: identity, clock, files, the machine and the agent.

A :class:`HostSpec` is cheap and exists for every host from the start; the :class:`HostState`
(virtual filesystem, processes...) is built on the host's first command, so thousands of idle
hosts cost little. Machine figures are derived from the spec, the live faults and the agent state
and rebuilt when one of those changes; files written by commands persist across rebuilds.
"""

from __future__ import annotations

import asyncio
import math
import posixpath
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hosts.sim import agent as agent_model
from hosts.sim import files
from hosts.sim.build import build_machine
from hosts.sim.machine import ROLES, USERS_EL, AgentState, Machine, Proc
from hosts.sim.procfs import ProcFS
from hosts.sim.profiles import Profile, pick
from hosts.sim.registry import REGISTRY, CommandSpec
from hosts.sim.vfs import VFS, Node

USER_HZ = 100
# Commands that come with the mdatp package (present only while it is installed).
AGENT_COMMANDS = frozenset({"mdatp"})
# Faults that change what the machine looks like (the rest act at connection or command time).
SHAPING_FAULTS = ("low-memory", "one-core", "disk-full", "conflicting-av", "fapolicyd", "bad-utf8", "cpu-regression")


class SimClock:
    """The fleet's clock: simulated seconds run ``1 / time_scale`` times faster than real ones."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.scale = time_scale
        self._t0 = time.monotonic()
        self._epoch0 = time.time()

    def now(self) -> float:
        return self._epoch0 + (time.monotonic() - self._t0) / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * self.scale)


@dataclass(frozen=True)
class Cred:
    """Who a command runs as."""

    uid: int
    gid: int
    name: str
    groups: frozenset[int]
    home: str


@dataclass(frozen=True)
class HostSpec:
    """The fixed identity of one simulated host (derived from the fleet seed and its index)."""

    index: int
    seed: int
    hostname: str
    profile: Profile
    kernel: str
    role: str
    memory_mb: int
    cores: int
    busy: float  # average fraction of all cores busy
    uptime: float  # seconds since boot when the fleet starts
    selinux: str  # Enforcing | Permissive | Disabled


class CpuCounters:
    """Monotonic /proc/stat jiffies: busy share wobbles around its mean, with a rebase on changes."""

    PERIOD = 97.0  # seconds of one wobble of the busy share
    WOBBLE = 0.25

    def __init__(self, boot: float, phase: float) -> None:
        self.base_t = boot
        self.base = [0.0] * 10
        self.params: tuple[int, float] | None = None
        self.phase = phase

    def busy_at(self, t: float, busy: float) -> float:
        return busy * (1 + self.WOBBLE * math.sin(2 * math.pi * t / self.PERIOD + self.phase))

    def _busy_integral(self, t0: float, t1: float, busy: float) -> float:
        w = 2 * math.pi / self.PERIOD
        wobble = self.WOBBLE / w * (math.cos(w * t0 + self.phase) - math.cos(w * t1 + self.phase))
        return busy * ((t1 - t0) + wobble)

    def _at(self, t: float) -> list[float]:
        assert self.params is not None
        cores, busy = self.params
        dt = max(0.0, t - self.base_t)
        total = USER_HZ * cores * dt
        busy_j = USER_HZ * cores * self._busy_integral(self.base_t, self.base_t + dt, busy)
        iowait = total * 0.003
        system, nice, irq, softirq = busy_j * 0.22, busy_j * 0.004, busy_j * 0.012, busy_j * 0.018
        user = busy_j - system - nice - irq - softirq
        idle = total - busy_j - iowait
        deltas = [user, nice, system, idle, iowait, irq, softirq, 0.0, 0.0, 0.0]
        return [b + d for b, d in zip(self.base, deltas, strict=True)]

    def read(self, t: float, cores: int, busy: float) -> list[int]:
        if self.params is None:
            self.params = (cores, busy)
        elif self.params != (cores, busy):
            self.base, self.base_t = self._at(t), t
            self.params = (cores, busy)
        return [int(v) for v in self._at(t)]


class HostState:
    """Everything one simulated host knows about itself."""

    def __init__(self, spec: HostSpec, clock: SimClock, faults: Callable[[], dict[str, Any]]) -> None:
        self.spec = spec
        self.profile = spec.profile
        self.clock = clock
        self._faults = faults
        self.boot = clock.now() - spec.uptime
        self.agent = AgentState()
        self.cpu = CpuCounters(self.boot, pick(spec.seed, spec.index, "phase", 6283) / 1000)
        self.transient: dict[int, Proc] = {}
        self.removed_commands: set[str] = set()
        self.service_overrides: dict[str, bool] = {}  # systemctl start/stop since boot
        self.selinux = spec.selinux
        self.current_pid = 0
        self.pid_max = 4194304 if spec.profile.pid_width == 7 else 32768
        self._pid_offset = 0
        self._fork_rate = 0.05 + pick(spec.seed, spec.index, "forks", 300) / 100
        self._machine: Machine | None = None
        self._machine_key: tuple[Any, ...] | None = None
        self._machine_faults: dict[str, Any] | None = None
        self._machine_agent: tuple[Any, ...] = ()
        self._machine_packages: dict[str, str] = {}
        self._procs_by_pid: dict[int, Proc] = {}
        # Packages installed by commands beyond the machine's own (mdatp's dependencies) and rpm keys.
        self.installed_packages: dict[str, str] = {}
        self.rpm_keys: set[str] = set()
        self.repo_cache: dict[str, float] = {}  # repository id -> when yum/dnf last fetched its metadata
        # Every command line the shells tried to run (argv, found or not), newest last: tests check nothing extra ran.
        self.exec_log: deque[list[str]] = deque(maxlen=5000)
        self.vfs = VFS(clock.now)
        self._build_files()
        self.vfs.on_write = self._file_written

    @property
    def faults(self) -> dict[str, Any]:
        return self._faults()

    # the machine ------------------------------------------------------------------------------
    @property
    def machine(self) -> Machine:
        faults = self.faults
        # Fast path, asked many times per command: the same faults dict (hosts replace theirs, never
        # edit it), the same agent and the same extra packages as when the machine was built.
        if (
            self._machine is not None
            and faults is self._machine_faults
            and self._machine_agent == (self.agent.installed, self.agent.installed_at)
            and self._machine_packages == self.installed_packages
        ):
            return self._machine
        self._machine_faults = faults
        self._machine_agent = (self.agent.installed, self.agent.installed_at)
        self._machine_packages = dict(self.installed_packages)
        key = (
            tuple((name, faults.get(name)) for name in SHAPING_FAULTS),
            self.agent.installed,
            self.agent.installed_at,
            tuple(sorted(self.installed_packages.items())),
        )
        if self._machine is None or key != self._machine_key:
            self._machine = build_machine(self, faults)
            self._machine_key = key
            self._procs_by_pid = {p.pid: p for p in self._machine.procs}
            self._refresh_user_files()
        return self._machine

    def all_procs(self) -> list[Proc]:
        procs = list(self.machine.procs)
        procs.extend(self.transient.values())
        return procs

    def find_proc(self, pid: int) -> Proc | None:
        self.machine  # noqa: B018 - rebuild first if needed
        return self._procs_by_pid.get(pid) or self.transient.get(pid)

    def service_active(self, name: str) -> bool | None:
        """Whether a unit runs (None: no such unit)."""
        service = self.machine.services.get(name)
        if service is None:
            return None
        return self.service_overrides.get(name, service.active)

    def uid_of(self, user: str) -> int:
        entry = self.machine.users.get(user)
        return entry[0] if entry else 0

    def home_of(self, user: str) -> str | None:
        entry = self.machine.users.get(user)
        return entry[2] if entry else None

    def cred(self, user: str) -> Cred:
        uid, gid, home, _ = self.machine.users.get(user) or USERS_EL["nobody"]
        groups = {gid}
        if user == "deploy":
            groups.add(27 if self.profile.distro_id == "debian" else 10)
        return Cred(uid, gid, user, frozenset(groups), home)

    def login_env(self, cred: Cred) -> dict[str, str]:
        if cred.uid == 0:
            path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/root/bin"
        else:
            path = f"/usr/local/bin:/usr/bin:/usr/local/sbin:/usr/sbin:{cred.home}/.local/bin:{cred.home}/bin"
        if self.profile.major <= 6 and self.profile.distro_id != "debian":
            path = "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin" + (
                ":/root/bin" if cred.uid == 0 else ""
            )
        return {
            "HOME": cred.home,
            "USER": cred.name,
            "LOGNAME": cred.name,
            "SHELL": "/bin/bash",
            "PATH": path,
            "PWD": cred.home,
            "SHLVL": "1",
            "MAIL": f"/var/spool/mail/{cred.name}",
            "SSH_CONNECTION": f"127.0.0.1 {40000 + self.spec.index % 20000} 127.0.0.1 22",
            "_": "/usr/bin/env",
        }

    # processes --------------------------------------------------------------------------------
    def next_pid(self) -> int:
        now = self.clock.now()
        self._pid_offset += 1
        span = self.pid_max - 300
        pid = 300 + (int((now - self.boot) * self._fork_rate) + self._pid_offset + 4000) % span
        self.machine  # noqa: B018
        while pid in self._procs_by_pid or pid in self.transient:
            pid += 1
        return pid

    def last_pid(self) -> int:
        span = self.pid_max - 300
        return 300 + (int((self.clock.now() - self.boot) * self._fork_rate) + self._pid_offset + 4000) % span

    def spawn(self, cred: Cred, argv: list[str], ppid: int, comm: str | None = None) -> Proc:
        """A short-lived process for a running command (visible to ps while it runs)."""
        pid = self.next_pid()
        comm = (comm or argv[0].rsplit("/", 1)[-1])[:15]
        # ps shows control characters in arguments (newlines of a script) as "?".
        args = " ".join(argv).replace("\n", "?").replace("\t", "?")
        proc = Proc(
            pid,
            ppid,
            cred.name,
            comm,
            args,
            0.0,
            1200 + 37 * len(argv),
            7600 + 120 * len(argv),
            self.clock.now(),
            nfds=3,
            stat="R",
        )
        self.transient[pid] = proc
        self.current_pid = pid
        return proc

    def reap(self, pid: int) -> None:
        self.transient.pop(pid, None)

    def command_installed(self, name: str) -> bool:
        if name in AGENT_COMMANDS:
            return self.agent.installed
        return name not in self.removed_commands

    def command_at(self, path: str) -> CommandSpec | None:
        """The command installed at an absolute path, if any (``/usr/bin/curl``, ``/bin/sh``)."""
        name = posixpath.basename(path)
        spec = REGISTRY.get(name)
        if spec is not None and spec.available(self):
            installed = spec.install_path(self.profile)
            merged = self.profile.major >= 7 or self.profile.distro_id == "debian"
            aliases = {installed}
            if merged:
                aliases |= {f"/bin/{name}", f"/sbin/{name}", f"/usr/bin/{name}", f"/usr/sbin/{name}"}
            if path in aliases:
                return spec
        for spec in REGISTRY.values():
            if spec.path == path and spec.available(self):
                return spec
        return None

    # clock-driven figures ---------------------------------------------------------------------
    def uptime(self) -> float:
        return self.clock.now() - self.boot

    def proc_stat(self) -> str:
        machine = self.machine
        now = self.clock.now()
        counters = self.cpu.read(now, machine.cores, machine.busy)
        fields = 8 if self.profile.major == 5 else 9 if self.profile.major == 6 else 10
        lines = ["cpu  " + " ".join(str(v) for v in counters[:fields])]
        for cpu in range(machine.cores):
            share = [v // machine.cores + (cpu * 7 % 5 if i == 0 else 0) for i, v in enumerate(counters[:fields])]
            lines.append(f"cpu{cpu} " + " ".join(str(v) for v in share))
        up = now - self.boot
        intr = int(up * 180 * machine.cores)
        lines.append(f"intr {intr} " + " ".join(["0"] * 8 + [str(intr // 3), str(intr // 5)] + ["0"] * 20))
        lines += [
            f"ctxt {int(up * 900 * machine.cores)}",
            f"btime {int(self.boot)}",
            f"processes {int(up * self._fork_rate) + self._pid_offset + 4000}",
            f"procs_running {1 + int(self.cpu.busy_at(now, machine.busy) * machine.cores)}",
            "procs_blocked 0",
        ]
        if self.profile.major >= 6 or self.profile.distro_id == "debian":
            softirq = int(up * 150 * machine.cores)
            lines.append(
                f"softirq {softirq} 1 {softirq // 3} 2 {softirq // 9} {softirq // 20} 0 {softirq // 30} 0 0 "
                f"{softirq // 4}"
            )
        return "\n".join(lines) + "\n"

    def loadavg(self) -> str:
        machine = self.machine
        now = self.clock.now()
        load = machine.busy * machine.cores
        one = self.cpu.busy_at(now, machine.busy) * machine.cores * 1.05
        five = self.cpu.busy_at(now - 120, machine.busy) * machine.cores * 0.5 + load * 0.5
        running = 1 + int(one)
        threads = sum(p.threads for p in self.all_procs())
        return f"{one:.2f} {five:.2f} {load * 0.97:.2f} {running}/{threads} {self.last_pid()}\n"

    @property
    def root_mnt_id(self) -> int:
        return next((m.mnt_id for m in self.machine.mounts if m.target == "/"), 1)

    # the agent (the rollout steps' commands drive this) ----------------------------------------
    def set_agent_installed(self, installed: bool, version: str = "101.24102.0000", channel: str = "prod") -> None:
        """Install or remove mdatp: its files, processes, service, package and (with the fault) the CPU regression."""
        if installed:
            agent_model.install(self, version, channel)
        elif self.agent.installed:
            agent_model.remove(self)

    def tick(self) -> None:
        """Apply what the clock made due (the agent's quarantines); the shell calls it before each command."""
        agent_model.tick(self)

    def _file_written(self, path: str) -> None:
        agent_model.file_written(self, path)

    # files ------------------------------------------------------------------------------------
    def _build_files(self) -> None:
        profile, spec, vfs = self.profile, self.spec, self.vfs
        debian = profile.distro_id == "debian"
        for path, mode in [
            ("/etc", 0o755),
            ("/etc/opt", 0o755),
            ("/etc/sudoers.d", 0o750),
            ("/etc/ssh", 0o755),
            ("/opt", 0o755),
            ("/var", 0o755),
            ("/var/tmp", 0o1777),
            ("/var/log", 0o755),
            ("/var/opt", 0o755),
            ("/var/lib", 0o755),
            ("/tmp", 0o1777),
            ("/home", 0o755),
            ("/root", 0o700 if debian else 0o550),
            ("/boot", 0o555 if profile.major >= 8 else 0o755),
            ("/usr", 0o755),
            ("/usr/lib", 0o755),
            ("/usr/share", 0o755),
            ("/dev", 0o755),
            ("/run", 0o755),
            ("/srv", 0o755),
            ("/mnt", 0o755),
            ("/var/spool", 0o755),
            ("/var/spool/cron", 0o700),
            ("/etc/cron.d", 0o755),
            ("/usr/libexec", 0o755),
        ]:
            vfs.add_dir(path, mode)
        vfs.add_dir("/home/deploy", 0o700, 1000, 1000)
        for path, text in profile.release_files.items():
            vfs.add_file(path, text)
        for path, text in files.repo_files(profile).items():
            vfs.add_file(path, text)
        if not debian:
            vfs.add_dir("/etc/pki/rpm-gpg", 0o755)
            release_key = {"centos": "CentOS", "ol": "oracle", "rocky": "Rocky", "almalinux": "AlmaLinux"}
            key_name = release_key.get(profile.distro_id, "redhat-release")
            vfs.add_file(f"/etc/pki/rpm-gpg/RPM-GPG-KEY-{key_name}", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
        if profile.major >= 7 or debian:
            vfs.add_file("/etc/hostname", spec.hostname + "\n")
        else:
            vfs.add_file("/etc/sysconfig/network", f"NETWORKING=yes\nHOSTNAME={spec.hostname}\n")
        vfs.add_file(
            "/etc/hosts",
            "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n"
            "::1         localhost localhost.localdomain localhost6 localhost6.localdomain6\n",
        )
        vfs.add_file("/etc/resolv.conf", "# Generated by NetworkManager\nsearch corp.example\nnameserver 10.20.0.2\n")
        vfs.add_file("/etc/machine-id", f"{pick(spec.seed, spec.index, 'machine-id', 1 << 128):032x}\n", 0o444)
        vfs.add_file("/etc/sudoers", files.sudoers(debian), 0o440)
        vfs.add_file("/etc/sudoers.d/deploy", "deploy ALL=(ALL) NOPASSWD: ALL\n", 0o440)
        vfs.add_file("/etc/ssh/sshd_config", "PermitRootLogin yes\nPasswordAuthentication no\n", 0o600)
        vfs.add_file("/etc/crontab", "SHELL=/bin/bash\nPATH=/sbin:/bin:/usr/sbin:/usr/bin\nMAILTO=root\n")
        if profile.selinux:
            vfs.add_file("/etc/selinux/config", f"SELINUX={self.selinux.lower()}\nSELINUXTYPE=targeted\n")
        kernel, fanotify = spec.kernel, profile.fanotify
        vfs.add_file(
            f"/boot/config-{kernel}",
            lambda: files.kernel_config(
                kernel, "no-perm" if self.faults.get("fanotify-off") and fanotify != "none" else fanotify
            ),
        )
        vfs.add_file(f"/boot/vmlinuz-{kernel}", "\x7fELF", 0o755)
        if profile.pkg == "rpm" and profile.major == 8:
            vfs.add_file("/usr/libexec/platform-python", "\x7fELF\x02\x01\x01\x00", 0o755)
        vfs.add_file("/var/log/messages" if not debian else "/var/log/syslog", "", 0o600 if not debian else 0o640)
        vfs.add_file("/var/log/secure" if not debian else "/var/log/auth.log", "", 0o600 if not debian else 0o640)
        vfs.add_file("/root/.bashrc", "# .bashrc\n")
        vfs.add_file("/home/deploy/.bashrc", "# .bashrc\n", 0o644, 1000, 1000)
        vfs.mount("/proc", ProcFS(self))
        for directory in ("/usr/bin", "/usr/sbin"):
            vfs.mount(directory, BinDir(self, directory), writable=True)
        if profile.major >= 7 or debian:
            vfs.add_file("/bin", "usr/bin", 0o777, kind="l")
            vfs.add_file("/sbin", "usr/sbin", 0o777, kind="l")
        else:
            for directory in ("/bin", "/sbin"):
                vfs.mount(directory, BinDir(self, directory), writable=True)

    def _refresh_user_files(self) -> None:
        assert self._machine is not None
        users = self._machine.users
        debian = self.profile.distro_id == "debian"
        self.vfs.add_file("/etc/passwd", files.passwd(users))
        self.vfs.add_file("/etc/group", files.group(users, debian))
        self.vfs.add_file("/etc/shadow", files.shadow(users), 0o640 if debian else 0o000, 0, 42 if debian else 0)


class BinDir:
    """/usr/bin and friends: one entry per installed command (so ``test -x`` and ``ls`` work)."""

    def __init__(self, state: HostState, directory: str) -> None:
        self.state = state
        self.directory = directory

    def _names(self) -> list[str]:
        names = []
        for name, spec in REGISTRY.items():
            if spec.builtin and name not in ("echo", "printf", "test", "[", "true", "false", "kill"):
                continue
            if (
                spec.available(self.state)
                and posixpath.dirname(spec.install_path(self.state.profile)) == self.directory
            ):
                names.append(name)
        return names

    def lookup(self, path: str) -> Node | None:
        if path == self.directory:
            return Node("d", 0o555)
        if posixpath.dirname(path) == self.directory and posixpath.basename(path) in self._names():
            return Node("f", 0o755, data="\x7fELF\x02\x01\x01\x00")
        return None

    def listdir(self, path: str) -> list[str] | None:
        return sorted(self._names()) if path == self.directory else None


def make_spec(seed: int, index: int, profile: Profile, count: int) -> HostSpec:
    """The identity of host ``index``: role, size, load and name, all from the seed."""
    role = ROLES[pick(seed, index, "role", len(ROLES))]
    kernel = profile.kernels[pick(seed, index, "kernel", len(profile.kernels))]
    memory_mb = [2048, 4096, 4096, 8192, 8192, 8192, 16384, 16384, 32768][pick(seed, index, "mem", 9)]
    cores = [2, 2, 4, 4, 4, 8, 8, 16][pick(seed, index, "cores", 8)]
    busy = 0.05 + pick(seed, index, "busy", 2500) / 10000
    uptime = (3 + pick(seed, index, "uptime", 400)) * 86400 + pick(seed, index, "uptime-s", 86400)
    selinux = (
        "Disabled" if not profile.selinux else ("Permissive" if pick(seed, index, "selinux", 10) == 0 else "Enforcing")
    )
    width = max(3, len(str(count - 1)))
    hostname = f"{profile.short}-{role}-{index:0{width}d}"
    return HostSpec(index, seed, hostname, profile, kernel, role, memory_mb, cores, busy, float(uptime), selinux)
