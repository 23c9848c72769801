"""factory_boy factories for the inventory: real keys, realistic facts and snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncssh
import factory
import pytest
from django.utils import timezone
from factory.django import DjangoModelFactory

from hosts import crypto
from hosts.choices import AgentState, CredentialKind, Eligibility, RunStatus, SnapshotPhase, StepStatus
from hosts.models import Credential, Discovery, DiscoveryHost, Host, HostCheck, Snapshot, Tag
from hosts.services import credential_create
from mdefleet.audit import SYSTEM

TEST_FERNET_KEY = "bGV0LXRoZS10ZXN0cy1oYXZlLWEta2V5LTMyYnl0ZXM="


@pytest.fixture
def fernet_keys(settings: Any) -> Iterator[None]:
    """A Fernet key and a fast password hasher (settings load before conftest's environment defaults)."""
    settings.MDEFLEET_FERNET_KEYS = [TEST_FERNET_KEY]
    # Role personas hash passwords; the production hasher costs ~0.25 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    crypto.reset_keys()
    yield
    crypto.reset_keys()


def ed25519_private_key() -> str:
    """A fresh OpenSSH ed25519 private key (PEM text)."""
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode()


def ed25519_public_key(comment: str = "") -> str:
    """A fresh OpenSSH public key line, as ssh-keyscan would print it."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment or None)
    return key.export_public_key("openssh").decode().strip()


class CredentialFactory(DjangoModelFactory):
    """A stored credential, encrypted through the service like the page does."""

    class Meta:
        model = Credential

    name = factory.Sequence(lambda n: f"cred-{n}")
    kind = CredentialKind.PRIVATE_KEY
    secret = factory.LazyFunction(ed25519_private_key)
    passphrase = ""

    @classmethod
    def _create(cls, model_class: type[Credential], *args: Any, **kwargs: Any) -> Credential:
        return credential_create(actor=SYSTEM, **kwargs)


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class HostFactory(DjangoModelFactory):
    """A host, not discovered yet unless facts are given."""

    class Meta:
        model = Host
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"host-{n:04d}")
    address = factory.Sequence(lambda n: f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}")
    port = 22
    ssh_user = "deploy"
    credential = factory.SubFactory(CredentialFactory)

    @factory.post_generation
    def tags(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            self.tags.set([TagFactory(name=name) if isinstance(name, str) else name for name in extracted])

    class Params:
        discovered = factory.Trait(
            distro_id="rhel",
            distro_version="9.4",
            distro_name="Red Hat Enterprise Linux 9.4 (Plow)",
            kernel="5.14.0-427.13.1.el9_4.x86_64",
            arch="x86_64",
            cpu_cores=4,
            memory_mb=7821,
            eligibility=Eligibility.ELIGIBLE,
            agent_state=AgentState.ABSENT,
            last_discovered_at=factory.LazyFunction(timezone.now),
            last_seen_at=factory.LazyFunction(timezone.now),
            facts=factory.LazyFunction(lambda: {"facts": {"hostname": "web01.example.net"}}),
        )


class SnapshotFactory(DjangoModelFactory):
    """A snapshot shaped like the parsers' output (sizes in kB, ps rows)."""

    class Meta:
        model = Snapshot

    host = factory.SubFactory(HostFactory)
    phase = SnapshotPhase.PRE
    taken_at = factory.LazyFunction(timezone.now)
    cpu_busy_pct = 12.5
    load_1, load_5, load_15 = 0.42, 0.35, 0.30
    mem_total_mb, mem_used_mb, mem_available_mb = 7821.0, 2210.0, 5320.0
    swap_total_mb, swap_used_mb = 2048.0, 0.0
    filesystems = factory.LazyFunction(
        lambda: [
            {"device": "/dev/mapper/rhel-root", "type": "xfs", "mount": "/", "size_kb": 73364480,
             "used_kb": 9172480, "avail_kb": 64192000, "use_pct": 13},
            {"device": "/dev/sda1", "type": "xfs", "mount": "/boot", "size_kb": 1038336,
             "used_kb": 912000, "avail_kb": 126336, "use_pct": 88},
        ]
    )  # fmt: skip
    top_processes = factory.LazyFunction(
        lambda: [
            {"pid": 1, "ppid": 0, "user": "root", "cpu_pct": 0.1, "mem_pct": 0.2, "rss_kb": 14000,
             "vsz_kb": 170000, "elapsed_s": 3600, "name": "systemd", "role": "", "args": "/usr/lib/systemd/systemd"},
        ]
    )  # fmt: skip
    agent_processes: Any = factory.LazyFunction(list)


class DiscoveryFactory(DjangoModelFactory):
    class Meta:
        model = Discovery


class DiscoveryHostFactory(DjangoModelFactory):
    class Meta:
        model = DiscoveryHost

    discovery = factory.SubFactory(DiscoveryFactory)
    host = factory.SubFactory(HostFactory)
    status = RunStatus.PENDING


class HostCheckFactory(DjangoModelFactory):
    class Meta:
        model = HostCheck

    run = factory.SubFactory(DiscoveryHostFactory, status=RunStatus.OK)
    host = factory.SelfAttribute("run.host")
    step = "facts"
    status = StepStatus.OK
    exit_code = 0
    duration_ms = 120
    command = "cat /etc/os-release"
    output = 'ID="rhel"\nVERSION_ID="9.4"\n'
    reason = "Red Hat Enterprise Linux 9.4 is supported"
    finished_at = factory.LazyFunction(timezone.now)


# --- rollouts -------------------------------------------------------------------------------------


class ProfileFactory(DjangoModelFactory):
    """A profile with an encrypted JSON onboarding package (needs the fernet_keys fixture)."""

    class Meta:
        model = "deployments.Profile"
        exclude = ("onboarding",)

    name = factory.Sequence(lambda n: f"profile-{n}")
    onboarding = '{"onboardingInfo": "{\\"body\\": \\"test-tenant\\"}"}'
    onboarding_encrypted = factory.LazyAttribute(lambda o: crypto.encrypt(o.onboarding))
    onboarding_kind = "json"
    onboarding_filename = "mdatp_onboard.json"
    org_id = "3f2b7c1e-5d4a-4e8b-9c6f-0a1b2c3d4e5f"


def eligible_hosts(count: int, *, tags: tuple[str, ...] = (), prefix: str = "web") -> list[Host]:
    """``count`` discovered, eligible hosts sharing one credential (bulk inserts: fast for a thousand)."""
    credential = CredentialFactory()
    start = Host.objects.count()
    hosts = Host.objects.bulk_create(
        [
            Host(
                name=f"{prefix}-{start + i:04d}",
                # 172.16/12: apart from HostFactory's 10/8 addresses.
                address=f"172.{16 + (start + i) // 62500 % 16}.{(start + i) // 250 % 250}.{(start + i) % 250 + 1}",
                ssh_user="deploy",
                credential=credential,
                distro_id="rhel",
                distro_version="9.4",
                eligibility=Eligibility.ELIGIBLE,
                agent_state=AgentState.ABSENT,
                facts={"facts": {"distro_id": "rhel", "distro_version": "9.4", "version_major": 9, "arch": "x86_64"}},
            )
            for i in range(count)
        ]
    )
    if tags:
        tag_objects = [TagFactory(name=name) for name in tags]
        Host.tags.through.objects.bulk_create(
            [Host.tags.through(host_id=h.pk, tag_id=t.pk) for h in hosts for t in tag_objects]
        )
    return hosts


class StepResultFactory(DjangoModelFactory):
    """One recorded step of a host run (give ``host_run``)."""

    class Meta:
        model = "deployments.StepResult"

    step = "facts"
    status = StepStatus.OK
    exit_code = 0
    duration_ms = 150
    command = "cat /etc/os-release"
    output = 'ID="rhel"\n'
    reason = "Red Hat Enterprise Linux 9.4 is supported"
    finished_at = factory.LazyFunction(timezone.now)
