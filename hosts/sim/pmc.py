"""packages.microsoft.com as the simulated hosts see it: repo files, the mdatp builds, the signing key.

The layout follows the real server (MDE-FACTS §1.4, §7 and the current manual-install table):
``/config/<distro>/<version>/<channel>.repo`` exists for the versions listed in ``CONFIG_VERSIONS``
(rhel has both ``9`` and ``9.0``, ``7`` and ``7.2``; ``rhel/8.0``, ``centos/8.0``, ``centos/9.0``
and any ``ol`` directory answer 404). Each repo file points yum at
``https://packages.microsoft.com/<distro>/<version>/<channel>/``, which carries the mdatp builds
of ``MDATP_BUILDS`` for its channel (none for rhel 6, which the agent no longer ships for).

Also here: reading ``/etc/yum.repos.d/*.repo`` the way yum does, and whether HTTPS to
packages.microsoft.com gets through the host's faults and proxy.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import logging
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hosts.sim.vfs import FSError

if TYPE_CHECKING:
    from hosts.sim.state import HostState

logger = logging.getLogger(__name__)
PMC = "https://packages.microsoft.com"
CHANNELS = ("prod", "insiders-fast", "insiders-slow")

# /config/<distro>/<version>/ directories that exist (rpm families; deb ones serve .list files).
CONFIG_VERSIONS: dict[str, tuple[str, ...]] = {
    "rhel": ("6", "7", "7.2", "8", "9", "9.0", "10"),
    "centos": ("7", "8"),
    "alma": ("8", "9"),
    "rocky": ("8", "9"),
    "fedora": ("33", "34", "35", "36", "37", "38", "39", "40"),
    "amazonlinux": ("2", "2023"),
    "sles": ("12", "15"),
    "debian": ("9", "10", "11", "12"),
    "ubuntu": ("16.04", "18.04", "20.04", "22.04", "24.04"),
}
# Repositories that hold no mdatp build (the product left RHEL 6 behind).
NO_MDATP = {("rhel", "6")}

# The builds each channel's repositories carry, oldest first (the rpm version; release is always 1).
MDATP_BUILDS: dict[str, tuple[str, ...]] = {
    "prod": (
        "101.24082.0004",
        "101.24102.0000",
        "101.25012.0000",
        "101.25042.0002",
        "101.25062.0010",
        "101.25092.0003",
    ),
    "insiders-slow": ("101.25092.0003_external", "101.25102.0001_external"),
    "insiders-fast": ("101.25102.0001_insiderfast", "101.25112.0000_insiderfast"),
}
MDATP_DOWNLOAD_MB = 118
MDATP_INSTALLED_MB = 412
NETFILTER = ("mde-netfilter", "100.69.73-1")

# The key's identity as rpm and yum print it.
KEY_ID = "be1229cf"
KEY_RELEASE = "5631588c"
KEY_USERID = "Microsoft (Release signing) <gpgsecurity@microsoft.com>"
KEY_FINGERPRINT = "BC52 8686 B50D 79E3 39D3  721C EB3E 94AD BE12 29CF"


def microsoft_key() -> str:
    """``/keys/microsoft.asc``: an armored public key block (placeholder key material)."""
    digest = hashlib.sha512(b"simulated microsoft.asc").digest() * 8
    body = base64.b64encode(digest).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\nVersion: GnuPG v1.4.7 (GNU/Linux)\n\n"
        + "\n".join(lines)
        + "\n=V8ae\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )


def repo_id_for(version: str, channel: str) -> str:
    """The section name of a channel's repo file (7.x non-prod channels are ``...-prod-<channel>``)."""
    if version.split(".")[0] == "7" and channel != "prod":
        return f"packages-microsoft-com-prod-{channel}"
    return f"packages-microsoft-com-{channel}"


def config_file(path: str) -> str | None:
    """The body of ``/config/<distro>/<version>/<channel>.repo|.list``, or None where the server says 404."""
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "config":
        return None
    distro, version, filename = parts[1], parts[2], parts[3]
    channel, _, ext = filename.rpartition(".")
    if version not in CONFIG_VERSIONS.get(distro, ()) or channel not in CHANNELS or ext not in ("repo", "list"):
        return None
    if ext == "list":
        return f"deb [arch=amd64,arm64,armhf] {PMC}/{distro}/{version}/{channel} {channel} main\n"
    rid = repo_id_for(version, channel)
    return (
        f"[{rid}]\nname={rid}\nbaseurl={PMC}/{distro}/{version}/{channel}/\nenabled=1\ngpgcheck=1\n"
        f"gpgkey={PMC}/keys/microsoft.asc\n"
    )


