"""`make demo`: the dashboard, a Celery worker and beat, and a simulated fleet of 50 hosts.

Runs on embedded defaults (SQLite file and a filesystem Celery broker under var/demo/), so a
bare machine needs nothing else. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "demo"
PY = sys.executable
PORT = int(os.environ.get("DEMO_PORT", "8000"))
SIM_PORT = int(os.environ.get("DEMO_SIM_PORT", "2200"))
HOSTS = int(os.environ.get("DEMO_HOSTS", "50"))
# A few hosts with the faults a real fleet has: the demo shows how each one is reported.
FAULTS = os.environ.get(
    "DEMO_FAULTS",
    "unreachable:46,host-key:47,auth:48,disk-full:41,low-memory:42,fanotify-off:43,conflicting-av:44,"
    "tls-inspection:45,one-core:40,slow=1.5:39,cpu-regression=50:2+7+8,install-fail:5,unhealthy:34",
)


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DEBUG": "1",
        "MDEFLEET_VAR_DIR": str(VAR),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)  # the demo always runs on its embedded defaults

    def manage(*args: str) -> None:
        subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)

    manage("migrate", "--noinput", "-v", "0")
    inventory, client_key = VAR / "sim-inventory.json", VAR / "sim-client-key"
    inventory.unlink(missing_ok=True)

    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        log = open(VAR / f"{name}.log", "ab")
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

    def stop_all(*_: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
    try:
        start(
            "simfleet", PY, "manage.py", "simfleet", "--hosts", str(HOSTS), "--faults", FAULTS,
            "--base-port", str(SIM_PORT), "--seed", "1", "--state-dir", str(VAR / "sim"),
            "--inventory-out", str(inventory), "--client-key-out", str(client_key),
            "--control-file", str(VAR / "sim-control"),
        )  # fmt: skip
        for _ in range(120):
            if inventory.exists() or procs[0].poll() is not None:
                break
            time.sleep(0.5)
        if not inventory.exists():
            print(f"the simulated fleet did not start; see {VAR / 'simfleet.log'}", file=sys.stderr)
            return 1
        manage("demo_setup", "--inventory", str(inventory), "--client-key", str(client_key))
        start(
            "web", PY, "-m", "gunicorn", "mdefleet.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
            "--workers", "2", "--threads", "4", "--access-logfile", "-",
        )  # fmt: skip
        start("worker", PY, "-m", "celery", "-A", "mdefleet", "worker", "-l", "info", "-c", "2", "-n", "demo@%h")
        start("beat", PY, "-m", "celery", "-A", "mdefleet", "beat", "-l", "info")
        print(f"\n  mdefleet is running at http://127.0.0.1:{PORT}/  (logs in {VAR})")
        print(f"  lift a simulated fault while it runs: echo 'clear 33' >> {VAR / 'sim-control'}")
        print("  Ctrl-C stops everything.\n")
        while all(proc.poll() is None for proc in procs):
            time.sleep(1)
        dead = [p.args for p in procs if p.poll() is not None]
        print(f"a process stopped: {dead}; see the logs in {VAR}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
