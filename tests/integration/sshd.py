"""A real OpenSSH server on loopback that answers like a RHEL 9 host (pytest plugin).

``real_sshd`` (session scope) starts ``/usr/sbin/sshd -D -e`` with its own config, host key and
authorized client key. The session's ``PATH`` starts with the stub directory copied from
``tests/integration/stubs/`` (see its README): thin scripts that answer only what would reveal
the Debian test machine, so the product's command strings still run through the real sshd and a
real ``bash``/``sh``. ``sshd_changes`` lets a test add stubs (``mdatp``, ``dnf``) or fake-root
files and removes them afterwards.

``real_sshd_isolated`` (per test) is a second server that may really install the agent: it runs
in its own mount namespace with a private tmpfs over every directory the rollout writes
(``ISOLATED_PATHS``), and its PATH also holds ``stubs/mdatp-host/bin`` (``dnf``, ``yum``, ``rpm``,
``mdatp``) whose ``dnf install`` unpacks a stub agent into ``/opt/microsoft/mdatp`` and starts its
daemon. Its /tmp is private too. Nothing it writes there reaches the test machine, and it all
vanishes with the server.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import posixpath
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from hosts.ssh import Secret, Target

SSHD = Path("/usr/sbin/sshd")
STUBS = Path(__file__).resolve().parent / "stubs"
# Tools that read files: linked to stubs/bin/map-paths, which reads RHEL paths from the fake root.
MAPPED_TOOLS = ("cat", "head", "tail", "grep", "ls", "wc")
REAL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT = 10.0


@dataclass
class RealSSHD:
    """Where the test sshd listens, the keys to reach it, and the fake host it plays."""

    host: str
    port: int
    host_key: str  # the public host key line to pin
    client_key: str  # OpenSSH private key authorized for ``username``
    client_public_key: str
    username: str
    kernel: str
    stub_dir: Path
    fake_root: Path
    command_log: Path
    log_file: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def target(self, **overrides: object) -> Target:
        """A Target for this server (pinned key, authorized client key), with fields overridden."""
        values: dict[str, object] = {
            "host_id": 1,
            "address": self.host,
            "port": self.port,
            "username": self.username,
            "secret": Secret(private_key=self.client_key),
            "host_key": self.host_key,
            "use_sudo": True,
        }
        values.update(overrides)
        return Target(**values)  # type: ignore[arg-type]

    def commands(self) -> list[str]:
        """Every command the login shell was asked to run so far, in order."""
        if not self.command_log.exists():
            return []
        return [c for c in self.command_log.read_bytes().decode("utf-8", "replace").split("\0") if c]

    def log(self) -> str:
        """sshd's own log (LogLevel VERBOSE: connections, auth, no commands)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class SSHDChanges:
    """Stubs and fake-root files one test adds; undone when the test ends."""

    def __init__(self, sshd: RealSSHD) -> None:
        self.sshd = sshd
        self._created: list[Path] = []
        self._replaced: dict[Path, bytes] = {}

    def stub(self, name: str, script: str) -> Path:
        """Put an executable ``name`` first on the host's PATH (a ``#!/bin/sh`` script)."""
        return self._write(self.sshd.stub_dir / name, script, mode=0o755)

    def file(self, path: str, content: str) -> Path:
        """Make the host's ``path`` (absolute, e.g. /etc/yum.repos.d/x.repo) read ``content``."""
        if not path.startswith("/"):
            raise ValueError("give the path as the host sees it, starting with /")
        return self._write(self.sshd.fake_root / path.lstrip("/"), content, mode=0o644)

    def _write(self, path: Path, content: str, *, mode: int) -> Path:
        if path.is_symlink() or path.exists():
            if path not in self._replaced and path not in self._created:
                self._replaced[path] = path.read_bytes()
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._created.append(path)
        path.write_text(content)
        path.chmod(mode)
        return path

    def undo(self) -> None:
        for path in reversed(self._created):
            path.unlink(missing_ok=True)
        for path, content in self._replaced.items():
            path.write_bytes(content)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_key(path: Path, key: asyncssh.SSHKey) -> None:
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)


