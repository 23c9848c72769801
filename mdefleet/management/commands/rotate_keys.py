"""``manage.py rotate_keys``: re-encrypt every secret at rest under the newest Fernet key.

Procedure (SECURITY.md): generate a key (``manage.py genkey``), put it first in
MDEFLEET_FERNET_KEYS with the old keys after it, restart web and workers, run this command,
then drop the old keys and restart again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mdefleet.audit import Actor
from mdefleet.secrets_rotation import secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field under the first (newest) key of MDEFLEET_FERNET_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be re-encrypted; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        report = secrets_rotate(actor=Actor(label="manage.py rotate_keys"), dry_run=options["dry_run"])
        for label in sorted(report.rotated):
            self.stdout.write(f"{label}: {report.rotated[label]} re-encrypted, {report.current[label]} already current")
        verb = "would be re-encrypted" if options["dry_run"] else "re-encrypted"
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.total_rotated} secrets {verb}, {report.total_current} already under the newest key."
            )
        )
