"""A whole rollout, steps 1-17, against a real OpenSSH server playing a RHEL 9 host.

The server runs in its own mount namespace (``real_sshd_isolated``): the real bash really writes
the repo file, the signing key, the onboarding file (through the sample package's python3 script),
the managed settings, the cron job and the stub package, all on private tmpfs. Stub dnf, rpm and
mdatp answer as RHEL 9 and Defender do, and the stub agent's daemon quarantines EICAR. This proves
the deployment command strings (atomic writes with the content on stdin, the onboarding script,
the package manager calls, the EICAR check) on real sshd and bash, not only on the simulator's shell.
The server's /tmp is private too, so the daemon only ever sees the detection step's file.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

import pytest

from deployments.choices import HostRunStatus, OnboardingKind, RolloutStatus
from deployments.cron import cron_lines
from deployments.execution import rollout_execute
from deployments.managed_settings import render_managed_json
from deployments.models import HostRun, StepResult
from deployments.services.profiles import profile_create, profile_set_onboarding
from deployments.services.rollouts import rollout_advance, rollout_create, rollout_start
from deployments.steps.catalogue import rollout_steps
from deployments.steps.detection import TEST_FILE
from hosts.choices import AgentState, Eligibility
from hosts.discovery import discovery_execute
from hosts.models import Host
from hosts.services import credential_create, discovery_start
from hosts.ssh import HostSession
from hosts.targets import target_for
from mdefleet.audit import SYSTEM
from tests.integration.rollout_setup import SAMPLE_ORG, SAMPLES
from tests.integration.sshd import IsolatedSSHD

pytestmark = pytest.mark.integration

ONBOARD_JSON = "/etc/opt/microsoft/mdatp/mdatp_onboard.json"
MANAGED_JSON = "/etc/opt/microsoft/mdatp/managed/mdatp_managed.json"
CRON_FILE = "/etc/cron.d/mdatp"
REPO_FILE = "/etc/yum.repos.d/prod.repo"
KEY_FILE = "/etc/pki/rpm-gpg/microsoft.asc"
QUARANTINE = "/var/opt/microsoft/mdatp/quarantine"
AGENT_VERSION = "101.26032.0000"  # the newest build the stub repository carries


def on_host(host: Host, command: str) -> str:
    """Run one command on the host over SSH, as the product does, and return its stdout."""

    target = target_for(host)

    async def go() -> str:
        async with HostSession(target, connect_timeout=5, command_timeout=20) as session:
            result = await session.run(command)
        assert result.exit_status == 0, (command, result.stderr)
        return result.stdout

    return asyncio.run(go())


def inner_command(sent: str) -> str:
    """The step's own command inside the bounded wrapper (``timeout ... sh -c CMD``) sshd received."""
    return shlex.split(sent)[-1] if sent.startswith("timeout ") else sent


