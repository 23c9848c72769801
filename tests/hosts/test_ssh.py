"""The SSH layer without a network: how commands are wrapped, and what never leaks."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from cryptography.fernet import Fernet

from hosts import crypto
from hosts.models import Host
from hosts.services import credential_create
from hosts.ssh import REMOTE_KILL_AFTER, CommandResult, HostSession, Secret, SSHFailure, Target, wrap_command
from hosts.targets import target_for
from mdefleet.audit import SYSTEM

HOSTILE_VALUES = [
    "it's",
    'say "hi"',
    "a; touch pwned-semicolon",
    "$(touch pwned-dollar)",
    "`touch pwned-backtick`",
    "line one\nline two; touch pwned-newline",
    "'; touch pwned-quote; '",
    "$HOME ${PATH} * ?",
    "&& touch pwned-and || touch pwned-or | tee pwned-pipe > pwned-redirect",
]


def test_it_sends_a_command_unchanged_for_root_without_a_bound() -> None:
    assert wrap_command("uname -r", use_sudo=True, username="root", remote_timeout=None) == "uname -r"


def test_it_runs_the_command_under_non_interactive_sudo_for_other_users() -> None:
    wrapped = wrap_command("cat /etc/os-release | head -1", use_sudo=True, username="deploy", remote_timeout=None)

    assert shlex.split(wrapped) == ["sudo", "-n", "sh", "-c", "cat /etc/os-release | head -1"]


def test_it_does_not_use_sudo_when_the_host_says_not_to() -> None:
    assert wrap_command("id", use_sudo=False, username="deploy", remote_timeout=None) == "id"


def test_it_bounds_the_command_on_the_host_with_coreutils_timeout() -> None:
    wrapped = wrap_command("sleep 5", use_sudo=False, username="deploy", remote_timeout=30)

    assert shlex.split(wrapped) == ["timeout", f"--kill-after={REMOTE_KILL_AFTER}", "30", "sh", "-c", "sleep 5"]


def test_timeout_runs_inside_sudo_so_it_may_signal_what_the_command_started() -> None:
    wrapped = wrap_command("yum -y install mdatp", use_sudo=True, username="deploy", remote_timeout=600)

    assert shlex.split(wrapped) == [
        "sudo",
        "-n",
        "timeout",
        f"--kill-after={REMOTE_KILL_AFTER}",
        "600",
        "sh",
        "-c",
        "yum -y install mdatp",
    ]


@pytest.mark.parametrize(("seconds", "sent"), [(0.2, "1"), (1, "1"), (2.5, "3"), (120, "120")])
def test_the_remote_bound_is_rounded_up_to_whole_seconds(seconds: float, sent: str) -> None:
    wrapped = wrap_command("true", use_sudo=False, username="root", remote_timeout=seconds)

    assert shlex.split(wrapped)[2] == sent


def test_it_refuses_an_empty_command() -> None:
    with pytest.raises(ValueError, match="empty command"):
        wrap_command("  ", use_sudo=False, username="root", remote_timeout=None)


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_quoted_value_stays_one_inert_argument_through_the_wrapping(value: str, tmp_path: Path) -> None:
    command = f"printf '%s' {shlex.quote(value)}"
    wrapped = wrap_command(command, use_sudo=True, username="deploy", remote_timeout=30)

    assert shlex.split(wrapped)[-1] == command
    # What the login shell on the host does with it (without sudo, which needs a sudoers entry).
    local = wrap_command(command, use_sudo=False, username="deploy", remote_timeout=30)
    shown = subprocess.run(["sh", "-c", local], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert shown.stdout == value
    assert list(tmp_path.iterdir()) == []


def test_a_secret_never_shows_in_its_repr_or_str() -> None:
    secret = Secret(private_key="-----BEGIN KEY-----abc", passphrase="pass-phrase-1", password="hunter2")

    for shown in (repr(secret), str(secret), f"{secret}"):
        assert shown == "Secret(***)"


def test_a_target_repr_does_not_show_its_secret() -> None:
    target = Target(1, "10.0.0.5", 22, "deploy", Secret(password="hunter2"), host_key="ssh-ed25519 AAAA")

    assert "hunter2" not in repr(target)
    assert target.label == "deploy@10.0.0.5:22"


def test_combined_output_puts_stderr_after_stdout() -> None:
    result = CommandResult("x", 1, "out", "err", 5)

    assert result.combined() == "out\n--- stderr ---\nerr"
    assert not result.ok


def test_a_host_without_a_pinned_key_is_refused_before_any_connection() -> None:
    # Port 9 on a documentation address: reaching the network here would hang, not fail fast.
    target = Target(1, "192.0.2.1", 9, "deploy", Secret(password="hunter2"))

    async def connect() -> None:
        async with HostSession(target, connect_timeout=30, command_timeout=30):
            pass

    with pytest.raises(SSHFailure) as failure:
        asyncio.run(asyncio.wait_for(connect(), 2))

    assert failure.value.kind == SSHFailure.HOST_KEY_UNKNOWN
    assert "nothing was run" in str(failure.value)
    assert "hunter2" not in str(failure.value)


def test_an_unreadable_private_key_is_an_auth_failure_that_does_not_echo_the_key() -> None:
    target = Target(
        1,
        "192.0.2.1",
        22,
        "deploy",
        Secret(private_key="not-a-key-but-secret-material"),
        host_key=asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode(),
    )

    async def connect() -> None:
        async with HostSession(target, connect_timeout=30, command_timeout=30):
            pass

    with pytest.raises(SSHFailure) as failure:
        asyncio.run(asyncio.wait_for(connect(), 2))

    assert failure.value.kind == SSHFailure.AUTH
    assert "secret-material" not in str(failure.value)


# target_for lives in hosts/targets.py; it is the only bridge from the inventory to this layer.


@pytest.fixture
def fernet_key(settings: Any) -> Iterator[None]:
    """A known at-rest key (pytest-django turns DEBUG off, so the development fallback is gone)."""
    settings.MDEFLEET_FERNET_KEYS = [Fernet.generate_key().decode()]
    crypto.reset_keys()
    yield
    crypto.reset_keys()


@pytest.mark.django_db
@pytest.mark.usefixtures("fernet_key")
def test_a_key_credential_becomes_a_decrypted_private_key_target() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    # PKCS#8: encrypted OpenSSH-format keys need bcrypt, which is not a dependency (yet).
    pem = key.export_private_key("pkcs8-pem", passphrase="pw-1").decode()
    credential = credential_create(actor=SYSTEM, name="deploy-key", kind="private_key", secret=pem, passphrase="pw-1")
    host = Host.objects.create(
        name="web-1", address="10.0.0.5", port=2222, ssh_user="deploy", credential=credential, host_key="ssh-ed25519 X"
    )

    target = target_for(host)

    assert target == Target(
        host_id=host.pk,
        address="10.0.0.5",
        port=2222,
        username="deploy",
        secret=Secret(private_key=pem, passphrase="pw-1"),
        host_key="ssh-ed25519 X",
        use_sudo=True,
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("fernet_key")
def test_a_password_credential_becomes_a_password_target() -> None:
    credential = credential_create(actor=SYSTEM, name="deploy-pw", kind="password", secret="hunter2")
    host = Host.objects.create(
        name="db-1", address="db-1.example", ssh_user="root", credential=credential, use_sudo=False
    )

    target = target_for(host)

    assert target.secret == Secret(password="hunter2")
    assert (target.username, target.port, target.use_sudo, target.host_key) == ("root", 22, False, "")
