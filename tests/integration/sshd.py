"""A real OpenSSH server on loopback that answers like a RHEL 9 host (pytest plugin).

``real_sshd`` (session scope) starts ``/usr/sbin/sshd -D -e`` with its own config, host key and
authorized client key. The session's ``PATH`` starts with the stub directory copied from
``tests/integration/stubs/`` (see its README): thin scripts that answer only what would reveal
the Debian test machine, so the product's command strings still run through the real sshd and a
real ``bash``/``sh``. ``sshd_changes`` lets a test add stubs (``mdatp``, ``dnf``) or fake-root
files and removes them afterwards.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def _prepare_host(base: Path) -> tuple[Path, Path]:
    """Copy the stubs and the fake root; link the file-reading tools to map-paths."""
    stub_dir, fake_root = base / "bin", base / "root"
    shutil.copytree(STUBS / "bin", stub_dir)
    shutil.copytree(STUBS / "root", fake_root)
    for tool in MAPPED_TOOLS:
        (stub_dir / tool).symlink_to("map-paths")
    for script in stub_dir.iterdir():
        if not script.is_symlink():
            script.chmod(0o755)
    return stub_dir, fake_root


def _sshd_config(base: Path, port: int, stub_dir: Path, fake_root: Path, command_log: Path) -> str:
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


@pytest.fixture(scope="session")
def real_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSSHD]:
    """A running OpenSSH server on a free loopback port that plays a RHEL 9.4 host."""
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: install openssh-server (scripts/test-system-deps.sh does)")
    base = tmp_path_factory.mktemp("sshd")
    # Debian's sshd refuses to start as root without its privilege-separation directory.
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519", comment="mdefleet-tests")
    _write_key(base / "ssh_host_ed25519_key", host_key)
    client_public = client_key.export_public_key("openssh").decode().strip()
    (base / "authorized_keys").write_text(client_public + "\n")

    stub_dir, fake_root = _prepare_host(base)
    command_log = base / "commands.log"
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(_sshd_config(base, port, stub_dir, fake_root, command_log))
    checked = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        pytest.fail(f"sshd refused its test config:\n{checked.stderr}")

    log_file = base / "sshd.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        _wait_listening(process, port, log_file)
        yield RealSSHD(
            host="127.0.0.1",
            port=port,
            host_key=host_key.export_public_key("openssh").decode().strip(),
            client_key=client_key.export_private_key("openssh").decode(),
            client_public_key=client_public,
            username=getpass.getuser(),
            kernel=(fake_root / "proc/sys/kernel/osrelease").read_text().strip(),
            stub_dir=stub_dir,
            fake_root=fake_root,
            command_log=command_log,
            log_file=log_file,
            process=process,
        )
    finally:
        # The listener only: sessions are its children in their own process groups and end with
        # their connections.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def sshd_changes(real_sshd: RealSSHD) -> Iterator[SSHDChanges]:
    """Add stubs or fake-root files to the test host for one test."""
    changes = SSHDChanges(real_sshd)
    try:
        yield changes
    finally:
        changes.undo()
