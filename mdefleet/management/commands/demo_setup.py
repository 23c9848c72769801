"""Prepare the demo: an admin login, the fleet's SSH key as a credential, the simulated hosts imported."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hosts.importing import parse_inventory
from hosts.models import Credential, Host
from hosts.services import credential_create, host_import
from mdefleet.audit import Actor
from mdefleet.roles import ROLE_ORDER

CREDENTIAL = "simfleet-key"


class Command(BaseCommand):
    """Idempotent: re-running keeps existing hosts and resets the printed admin password."""

    help = "Create the demo admin, the fleet credential, and import the simulated fleet's inventory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--inventory", required=True, type=Path)
        parser.add_argument("--client-key", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        for role in ROLE_ORDER:
            Group.objects.get_or_create(name=role)
        password = secrets.token_urlsafe(12)
        admin, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        admin.set_password(password)
        admin.save()
        actor = Actor(user=admin, label="demo-setup")

        key = options["client_key"].read_text()
        credential = Credential.objects.filter(name=CREDENTIAL).first()
        if credential is None:
            credential = credential_create(actor=actor, name=CREDENTIAL, kind="private_key", secret=key)
        else:
            # The fleet may have generated a new client key: keep the credential in step with it.
            from hosts import crypto

            credential.secret_encrypted = crypto.encrypt(key)
            credential.save(update_fields=["secret_encrypted", "updated_at"])

        entries = json.loads(options["inventory"].read_text())
        existing = set(Host.objects.values_list("address", "port"))
        fresh = [{**e, "credential": CREDENTIAL} for e in entries if (e["address"], e["port"]) not in existing]
        if fresh:
            parsed = parse_inventory(content=json.dumps(fresh), fmt="json")
            if not parsed.ok:
                raise CommandError(
                    f"the simulated inventory did not import: {[e.as_dict() for e in parsed.errors][:5]}"
                )
            host_import(actor=actor, rows=parsed.rows, trust_on_first_use=False)
        self.stdout.write(f"  {len(fresh)} hosts imported ({len(entries)} in the fleet), host keys pinned")
        self.stdout.write(f"  login: admin / {password}")
        sample = Path(__file__).resolve().parents[3] / "deployments" / "samples"
        self.stdout.write(
            f"  sample onboarding package for a profile: {sample / 'MicrosoftDefenderATPOnboardingLinuxServer.py'}"
        )
