"""A real Celery worker process against the real Redis and the test database.

Tests that use it need committed data (``transactional_db``): the worker is another process
with its own connection to the same PostgreSQL test database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    """One ``celery worker`` subprocess; ``kill()`` sends SIGKILL like a crashed machine."""

    def __init__(self, name: str, extra_env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        env = {
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": BROKER_URL,
            "MDEFLEET_FERNET_KEYS": ",".join(settings.MDEFLEET_FERNET_KEYS),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mdefleet", "worker", "-l", "info", "-c", "1",
             "-P", "solo", "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (no chance to ack, release or clean up)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def celery_workers(transactional_db: Any, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real workers: ``start("w1", MDEFLEET_CLAIM_BATCH="10")``; all stopped at teardown."""
    redis.Redis.from_url(BROKER_URL).flushdb()
    started: list[WorkerProcess] = []

    def start(name: str = "w1", **extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(name, extra_env, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll until ``predicate()`` is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
