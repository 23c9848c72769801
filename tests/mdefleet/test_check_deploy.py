"""`manage.py check --deploy` is clean with production settings (DEBUG off, real secrets, TLS proxy)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from hosts.crypto import generate_key

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_reports_no_issue_with_production_settings(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "mdefleet.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "mdefleet.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://mdefleet.example.com",
        "BEHIND_TLS_PROXY": "1",
        "MDEFLEET_FERNET_KEYS": generate_key(),
        "MDEFLEET_VAR_DIR": str(tmp_path),
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp_path / 'check.sqlite3'}"),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout, done.stdout + done.stderr
