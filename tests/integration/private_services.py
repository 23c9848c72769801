"""Private PostgreSQL, Redis, web, worker and beat processes that a test may stop and start at will.

The machine's shared PostgreSQL (5432) and Redis (6379) serve every other test and must never be
restarted; a reliability test that restarts a service gets its own instance on a free port:

- ``PrivateRedis``: ``redis-server`` without persistence, so a restart loses every queued message.
- ``PrivatePostgres``: a throw-away cluster (``initdb`` into a temporary directory, run as the
  ``postgres`` user when the tests run as root, since PostgreSQL refuses to run as root).
- ``WebProcess``: gunicorn serving the app; ``BeatProcess``: ``celery beat`` with the database
  scheduler. Both read the same environment a worker does (``service_env``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from glob import glob
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.utils import InterfaceError, OperationalError

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def database_url(settings_dict: dict[str, Any]) -> str:
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{settings_dict.get('PORT') or 5432}/{settings_dict['NAME']}"


def service_env(broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a web, worker or beat process: this test's database and the given broker."""
    return {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": database_url(connections["default"].settings_dict),
        "CELERY_BROKER_URL": broker_url,
        "MDEFLEET_FERNET_KEYS": ",".join(settings.MDEFLEET_FERNET_KEYS),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def db_or_none(read: Callable[[], Any]) -> Any:
    """``read()`` from this process, or None while the database is away (the connection is then reset)."""
    try:
        return read()
    except (OperationalError, InterfaceError):
        for conn in connections.all():
            with contextlib.suppress(Exception):
                conn.close()
        return None


class _Process:
    """A subprocess in its own session with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class PrivateRedis(_Process):
    """``redis-server`` on a free port with no persistence: a restart starts empty."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        super().__init__("redis", argv, dict(os.environ), log_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        super().start()
        wait_until(self._answers, 20, "the private Redis to answer")

    def _answers(self) -> bool:
        if not self.running():
            raise RuntimeError(f"redis-server exited:\n{self.log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False


def _pg_bin(name: str) -> str:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return path


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port, trust auth on loopback, data in a temporary directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mdefleet-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "server.log"
        # PostgreSQL refuses to run as root: run its programs as the postgres user, in a directory it owns.
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync", "--no-instructions"])  # fmt: skip

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run([*self._as, *argv], capture_output=True, text=True, check=False, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session at once (what a restart by the DBA does); ``immediate`` is a crash."""
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def psql(self, sql: str, database: str = "postgres") -> None:
        self._run([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                   "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])  # fmt: skip

    def copy_database(self, source: dict[str, Any], name: str) -> None:
        """Create ``name`` here as a copy (schema and rows) of the database ``source`` describes."""
        self.psql(f'CREATE DATABASE "{name}"')
        env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        dump = subprocess.run(
            [_pg_bin("pg_dump"), "-h", source.get("HOST") or "127.0.0.1", "-p", str(source.get("PORT") or 5432),
             "-U", source.get("USER") or "postgres", "--no-owner", "--no-privileges", source["NAME"]],
            capture_output=True, check=True, env=env,
        )  # fmt: skip
        restore = subprocess.run(
            [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", name, "-q",
             "-v", "ON_ERROR_STOP=1"],
            input=dump.stdout, capture_output=True, check=False,
        )  # fmt: skip
        if restore.returncode != 0:
            raise RuntimeError(f"restoring the copy failed:\n{restore.stderr.decode(errors='replace')[-3000:]}")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def default_database_on(pg: PrivatePostgres, name: str) -> Iterator[None]:
    """Point this process's ``default`` database (and every process started from it) at ``pg``.

    The settings dict is shared by every thread's connection, so changing it in place moves the
    whole process; it is restored (and connections closed) before pytest-django flushes the
    original test database.
    """
    settings_dict = connections.settings["default"]
    saved = {key: settings_dict.get(key) for key in ("HOST", "PORT", "NAME", "USER", "PASSWORD")}
    pg.copy_database(saved, name)
    connections.close_all()
    settings_dict.update({"HOST": "127.0.0.1", "PORT": str(pg.port), "NAME": name, "USER": "postgres", "PASSWORD": ""})
    try:
        yield
    finally:
        connections.close_all()
        settings_dict.update(saved)


class WebProcess(_Process):
    """gunicorn serving mdefleet on a fixed port, so a restarted process answers at the same URL."""

    def __init__(self, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        argv = [sys.executable, "-m", "gunicorn", "mdefleet.wsgi:application", "-b", f"127.0.0.1:{self.port}",
                "-w", "2", "--timeout", "60", "--graceful-timeout", "5"]  # fmt: skip
        super().__init__("web", argv, env, log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_until(self._answers, 60, "gunicorn to answer")

    def _answers(self) -> bool:
        if not self.running():
            raise RuntimeError(f"gunicorn exited:\n{self.log()}")
        try:
            with urllib.request.urlopen(self.url + "/login/", timeout=5) as reply:  # noqa: S310 - loopback
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False


class BeatProcess(_Process):
    """``celery beat`` with the database scheduler, as production runs it."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "mdefleet", "beat", "-l", "info",
                "-s", str(log_dir / "celerybeat-schedule"), "--pidfile", str(log_dir / "beat.pid"),
                "--max-interval", "1"]  # fmt: skip
        super().__init__("beat", argv, env, log_dir)
