"""Distro profiles of the simulated fleet: release files, kernels and the tool versions that shape output.

Each profile carries the exact release files of the distribution (``/etc/os-release`` and friends)
and the flavour of every tool whose output format differs between releases: procps (``free``
layout, ``ps`` PID width), coreutils (``df`` table), curl (NSS or OpenSSL verbose lines and error
texts), bash (``line 1:`` in error messages since 5.1) and the init system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

_RHEL9_OS_RELEASE = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9"
BUG_REPORT_URL="https://issues.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_BUGZILLA_PRODUCT_VERSION=9.4
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
"""

_RHEL8_OS_RELEASE = """\
NAME="Red Hat Enterprise Linux"
VERSION="8.10 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.10"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Red Hat Enterprise Linux 8.10 (Ootpa)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:8::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/8"
BUG_REPORT_URL="https://issues.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 8"
REDHAT_BUGZILLA_PRODUCT_VERSION=8.10
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="8.10"
"""

_RHEL7_OS_RELEASE = """\
NAME="Red Hat Enterprise Linux Server"
VERSION="7.9 (Maipo)"
ID="rhel"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="7.9"
PRETTY_NAME="Red Hat Enterprise Linux Server 7.9 (Maipo)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:7.9:GA:server"
HOME_URL="https://www.redhat.com/"
BUG_REPORT_URL="https://bugzilla.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 7"
REDHAT_BUGZILLA_PRODUCT_VERSION=7.9
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="7.9"
"""

_CENTOS7_OS_RELEASE = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
BUG_REPORT_URL="https://bugs.centos.org/"

CENTOS_MANTISBT_PROJECT="CentOS-7"
CENTOS_MANTISBT_PROJECT_VERSION="7"
REDHAT_SUPPORT_PRODUCT="centos"
REDHAT_SUPPORT_PRODUCT_VERSION="7"

"""

_OL8_OS_RELEASE = """\
NAME="Oracle Linux Server"
VERSION="8.10"
ID="ol"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="8.10"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Oracle Linux Server 8.10"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:oracle:linux:8:10:server"
HOME_URL="https://linux.oracle.com/"
BUG_REPORT_URL="https://github.com/oracle/oracle-linux"

ORACLE_BUGZILLA_PRODUCT="Oracle Linux 8"
ORACLE_BUGZILLA_PRODUCT_VERSION=8.10
ORACLE_SUPPORT_PRODUCT="Oracle Linux"
ORACLE_SUPPORT_PRODUCT_VERSION=8.10
"""

_ROCKY9_OS_RELEASE = """\
NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
BUG_REPORT_URL="https://bugs.rockylinux.org/"
SUPPORT_END="2032-05-31"
ROCKY_SUPPORT_PRODUCT="Rocky-Linux-9"
ROCKY_SUPPORT_PRODUCT_VERSION="9.4"
REDHAT_SUPPORT_PRODUCT="Rocky Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
"""

_ALMA9_OS_RELEASE = """\
NAME="AlmaLinux"
VERSION="9.4 (Seafoam Ocelot)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.4 (Seafoam Ocelot)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"
HOME_URL="https://almalinux.org/"
DOCUMENTATION_URL="https://wiki.almalinux.org/"
BUG_REPORT_URL="https://bugs.almalinux.org/"

