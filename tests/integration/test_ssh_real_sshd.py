"""HostSession against a real OpenSSH server playing a RHEL 9 host (fixtures in tests/integration/sshd.py)."""

from __future__ import annotations

import asyncio
import itertools
import shlex
import socket
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from deployments.steps.base import Step, StepContext, sections
from deployments.steps.conflicts import CONFLICTING_SERVICES, ConflictsStep
from deployments.steps.facts import FactsStep
from deployments.steps.network import ENDPOINTS, NetworkStep
from deployments.steps.requirements import RequirementsStep
from deployments.steps.snapshot import SnapshotStep
from hosts.keys import public_key_fingerprint
from hosts.ssh import CommandResult, HostSession, Secret, SSHFailure, Target, fetch_host_key, wrap_command
from tests.integration.sshd import RealSSHD, SSHDChanges

pytestmark = pytest.mark.integration


def run_commands(
    target: Target, *commands: str, stdin: str | None = None, timeout: float | None = None, **options: Any
) -> list[CommandResult]:
    """Open one session and run the commands in order."""
    options.setdefault("connect_timeout", 5)
    options.setdefault("command_timeout", 20)

    async def go() -> list[CommandResult]:
        async with HostSession(target, **options) as session:
            return [await session.run(command, stdin=stdin, timeout=timeout) for command in commands]

    return asyncio.run(go())


def run_one(target: Target, command: str, **kwargs: Any) -> CommandResult:
    return run_commands(target, command, **kwargs)[0]


def connect_failure(target: Target, **options: Any) -> SSHFailure:
    """The failure raised while opening a session to ``target``."""
    with pytest.raises(SSHFailure) as failure:
        run_commands(target, "true", **options)
    return failure.value


def running(pattern: str) -> list[str]:
    """Processes of this machine (the test host) whose command line contains ``pattern``."""
    found = subprocess.run(["pgrep", "-a", "-f", pattern], capture_output=True, text=True, check=False)
    return found.stdout.splitlines()


def wait_until_gone(pattern: str, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := running(pattern)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def new_public_key(alg: str = "ssh-ed25519") -> str:
    return asyncssh.generate_private_key(alg).export_public_key("openssh").decode().strip()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung sshd)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


# --- running commands ---------------------------------------------------------------------------


def test_it_runs_a_command_and_returns_its_output_and_exit_status(real_sshd: RealSSHD) -> None:
    result = run_one(real_sshd.target(), "echo hello; echo oops >&2")

    assert (result.exit_status, result.stdout, result.stderr) == (0, "hello\n", "oops\n")
    assert result.ok and not result.truncated and not result.timed_out
    assert result.command == "echo hello; echo oops >&2"


def test_a_failing_command_is_a_result_not_an_exception(real_sshd: RealSSHD) -> None:
    result = run_one(real_sshd.target(), "echo partial; exit 3")

    assert result.exit_status == 3
    assert result.stdout == "partial\n"
    assert not result.ok


def test_all_commands_of_a_host_share_one_connection(real_sshd: RealSSHD) -> None:
    results = run_commands(real_sshd.target(), 'echo "$SSH_CLIENT"', 'echo "$SSH_CLIENT"', "true")

    assert results[0].stdout == results[1].stdout != ""


def test_the_wire_command_is_the_bounded_wrapped_one(real_sshd: RealSSHD) -> None:
    run_one(real_sshd.target(), "echo logged-command", timeout=7)

    expected = wrap_command("echo logged-command", use_sudo=True, username="root", remote_timeout=7)
    assert real_sshd.commands()[-1] == expected


def test_stdin_is_delivered_to_the_command(real_sshd: RealSSHD, tmp_path: Path) -> None:
    target_file = tmp_path / "mdatp_managed.json"
    content = '{"antivirusEngine": {"enforcementLevel": "real_time"}}\nsecond line ünïcode\n'
    command = f"cat > {shlex.quote(str(target_file))} && wc -c < {shlex.quote(str(target_file))}"

    result = run_one(real_sshd.target(), command, stdin=content)

    assert result.exit_status == 0
    assert target_file.read_text() == content
    assert result.stdout.strip() == str(len(content.encode()))


