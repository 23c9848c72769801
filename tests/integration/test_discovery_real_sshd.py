"""Discovery against a real OpenSSH server whose commands answer as a RHEL 9 host.

This proves the step command strings on real sshd and bash (pipes, redirections, globs,
quoting, `timeout` and the section markers), not only on the simulator's shell.
"""

from __future__ import annotations

from typing import Any

import pytest

from hosts.choices import Eligibility
from hosts.discovery import discovery_execute
from hosts.models import Host, HostCheck, Snapshot
from hosts.services import credential_create, discovery_start
from mdefleet.audit import SYSTEM
from tests.integration.sshd import RealSSHD

pytestmark = pytest.mark.integration


def test_discovery_on_a_real_sshd_reads_a_rhel_host(transactional_db: Any, real_sshd: RealSSHD, settings: Any) -> None:
    settings.MDEFLEET_CPU_SAMPLE_SECONDS = 1
    credential = credential_create(actor=SYSTEM, name="real-sshd", kind="private_key", secret=real_sshd.client_key)
    host = Host.objects.create(
        name="rhel9-real",
        address=real_sshd.host,
        port=real_sshd.port,
        ssh_user=real_sshd.username,
        credential=credential,
        host_key=real_sshd.host_key,
        use_sudo=False,
    )
    discovery = discovery_start(actor=SYSTEM, hosts=[host])
    assert discovery_execute(discovery_id=discovery.pk, worker="test") == 1

    host.refresh_from_db()
    checks = {c.step: c for c in HostCheck.objects.filter(host=host)}
    assert list(checks) == ["facts", "requirements", "conflicts", "network", "snapshot_pre"], checks
    assert host.distro_id == "rhel" and host.distro_version.startswith("9")
    assert host.kernel == real_sshd.kernel
    assert host.eligibility == Eligibility.ELIGIBLE, host.eligibility_reasons
    assert checks["requirements"].parsed["fanotify_enabled"] is True
    assert checks["network"].parsed["tls_inspected"] is False
    snapshot = Snapshot.objects.get(host=host)
    assert snapshot.cpu_busy_pct is not None
    assert snapshot.filesystems and snapshot.top_processes
    # The exact command strings reached bash through sshd.
    sent = real_sshd.commands()
    assert any("@@os-release" in c and "cat /etc/os-release" in c for c in sent)
    assert any("fanotify mnt_id" in c and "/proc/[0-9]*/fdinfo/*" in c for c in sent)