def builds_at(baseurl: str) -> tuple[str, ...] | None:
    """The mdatp builds a yum baseurl on packages.microsoft.com serves (None: not a PMC repository)."""
    parts = urlsplit(baseurl)
    if parts.hostname != "packages.microsoft.com":
        return None
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) != 3:
        return ()
    distro, version, channel = segments
    if version not in CONFIG_VERSIONS.get(distro, ()) or channel not in CHANNELS:
        return ()
    if (distro, version) in NO_MDATP:
        return ()
    return MDATP_BUILDS[channel]


def serves(baseurl: str) -> bool:
    """Whether the server has repository metadata under this baseurl (a 404 otherwise)."""
    parts = urlsplit(baseurl)
    segments = [s for s in parts.path.split("/") if s]
    return len(segments) == 3 and segments[1] in CONFIG_VERSIONS.get(segments[0], ()) and segments[2] in CHANNELS


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of an mdatp build (``101.25092.0003_external`` → (101, 25092, 3))."""
    numbers = version.split("_", 1)[0].split(".")
    return tuple(int(n) for n in numbers if n.isdigit())


# --- /etc/yum.repos.d ------------------------------------------------------------------------


@dataclass
class Repo:
    """One repository section of a ``.repo`` file."""

    id: str
    name: str
    baseurl: str
    enabled: bool
    path: str
    gpgcheck: bool = True


def expand(text: str, releasever: str) -> str:
    for name, value in (("$releasever", releasever), ("$basearch", "x86_64"), ("$infra", "stock"), ("$ociregion", "")):
        text = text.replace(name, value)
    return text


def read_repos(state: HostState) -> list[Repo]:
    """Every section of every ``/etc/yum.repos.d/*.repo`` file, in yum's order (by id)."""
    vfs = state.vfs
    root = state.cred("root")
    repos: dict[str, Repo] = {}
    try:
        names = vfs.listdir("/etc/yum.repos.d", root)
    except FSError:  # no such directory: no repositories
        return []
    for name in names:
        if not name.endswith(".repo"):
            continue
        path = posixpath.join("/etc/yum.repos.d", name)
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(vfs.read(path, root))
        except (configparser.Error, FSError):
            logger.debug("simulated yum skips the unreadable repo file %s", path)  # as yum warns and goes on
            continue
        for section in parser.sections():
            values = parser[section]
            repos.setdefault(
                section,
                Repo(
                    id=section,
                    name=values.get("name", section).strip(),
                    baseurl=values.get("baseurl", values.get("mirrorlist", "")).strip(),
                    enabled=values.get("enabled", "1").strip() in ("1", "true", "yes", "True"),
                    path=path,
                    gpgcheck=values.get("gpgcheck", "1").strip() in ("1", "true", "yes", "True"),
                ),
            )
    return sorted(repos.values(), key=lambda r: r.id)


# --- the network between the host and packages.microsoft.com --------------------------------------


@dataclass(frozen=True)
class FetchError:
    """Why an HTTPS fetch failed, as libcurl reports it."""

    code: int
    message: str  # curl_easy_strerror-style detail
    status: int = 0  # HTTP status for code 22


def fetch_error(state: HostState, env: dict[str, str], url: str) -> FetchError | None:
    """What stops an HTTPS request to ``url`` from this host (None: it gets through)."""
    from hosts.sim.cmd_net import KNOWN_PROXIES

    proxy = env.get("https_proxy") or env.get("HTTPS_PROXY") or ""
    if proxy:
        host = urlsplit(proxy if "://" in proxy else "http://" + proxy).hostname or proxy
        if host not in KNOWN_PROXIES:
            return FetchError(5, f"Could not resolve proxy: {host}")
    faults = state.faults
    if faults.get("no-egress"):
        return FetchError(28, "Connection timed out after 30000 milliseconds")
    if faults.get("tls-reset"):
        return FetchError(
            35, "OpenSSL SSL_connect: Connection reset by peer in connection to packages.microsoft.com:443"
        )
    if "tls-inspection" in faults:
        return FetchError(60, "SSL certificate problem: unable to get local issuer certificate")
    return None