def _prepare_host(base: Path, *extra_bins: Path) -> tuple[Path, Path]:
    """Copy the stubs and the fake root; link the file-reading tools to map-paths."""
    stub_dir, fake_root = base / "bin", base / "root"
    shutil.copytree(STUBS / "bin", stub_dir)
    for extra in extra_bins:
        shutil.copytree(extra, stub_dir, dirs_exist_ok=True)
    shutil.copytree(STUBS / "root", fake_root)
    for tool in MAPPED_TOOLS:
        (stub_dir / tool).symlink_to("map-paths")
    for script in stub_dir.iterdir():
        if not script.is_symlink():
            script.chmod(0o755)
    return stub_dir, fake_root


def _sshd_config(
    base: Path, port: int, stub_dir: Path, fake_root: Path, command_log: Path, extra_env: dict[str, str] | None = None
) -> str:
    # bash sources ~/.bashrc before a command sshd runs: the test host's own HOME keeps the
    # machine's ~/.bashrc (pyenv, cargo) out and logs each command instead.
    home = base / "home"
    home.mkdir()
    shutil.copy(STUBS / "bashrc", home / ".bashrc")
    env = {
        "PATH": f"{stub_dir}:{REAL_PATH}",
        "HOME": str(home),
        "MDEFLEET_FAKE_ROOT": str(fake_root),
        "MDEFLEET_REAL_PATH": REAL_PATH,
        "MDEFLEET_COMMAND_LOG": str(command_log),
        **(extra_env or {}),
    }
    set_env = " ".join(f'"{name}={value}"' for name, value in env.items())
    return f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {base / "ssh_host_ed25519_key"}