def test_stdin_for_a_command_that_does_not_read_it_is_harmless(real_sshd: RealSSHD) -> None:
    result = run_one(real_sshd.target(), "true", stdin="x" * 200_000)

    assert result.exit_status == 0


def test_a_command_that_reads_stdin_gets_eof_when_none_is_given(real_sshd: RealSSHD) -> None:
    result = run_one(real_sshd.target(), "cat; echo done", timeout=5)

    assert (result.exit_status, result.stdout, result.timed_out) == (0, "done\n", False)


@pytest.mark.parametrize(
    "value",
    [
        "$(touch pwned-dollar)",
        "`touch pwned-backtick`",
        "x; touch pwned-semicolon",
        "'; touch pwned-quote; '",
        "a \"double\" and 'single' quote",
        "line one\nline two && touch pwned-newline",
        "* ? [a-z] ~ $HOME > pwned-redirect",
    ],
)
def test_a_quoted_value_arrives_literally_and_runs_nothing(real_sshd: RealSSHD, tmp_path: Path, value: str) -> None:
    command = f"cd {shlex.quote(str(tmp_path))} && echo {shlex.quote(value)}"

    result = run_one(real_sshd.target(), command)

    assert result.stdout == value + "\n"
    assert list(tmp_path.iterdir()) == []


def test_it_runs_one_command_at_a_time_on_a_host(real_sshd: RealSSHD) -> None:
    async def go() -> list[CommandResult]:
        async with HostSession(real_sshd.target(), connect_timeout=5, command_timeout=20) as session:
            stamp = "date +%s.%N; sleep 0.3; date +%s.%N"
            return list(await asyncio.gather(*(session.run(stamp) for _ in range(3))))

    spans = sorted(tuple(float(t) for t in r.stdout.split()) for r in asyncio.run(go()))

    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end


# --- output: invalid bytes, size ------------------------------------------------------------------


def test_invalid_utf8_is_replaced_not_fatal(real_sshd: RealSSHD) -> None:
    result = run_one(real_sshd.target(), r"printf 'ok \377\376 end'; printf '\300' >&2")

    assert result.stdout == "ok \ufffd\ufffd end"
    assert result.stderr == "\ufffd"


def test_big_output_is_cut_at_the_cap_with_bounded_memory(real_sshd: RealSSHD) -> None:
    tracemalloc.start()
    try:
        result = run_one(real_sshd.target(), r"head -c 5000000 /dev/zero | tr '\0' a; echo tail >&2", max_output=65536)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.exit_status == 0  # drained to the end, so the command finished normally
    assert result.truncated
    assert result.stdout == "a" * 65536
    assert result.stderr == "tail\n"
    assert peak < 2_000_000, f"{peak} bytes at peak for 5 MB of output"


def test_stderr_has_its_own_cap(real_sshd: RealSSHD) -> None:
    result = run_one(real_sshd.target(), "head -c 3000 /dev/zero | tr '\\0' e >&2; echo out", max_output=1000)

    assert result.truncated
    assert (result.stdout, result.stderr) == ("out\n", "e" * 1000)


# --- time bounds ----------------------------------------------------------------------------------


def test_a_hung_command_is_stopped_on_the_host(real_sshd: RealSSHD) -> None:
    started = time.monotonic()
    result = run_one(real_sshd.target(), "echo started; sleep 31.25", timeout=1)

    assert result.timed_out
    assert result.exit_status is None
    assert result.stdout == "started\n"
    assert time.monotonic() - started < 5
    assert wait_until_gone("sleep 31.25", 2) == []


def test_a_quick_exit_with_timeouts_status_is_the_commands_own(real_sshd: RealSSHD) -> None:
    result = run_one(real_sshd.target(), "exit 124", timeout=5)

    assert (result.exit_status, result.timed_out) == (124, False)


def test_a_command_that_ignores_term_is_killed_after_the_grace(real_sshd: RealSSHD) -> None:
    started = time.monotonic()
    result = run_one(real_sshd.target(), "trap '' TERM; sleep 32.5", timeout=1)

    # Our wait ends first (1 s + grace); the host's `timeout` sends KILL 5 s after its TERM.
    assert result.timed_out and result.exit_status is None
    assert time.monotonic() - started < 6
    assert wait_until_gone("sleep 32.5", 8) == []


