"""Four eyes: with MDEFLEET_FOUR_EYES on, nobody approves a wave of a rollout they created."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from deployments.choices import RolloutStatus
from deployments.models import Rollout, Wave
from deployments.services.rollouts import FourEyesRefused, rollout_approve, rollout_create, rollout_start
from mdefleet.audit import Actor
from mdefleet.models import AuditEvent
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)

# Rollout tasks are enqueued on commit: they go to the real, flushed test Redis db (`broker`), where no
# worker takes them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys", "broker")]


@pytest.fixture
def four_eyes(settings: Any) -> None:
    settings.MDEFLEET_FOUR_EYES = True


def waiting_rollout(creator: User) -> Rollout:
    """A rollout created by ``creator`` whose first wave waits for an approval."""
    rollout = rollout_create(
        actor=Actor(user=creator, label=creator.get_username()),
        name="four eyes",
        profile=ProfileFactory(),
        selection={"ids": [h.pk for h in eligible_hosts(2, prefix="fe")]},
        wave_plan="1, 100%",
        auto_promote=False,
    )
    rollout_start(actor=Actor(user=creator, label=creator.get_username()), rollout=rollout)
    Rollout.objects.filter(pk=rollout.pk).update(status=RolloutStatus.WAITING_APPROVAL)
    return Rollout.objects.get(pk=rollout.pk)


def test_the_setting_is_on_unless_debug_and_read_from_the_environment() -> None:
    import subprocess
    import sys

    code = "import django; django.setup(); from django.conf import settings; print(settings.MDEFLEET_FOUR_EYES)"
    base = {
        "DJANGO_SETTINGS_MODULE": "mdefleet.settings",
        "SECRET_KEY": "x" * 60,
        "MDEFLEET_FERNET_KEYS": "bGV0LXRoZS10ZXN0cy1oYXZlLWEta2V5LTMyYnl0ZXM=",
        "PYTHONPATH": ".",
        "PATH": "/usr/bin:/bin",
    }

    def read(**env: str) -> str:
        done = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert read(DEBUG="0") == "True"
    assert read(DEBUG="1") == "False"
    assert read(DEBUG="0", MDEFLEET_FOUR_EYES="0") == "False"


@pytest.mark.usefixtures("four_eyes")
def test_an_approver_cannot_approve_a_rollout_they_created(users: dict[str, User]) -> None:
    rollout = waiting_rollout(users["approver"])
    with pytest.raises(FourEyesRefused, match="another approver"):
        rollout_approve(actor=Actor(user=users["approver"], label="approver-user"), rollout=rollout)
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.WAITING_APPROVAL
    assert Wave.objects.get(rollout=rollout, index=0).approved_by is None
    assert not AuditEvent.objects.filter(action="rollout.approve").exists()


@pytest.mark.usefixtures("four_eyes")
def test_another_approver_can(users: dict[str, User]) -> None:
    rollout = waiting_rollout(users["approver"])
    rollout_approve(actor=Actor(user=users["admin"], label="admin-user"), rollout=rollout)
    assert Wave.objects.get(rollout=rollout, index=0).approved_by == users["admin"]
    assert Rollout.objects.get(pk=rollout.pk).status != RolloutStatus.WAITING_APPROVAL


@pytest.mark.usefixtures("four_eyes")
def test_the_api_refuses_the_creator_with_the_reason(users: dict[str, User], api_client_for: Any) -> None:
    rollout = waiting_rollout(users["approver"])
    response = api_client_for("approver").post(f"/api/v1/rollouts/{rollout.pk}/approve/")
    assert response.status_code == 409
    assert "four eyes" in response.json()["detail"]
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.WAITING_APPROVAL
    assert api_client_for("admin").post(f"/api/v1/rollouts/{rollout.pk}/approve/").status_code == 200


@pytest.mark.usefixtures("four_eyes")
def test_the_page_refuses_the_creator_with_the_reason(users: dict[str, User], client: Any) -> None:
    rollout = waiting_rollout(users["approver"])
    client.force_login(users["approver"])
    response = client.post(reverse("deployments:rollout-action", args=[rollout.pk, "approve"]))
    assert response.status_code == 409
    assert "four eyes: you created this rollout" in response.content.decode()
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.WAITING_APPROVAL


def test_with_four_eyes_off_the_creator_may_approve(users: dict[str, User], settings: Any) -> None:
    settings.MDEFLEET_FOUR_EYES = False
    rollout = waiting_rollout(users["approver"])
    rollout_approve(actor=Actor(user=users["approver"], label="approver-user"), rollout=rollout)
    assert Wave.objects.get(rollout=rollout, index=0).approved_by == users["approver"]
