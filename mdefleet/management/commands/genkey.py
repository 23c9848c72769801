"""Print a new Fernet key for MDEFLEET_FERNET_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from hosts.crypto import generate_key


class Command(BaseCommand):
    """Prints a new key; put it first in MDEFLEET_FERNET_KEYS, then run rotate_keys."""

    help = "Print a new Fernet key for MDEFLEET_FERNET_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(generate_key())