def test_a_cancelled_run_leaves_nothing_behind_past_its_bound(real_sshd: RealSSHD) -> None:
    async def go() -> None:
        async with HostSession(real_sshd.target(), connect_timeout=5, command_timeout=2) as session:
            task = asyncio.create_task(session.run("sleep 33.75"))
            await asyncio.sleep(0.5)
            assert running("sleep 33.75")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The connection stays usable for the next command.
            assert (await session.run("echo next")).stdout == "next\n"

    asyncio.run(go())

    # sshd refuses "signal" requests on root logins, so here the host's own bound ends it.
    assert wait_until_gone("sleep 33.75", 4) == []


def test_losing_the_connection_mid_command_raises_connection_lost(real_sshd: RealSSHD) -> None:
    # sh's parent is `timeout` (bash exec'd it); timeout's parent is this connection's sshd process.
    command = "kill -9 $(ps -o ppid= -p $PPID); sleep 34.5"

    with pytest.raises(SSHFailure) as failure:
        run_one(real_sshd.target(), command, timeout=3)

    assert failure.value.kind == SSHFailure.CONNECTION_LOST
    assert real_sshd.target().label in str(failure.value)
    assert wait_until_gone("sleep 34.5", 10) == []


# --- refusing to connect ----------------------------------------------------------------------------


def test_a_changed_host_key_fails_the_host_and_runs_nothing(real_sshd: RealSSHD) -> None:
    other = new_public_key()
    before = len(real_sshd.commands())

    failure = connect_failure(real_sshd.target(host_key=other))

    assert failure.kind == SSHFailure.HOST_KEY_MISMATCH
    message = str(failure)
    assert f"pinned {public_key_fingerprint(other)}" in message
    assert f"host presented {public_key_fingerprint(real_sshd.host_key)}" in message
    assert "nothing was run" in message
    assert len(real_sshd.commands()) == before


def test_a_host_without_a_key_of_the_pinned_type_is_a_mismatch(real_sshd: RealSSHD) -> None:
    failure = connect_failure(real_sshd.target(host_key=new_public_key("ecdsa-sha2-nistp256")))

    assert failure.kind == SSHFailure.HOST_KEY_MISMATCH
    assert (
        f"host presented {public_key_fingerprint(real_sshd.host_key)} (ssh-ed25519, no ecdsa-sha2-nistp256 key)"
        in str(failure)
    )


def test_no_pinned_key_means_no_connection(real_sshd: RealSSHD) -> None:
    connections_before = real_sshd.log().count("Connection from")

    failure = connect_failure(real_sshd.target(host_key=""))

    assert failure.kind == SSHFailure.HOST_KEY_UNKNOWN
    assert real_sshd.log().count("Connection from") == connections_before


def test_an_unknown_client_key_is_refused(real_sshd: RealSSHD) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode()

    failure = connect_failure(real_sshd.target(secret=Secret(private_key=stranger)))

    assert failure.kind == SSHFailure.AUTH
    assert str(failure) == f"authentication refused for {real_sshd.target().label}"


def test_a_passphrase_protected_key_is_used(real_sshd: RealSSHD) -> None:
    key = asyncssh.import_private_key(real_sshd.client_key)
    # PKCS#8: encrypted OpenSSH-format keys need bcrypt, which is not a dependency (yet).
    locked = key.export_private_key("pkcs8-pem", passphrase="pw-for-tests").decode()

    result = run_one(real_sshd.target(secret=Secret(private_key=locked, passphrase="pw-for-tests")), "echo in")

    assert result.stdout == "in\n"


