"""A planted secret never leaves its encrypted column.

The marker is the passphrase of the SSH private key and a field inside the onboarding package.
A full rollout runs over real SSH against the simulated fleet (in this process, so every log
record of every logger is captured at DEBUG), then every log line, every page and API response
(the URL map walked with the admin), every stored row of every model (step outputs and parsed
data, host checks, snapshots, audit events...) and the captured stdout/stderr are searched for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import asyncssh
import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from deployments.choices import RolloutStatus
from deployments.execution import rollout_execute
from deployments.models import HostRun, Rollout, StepResult
from deployments.services.profiles import profile_create, profile_set_onboarding
from deployments.services.rollouts import rollout_create, rollout_start
from hosts.discovery import discovery_execute
from hosts.importing import parse_inventory
from hosts.models import Host, HostCheck
from hosts.services import credential_create, discovery_start, host_import
from hosts.sim import SimFleet
from hosts.sim.agent import ONBOARD_JSON
from mdefleet.audit import SYSTEM
from mdefleet.roles import ADMIN
from tests.factories import fernet_keys  # noqa: F401 (fixture)
from tests.integration.rollout_setup import SAMPLES
from tests.mdefleet.test_role_walk import EXPECTED, World, _variants, app_routes, fill

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fernet_keys")]

MARKER = "SEKRET-MARKER-7f3c9e1a-do-not-leak"
PROFILES = ["rhel-9.4", "rocky-9.4", "alma-9.4"]


def onboarding_with_marker() -> bytes:
    """The sample onboarding package with the marker inside its signed body, as a tenant's would carry."""
    outer = json.loads((SAMPLES / "mdatp_onboard.json").read_text())
    info = json.loads(outer["onboardingInfo"])
    body = json.loads(info["body"])
    body["deviceTag"] = MARKER
    info["body"] = json.dumps(body)
    outer["onboardingInfo"] = json.dumps(info)
    return json.dumps(outer).encode()


class RolloutWorld(World):
    """The walk's objects, taken from the finished rollout instead of built anew."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout
        self.profile = rollout.profile
        self.run = HostRun.objects.filter(rollout=rollout).order_by("id").first()
        self.host = self.run.host
        self.check = HostCheck.objects.filter(host=self.host).order_by("id").first()
        self.discovery = self.check.run.discovery
        self.credential = self.host.credential
        self.step = StepResult.objects.filter(host_run=self.run).order_by("id").first()
        from mdefleet.models import AuditEvent

        self.event = AuditEvent.objects.order_by("id").first()
        self._service_account = self._webhook = self._delivery = None


def every_get_url(world: RolloutWorld) -> list[str]:
    """Every GET URL of the map, once per host run, step result and host check for nested ones."""
    urls: list[str] = []
    for route in app_routes():
        if route.name not in EXPECTED:
            continue
        for given, methods in _variants(route.name):
            if "GET" not in methods:
                continue
            if "step_id" in route.params:
                for step in StepResult.objects.filter(host_run__rollout=world.rollout):
                    urls.append(reverse(route.name, kwargs={"pk": world.rollout.pk, "run_id": step.host_run_id,
                                                            "step_id": step.pk}))  # fmt: skip
            elif "run_id" in route.params:
                for run in HostRun.objects.filter(rollout=world.rollout):
                    urls.append(reverse(route.name, kwargs={"pk": world.rollout.pk, "run_id": run.pk}))
            elif "check_id" in route.params:
                for check in HostCheck.objects.all():
                    urls.append(reverse(route.name, kwargs={"pk": check.host_id, "check_id": check.pk}))
            else:
                urls.append(reverse(route.name, kwargs=fill(route, world, given)))
    for host in Host.objects.all():
        urls += [reverse("hosts:host", args=[host.pk]), f"/api/v1/hosts/{host.pk}/", f"/api/v1/hosts/{host.pk}/checks/"]
    rollout = world.rollout.pk
    urls += [
        f"/api/v1/rollouts/{rollout}/hosts/?output=1&parsed=1",
        "/api/v1/audit/?page_size=1000",
        reverse("audit") + "?page=1",
    ]
    return sorted(set(urls))


def stored_rows_with(marker: str) -> list[str]:
    """Every model's rows as text, encrypted columns (and password hashes) left out, that contain the marker."""
    found = []
    for model in apps.get_models():
        names = [
            f.attname
            for f in model._meta.concrete_fields
            if not f.name.endswith("_encrypted") and not (model._meta.label == "auth.User" and f.name == "password")
        ]
        for row in model._default_manager.values_list(*names):
            text = json.dumps(row, default=str)
            if marker in text:
                found.append(f"{model._meta.label}: {text[:300]}")
    return found