def test_a_full_rollout_installs_onboards_and_verifies_the_agent_through_real_sshd_and_bash(
    transactional_db: Any, real_sshd_isolated: IsolatedSSHD, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sshd = real_sshd_isolated
    settings.MDEFLEET_CPU_SAMPLE_SECONDS = 1
    # Celery messages would leave the process: record them; this test runs the work itself.
    enqueued: list[tuple[str, tuple[Any, ...]]] = []

    def record(task: Any, *args: Any, copies: int = 1) -> bool:
        enqueued.append((task.name, args))
        return True

    monkeypatch.setattr("hosts.services.enqueue", record)
    monkeypatch.setattr("deployments.services.rollouts.enqueue", record)

    credential = credential_create(actor=SYSTEM, name="real-sshd", kind="private_key", secret=sshd.client_key)
    host = Host.objects.create(
        name="rhel9-isolated",
        address=sshd.host,
        port=sshd.port,
        ssh_user=sshd.username,
        credential=credential,
        host_key=sshd.host_key,
        use_sudo=False,
    )
    discovery = discovery_start(actor=SYSTEM, hosts=[host])
    assert discovery_execute(discovery_id=discovery.pk, worker="test") == 1
    host.refresh_from_db()
    assert host.eligibility == Eligibility.ELIGIBLE, host.eligibility_reasons
    assert host.facts

    script = SAMPLES / "MicrosoftDefenderATPOnboardingLinuxServer.py"
    profile = profile_create(actor=SYSTEM, data={"name": "rhel9 on real sshd", "channel": "prod"})
    profile = profile_set_onboarding(actor=SYSTEM, profile=profile, filename=script.name, content=script.read_bytes())
    assert (profile.onboarding_kind, profile.org_id) == (OnboardingKind.PYTHON, SAMPLE_ORG)

    rollout = rollout_create(
        actor=SYSTEM,
        name="real sshd rollout",
        profile=profile,
        selection={"ids": [host.pk]},
        wave_plan=["1"],
        settle_seconds=0,
        # Figures that must be present yet cannot fail on a machine shared with other work; the stub
        # daemon's memory and CPU say nothing of the real agent's, so those are not gated.
        gates={
            "regression": {
                "cpu_points": 100,
                "mem_pct": 100,
                "mem_mb": None,
                "agent_rss_mb": None,
                "agent_cpu_pct": None,
                "disk_mb": None,
            }
        },
    )
    rollout_start(actor=SYSTEM, rollout=rollout)
    assert ("deployments.tasks.rollout_run_task", (rollout.pk,)) in enqueued

    assert rollout_execute(rollout_id=rollout.pk, worker="test") == 1
    assert rollout_advance(rollout_id=rollout.pk) == RolloutStatus.COMPLETED
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.COMPLETED, rollout.halt_reason

    # All 17 steps ran once, each ok or warn; any warning is shown with its reason.
    run = HostRun.objects.get(rollout=rollout)
    results = {r.step: r for r in StepResult.objects.filter(host_run=run).order_by("id")}
    assert run.status == HostRunStatus.OK, run.reason
    assert list(results) == [step.key for step in rollout_steps()]
    not_ok = {key: (r.status, r.reason) for key, r in results.items() if r.status != "ok"}
    assert all(status == "warn" for status, _ in not_ok.values()), f"steps not ok: {not_ok}"

    # The files landed where the agent reads them, with their modes (the sample script sets 0640).
    stats = on_host(host, f"stat -c '%n %a %U' {ONBOARD_JSON} {MANAGED_JSON} {CRON_FILE} {REPO_FILE} {KEY_FILE}")
    assert stats.splitlines() == [
        f"{ONBOARD_JSON} 640 root",
        f"{MANAGED_JSON} 644 root",
        f"{CRON_FILE} 644 root",
        f"{REPO_FILE} 644 root",
        f"{KEY_FILE} 644 root",
    ]
    assert on_host(host, f"cat {MANAGED_JSON}") == render_managed_json(profile)
    assert on_host(host, f"cat {CRON_FILE}") == cron_lines(profile)
    assert "baseurl=https://packages.microsoft.com/rhel/9.0/prod/" in on_host(host, f"cat {REPO_FILE}")
    assert on_host(host, "rpm -q mdatp gpg-pubkey").split() == [
        f"mdatp-{AGENT_VERSION}-1.x86_64",
        "gpg-pubkey-be1229cf-5631588c",
    ]
    # The onboarding script ran and was removed; nothing else was left in the directory.
    assert on_host(host, "ls -A /etc/opt/microsoft/mdatp").split() == ["managed", "mdatp_onboard.json"]

    # Onboarded to the sample's organization, healthy, real-time protection on.
    health = results["health"].parsed
    assert (health["licensed"], health["healthy"], health["org_id"]) == (True, True, SAMPLE_ORG)
    assert health["real_time_protection_enabled"] is True
    host.refresh_from_db()
    assert host.agent_state == AgentState.HEALTHY
    assert (host.org_id, host.agent_version, host.real_time_protection) == (SAMPLE_ORG, AGENT_VERSION, True)

    # EICAR: quarantined by the daemon within the step's 5 s, listed, and not left behind.
    detection = results["detection"].parsed
    assert detection["mode"] == "real_time"
    assert [t["path"] for t in detection["threats"]] == [TEST_FILE]
    assert detection["threats"][0]["status"] == "quarantined"
    assert on_host(host, f"test -e {TEST_FILE} || echo gone") == "gone\n"
    assert len(on_host(host, f"ls -A {QUARANTINE}").split()) == 1
    assert any("wdavdaemon" in p["args"] for p in results["snapshot_post"].parsed["agent_processes"])

    # The exact command strings reached bash through sshd (discovery's and the rollout's).
    received = [inner_command(c) for c in sshd.commands()]
    for key, result in results.items():
        if result.command:
            assert result.command in received, f"{key}: {result.command!r} never reached the host"
    onboarding = results["onboarding"].command
    assert "python3 /etc/opt/microsoft/mdatp/.mdefleet_onboarding.py" in onboarding
    assert "cat > /etc/opt/microsoft/mdatp/..mdefleet_onboarding.py.mdefleet-tmp" in onboarding
    assert "dnf config-manager --add-repo https://packages.microsoft.com/config/rhel/9.0/prod.repo" in (
        results["repository"].command
    )
    assert results["install"].command.startswith("rpm -q mdatp >/dev/null 2>&1 && echo 'already installed' || ")
    assert "dnf -y --enablerepo=packages-microsoft-com-prod install mdatp" in results["install"].command
    # Pieces of the onboarding script, the managed settings and the cron file: never on a command line.
    contents = ("onboardingInfo", SAMPLE_ORG, "ONBOARDING_JSON", "antivirusEngine", "root /usr/bin/mdatp scan")
    leaked = [(s, c[:80]) for c in sshd.commands() for s in contents if s in c]
    assert not leaked, leaked

    # None of it reached this machine.
    assert not Path(ONBOARD_JSON).exists()
    assert not Path(CRON_FILE).exists()