def test_nothing_is_taken_from_the_workers_own_ssh_setup(
    real_sshd: RealSSHD, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker whose ~/.ssh holds a key the host accepts, a config, and an agent socket: none may be used.
    dot_ssh = tmp_path / ".ssh"
    dot_ssh.mkdir()
    (dot_ssh / "id_ed25519").write_text(real_sshd.client_key)
    (dot_ssh / "id_ed25519").chmod(0o600)
    (dot_ssh / "config").write_text(f"Host *\n  IdentityFile {dot_ssh / 'id_ed25519'}\n  User root\n")
    (dot_ssh / "known_hosts").write_text(f"[127.0.0.1]:{real_sshd.port} {new_public_key()}\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))

    failure = connect_failure(real_sshd.target(secret=Secret(password="not-accepted")))

    assert failure.kind == SSHFailure.AUTH
    assert "not-accepted" not in str(failure)


def test_a_closed_port_is_unreachable() -> None:
    port = closed_port()
    target = Target(1, "127.0.0.1", port, "root", Secret(password="x"), host_key=new_public_key())

    failure = connect_failure(target)

    assert failure.kind == SSHFailure.UNREACHABLE
    assert str(failure) == f"connection refused by 127.0.0.1:{port}"


def test_a_host_that_never_answers_times_out(silent_listener: int) -> None:
    target = Target(1, "127.0.0.1", silent_listener, "root", Secret(password="x"), host_key=new_public_key())
    started = time.monotonic()

    failure = connect_failure(target, connect_timeout=1)

    assert failure.kind == SSHFailure.TIMEOUT
    assert time.monotonic() - started < 3


def test_the_handshake_gate_is_released_once_logged_in(real_sshd: RealSSHD) -> None:
    async def go() -> str:
        gate = asyncio.Semaphore(1)
        options: dict[str, Any] = {"connect_timeout": 5, "command_timeout": 10, "handshakes": gate}
        # The second session could never connect if the first kept the only handshake slot.
        async with HostSession(real_sshd.target(), **options) as first:
            async with HostSession(real_sshd.target(), **options) as second:
                results = [await first.run("echo 1"), await second.run("echo 2")]
        assert not gate.locked()
        return "".join(r.stdout for r in results)

    assert asyncio.run(asyncio.wait_for(go(), 20)) == "1\n2\n"


# --- trust on first use ---------------------------------------------------------------------------


def test_fetch_host_key_returns_the_servers_key(real_sshd: RealSSHD) -> None:
    key = asyncio.run(fetch_host_key(real_sshd.host, real_sshd.port, timeout=5))

    assert public_key_fingerprint(key) == public_key_fingerprint(real_sshd.host_key)
    assert run_one(real_sshd.target(host_key=key), "echo pinned").stdout == "pinned\n"


def test_fetch_host_key_on_a_closed_port_is_unreachable() -> None:
    with pytest.raises(SSHFailure) as failure:
        asyncio.run(fetch_host_key("127.0.0.1", closed_port(), timeout=5))

    assert failure.value.kind == SSHFailure.UNREACHABLE


def test_fetch_host_key_gives_up_on_a_silent_host(silent_listener: int) -> None:
    with pytest.raises(SSHFailure) as failure:
        asyncio.run(fetch_host_key("127.0.0.1", silent_listener, timeout=1))

    assert failure.value.kind == SSHFailure.TIMEOUT


# --- the step catalogue's real command strings ------------------------------------------------------


def run_step(real_sshd: RealSSHD, step: Step, ctx: StepContext) -> dict[str, str]:
    command = step.command(ctx)
    assert command is not None
    result = run_one(real_sshd.target(), command, timeout=step.timeout)
    assert not result.timed_out and not result.truncated, result
    # The wire command is exactly the step's string, wrapped: what a RHEL host would receive.
    assert real_sshd.commands()[-1] == wrap_command(
        command, use_sudo=True, username="root", remote_timeout=step.timeout or 20
    )
    return sections(result.stdout)


def test_the_facts_command_reads_a_rhel_host(real_sshd: RealSSHD) -> None:
    parts = run_step(real_sshd, FactsStep(), StepContext(host_label="h"))

    assert 'ID="rhel"' in parts["os-release"].splitlines()
    assert 'VERSION_ID="9.4"' in parts["os-release"].splitlines()
    assert parts["redhat-release"] == "Red Hat Enterprise Linux release 9.4 (Plow)"
    assert parts["kernel"] == real_sshd.kernel
    assert parts["arch"] in {"x86_64", "aarch64"}
    assert int(parts["nproc"]) >= 1
    assert parts["meminfo"].startswith("MemTotal:")
    assert parts["hostname"].strip()


def test_the_requirements_command_reads_disk_kernel_config_and_selinux(real_sshd: RealSSHD) -> None:
    ctx = StepContext(host_label="h", results={"facts": {"kernel": real_sshd.kernel}})

    parts = run_step(real_sshd, RequirementsStep(), ctx)

    df = parts["df"].splitlines()
    assert df[0].startswith("Filesystem") and len(df) == 4
    assert parts["kconfig"].splitlines() == ["CONFIG_FANOTIFY=y", "CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y"]
    assert parts["selinux"] == "Enforcing"
    assert parts["init"].strip()


def test_the_requirements_command_keeps_a_hostile_kernel_string_inert(real_sshd: RealSSHD, tmp_path: Path) -> None:
    kernel = f"x; touch {tmp_path}/pwned; $(touch {tmp_path}/pwned2)"
    ctx = StepContext(host_label="h", results={"facts": {"kernel": kernel}})

    parts = run_step(real_sshd, RequirementsStep(), ctx)

    assert parts["kconfig"] == ""
    assert list(tmp_path.iterdir()) == []


def test_the_conflicts_command_lists_services_and_processes(real_sshd: RealSSHD, sshd_changes: SSHDChanges) -> None:
    sshd_changes.file("/run/systemd/units/ds_agent", "active\n")

    parts = run_step(real_sshd, ConflictsStep(), StepContext(host_label="h"))

    assert parts["services"].splitlines() == ["active"] + ["inactive"] * (len(CONFLICTING_SERVICES) - 1)
    assert "fanotify" in parts
    assert any("sshd" in line for line in parts["ps"].splitlines())


@pytest.mark.parametrize("proxy", ["", "http://proxy.example:3128"])
def test_the_network_command_probes_every_endpoint_and_shows_the_issuer(real_sshd: RealSSHD, proxy: str) -> None:
    parts = run_step(real_sshd, NetworkStep(), StepContext(host_label="h", proxy=proxy))

    assert [parts[f"probe-{i}"] for i in range(len(ENDPOINTS))] == [f"200 {url}" for url in ENDPOINTS]
    assert "*  issuer: C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA 04" in parts["tls"]


def test_the_network_command_shows_an_unreachable_endpoint_and_an_inspecting_proxy(
    real_sshd: RealSSHD, sshd_changes: SSHDChanges
) -> None:
    sshd_changes.file("/etc/mdefleet-stub/curl-codes", f"{ENDPOINTS[0]} 000\n")
    sshd_changes.file("/etc/mdefleet-stub/curl-issuer", "C=US; O=Contoso; CN=Contoso TLS Inspection CA\n")

    parts = run_step(real_sshd, NetworkStep(), StepContext(host_label="h"))

    probe = parts["probe-0"].splitlines()
    assert probe[0].startswith("curl: (7) Failed to connect to x.cp.wd.microsoft.com port 443")
    assert probe[1] == f"000 {ENDPOINTS[0]}"
    assert "*  issuer: C=US; O=Contoso; CN=Contoso TLS Inspection CA" in parts["tls"]


def test_the_snapshot_command_captures_cpu_memory_filesystems_and_processes(real_sshd: RealSSHD) -> None:
    parts = run_step(real_sshd, SnapshotStep(), StepContext(host_label="h", cpu_sample_seconds=1))

    assert parts["stat0"].startswith("cpu ") and parts["stat1"].startswith("cpu ")
    assert len(parts["loadavg"].split()) == 5
    assert parts["meminfo"].startswith("MemTotal:")
    assert parts["df"].splitlines()[0].split()[:2] == ["Filesystem", "Type"]
    assert "Inodes" in parts["dfi"].splitlines()[0]
    assert 1 <= len(parts["ps-cpu"].splitlines()) <= 25
    assert 1 <= len(parts["ps-rss"].splitlines()) <= 25
    assert parts["agent"] == ""


def test_added_stubs_answer_like_the_agent_would(real_sshd: RealSSHD, sshd_changes: SSHDChanges) -> None:
    sshd_changes.stub("mdatp", '#!/bin/sh\n[ "$1" = version ] && echo "Product version: 101.24082.0004"\n')

    result = run_one(real_sshd.target(), "mdatp version")

    assert result.stdout == "Product version: 101.24082.0004\n"
