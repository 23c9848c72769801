"""Which hosts Defender for Endpoint supports: the distribution table of PREREQ (MDE-FACTS §5) and the kernel floor.

Also what every discovery step judges the same way: a result with no output, and how findings become one verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from deployments.steps.base import Outcome
from hosts.choices import StepStatus
from hosts.ssh import CommandResult

# IDs of /etc/os-release this tool deploys to (the installer's "fedora" family, yum/dnf based).
RHEL_FAMILY = frozenset({"rhel", "centos", "ol", "almalinux", "rocky", "fedora", "amzn"})
ARCHES = frozenset({"x86_64", "aarch64"})
X64 = frozenset({"x86_64"})
BOTH = ARCHES
# PREREQ: "Kernel-agnostic, minimum kernel 3.10.0-327" (RHEL 7.2's kernel).
MIN_KERNEL = "3.10.0-327"

DISTRO_LABELS = {
    "rhel": "RHEL",
    "centos": "CentOS",
    "ol": "Oracle Linux",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "fedora": "Fedora",
    "amzn": "Amazon Linux",
}

TALPA_REASON = (
    "{label} {version}: current Defender for Endpoint builds no longer ship for RHEL 6 — it relied on the "
    "TALPA kernel driver (the seed checklist still lists 6.8-6.10), and the current prerequisites start at 7.2"
)


@dataclass(frozen=True)
class Rule:
    """One row of the support table: a distribution's major versions, the lowest minor, the architectures."""

    distro_id: str
    majors: range
    arches: frozenset[str]
    min_minor: int = 0
    refusal: str = ""  # a row that documents why a version is refused, with its own reason


# PREREQ (ms.date 03/08/2026). CentOS 9/10 can only be CentOS Stream (same ID), which PREREQ lists for x64 and ARM64.
SUPPORT_TABLE: tuple[Rule, ...] = (
    Rule("rhel", range(6, 7), X64, refusal=TALPA_REASON),
    Rule("centos", range(6, 7), X64, refusal=TALPA_REASON),
    Rule("rhel", range(7, 8), X64, min_minor=2),
    Rule("rhel", range(8, 11), BOTH),
    Rule("centos", range(7, 8), X64, min_minor=2),
    Rule("centos", range(8, 11), BOTH),
    Rule("ol", range(7, 8), X64, min_minor=2),
    Rule("ol", range(8, 10), BOTH),
    Rule("rocky", range(8, 9), X64, min_minor=7),
    Rule("rocky", range(9, 10), X64, min_minor=2),
    Rule("almalinux", range(8, 9), X64, min_minor=4),
    Rule("almalinux", range(9, 10), X64, min_minor=2),
    Rule("amzn", range(2, 3), BOTH),
    Rule("amzn", range(2023, 2024), BOTH),
    Rule("fedora", range(33, 43), X64),
)


@dataclass(frozen=True)
class Verdict:
    """A support verdict: a StepStatus value and the reason a person reads."""

    status: str
    reason: str

    @property
    def supported(self) -> bool:
        return self.status != StepStatus.FAILED


def split_version(version: str) -> tuple[int | None, int | None]:
    """Major and minor of a version: "9.4" → (9, 4); "7" → (7, None); "" → (None, None)."""
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?", version or "")
    if not match:
        return None, None
    return int(match.group(1)), int(match.group(2)) if match.group(2) is not None else None


def _describe(rules: list[Rule]) -> str:
    """Human list of a distribution's supported versions: "7.2+, 8, 9, 10"."""
    parts: list[str] = []
    for rule in rules:
        if rule.refusal:
            continue
        for major in rule.majors:
            parts.append(f"{major}.{rule.min_minor}+" if rule.min_minor else str(major))
    return ", ".join(parts)


def support_verdict(distro_id: str, version: str, arch: str) -> Verdict:
    """Judge a distribution, version and architecture against the support table."""
    distro_id = (distro_id or "").strip().lower()
    if not distro_id:
        return Verdict(StepStatus.FAILED, "could not identify the distribution (no /etc/os-release or redhat-release)")
    label = DISTRO_LABELS.get(distro_id, distro_id)
    shown = f"{label} {version}".strip()
    if distro_id not in RHEL_FAMILY:
        return Verdict(StepStatus.FAILED, f"{shown} is not a RHEL-family distribution this tool deploys to")
    major, minor = split_version(version)
    if major is None:
        return Verdict(StepStatus.FAILED, f"could not read the {label} version (VERSION_ID {version!r})")
    rules = [rule for rule in SUPPORT_TABLE if rule.distro_id == distro_id]
    rule = next((r for r in rules if major in r.majors), None)
    if rule is None:
        return Verdict(
            StepStatus.FAILED,
            f"{shown} is not supported by Defender for Endpoint (supported {label}: {_describe(rules)})",
        )
    if rule.refusal:
        return Verdict(StepStatus.FAILED, rule.refusal.format(label=label, version=version))
    if arch not in ARCHES:
        return Verdict(StepStatus.FAILED, f"architecture {arch or 'unknown'} is not supported (x86_64 or aarch64)")
    if arch not in rule.arches:
        return Verdict(StepStatus.FAILED, f"{shown} is supported on {', '.join(sorted(rule.arches))} only, not {arch}")
    if rule.min_minor:
        if minor is None:
            return Verdict(
                StepStatus.WARN,
                f"{shown}: the minor version is unknown; {major}.{rule.min_minor} or later is required",
            )
        if minor < rule.min_minor:
            return Verdict(
                StepStatus.FAILED, f"{shown} is below the supported {major}.{rule.min_minor} (update the host first)"
            )
    return Verdict(StepStatus.OK, f"{shown} on {arch} is supported")


def kernel_key(release: str) -> tuple[int, ...] | None:
    """Comparable key of a kernel release: "3.10.0-1160.el7.x86_64" → (3, 10, 0, 1160)."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-(\d+))?", release.strip())
    if not match:
        return None
    return tuple(int(g) if g is not None else 0 for g in match.groups())


def kernel_supported(release: str, minimum: str = MIN_KERNEL) -> bool | None:
    """True when the kernel is at least ``minimum``; None when the release cannot be read."""
    have, need = kernel_key(release), kernel_key(minimum)
    if have is None or need is None:
        return None
    return have >= need


def no_output_reason(result: CommandResult) -> str | None:
    """Why a result cannot be judged (nothing on stdout), or None when there is output to read."""
    if result.stdout.strip():
        return None
    detail = next((line.strip() for line in result.stderr.splitlines() if line.strip()), "")
    if result.timed_out:
        why = "the command timed out before printing anything"
    else:
        why = f"the command printed nothing (exit status {result.exit_status})"
    return f"{why}: {detail}" if detail else why


# StepRecord.reason is a 500-character column.
REASON_MAX = 500


def judge(failures: list[str], warnings: list[str], ok_reason: str, **data: Any) -> Outcome:
    """One outcome from a step's findings: failed if anything failed, else warn if anything warned, else ok."""
    if failures:
        reason = "; ".join(failures + [f"warning: {w}" for w in warnings])
        return Outcome.failed(_trim(reason), **data)
    if warnings:
        return Outcome.warn(_trim("; ".join(warnings)), **data)
    return Outcome.ok(_trim(ok_reason), **data)


def _trim(reason: str) -> str:
    """Keep a reason within the column, marking the cut."""
    return reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"
