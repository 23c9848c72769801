"""Package manager and Microsoft repository details per distro family, version and channel.

Follows mde_installer.sh v0.8.4 (MDE-FACTS §1.4): repo id ``packages-microsoft-com-<channel>``
(``packages-microsoft-com-prod-<channel>`` for non-prod channels on 7.x), repo file
``https://packages.microsoft.com/config/<dir>/<scaled version>/<channel>.repo``.
"""

from __future__ import annotations

from typing import Any

PMC_CONFIG = "https://packages.microsoft.com/config"
MICROSOFT_KEY = "https://packages.microsoft.com/keys/microsoft.asc"
KEY_PATH = "/etc/pki/rpm-gpg/microsoft.asc"

# os-release ID → the directory packages.microsoft.com uses for it.
REPO_DIRS = {"rhel": "rhel", "ol": "rhel", "fedora": "rhel", "centos": "centos", "almalinux": "alma", "rocky": "rocky"}


def major(facts: dict[str, Any]) -> int:
    """The distro's major version from the facts step (0 if unknown)."""
    raw = str(facts.get("version_major") or str(facts.get("distro_version", "0")).split(".")[0] or "0")
    return int(raw) if raw.isdigit() else 0


def package_manager(facts: dict[str, Any]) -> str:
    """yum on RHEL 6/7, dnf on 8 and later."""
    return "dnf" if major(facts) >= 8 else "yum"


def scaled_version(facts: dict[str, Any]) -> str:
    """The version directory of the repo file, as the installer scales it (9 → 9.0 on rhel/centos/ol)."""
    distro, version = facts.get("distro_id", ""), major(facts)
    if version == 9 and distro in ("rhel", "centos", "ol"):
        return "9.0"
    return str(version)


def repo_id(facts: dict[str, Any], channel: str) -> str:
    if major(facts) == 7 and channel != "prod":
        return f"packages-microsoft-com-prod-{channel}"
    return f"packages-microsoft-com-{channel}"


def repo_url(facts: dict[str, Any], channel: str) -> str:
    directory = REPO_DIRS.get(str(facts.get("distro_id", "")), "rhel")
    return f"{PMC_CONFIG}/{directory}/{scaled_version(facts)}/{channel}.repo"


def package_spec(version: str, channel: str) -> str:
    """``mdatp`` or a pinned ``mdatp-<version>`` with the channel's release suffix."""
    if not version:
        return "mdatp"
    suffix = {"insiders-fast": "_insiderfast-1", "insiders-slow": "_external-1"}.get(channel, "")
    return f"mdatp-{version}{suffix}"