PidFile {base / "sshd.pid"}
AuthorizedKeysFile {base / "authorized_keys"}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
UseDNS no
MaxSessions 10
MaxStartups 50:30:100
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
Subsystem sftp internal-sftp
# SetEnv (sshd >= 7.8) overrides sshd's default environment: the stubs come first on PATH.
SetEnv {set_env}
"""


def _wait_listening(process: subprocess.Popen[bytes], port: int, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}:\n{log_file.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"sshd did not listen on 127.0.0.1:{port} within {START_TIMEOUT:g}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The listener only: sessions are its children in their own process groups and end with
    # their connections.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def _serving(
    base: Path,
    *,
    extra_bins: tuple[Path, ...] = (),
    extra_env: dict[str, str] | None = None,
    launcher: Callable[[Path], list[str]] = lambda config: [str(SSHD), "-D", "-e", "-f", str(config)],
) -> Iterator[dict[str, Any]]:
    """Keys, stubs and config under ``base``; sshd started with ``launcher(config)`` and stopped after.

    Yields the RealSSHD fields.
    """
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: install openssh-server (scripts/test-system-deps.sh does)")
    # Debian's sshd refuses to start as root without its privilege-separation directory.
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519", comment="mdefleet-tests")
    _write_key(base / "ssh_host_ed25519_key", host_key)
    client_public = client_key.export_public_key("openssh").decode().strip()
    (base / "authorized_keys").write_text(client_public + "\n")

    stub_dir, fake_root = _prepare_host(base, *extra_bins)
    command_log = base / "commands.log"
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(_sshd_config(base, port, stub_dir, fake_root, command_log, extra_env))
    checked = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        pytest.fail(f"sshd refused its test config:\n{checked.stderr}")

    log_file = base / "sshd.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(launcher(config), stdout=log, stderr=log)
    try:
        _wait_listening(process, port, log_file)
        yield {
            "host": "127.0.0.1",
            "port": port,
            "host_key": host_key.export_public_key("openssh").decode().strip(),
            "client_key": client_key.export_private_key("openssh").decode(),
            "client_public_key": client_public,
            "username": getpass.getuser(),
            "kernel": (fake_root / "proc/sys/kernel/osrelease").read_text().strip(),
            "stub_dir": stub_dir,
            "fake_root": fake_root,
            "command_log": command_log,
            "log_file": log_file,
            "process": process,
        }
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def real_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSSHD]:
    """A running OpenSSH server on a free loopback port that plays a RHEL 9.4 host."""
    with _serving(tmp_path_factory.mktemp("sshd")) as fields:
        yield RealSSHD(**fields)


@pytest.fixture
def sshd_changes(real_sshd: RealSSHD) -> Iterator[SSHDChanges]:
    """Add stubs or fake-root files to the test host for one test."""
    changes = SSHDChanges(real_sshd)
    try:
        yield changes
    finally:
        changes.undo()


# --- a host that may install the agent: the same server in a private mount namespace ------------

# Every directory a rollout writes on a RHEL host: onboarding and managed settings (/etc/opt), the
# cron job, the repo file, the signing key (/etc/pki/rpm-gpg), the package's payload, state,
# quarantine and logs, and the rpm database the stub rpm keeps. Each gets a private tmpfs (and so
# does /tmp, see _isolated_launcher).
ISOLATED_PATHS = (
    "/etc/opt",
    "/etc/cron.d",
    "/etc/yum.repos.d",
    "/etc/pki",
    "/opt/microsoft",
    "/var/opt/microsoft",
    "/var/log/microsoft",
    "/var/lib/rpm",
)
MOUNT_SOURCE = "mdefleet-isolated"  # the tmpfs' name in mountinfo and df
AGENT_HOST = STUBS / "mdatp-host"
# Held shared by every running isolated sshd of this machine (see _mount_points).
MOUNT_POINTS_LOCK = Path("/run/lock/mdefleet-real-sshd-isolated.lock")
# The stub agent's processes are named like the real ones; only these are ever signalled.
SPAWNED_NAME = b"/opt/microsoft/mdatp/sbin/wdavdaemon"


@dataclass
class IsolatedSSHD(RealSSHD):
    """A RealSSHD whose writes to ``mounts`` (ISOLATED_PATHS and /tmp) stay in its own mount namespace."""

    mounts: tuple[str, ...] = ()
    spawned_pids: Path = Path("/nonexistent")

    def mounted(self) -> dict[str, str]:
        """Mount point → mounted source as the server's namespace sees them."""
        return _mount_sources(Path(f"/proc/{self.process.pid}/mountinfo"))


def _mount_sources(mountinfo: Path) -> dict[str, str]:
    # mountinfo: "id parent major:minor root mount-point options ... - fstype source super-options"
    found: dict[str, str] = {}
    for line in mountinfo.read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        found[fields.split()[4]] = tail.split()[1]
    return found


def _seed_files(seed: Path) -> list[tuple[Path, str]]:
    """(source, host path) of each seed file; each must land inside one of the private mounts."""
    pairs: list[tuple[Path, str]] = []
    for source in sorted(p for p in seed.rglob("*") if p.is_file()):
        target = "/" + str(source.relative_to(seed))
        if not any(target.startswith(mount + "/") for mount in ISOLATED_PATHS):
            raise ValueError(f"seed file {target} would be written outside the private mounts")
        pairs.append((source, target))
    return pairs


def _isolated_launcher(seed: list[tuple[Path, str]]) -> Callable[[Path], list[str]]:
    """``unshare`` into a private mount namespace, mount the tmpfs, seed them, then become sshd."""

    def launcher(config: Path) -> list[str]:
        base = shlex.quote(str(config.parent))
        # set -e: a mount that fails stops here, before sshd could write to the machine.
        lines = ["set -e"]
        lines += [f"mount -t tmpfs -o mode=0755 {MOUNT_SOURCE} {shlex.quote(path)}" for path in ISOLATED_PATHS]
        # A private /tmp as well (the stub daemon quarantines EICAR files there), keeping the
        # server's own directory (config, keys, stubs, logs) where it was.
        lines += [
            f"mount --bind {base} /mnt",
            f"mount -t tmpfs -o mode=1777 {MOUNT_SOURCE} /tmp",
            f"mkdir -p {base}",
            f"mount --move /mnt {base}",
        ]
        for source, target in seed:
            lines.append(f"mkdir -p {shlex.quote(posixpath.dirname(target))}")
            lines.append(f"cp {shlex.quote(str(source))} {shlex.quote(target)}")
        lines.append(f"exec {SSHD} -D -e -f {shlex.quote(str(config))}")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines)]

    return launcher