ALMALINUX_MANTISBT_PROJECT="AlmaLinux-9"
ALMALINUX_MANTISBT_PROJECT_VERSION="9.4"
REDHAT_SUPPORT_PRODUCT="AlmaLinux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
"""

_DEBIAN12_OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""


@dataclass(frozen=True)
class Profile:
    """One distribution release as the simulator plays it."""

    name: str
    distro_id: str
    version_id: str
    short: str  # hostname prefix
    weight: int  # share of a seeded fleet
    release_files: dict[str, str]
    kernels: tuple[str, ...]  # one is picked per host (Oracle Linux: UEK or RHCK)
    kernel_build: str  # what `uname -v` prints
    init: str  # systemd | upstart | sysv
    systemd: int = 0
    bash: tuple[int, int] = (4, 4)
    sh: str = "bash"  # what /bin/sh is: bash (posix mode) or dash
    procps: tuple[int, int, int] = (3, 3, 15)  # (3,2,8) is the pre-procps-ng tool
    coreutils: tuple[int, int] = (8, 30)
    grep: tuple[int, int] = (3, 1)
    curl: str = "7.61.1"
    tls: str = "openssl"  # nss | openssl | openssl3
    pkg: str = "rpm"
    selinux: bool = True
    ssh_version: str = "OpenSSH_8.0"
    root_fs: str = "xfs"
    vg: str = "rhel"  # LVM volume group; "{host}" is replaced by the short host name
    cgroup_v1: bool = True
    fanotify: str = "full"  # full | no-perm | none
    extra_packages: tuple[str, ...] = field(default_factory=tuple)

    @property
    def major(self) -> int:
        return int(self.version_id.split(".")[0])

    @property
    def pid_width(self) -> int:
        # procps-ng sizes the PID columns from pid_max; systemd ≥ 239 hosts run with 4194304.
        return 7 if self.procps >= (3, 3, 15) else 5

    @property
    def modern_df(self) -> bool:
        return self.coreutils >= (8, 21)

    @property
    def kernel_tuple(self) -> tuple[int, int]:
        parts = self.kernels[0].split(".")
        return int(parts[0]), int(parts[1])

    @property
    def bin_dir(self) -> str:
        # Before the /usr merge (RHEL 6 and older) coreutils lived in /bin.
        return "/usr/bin" if self.major >= 7 or self.distro_id == "debian" else "/bin"


def _el_release(text: str, *extra: str) -> dict[str, str]:
    files = {"/etc/redhat-release": text + "\n", "/etc/system-release": text + "\n"}
    for path in extra:
        files[path] = text + "\n"
    return files


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            name="rhel-5.11",
            distro_id="rhel",
            version_id="5.11",
            short="rhel5",
            weight=1,
            release_files={"/etc/redhat-release": "Red Hat Enterprise Linux Server release 5.11 (Tikanga)\n"},
            kernels=("2.6.18-398.el5",),
            kernel_build="#1 SMP Mon Aug 11 14:50:08 EDT 2014",
            init="sysv",
            bash=(3, 2),
            procps=(3, 2, 7),
            coreutils=(5, 97),
            grep=(2, 5),
            curl="7.15.5",
            tls="nss",
            ssh_version="OpenSSH_4.3",
            root_fs="ext3",
            vg="VolGroup00",
            fanotify="none",
        ),
        Profile(
            name="rhel-6.10",
            distro_id="rhel",
            version_id="6.10",
            short="rhel6",
            weight=3,
            release_files={"/etc/redhat-release": "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n"},
            kernels=("2.6.32-754.35.1.el6.x86_64",),
            kernel_build="#1 SMP Wed Sep 16 06:48:01 EDT 2020",
            init="upstart",
            bash=(4, 1),
            procps=(3, 2, 8),
            coreutils=(8, 4),
            grep=(2, 20),
            curl="7.19.7",
            tls="nss",
            ssh_version="OpenSSH_5.3",
            root_fs="ext4",
            vg="vg_{host}",
            fanotify="no-perm",
        ),
        Profile(
            name="rhel-7.9",
            distro_id="rhel",
            version_id="7.9",
            short="rhel7",
            weight=10,
            release_files={
                "/etc/os-release": _RHEL7_OS_RELEASE,
                **_el_release("Red Hat Enterprise Linux Server release 7.9 (Maipo)"),
            },
            kernels=("3.10.0-1160.119.1.el7.x86_64",),
            kernel_build="#1 SMP Tue May 14 17:32:19 EDT 2024",
            init="systemd",
            systemd=219,
            bash=(4, 2),
            procps=(3, 3, 10),
            coreutils=(8, 22),
            grep=(2, 20),
            curl="7.29.0",
            tls="nss",
            ssh_version="OpenSSH_7.4",
        ),
        Profile(
            name="centos-7.9",
            distro_id="centos",
            version_id="7",
            short="centos7",
            weight=6,
            release_files={
                "/etc/os-release": _CENTOS7_OS_RELEASE,
                **_el_release("CentOS Linux release 7.9.2009 (Core)", "/etc/centos-release"),
            },
            kernels=("3.10.0-1160.119.1.el7.x86_64",),
            kernel_build="#1 SMP Tue Jun 4 14:43:51 UTC 2024",
            init="systemd",
            systemd=219,
            bash=(4, 2),
            procps=(3, 3, 10),
            coreutils=(8, 22),
            grep=(2, 20),
            curl="7.29.0",
            tls="nss",
            ssh_version="OpenSSH_7.4",
            vg="centos",
        ),
        Profile(
            name="rhel-8.10",
            distro_id="rhel",
            version_id="8.10",
            short="rhel8",
            weight=20,
            release_files={
                "/etc/os-release": _RHEL8_OS_RELEASE,
                **_el_release("Red Hat Enterprise Linux release 8.10 (Ootpa)"),
            },
            kernels=("4.18.0-553.16.1.el8_10.x86_64",),
            kernel_build="#1 SMP Thu Aug 1 04:16:12 EDT 2024",
            init="systemd",
            systemd=239,
            ssh_version="OpenSSH_8.0",
        ),
        Profile(
            name="ol-8.10",
            distro_id="ol",
            version_id="8.10",
            short="ol8",
            weight=8,
            release_files={
                "/etc/os-release": _OL8_OS_RELEASE,
                "/etc/oracle-release": "Oracle Linux Server release 8.10\n",
                "/etc/system-release": "Oracle Linux Server release 8.10\n",
                "/etc/redhat-release": "Red Hat Enterprise Linux release 8.10 (Ootpa)\n",
            },
            kernels=("5.15.0-209.161.7.2.el8uek.x86_64", "4.18.0-553.16.1.el8_10.x86_64"),
            kernel_build="#2 SMP Wed Jul 24 18:24:05 PDT 2024",
            init="systemd",
            systemd=239,
            ssh_version="OpenSSH_8.0",
            vg="ol",
        ),
        Profile(
            name="rhel-9.4",
            distro_id="rhel",
            version_id="9.4",
            short="rhel9",
            weight=22,
            release_files={
                "/etc/os-release": _RHEL9_OS_RELEASE,
                **_el_release("Red Hat Enterprise Linux release 9.4 (Plow)"),
            },
            kernels=("5.14.0-427.13.1.el9_4.x86_64",),
            kernel_build="#1 SMP PREEMPT_DYNAMIC Wed Apr 10 10:29:16 EDT 2024",
            init="systemd",
            systemd=252,
            bash=(5, 1),
            procps=(3, 3, 17),
            coreutils=(8, 32),
            grep=(3, 6),
            curl="7.76.1",
            tls="openssl3",
            ssh_version="OpenSSH_8.7",
            cgroup_v1=False,
        ),
        Profile(
            name="rocky-9.4",
            distro_id="rocky",
            version_id="9.4",
            short="rocky9",
            weight=14,
            release_files={
                "/etc/os-release": _ROCKY9_OS_RELEASE,
                **_el_release("Rocky Linux release 9.4 (Blue Onyx)", "/etc/rocky-release"),
            },
            kernels=("5.14.0-427.13.1.el9_4.x86_64",),
            kernel_build="#1 SMP PREEMPT_DYNAMIC Wed May 1 19:11:28 UTC 2024",
            init="systemd",
            systemd=252,
            bash=(5, 1),
            procps=(3, 3, 17),
            coreutils=(8, 32),
            grep=(3, 6),
            curl="7.76.1",
            tls="openssl3",
            ssh_version="OpenSSH_8.7",
            vg="rl",
            cgroup_v1=False,
        ),
        Profile(
            name="alma-9.4",
            distro_id="almalinux",
            version_id="9.4",
            short="alma9",
            weight=12,
            release_files={
                "/etc/os-release": _ALMA9_OS_RELEASE,
                **_el_release("AlmaLinux release 9.4 (Seafoam Ocelot)", "/etc/almalinux-release"),
            },
            kernels=("5.14.0-427.13.1.el9_4.x86_64",),
            kernel_build="#1 SMP PREEMPT_DYNAMIC Wed May 1 05:49:58 EDT 2024",
            init="systemd",
            systemd=252,
            bash=(5, 1),
            procps=(3, 3, 17),
            coreutils=(8, 32),
            grep=(3, 6),
            curl="7.76.1",
            tls="openssl3",
            ssh_version="OpenSSH_8.7",
            vg="almalinux",
            cgroup_v1=False,
        ),
        Profile(
            name="debian-12",
            distro_id="debian",
            version_id="12",
            short="deb12",
            weight=3,
            release_files={"/etc/os-release": _DEBIAN12_OS_RELEASE, "/etc/debian_version": "12.6\n"},
            kernels=("6.1.0-23-amd64",),
            kernel_build="#1 SMP PREEMPT_DYNAMIC Debian 6.1.99-1 (2024-07-15)",
            init="systemd",
            systemd=252,
            bash=(5, 2),
            sh="dash",
            procps=(4, 0, 2),
            coreutils=(9, 1),
            grep=(3, 8),
            curl="7.88.1",
            tls="openssl3",
            pkg="dpkg",
            selinux=False,
            ssh_version="OpenSSH_9.2p1 Debian-2+deb12u3",
            root_fs="ext4",
            vg="",
            cgroup_v1=False,
        ),
    ]
}

# The ten profiles in a fixed order: one host each in the `sim_fleet` fixture.
PROFILE_ORDER = [
    "rhel-9.4",
    "rhel-8.10",
    "rhel-7.9",
    "centos-7.9",
    "ol-8.10",
    "rocky-9.4",
    "alma-9.4",
    "rhel-6.10",
    "debian-12",
    "rhel-5.11",
]


def pick(seed: int, index: int, salt: str, choices: int) -> int:
    """A stable pseudo-random number in [0, choices) for one host and purpose."""
    digest = hashlib.blake2b(f"{seed}:{index}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % choices


def assign_profile(seed: int, index: int) -> Profile:
    """The profile host ``index`` plays in a fleet built from ``seed`` (weighted, deterministic)."""
    total = sum(p.weight for p in PROFILES.values())
    point = pick(seed, index, "profile", total)
    for name in PROFILE_ORDER:
        profile = PROFILES[name]
        if point < profile.weight:
            return profile
        point -= profile.weight
    raise AssertionError("weights do not add up")  # pragma: no cover
