"""Discovery steps 1-5 judge real output: each verdict path, from captures in tests/samples/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployments.steps.base import Outcome, StepContext
from deployments.steps.catalogue import DISCOVERY_STEPS, rollout_steps, step_by_key
from deployments.steps.conflicts import EXCLUSIONS_FOR_OTHER_AV, MDATP_PATHS, MDATP_PROCESS_PATHS, ConflictsStep
from deployments.steps.facts import FactsStep
from deployments.steps.network import ENDPOINTS, NetworkStep
from deployments.steps.requirements import RequirementsStep
from deployments.steps.snapshot import PostSnapshotStep, SnapshotStep
from deployments.steps.support import support_verdict
from hosts.choices import StepStatus
from hosts.models import Snapshot
from hosts.ssh import CommandResult

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RHEL9_KERNEL = "5.14.0-427.13.1.el9_4.x86_64"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def output(parts: dict[str, str]) -> str:
    """What the compound command prints: each section behind its ``@@name`` marker."""
    return "".join(f"@@{name}\n{text.rstrip()}\n" if text else f"@@{name}\n" for name, text in parts.items())


def result(stdout: str, exit_status: int = 0, stderr: str = "", timed_out: bool = False) -> CommandResult:
    return CommandResult("cmd", exit_status, stdout, stderr, 10, timed_out=timed_out)


def ctx(**kwargs: Any) -> StepContext:
    return StepContext(host_label="web01", **kwargs)


# --- step 1: facts ----------------------------------------------------------------------------------


def facts_output(
    os_release: str = "",
    redhat_release: str = "",
    kernel: str = RHEL9_KERNEL,
    arch: str = "x86_64",
    nproc: str = "4",
    meminfo: str = "meminfo/rhel9",
) -> str:
    return output(
        {
            "os-release": sample(f"os-release/{os_release}") if os_release else "",
            "redhat-release": sample(f"redhat-release/{redhat_release}") if redhat_release else "",
            "kernel": kernel,
            "arch": arch,
            "nproc": nproc,
            "meminfo": sample(meminfo) if meminfo else "",
            "hostname": "web01.corp.example",
        }
    )


def facts(**kwargs: Any) -> Outcome:
    return FactsStep().evaluate(ctx(), result(facts_output(**kwargs)))


def test_it_reads_every_fact_of_a_rhel_9_host() -> None:
    outcome = facts(os_release="rhel-9.4", redhat_release="rhel-9.4")

    assert outcome.status == StepStatus.OK
    assert outcome.data == {
        "distro_id": "rhel",
        "distro_version": "9.4",
        "distro_name": "Red Hat Enterprise Linux 9.4 (Plow)",
        "version_major": 9,
        "kernel": RHEL9_KERNEL,
        "arch": "x86_64",
        "cpu_cores": 4,
        "memory_mb": 7685,
        "hostname": "web01.corp.example",
        "family": "rhel",
        "supported": True,
        "support_reason": "RHEL 9.4 on x86_64 is supported",
    }
    assert "7,685 MB" in outcome.reason and "supported" in outcome.reason


@pytest.mark.parametrize(
    ("os_release", "redhat_release", "kernel", "arch", "distro_id", "version"),
    [
        ("rhel-9.4", "rhel-9.4", RHEL9_KERNEL, "x86_64", "rhel", "9.4"),
        ("rhel-9.4", "rhel-9.4", "5.14.0-427.13.1.el9_4.aarch64", "aarch64", "rhel", "9.4"),
        ("rhel-8.10", "rhel-8.10", "4.18.0-553.el8_10.x86_64", "x86_64", "rhel", "8.10"),
        ("rhel-7.9", "rhel-7.9", "3.10.0-1160.119.1.el7.x86_64", "x86_64", "rhel", "7.9"),
        ("centos-7.9", "centos-7.9", "3.10.0-1160.el7.x86_64", "x86_64", "centos", "7.9"),
        ("centos-stream-9", "", "5.14.0-503.el9.x86_64", "x86_64", "centos", "9"),
        ("ol-8.10", "ol-8.10", "5.15.0-209.161.7.2.el8uek.x86_64", "x86_64", "ol", "8.10"),
        ("rocky-9.4", "rocky-9.4", "5.14.0-427.13.1.el9_4.x86_64", "x86_64", "rocky", "9.4"),
        ("alma-9.4", "alma-9.4", "5.14.0-427.13.1.el9_4.x86_64", "x86_64", "almalinux", "9.4"),
        ("amzn-2", "", "5.10.225-213.878.amzn2.x86_64", "x86_64", "amzn", "2"),
        ("amzn-2023", "", "6.1.102-111.182.amzn2023.aarch64", "aarch64", "amzn", "2023"),
        ("fedora-40", "", "6.8.5-301.fc40.x86_64", "x86_64", "fedora", "40"),
    ],
)
def test_it_passes_each_supported_distribution(
    os_release: str, redhat_release: str, kernel: str, arch: str, distro_id: str, version: str
) -> None:
    outcome = facts(os_release=os_release, redhat_release=redhat_release, kernel=kernel, arch=arch)

    assert outcome.status == StepStatus.OK, outcome.reason
    assert (outcome.data["distro_id"], outcome.data["distro_version"]) == (distro_id, version)
    assert outcome.data["family"] == "rhel"
    assert outcome.data["supported"] is True


def test_it_takes_centos_7s_minor_version_from_redhat_release() -> None:
    outcome = facts(os_release="centos-7.9", redhat_release="centos-7.9", kernel="3.10.0-1160.el7.x86_64")

    assert outcome.data["distro_version"] == "7.9"
    assert outcome.data["distro_name"] == "CentOS Linux 7 (Core)"


def test_it_trusts_os_release_over_oracle_linuxs_rhel_worded_redhat_release() -> None:
    outcome = facts(os_release="ol-8.10", redhat_release="ol-8.10", kernel="4.18.0-553.el8_10.x86_64")

    assert outcome.data["distro_id"] == "ol"
    assert outcome.data["distro_name"] == "Oracle Linux Server 8.10"


def test_it_fails_rhel_6_with_the_talpa_reason() -> None:
    outcome = facts(redhat_release="rhel-6.10", kernel="2.6.32-754.35.1.el6.x86_64", meminfo="meminfo/rhel6")

    assert outcome.status == StepStatus.FAILED
    assert "TALPA" in outcome.reason
    assert "no longer ship for RHEL 6" in outcome.reason
    assert "7.2" in outcome.reason
    assert outcome.data["distro_id"] == "rhel"
    assert outcome.data["distro_version"] == "6.10"
    assert outcome.data["distro_name"] == "Red Hat Enterprise Linux Server release 6.10 (Santiago)"
    assert outcome.data["version_major"] == 6
    assert outcome.data["memory_mb"] == 1877
    assert outcome.data["supported"] is False


def test_it_fails_centos_6_with_the_talpa_reason() -> None:
    outcome = facts(redhat_release="centos-6.10", kernel="2.6.32-754.el6.x86_64")

    assert outcome.status == StepStatus.FAILED
    assert "TALPA" in outcome.reason
    assert outcome.data["distro_id"] == "centos"


def test_it_fails_debian_as_outside_this_tools_scope() -> None:
    outcome = facts(os_release="debian-12", kernel="6.1.0-25-amd64")

    assert outcome.status == StepStatus.FAILED
    assert "not a RHEL-family distribution this tool deploys to" in outcome.reason
    assert outcome.data["family"] == "debian"
    assert outcome.data["distro_name"] == "Debian GNU/Linux 12 (bookworm)"


def test_it_fails_rhel_5() -> None:
    outcome = facts(redhat_release="rhel-5.11", kernel="2.6.18-419.el5")

    assert outcome.status == StepStatus.FAILED
    assert "RHEL 5.11 is not supported" in outcome.reason
    assert "kernel 2.6.18-419.el5 is older than the supported minimum 3.10.0-327" in outcome.reason


def test_it_fails_a_host_whose_distribution_cannot_be_identified() -> None:
    outcome = facts()

    assert outcome.status == StepStatus.FAILED
    assert "could not identify the distribution" in outcome.reason
    assert outcome.data["distro_id"] == ""


def test_it_fails_rhel_7_before_7_2() -> None:
    outcome = facts(os_release="rhel-7.1", kernel="3.10.0-229.el7.x86_64")

    assert outcome.status == StepStatus.FAILED
    assert "RHEL 7.1 is below the supported 7.2" in outcome.reason
    assert "kernel 3.10.0-229.el7.x86_64 is older than the supported minimum 3.10.0-327" in outcome.reason


def test_it_fails_rocky_8_before_8_7() -> None:
    outcome = facts(os_release="rocky-8.6", kernel="4.18.0-372.9.1.el8.x86_64")

    assert outcome.status == StepStatus.FAILED
    assert "below the supported 8.7" in outcome.reason


def test_it_fails_a_kernel_below_the_minimum_on_a_supported_release() -> None:
    outcome = facts(os_release="rhel-7.9", kernel="3.10.0-229.el7.x86_64")

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == "kernel 3.10.0-229.el7.x86_64 is older than the supported minimum 3.10.0-327"


def test_it_fails_arm64_on_rhel_7() -> None:
    outcome = facts(os_release="rhel-7.9", kernel="4.14.0-115.el7a.aarch64", arch="aarch64")

    assert outcome.status == StepStatus.FAILED
    assert "supported on x86_64 only, not aarch64" in outcome.reason


def test_it_fails_an_architecture_defender_does_not_build_for() -> None:
    outcome = facts(os_release="rhel-9.4", kernel="5.14.0-427.13.1.el9_4.ppc64le", arch="ppc64le")

    assert outcome.status == StepStatus.FAILED
    assert "architecture ppc64le is not supported" in outcome.reason


def test_it_warns_when_centos_7s_minor_version_is_unknown() -> None:
    outcome = facts(os_release="centos-7.9", kernel="3.10.0-1160.el7.x86_64")

    assert outcome.status == StepStatus.WARN
    assert "7.2 or later is required" in outcome.reason


def test_it_warns_about_facts_it_could_not_read_and_invents_none() -> None:
    outcome = facts(os_release="rhel-9.4", nproc="", meminfo="")

    assert outcome.status == StepStatus.WARN
    assert "CPU cores (nproc)" in outcome.reason and "memory (/proc/meminfo)" in outcome.reason
    assert outcome.data["cpu_cores"] is None
    assert outcome.data["memory_mb"] is None


def test_it_fails_when_the_facts_command_printed_nothing() -> None:
    outcome = FactsStep().evaluate(ctx(), result("", exit_status=127, stderr="sh: cat: command not found\n"))

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == "the command printed nothing (exit status 127): sh: cat: command not found"


def test_it_judges_the_sections_not_the_exit_status() -> None:
    stdout = facts_output(os_release="rhel-9.4")

    assert FactsStep().evaluate(ctx(), result(stdout, exit_status=1)).status == StepStatus.OK


@pytest.mark.parametrize(
    ("distro_id", "version", "arch", "status"),
    [
        ("rhel", "10.0", "x86_64", StepStatus.OK),
        ("rhel", "10.0", "aarch64", StepStatus.OK),
        ("rhel", "11.0", "x86_64", StepStatus.FAILED),
        ("centos", "8.5", "x86_64", StepStatus.OK),
        ("ol", "7.2", "x86_64", StepStatus.OK),
        ("ol", "9.4", "aarch64", StepStatus.OK),
        ("ol", "10.0", "x86_64", StepStatus.FAILED),
        ("rocky", "8.7", "x86_64", StepStatus.OK),
        ("rocky", "9.1", "x86_64", StepStatus.FAILED),
        ("rocky", "9.4", "aarch64", StepStatus.FAILED),
        ("almalinux", "8.4", "x86_64", StepStatus.OK),
        ("almalinux", "8.3", "x86_64", StepStatus.FAILED),
        ("almalinux", "10.0", "x86_64", StepStatus.FAILED),
        ("amzn", "2", "aarch64", StepStatus.OK),
        ("amzn", "2018.03", "x86_64", StepStatus.FAILED),
        ("fedora", "33", "x86_64", StepStatus.OK),
        ("fedora", "42", "x86_64", StepStatus.OK),
        ("fedora", "32", "x86_64", StepStatus.FAILED),
        ("fedora", "43", "x86_64", StepStatus.FAILED),
        ("ubuntu", "22.04", "x86_64", StepStatus.FAILED),
        ("sles", "15.5", "x86_64", StepStatus.FAILED),
        ("", "", "x86_64", StepStatus.FAILED),
        ("rhel", "", "x86_64", StepStatus.FAILED),
    ],
)
def test_the_support_table_follows_the_prerequisites(distro_id: str, version: str, arch: str, status: str) -> None:
    assert support_verdict(distro_id, version, arch).status == status


# --- step 2: requirements ----------------------------------------------------------------------------

RHEL9_FACTS = {
    "distro_id": "rhel",
    "version_major": 9,
    "kernel": RHEL9_KERNEL,
    "memory_mb": 7685,
    "cpu_cores": 4,
    "family": "rhel",
}


def requirements(
    df: str = "df/requirements-ok",
    kconfig: str = "kconfig/grep-enabled",
    selinux: str = "Enforcing",
    init: str = "systemd",
    **facts_overrides: Any,
) -> Outcome:
    stdout = output({"df": sample(df), "kconfig": sample(kconfig) if kconfig else "", "selinux": selinux, "init": init})
    context = ctx(results={"facts": {**RHEL9_FACTS, **facts_overrides}})
    return RequirementsStep().evaluate(context, result(stdout))


def test_it_passes_a_host_that_meets_every_requirement() -> None:
    outcome = requirements()

    assert outcome.status == StepStatus.OK
    assert outcome.reason == (
        "26,764 MB free on /opt (on /); 4,096 MB free on /var; 7,685 MB memory; 4 cores; fanotify enabled"
    )
    assert outcome.data["disks"][1] == {
        "path": "/var",
        "mount": "/var",
        "device": "/dev/mapper/rhel-var",
        "size_mb": 10230,
        "free_mb": 4096,
        "use_pct": 60,
    }
    assert outcome.data["fanotify"] == {"CONFIG_FANOTIFY": "y", "CONFIG_FANOTIFY_ACCESS_PERMISSIONS": "y"}
    assert outcome.data["fanotify_enabled"] is True
    assert outcome.data["selinux"] == "enforcing"
    assert outcome.data["init"] == "systemd"


def test_it_fails_when_var_is_nearly_full() -> None:
    outcome = requirements(df="df/requirements-var-nearly-full")

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == "1,500 MB free on /var, 2,048 MB needed"


def test_it_fails_when_opt_is_full() -> None:
    outcome = requirements(df="df/requirements-opt-full")

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason.startswith("0 MB free on /opt, 2,048 MB needed")
    assert outcome.data["disks"][2]["mount"] == "/tmp"


def test_it_measures_opt_on_the_filesystem_that_will_hold_it_when_opt_does_not_exist() -> None:
    outcome = requirements(df="df/requirements-no-opt")

    assert outcome.status == StepStatus.OK
    assert outcome.data["disks"][0]["mount"] == "/"


def test_it_fails_below_the_minimum_memory() -> None:
    outcome = requirements(memory_mb=972)

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == "972 MB of memory, at least 1,024 MB needed"


def test_it_warns_below_the_preferred_memory() -> None:
    outcome = requirements(memory_mb=2048)

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == "2,048 MB of memory: enough to install, 4 GB preferred"


def test_it_warns_about_a_single_core() -> None:
    outcome = requirements(cpu_cores=1)

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == "1 CPU core: two are advised, four recommended"


def test_it_fails_without_a_core() -> None:
    outcome = requirements(cpu_cores=0)

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == "0 CPU cores, at least 1 needed"


def test_it_fails_when_fanotify_is_off_in_the_kernel() -> None:
    outcome = requirements(kconfig="kconfig/grep-fanotify-off")

    assert outcome.status == StepStatus.FAILED
    assert "fanotify is not enabled in kernel 5.14.0-427.13.1.el9_4.x86_64" in outcome.reason
    assert "CONFIG_FANOTIFY, CONFIG_FANOTIFY_ACCESS_PERMISSIONS not =y" in outcome.reason
    assert outcome.data["fanotify_enabled"] is False


def test_it_fails_when_fanotify_permission_events_are_off() -> None:
    outcome = requirements(kconfig="kconfig/grep-no-permissions")

    assert outcome.status == StepStatus.FAILED
    assert "(CONFIG_FANOTIFY_ACCESS_PERMISSIONS not =y)" in outcome.reason
    assert outcome.data["fanotify"]["CONFIG_FANOTIFY_ACCESS_PERMISSIONS"] == "n"


def test_it_warns_when_the_kernel_config_is_missing() -> None:
    outcome = requirements(kconfig="")

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == f"cannot verify fanotify: /boot/config-{RHEL9_KERNEL} is missing or unreadable"
    assert outcome.data["fanotify_enabled"] is None


def test_it_does_not_ask_rhel_6_for_fanotify() -> None:
    outcome = requirements(kconfig="", init="init", distro_id="rhel", version_major=6, kernel="2.6.32-754.el6.x86_64")

    assert outcome.data["fanotify_required"] is False
    assert "fanotify" not in outcome.reason


def test_it_warns_when_pid_1_is_not_systemd() -> None:
    outcome = requirements(init="init")

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == "PID 1 is init, not systemd: the mdatp service expects systemd"


def test_it_reports_selinux_as_data_only() -> None:
    assert requirements(selinux="Permissive").data["selinux"] == "permissive"
    assert requirements(selinux="").data["selinux"] is None
    assert requirements(selinux="").status == StepStatus.OK


def test_it_warns_when_facts_did_not_report_memory_or_cores() -> None:
    outcome = requirements(memory_mb=None, cpu_cores=None)

    assert outcome.status == StepStatus.WARN
    assert "memory unknown" in outcome.reason and "CPU cores unknown" in outcome.reason


def test_the_requirements_command_can_tell_an_unset_option_from_a_missing_file() -> None:
    command = RequirementsStep().command(ctx(results={"facts": {"kernel": "x; rm -rf /"}}))

    assert "grep -E '^(# )?CONFIG_FANOTIFY(_ACCESS_PERMISSIONS)?[= ]' '/boot/config-x; rm -rf /'" in command


# --- step 3: conflicts -------------------------------------------------------------------------------


def conflicts(fanotify: str, services: str, ps: str) -> Outcome:
    stdout = output(
        {
            "fanotify": sample(f"fanotify/{fanotify}") if fanotify else "",
            "services": sample(f"systemctl/{services}"),
            "ps": sample(f"ps-args/{ps}"),
        }
    )
    return ConflictsStep().evaluate(ctx(), result(stdout, exit_status=0))


def test_it_ignores_our_own_wdavdaemon_holding_fanotify() -> None:
    outcome = conflicts("mdatp-only", "none-active", "rhel9-mdatp-fapolicyd")

    assert outcome.status == StepStatus.OK
    assert outcome.reason == "no conflicting antivirus found"
    assert outcome.data["conflicting"] == []
    assert outcome.data["agent_holds_fanotify"] is True
    # The step's own shell mentions ds_agent in its arguments: it is not an antivirus.
    assert outcome.data["other_av"] == []
    assert outcome.data["exclusions_for_other_av"] == {}


def test_it_warns_that_fapolicyd_is_supported_while_mdatp_health_stays_healthy() -> None:
    outcome = conflicts("mdatp-and-fapolicyd", "none-active", "rhel9-mdatp-fapolicyd")

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == (
        "fapolicyd uses fanotify (pid 812): supported beside Defender as long as `mdatp health` stays healthy"
    )
    assert outcome.data["tolerated"] == [{"pid": 812, "args": "/usr/sbin/fapolicyd", "name": "fapolicyd"}]
    assert outcome.data["conflicting"] == []


def test_it_fails_an_antivirus_holding_fanotify() -> None:
    outcome = conflicts("eset", "none-active", "rhel8-eset")

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == (
        "conflicting fanotify application: /opt/eset/efs/sbin/oaeventd — uninstall it or use passive mode"
    )
    assert outcome.data["conflicting"] == [
        {"kind": "fanotify", "pid": 1502, "args": "/opt/eset/efs/sbin/oaeventd", "product": "ESET"}
    ]
    assert outcome.data["agent_holds_fanotify"] is False


def test_it_fails_an_active_deep_security_agent() -> None:
    outcome = conflicts("", "ds-agent-active", "rhel7-ds-agent")

    assert outcome.status == StepStatus.FAILED
    assert "conflicting service ds_agent (Trend Micro Deep Security) is active" in outcome.reason
    assert outcome.data["conflicting"] == [
        {"kind": "service", "service": "ds_agent", "state": "active", "product": "Trend Micro Deep Security"}
    ]
    # Its processes are the same product: not listed again as another antivirus.
    assert outcome.data["other_av"] == []


def test_it_does_not_count_units_systemd_does_not_know() -> None:
    outcome = conflicts("", "rhel7-unknown-units", "rhel9-mdatp-fapolicyd")

    assert outcome.status == StepStatus.OK
    assert outcome.data["services"] == {"ds_agent": "unknown", "cbsensor": "unknown", "MFEcma": "unknown"}


def test_it_warns_about_other_antivirus_with_the_exclusions_it_needs() -> None:
    outcome = conflicts("", "none-active", "rhel8-falcon")

    assert outcome.status == StepStatus.WARN
    assert [(a["product"], a["name"]) for a in outcome.data["other_av"]] == [
        ("CrowdStrike Falcon", "falcond"),
        ("CrowdStrike Falcon", "falcon-sensor"),
        ("ClamAV", "clamd"),
    ]
    assert outcome.reason.startswith("CrowdStrike Falcon is running (falcond pid 1377, falcon-sensor pid 1380): add")
    assert "wdavdaemon, crashpad_handler, mdatp_audisp_plugin, telemetryd_v2 in /opt/microsoft/mdatp/sbin/" in (
        outcome.reason
    )
    assert "/var/opt/microsoft/mdatp/" in outcome.reason
    assert outcome.data["exclusions_for_other_av"] == EXCLUSIONS_FOR_OTHER_AV
    assert EXCLUSIONS_FOR_OTHER_AV == {"processes": MDATP_PROCESS_PATHS, "paths": MDATP_PATHS}
    assert MDATP_PROCESS_PATHS == [
        "/opt/microsoft/mdatp/sbin/wdavdaemon",
        "/opt/microsoft/mdatp/sbin/crashpad_handler",
        "/opt/microsoft/mdatp/sbin/mdatp_audisp_plugin",
        "/opt/microsoft/mdatp/sbin/telemetryd_v2",
    ]


def test_it_warns_when_a_fanotify_holder_exited_before_it_was_named() -> None:
    outcome = conflicts("exited", "none-active", "rhel9-mdatp-fapolicyd")

    assert outcome.status == StepStatus.WARN
    assert "pid 77001 held fanotify but exited" in outcome.reason


def test_it_fails_when_the_conflicts_command_printed_nothing() -> None:
    outcome = ConflictsStep().evaluate(ctx(), result("   \n", exit_status=255))

    assert outcome.status == StepStatus.FAILED
    assert "printed nothing (exit status 255)" in outcome.reason


# --- step 4: network ---------------------------------------------------------------------------------


def network(reach: str, tls: str, proxy: str = "", timed_out: bool = False) -> Outcome:
    # The reach captures hold each endpoint's curl output behind its own @@probe-N marker.
    stdout = sample(f"curl/{reach}") + output({"tls": sample(f"curl/{tls}") if tls else ""})
    return NetworkStep().evaluate(ctx(proxy=proxy), result(stdout, timed_out=timed_out))


def test_it_passes_when_every_endpoint_answers_with_a_microsoft_certificate() -> None:
    outcome = network("reach-all-ok", "tls-openssl-microsoft")

    assert outcome.status == StepStatus.OK
    assert outcome.reason == (
        "5 Defender endpoints reachable; winatp-gw-cus.microsoft.com certificate issued by "
        "Microsoft Azure RSA TLS Issuing CA 04 / Microsoft Corporation"
    )
    assert outcome.data["endpoints"][0] == {
        "url": ENDPOINTS[0],
        "ok": True,
        "http_code": "200",
        "curl_code": None,
        "error": None,
    }
    assert outcome.data["tls_issuer"] == "C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA 04"
    assert outcome.data["tls_inspected"] is False
    assert outcome.data["proxy"] is None


@pytest.mark.parametrize("tls", ["tls-nss-microsoft", "tls-openssl-digicert"])
def test_it_accepts_rhel_7_nss_output_and_digicert_issuers(tls: str) -> None:
    outcome = network("reach-all-ok", tls)

    assert outcome.status == StepStatus.OK
    assert outcome.data["tls_inspected"] is False


@pytest.mark.parametrize("reach", ["reach-blocked", "reach-blocked-rhel8"])
def test_it_fails_and_names_the_unreachable_endpoints(reach: str) -> None:
    outcome = network(reach, "tls-openssl-microsoft")

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == (
        "unreachable: https://x.cp.wd.microsoft.com/api/report (curl 28: Connection timed out after 10001 "
        "milliseconds), https://winatp-gw-cus.microsoft.com/test (curl 6: Could not resolve host: "
        "winatp-gw-cus.microsoft.com)"
    )
    assert [e["ok"] for e in outcome.data["endpoints"]] == [False, True, False, True, True]


def test_it_fails_tls_inspection_seen_in_the_certificate_issuer() -> None:
    outcome = network("reach-all-ok", "tls-zscaler", proxy="http://proxy.corp.example:3128")

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == (
        "TLS inspection: the certificate for winatp-gw-cus.microsoft.com is issued by C=US; ST=California; "
        "L=San Jose; O=Zscaler Inc.; OU=Zscaler Inc.; CN=Zscaler Intermediate Root CA (zscalerthree.net) (t ); "
        "Defender uses certificate pinning — bypass inspection for Defender URLs"
    )
    assert outcome.data["tls_inspected"] is True
    assert outcome.data["proxy"] == "http://proxy.corp.example:3128"


def test_it_fails_tls_inspection_by_a_corporate_ca_on_rhel_7() -> None:
    outcome = network("reach-all-ok", "tls-nss-corporate-ca")

    assert outcome.status == StepStatus.FAILED
    assert 'issued by CN=Contoso Forward Trust CA,OU=Network Security,O="Contoso, Ltd.",C=US' in outcome.reason


def test_it_reads_curl_errors_35_and_60_as_tls_inspection() -> None:
    outcome = network("reach-tls-untrusted-nss", "tls-unreachable")

    assert outcome.status == StepStatus.FAILED
    assert "curl 60: Peer's Certificate issuer is not recognized." in outcome.reason
    assert (
        "curl error 35/60 for us-v20.events.data.microsoft.com, winatp-gw-cus.microsoft.com points to TLS inspection"
        in outcome.reason
    )
    assert outcome.data["tls_inspected"] is None


def test_it_does_not_repeat_the_curl_error_hint_when_the_issuer_already_shows_inspection() -> None:
    outcome = network("reach-tls-untrusted-openssl", "tls-zscaler")

    assert outcome.reason.startswith("TLS inspection: the certificate for winatp-gw-cus.microsoft.com")
    assert "points to TLS inspection" not in outcome.reason


def test_it_warns_when_the_certificate_could_not_be_read() -> None:
    outcome = network("reach-all-ok", "")

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == (
        "could not read the certificate of winatp-gw-cus.microsoft.com: TLS inspection not ruled out"
    )
    assert outcome.data["tls_inspected"] is None


def test_it_says_what_the_shell_printed_when_curl_is_missing() -> None:
    outcome = network("reach-no-curl", "")

    assert outcome.status == StepStatus.FAILED
    assert {e["error"] for e in outcome.data["endpoints"]} == {"sh: curl: command not found"}


def test_it_blames_the_timeout_for_endpoints_it_never_reached() -> None:
    stdout = output({"probe-0": "200 https://x.cp.wd.microsoft.com/api/report", "probe-1": ""})

    outcome = NetworkStep().evaluate(ctx(), result(stdout, exit_status=None, timed_out=True))  # type: ignore[arg-type]

    assert outcome.status == StepStatus.FAILED
    assert outcome.data["endpoints"][1]["error"] == "the command timed out first"


def test_the_network_command_quotes_the_proxy() -> None:
    command = NetworkStep().command(ctx(proxy="http://proxy:3128/;id"))

    assert command.count("-x 'http://proxy:3128/;id'") == len(ENDPOINTS) + 1


def test_the_network_command_puts_a_marker_before_each_probe() -> None:
    command = NetworkStep().command(ctx())

    markers = [f"echo @@probe-{index}; curl " for index in range(len(ENDPOINTS))]
    assert all(marker in command for marker in markers)
    assert command.index(markers[-1]) < command.index("echo @@tls")


def test_a_probe_whose_curl_printed_nothing_says_so() -> None:
    stdout = sample("curl/reach-all-ok").replace("200 https://cdn.x.cp.wd.microsoft.com/ping\n", "")

    outcome = NetworkStep().evaluate(ctx(), result(stdout + output({"tls": sample("curl/tls-openssl-microsoft")})))

    assert outcome.status == StepStatus.FAILED
    assert outcome.data["endpoints"][1] == {
        "url": ENDPOINTS[1],
        "ok": False,
        "http_code": None,
        "curl_code": None,
        "error": "no result",
    }


# --- step 5: snapshot --------------------------------------------------------------------------------

SNAPSHOT_PARTS = {
    "stat0": "proc-stat/rhel9-t0",
    "stat1": "proc-stat/rhel9-t1",
    "loadavg": "loadavg/rhel9",
    "meminfo": "meminfo/rhel9",
    "df": "df/rhel9-typed",
    "dfi": "df/rhel9-inodes",
    "ps-cpu": "ps/rhel9-by-cpu",
    "ps-rss": "ps/rhel9-by-rss",
    "agent": "ps/rhel9-agent",
}


def snapshot_output(**overrides: str | None) -> str:
    """A snapshot capture; an override of None drops the section, "" leaves it empty."""
    parts: dict[str, str] = {}
    for name, path in SNAPSHOT_PARTS.items():
        value = overrides.get(name.replace("-", "_"), path)
        if value is None:
            continue
        text = sample(value) if value else ""
        # head -n 1 /proc/stat keeps the aggregate line only.
        parts[name] = text.splitlines()[0] if name.startswith("stat") and text else text
    return output(parts)


def snapshot(step: SnapshotStep | None = None, exit_status: int = 0, **overrides: str | None) -> Outcome:
    return (step or SnapshotStep()).evaluate(ctx(), result(snapshot_output(**overrides), exit_status=exit_status))


def test_snapshot_data_uses_exactly_the_snapshot_models_field_names() -> None:
    outcome = snapshot()

    model_fields = {f.name for f in Snapshot._meta.get_fields()} - {"id", "host", "phase", "taken_at"}
    assert set(outcome.data) == model_fields


def test_it_captures_a_full_snapshot() -> None:
    outcome = snapshot()

    assert outcome.status == StepStatus.OK
    data = outcome.data
    assert data["cpu_busy_pct"] == 33.3
    assert data["samples"] == [{"interval_s": 2, "cpu_busy_pct": 33.3}]
    assert (data["load_1"], data["load_5"], data["load_15"]) == (0.42, 0.35, 0.30)
    assert data["mem_total_mb"] == 7685.2
    assert data["mem_used_mb"] == 951.1
    assert data["mem_available_mb"] == 6734.1
    assert (data["swap_total_mb"], data["swap_used_mb"]) == (4096.0, 128.0)
    assert outcome.reason == (
        "CPU 33.3% busy over 2 s, load 0.42 / 0.35 / 0.3, memory 951 of 7,685 MB used, 10 filesystems, "
        "fullest /var/lib/pgsql at 100%, 5 Defender processes"
    )


def test_it_lists_each_filesystem_once_with_its_inodes() -> None:
    filesystems = {fs["mount"]: fs for fs in snapshot().data["filesystems"]}

    assert "/srv/exports/home" not in filesystems
    assert filesystems["/mnt/backup disk"] == {
        "device": "/dev/sdb1",
        "type": "ext4",
        "mount": "/mnt/backup disk",
        "size_kb": 51290592,
        "used_kb": 20480000,
        "avail_kb": 28172332,
        "use_pct": 43,
        "inodes": 3276800,
        "inodes_used": 11822,
        "inodes_use_pct": 1,
    }
    assert filesystems["/boot/efi"]["inodes_use_pct"] is None
    assert filesystems["/var/lib/pgsql"]["use_pct"] == 100


def test_it_merges_top_processes_by_cpu_and_by_rss_once_per_pid() -> None:
    processes = snapshot().data["top_processes"]

    pids = [p["pid"] for p in processes]
    assert len(pids) == len(set(pids)) == 20
    assert pids[:3] == [4187, 4245, 2417]  # by CPU first
    assert set(processes[0]) == {
        "pid",
        "ppid",
        "user",
        "cpu_pct",
        "mem_pct",
        "rss_kb",
        "vsz_kb",
        "elapsed_s",
        "name",
        "args",
    }
    checkpointer = next(p for p in processes if p["pid"] == 2417)
    assert (checkpointer["name"], checkpointer["args"]) == ("postgres", "postgres: checkpointer")


def test_it_keeps_the_agents_processes_apart_by_their_args() -> None:
    agent = snapshot().data["agent_processes"]

    assert [p["args"].split(" --")[0] for p in agent if p["name"] == "wdavdaemon"] == [
        "/opt/microsoft/mdatp/sbin/wdavdaemon",
        "wdavdaemon edr 12 11",
        "wdavdaemon unprivileged 11 14",
    ]


def test_it_warns_about_missing_sections_and_invents_no_numbers() -> None:
    outcome = snapshot(stat1=None, loadavg="", meminfo=None, dfi="")

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == (
        "missing from the snapshot: CPU counters (/proc/stat), load average, memory (/proc/meminfo), inode use (df -i)"
    )
    assert outcome.data["cpu_busy_pct"] is None
    assert outcome.data["samples"] == []
    assert outcome.data["load_1"] is None
    assert outcome.data["mem_total_mb"] is None and outcome.data["swap_used_mb"] is None
    assert all(fs["inodes"] is None for fs in outcome.data["filesystems"])
    assert outcome.data["top_processes"]  # what was captured is kept


def test_it_warns_when_processes_and_filesystems_are_missing() -> None:
    outcome = snapshot(df="", dfi="", ps_cpu="", ps_rss="", agent=None)

    assert outcome.status == StepStatus.WARN
    assert "filesystems (df), processes (ps), agent processes" in outcome.reason
    assert outcome.data["filesystems"] == [] and outcome.data["top_processes"] == []


def test_it_warns_when_the_cpu_counters_did_not_move() -> None:
    outcome = snapshot(stat1="proc-stat/rhel9-t0")

    assert outcome.status == StepStatus.WARN
    assert "counters did not move" in outcome.reason
    assert outcome.data["cpu_busy_pct"] is None
    assert outcome.data["samples"] == [{"interval_s": 2, "cpu_busy_pct": None}]


def test_a_pre_snapshot_without_the_agent_is_normal_and_greps_exit_status_is_not_judged() -> None:
    outcome = snapshot(agent="", exit_status=1)

    assert outcome.status == StepStatus.OK
    assert outcome.data["agent_processes"] == []


def test_a_post_snapshot_without_the_agent_warns() -> None:
    outcome = snapshot(PostSnapshotStep(), agent="", exit_status=1)

    assert outcome.status == StepStatus.WARN
    assert outcome.reason == "no Defender process is running after the install"


def test_it_fails_a_snapshot_that_printed_nothing() -> None:
    outcome = SnapshotStep().evaluate(ctx(), result("", exit_status=None, timed_out=True))  # type: ignore[arg-type]

    assert outcome.status == StepStatus.FAILED
    assert outcome.reason == "the command timed out before printing anything"


# --- the catalogue -----------------------------------------------------------------------------------


def test_discovery_runs_steps_one_to_five_in_order() -> None:
    assert [(s.number, s.key) for s in DISCOVERY_STEPS] == [
        (1, "facts"),
        (2, "requirements"),
        (3, "conflicts"),
        (4, "network"),
        (5, "snapshot_pre"),
    ]


def test_a_rollout_runs_the_seventeen_steps_of_the_checklist_in_order() -> None:
    assert [s.number for s in rollout_steps()] == list(range(1, 18))


def test_steps_are_found_by_key() -> None:
    assert isinstance(step_by_key("conflicts"), ConflictsStep)
    assert isinstance(step_by_key("snapshot_post"), PostSnapshotStep)
    with pytest.raises(KeyError, match="unknown step 'nope'"):
        step_by_key("nope")