@pytest.mark.django_db(transaction=True)
def test_the_marker_secret_appears_in_no_log_page_api_response_or_stored_row(
    sim_fleet_factory: Callable[..., SimFleet], caplog: Any, capfd: Any, monkeypatch: Any, users: dict[str, Any]
) -> None:
    for module in ("hosts.services", "deployments.services.rollouts", "mdefleet.webhooks.services",
                   "mdefleet.webhooks.events"):  # fmt: skip
        monkeypatch.setattr(f"{module}.enqueue", lambda *args, **kwargs: True, raising=False)
    monkeypatch.setattr("django.conf.settings.MDEFLEET_CPU_SAMPLE_SECONDS", 1)
    caplog.set_level(logging.DEBUG)
    for name in ("asyncssh", "django", "celery", "deployments", "hosts", "mdefleet"):
        caplog.set_level(logging.DEBUG, logger=name)

    fleet = sim_fleet_factory(len(PROFILES), profiles=PROFILES, seed=5, time_scale=0.05)
    locked_key = asyncssh.import_private_key(fleet.client_private_key).export_private_key("openssh", passphrase=MARKER)
    credential_create(actor=SYSTEM, name="marker-key", kind="private_key", secret=locked_key.decode(),
                      passphrase=MARKER)  # fmt: skip
    parsed = parse_inventory(content=json.dumps(fleet.inventory(credential="marker-key")), fmt="json")
    assert parsed.ok, parsed.errors
    hosts = host_import(actor=SYSTEM, rows=parsed.rows, trust_on_first_use=False)
    discovery_execute(discovery_id=discovery_start(actor=SYSTEM, hosts=hosts).pk, worker="secret-test")
    assert all(h.eligibility == "eligible" for h in Host.objects.all()), [
        (h.name, h.eligibility_reasons) for h in Host.objects.all()
    ]

    profile = profile_create(actor=SYSTEM, data={"name": "marker profile", "channel": "prod"})
    profile = profile_set_onboarding(
        actor=SYSTEM, profile=profile, filename="mdatp_onboard.json", content=onboarding_with_marker()
    )
    rollout = rollout_create(
        actor=SYSTEM,
        name="marker rollout",
        profile=profile,
        selection={"ids": [h.pk for h in hosts]},
        wave_plan="1, 100%",
        settle_seconds=0,
    )
    rollout_start(actor=SYSTEM, rollout=rollout)
    for _ in range(10):
        rollout_execute(rollout_id=rollout.pk, worker="secret-test")
        rollout.refresh_from_db()
        if rollout.status in RolloutStatus.terminal():
            break
    assert rollout.status == RolloutStatus.COMPLETED, (rollout.status, rollout.halt_reason)
    steps = StepResult.objects.filter(host_run__rollout=rollout)
    assert steps.filter(step="onboarding", status="ok").count() == len(PROFILES)
    # The package did reach the hosts: the marker is on the simulated disks, and nowhere of ours.
    delivered = [h.state.vfs.lookup(ONBOARD_JSON) for h in fleet.hosts]
    assert all(node is not None and MARKER in node.text() for node in delivered)

    leaks: list[str] = []
    leaks += [f"log {r.name} {r.levelname}: {r.getMessage()[:300]}" for r in caplog.records if MARKER in r.getMessage()]
    leaks += [f"log text: {line[:300]}" for line in caplog.text.splitlines() if MARKER in line]

    admin = Client()
    admin.force_login(users[ADMIN])
    world = RolloutWorld(rollout)
    urls = every_get_url(world)
    assert len(urls) > 60, urls
    for url in urls:
        for headers in ({}, {"HX-Request": "true"}):
            response = admin.get(url, headers=headers)
            assert response.status_code < 500, (url, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            if MARKER.encode() in body:
                leaks.append(f"response of GET {url} {headers}")

    leaks += stored_rows_with(MARKER)
    out, err = capfd.readouterr()
    leaks += [f"stdout/stderr: {line[:300]}" for line in (out + err).splitlines() if MARKER in line]
    assert not leaks, "the secret leaked:\n" + "\n".join(leaks)
