"""manage.py rotate_keys: every secret at rest moves to the newest key; the old key can then go."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from deployments.models import Profile
from hosts import crypto
from hosts.choices import CredentialKind
from hosts.models import Credential, Discovery
from hosts.services import credential_secret
from mdefleet.models import AuditEvent
from mdefleet.secrets_rotation import encrypted_fields
from tests.factories import CredentialFactory, ProfileFactory, ed25519_private_key

OLD = crypto.generate_key()
NEW = crypto.generate_key()

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings: Any) -> Iterator[Any]:
    """``keys("new", "old")`` sets MDEFLEET_FERNET_KEYS, newest first."""

    def use(*which: str) -> None:
        settings.MDEFLEET_FERNET_KEYS = [{"old": OLD, "new": NEW}[w] for w in which]
        crypto.reset_keys()

    yield use
    crypto.reset_keys()


def rotate() -> str:
    out = StringIO()
    call_command("rotate_keys", stdout=out)
    return out.getvalue()


def test_every_encrypted_column_is_found() -> None:
    found = {f"{model._meta.label}.{name}" for model, name in encrypted_fields()}
    assert {
        "hosts.Credential.secret_encrypted",
        "hosts.Credential.passphrase_encrypted",
        "deployments.Profile.onboarding_encrypted",
        "hosts.Discovery.payload_encrypted",
    } <= found


def test_secrets_under_the_old_key_still_decrypt_with_only_the_new_key_after_rotation(keys: Any) -> None:
    keys("old")
    private_key = ed25519_private_key()
    with_key = CredentialFactory(name="deploy-key", secret=private_key, passphrase="")
    with_password = CredentialFactory(name="deploy-pw", kind=CredentialKind.PASSWORD, secret="hunter2-rotation")
    profile = ProfileFactory(onboarding=json.dumps({"onboardingInfo": "tenant-rotation"}))
    job = Discovery.objects.create(payload_encrypted=crypto.encrypt("offboarding-rotation"))
    before = Credential.objects.get(pk=with_key.pk).secret_encrypted

    keys("new", "old")
    output = rotate()
    assert "4 secrets re-encrypted, 0 already under the newest key" in output
    assert "hosts.Credential.secret_encrypted: 2 re-encrypted" in output
    assert Credential.objects.get(pk=with_key.pk).secret_encrypted != before

    keys("new")
    assert credential_secret(credential=Credential.objects.get(pk=with_key.pk))["secret"] == private_key
    assert credential_secret(credential=Credential.objects.get(pk=with_password.pk))["secret"] == "hunter2-rotation"
    assert json.loads(crypto.decrypt(Profile.objects.get(pk=profile.pk).onboarding_encrypted)) == {
        "onboardingInfo": "tenant-rotation"
    }
    assert crypto.decrypt(Discovery.objects.get(pk=job.pk).payload_encrypted) == "offboarding-rotation"


def test_without_rotation_the_new_key_alone_cannot_read_old_secrets(keys: Any) -> None:
    keys("old")
    credential = CredentialFactory(name="kept-old", kind=CredentialKind.PASSWORD, secret="never-rotated")
    keys("new")
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        credential_secret(credential=Credential.objects.get(pk=credential.pk))


def test_a_second_run_changes_nothing_and_both_runs_are_audited_without_secrets(keys: Any) -> None:
    keys("old")
    CredentialFactory(name="twice", kind=CredentialKind.PASSWORD, secret="audit-must-not-see-this")
    keys("new", "old")
    rotate()
    stored = Credential.objects.get(name="twice").secret_encrypted
    assert "0 secrets re-encrypted, 1 already under the newest key" in rotate()
    assert Credential.objects.get(name="twice").secret_encrypted == stored
    events = list(AuditEvent.objects.filter(action="secrets.rotate_keys").order_by("id"))
    assert [e.details["rotated"]["hosts.Credential.secret_encrypted"] for e in events] == [1, 0]
    assert events[0].actor_label == "manage.py rotate_keys"
    for event in events:
        text = json.dumps(event.details)
        assert "audit-must-not-see-this" not in text and NEW not in text and OLD not in text


def test_a_dry_run_counts_and_changes_nothing(keys: Any) -> None:
    keys("old")
    CredentialFactory(name="dry", kind=CredentialKind.PASSWORD, secret="dry-run")
    stored = Credential.objects.get(name="dry").secret_encrypted
    keys("new", "old")
    out = StringIO()
    call_command("rotate_keys", "--dry-run", stdout=out)
    assert "1 secrets would be re-encrypted" in out.getvalue()
    assert Credential.objects.get(name="dry").secret_encrypted == stored
    assert not AuditEvent.objects.filter(action="secrets.rotate_keys").exists()


def test_a_failure_part_way_rotates_nothing(keys: Any, monkeypatch: Any) -> None:
    keys("old")
    profile = ProfileFactory()
    CredentialFactory(name="atomic", kind=CredentialKind.PASSWORD, secret="all-or-nothing")
    Discovery.objects.create(payload_encrypted=crypto.encrypt("last-to-rotate"))
    stored = {
        "profile": Profile.objects.get(pk=profile.pk).onboarding_encrypted,
        "credential": Credential.objects.get(name="atomic").secret_encrypted,
    }
    keys("new", "old")
    real, calls = crypto.rotate, []

    def fails_on_the_third(token: str) -> str:
        calls.append(token)
        if len(calls) == 3:  # profile and credential done, the job's payload next
            raise RuntimeError("database went away")
        return real(token)

    monkeypatch.setattr(crypto, "rotate", fails_on_the_third)
    with pytest.raises(RuntimeError):
        rotate()
    assert Profile.objects.get(pk=profile.pk).onboarding_encrypted == stored["profile"]
    assert Credential.objects.get(name="atomic").secret_encrypted == stored["credential"]
    assert not AuditEvent.objects.filter(action="secrets.rotate_keys").exists()
