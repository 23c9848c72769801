"""Helpers for rollout tests on the real stack: a discovered fleet, a profile, API clients."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token

from hosts.discovery import discovery_execute
from hosts.importing import parse_inventory
from hosts.models import Host
from hosts.services import credential_create, discovery_start, host_import
from hosts.sim import SimFleet
from mdefleet.audit import SYSTEM
from tests.integration.http import ApiClient

SAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "samples"
SAMPLE_ORG = "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"


def token_for(role: str) -> str:
    user, _ = User.objects.get_or_create(username=f"{role}-it")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return Token.objects.get_or_create(user=user)[0].key


def discovered_fleet(fleet: SimFleet) -> list[Host]:
    """Import the fleet and run discovery in this process (the rollout is what the test exercises)."""
    credential_create(actor=SYSTEM, name="simfleet-key", kind="private_key", secret=fleet.client_private_key)
    parsed = parse_inventory(content=json.dumps(fleet.inventory(credential="simfleet-key")), fmt="json")
    assert parsed.ok, parsed.errors
    hosts = host_import(actor=SYSTEM, rows=parsed.rows, trust_on_first_use=False)
    discovery = discovery_start(actor=SYSTEM, hosts=hosts)
    discovery_execute(discovery_id=discovery.pk, worker="setup")
    return sorted(Host.objects.all(), key=lambda h: h.port)


def profile_over_api(admin: ApiClient, name: str = "prod baseline") -> int:
    """A profile created and given the sample onboarding package through the API."""
    created = admin.post("/api/v1/profiles/", {"name": name, "channel": "prod"})
    assert created.status == 201, created.body
    content = (SAMPLES / "mdatp_onboard.json").read_bytes()
    uploaded = admin.post(
        f"/api/v1/profiles/{created.body['id']}/onboarding/",
        {"filename": "mdatp_onboard.json", "content_base64": base64.b64encode(content).decode()},
    )
    assert uploaded.status in (200, 201), uploaded.body
    assert uploaded.body.get("org_id", SAMPLE_ORG) == SAMPLE_ORG or SAMPLE_ORG in json.dumps(uploaded.body)
    return int(created.body["id"])