def _end_spawned(pids_file: Path) -> None:
    """Stop the agent daemons the stub package started (recorded by pid, checked by name)."""
    if not pids_file.exists():
        return
    pids = [int(p) for p in pids_file.read_text().split() if p.isdigit()]
    for pid in pids:
        try:
            if SPAWNED_NAME in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ProcessLookupError):
            continue
    deadline = time.monotonic() + 3
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def _mount_points() -> Iterator[None]:
    """The directories of ISOLATED_PATHS exist while any isolated sshd of this machine runs.

    A missing one is created empty and listed beside MOUNT_POINTS_LOCK; the last isolated sshd to
    stop removes the listed ones. Removing one while another server still has its tmpfs there
    would detach that mount and let the server write to this machine: each server holds the lock
    shared while it runs, and only an exclusive hold may remove.
    """
    listed = MOUNT_POINTS_LOCK.with_suffix(".created")
    MOUNT_POINTS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with MOUNT_POINTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        created = set(listed.read_text().split()) if listed.exists() else set()
        for path in ISOLATED_PATHS:
            if not os.path.lexists(path):
                Path(path).mkdir(mode=0o755)
                created.add(path)
        listed.write_text("".join(f"{path}\n" for path in sorted(created)))
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                last = True
            except BlockingIOError:
                last = False  # another isolated sshd runs: it removes them when it stops
            if last and listed.exists():
                # Empty on this machine: everything written there went to a namespace's tmpfs.
                for path in sorted(listed.read_text().split(), reverse=True):
                    if os.path.isdir(path):
                        os.rmdir(path)
                listed.unlink()


@pytest.fixture
def real_sshd_isolated(tmp_path: Path) -> Iterator[IsolatedSSHD]:
    """A RHEL 9.4 host on real sshd where the rollout may really install: its writes stay private.

    Needs root (a mount namespace). Directories of ``ISOLATED_PATHS`` missing on this machine
    are created empty as mount points and removed when the last isolated sshd stops.
    """
    if os.geteuid() != 0:
        pytest.fail("real_sshd_isolated mounts tmpfs in a private mount namespace: run the tests as root")
    base = tmp_path / "sshd"
    base.mkdir()
    # Seed from a copy inside the server's own directory: the checkout may itself live under
    # /tmp (CI's fresh clone), which the namespace hides behind its private /tmp.
    shutil.copytree(AGENT_HOST / "seed", base / "seed")
    seed = _seed_files(base / "seed")
    shutil.copytree(AGENT_HOST / "payload", base / "payload")
    spawned = base / "spawned.pids"
    env = {"MDEFLEET_STUB_PAYLOAD": str(base / "payload"), "MDEFLEET_SPAWNED_PIDS": str(spawned)}
    launcher = _isolated_launcher(seed)
    with _mount_points(), _serving(base, extra_bins=(AGENT_HOST / "bin",), extra_env=env, launcher=launcher) as f:
        sshd = IsolatedSSHD(**f, mounts=(*ISOLATED_PATHS, "/tmp"), spawned_pids=spawned)
        try:
            inside, outside = sshd.mounted(), _mount_sources(Path("/proc/self/mountinfo"))
            leaked = [p for p in sshd.mounts if inside.get(p) != MOUNT_SOURCE or outside.get(p) == MOUNT_SOURCE]
            if leaked:
                pytest.fail(f"the isolated sshd's private mounts are not as expected: {leaked}")
            yield sshd
        finally:
            _end_spawned(spawned)
