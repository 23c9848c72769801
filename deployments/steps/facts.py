"""Step 1 — facts: distro, version, kernel, arch, cores, memory; the support-matrix verdict."""

from __future__ import annotations

from typing import Any

from deployments.steps.base import Outcome, Step, StepContext, sections
from deployments.steps.commands import join, marker
from deployments.steps.support import (
    DISTRO_LABELS,
    MIN_KERNEL,
    RHEL_FAMILY,
    judge,
    kernel_supported,
    no_output_reason,
    split_version,
    support_verdict,
)
from hosts.choices import StepStatus
from hosts.parsers import parse_meminfo_kb, parse_os_release, parse_redhat_release
from hosts.ssh import CommandResult


def first_line(text: str) -> str:
    """The first non-blank line of a section, stripped."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def identify_distro(os_release: str, redhat_release: str) -> dict[str, str]:
    """Distribution id, version and display name from os-release, or redhat-release where it is missing."""
    fields = parse_os_release(os_release)
    legacy = parse_redhat_release(redhat_release)
    if fields.get("ID"):
        distro_id = fields["ID"].lower()
        version = fields.get("VERSION_ID", "")
        name = fields.get("PRETTY_NAME") or f"{fields.get('NAME', distro_id)} {version}".strip()
        # CentOS 7 says only VERSION_ID="7"; its redhat-release carries the minor ("7.9.2009").
        if legacy.get("id") == distro_id and legacy["version_id"].startswith(version + ".") and "." not in version:
            version = ".".join(legacy["version_id"].split(".")[:2])
        return {"distro_id": distro_id, "distro_version": version, "distro_name": name}
    if legacy:
        # RHEL/CentOS 6 and older have no /etc/os-release.
        distro_id = legacy["id"] or legacy["name"].split()[0].lower()
        version = ".".join(legacy["version_id"].split(".")[:2])
        return {"distro_id": distro_id, "distro_version": version, "distro_name": legacy["pretty_name"]}
    return {"distro_id": "", "distro_version": "", "distro_name": ""}


class FactsStep(Step):
    """Reads os-release (or redhat-release on RHEL 6), uname, nproc, meminfo, hostname."""

    key = "facts"
    number = 1
    title = "Facts and support matrix"

    def command(self, ctx: StepContext) -> str:
        return join(
            marker("os-release"),
            "cat /etc/os-release 2>/dev/null",
            marker("redhat-release"),
            "cat /etc/redhat-release 2>/dev/null",
            marker("kernel"),
            "uname -r",
            marker("arch"),
            "uname -m",
            marker("nproc"),
            "nproc --all",
            marker("meminfo"),
            "cat /proc/meminfo",
            marker("hostname"),
            "hostname",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        missing = no_output_reason(result)
        if missing:
            return Outcome.failed(missing)
        parts = sections(result.stdout)
        distro = identify_distro(parts.get("os-release", ""), parts.get("redhat-release", ""))
        kernel = first_line(parts.get("kernel", ""))
        arch = first_line(parts.get("arch", ""))
        nproc = first_line(parts.get("nproc", ""))
        cores = int(nproc) if nproc.isdigit() else None
        mem_total_kb = parse_meminfo_kb(parts.get("meminfo", "")).get("MemTotal")
        # Whole MB as `free -m` shows them: the installer's --min_req reads that figure.
        memory_mb = mem_total_kb // 1024 if mem_total_kb is not None else None
        major, _minor = split_version(distro["distro_version"])
        distro_id = distro["distro_id"]
        verdict = support_verdict(distro_id, distro["distro_version"], arch)

        data: dict[str, Any] = {
            **distro,
            "version_major": major,
            "kernel": kernel,
            "arch": arch,
            "cpu_cores": cores,
            "memory_mb": memory_mb,
            "hostname": first_line(parts.get("hostname", "")),
            "family": "rhel" if distro_id in RHEL_FAMILY else distro_id,
            "supported": verdict.supported,
            "support_reason": verdict.reason,
        }

        failures: list[str] = []
        warnings: list[str] = []
        if verdict.status == StepStatus.FAILED:
            failures.append(verdict.reason)
        elif verdict.status == StepStatus.WARN:
            warnings.append(verdict.reason)
        kernel_ok = kernel_supported(kernel)
        if kernel_ok is False:
            failures.append(f"kernel {kernel} is older than the supported minimum {MIN_KERNEL}")
        elif kernel_ok is None:
            warnings.append("could not read the kernel release (uname -r)")
        readings = (("CPU cores (nproc)", cores), ("memory (/proc/meminfo)", memory_mb))
        unread = [label for label, value in readings if value is None]
        if unread:
            warnings.append("could not read " + " and ".join(unread))

        name = distro["distro_name"] or DISTRO_LABELS.get(distro_id, distro_id)
        summary = f"{name} on {arch}, kernel {kernel}, {cores} cores, {memory_mb or 0:,} MB memory: supported"
        return judge(failures, warnings, summary, **data)
