"""Contents of the static files of a simulated host: kernel config, passwd, repos, cpuinfo."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hosts.sim.profiles import Profile

_GCC = {
    5: "gcc version 4.1.2 20080704 (Red Hat 4.1.2-55)",
    6: "gcc version 4.4.7 20120313 (Red Hat 4.4.7-23) (GCC)",
    7: "gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC)",
    8: "gcc version 8.5.0 20210514 (Red Hat 8.5.0-22) (GCC)",
    9: "gcc (GCC) 11.4.1 20231218 (Red Hat 11.4.1-3), GNU ld version 2.35.2-43.el9",
}


@lru_cache(maxsize=64)
def kernel_config(kernel: str, fanotify: str) -> str:
    """A representative excerpt of /boot/config-<kernel>; ``fanotify`` is full, no-perm or none."""
    major, minor = (int(x) for x in kernel.split(".")[:2])
    lines = [
        "#",
        "# Automatically generated file; DO NOT EDIT.",
        f"# Linux/x86_64 {kernel} Kernel Configuration",
        "#",
    ]
    if major >= 4:
        lines += ['CONFIG_CC_VERSION_TEXT="gcc (GCC) 11.4.1 20231218 (Red Hat 11.4.1-3)"', "CONFIG_CC_IS_GCC=y"]
    lines += [
        "CONFIG_64BIT=y",
        "CONFIG_X86_64=y",
        "CONFIG_X86=y",
        "CONFIG_MMU=y",
        'CONFIG_LOCALVERSION=""',
        'CONFIG_DEFAULT_HOSTNAME="(none)"',
        "CONFIG_SWAP=y",
        "CONFIG_SYSVIPC=y",
        "CONFIG_POSIX_MQUEUE=y",
        "CONFIG_AUDIT=y",
        "CONFIG_AUDITSYSCALL=y",
        "CONFIG_NO_HZ=y",
        "CONFIG_HIGH_RES_TIMERS=y",
        "CONFIG_TASKSTATS=y",
        "CONFIG_CGROUPS=y",
        "CONFIG_NAMESPACES=y",
        "CONFIG_MODULES=y",
        "CONFIG_MODULE_SIG=y",
        "CONFIG_SMP=y",
        "CONFIG_NUMA=y",
        "CONFIG_KEXEC=y",
        "CONFIG_CRASH_DUMP=y",
    ]
    if (major, minor) >= (3, 10):
        lines += ["CONFIG_BPF=y", "CONFIG_BPF_SYSCALL=y", "CONFIG_BPF_JIT=y", "CONFIG_HAVE_EBPF_JIT=y"]
    if major >= 4:
        lines += ["CONFIG_BPF_EVENTS=y", "CONFIG_KPROBE_EVENTS=y", "CONFIG_UPROBE_EVENTS=y"]
    if major >= 5:
        lines += ["CONFIG_DEBUG_INFO_BTF=y", "CONFIG_BPF_LSM=y"]
    lines += [
        "CONFIG_NET=y",
        "CONFIG_INET=y",
        "CONFIG_IPV6=y",
        "CONFIG_NETFILTER=y",
        "CONFIG_NETFILTER_ADVANCED=y",
        "CONFIG_NETFILTER_NETLINK_QUEUE=m",
        "CONFIG_NF_CONNTRACK=m",
        "CONFIG_IP_NF_IPTABLES=m",
        "CONFIG_IP_NF_FILTER=m",
    ]
    lines.append("CONFIG_NETFILTER_XT_MATCH_OWNER=m" if major >= 5 else "CONFIG_IP_NF_MATCH_OWNER=m")
    lines += [
        "CONFIG_BLK_DEV_DM=m",
        "CONFIG_DM_CRYPT=m",
        "CONFIG_EXT4_FS=m",
        "CONFIG_EXT4_FS_POSIX_ACL=y",
        "CONFIG_EXT4_FS_SECURITY=y",
        "CONFIG_JBD2=m",
        "CONFIG_XFS_FS=m",
        "CONFIG_XFS_QUOTA=y",
        "CONFIG_XFS_POSIX_ACL=y",
        "CONFIG_FS_POSIX_ACL=y",
        "CONFIG_EXPORTFS=y",
        "CONFIG_FILE_LOCKING=y",
        "CONFIG_FSNOTIFY=y",
        "CONFIG_DNOTIFY=y",
        "CONFIG_INOTIFY_USER=y",
    ]
    if fanotify == "full":
        lines += ["CONFIG_FANOTIFY=y", "CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y"]
    elif fanotify == "no-perm":
        lines += ["CONFIG_FANOTIFY=y", "# CONFIG_FANOTIFY_ACCESS_PERMISSIONS is not set"]
    else:
        lines = [line for line in lines if "NOTIFY" not in line or "INOTIFY" in line]
    lines += [
        "CONFIG_QUOTA=y",
        "CONFIG_AUTOFS4_FS=y",
        "CONFIG_FUSE_FS=m",
        "CONFIG_OVERLAY_FS=m",
        "CONFIG_ISO9660_FS=m",
        "CONFIG_VFAT_FS=m",
        "CONFIG_PROC_FS=y",
        "CONFIG_TMPFS=y",
        "CONFIG_TMPFS_POSIX_ACL=y",
        "CONFIG_HUGETLBFS=y",
        "CONFIG_NFS_FS=m",
        "CONFIG_NFS_V4=m",
        "CONFIG_CIFS=m",
        "CONFIG_SECURITY=y",
        "CONFIG_SECURITY_NETWORK=y",
        "CONFIG_SECURITY_SELINUX=y",
        "CONFIG_SECURITY_SELINUX_BOOTPARAM=y",
        "CONFIG_INTEGRITY=y",
        "CONFIG_IMA=y",
        "CONFIG_CRYPTO=y",
        "CONFIG_CRYPTO_SHA256=y",
        "CONFIG_PRINTK=y",
        "CONFIG_MAGIC_SYSRQ=y",
        "CONFIG_DEBUG_FS=y",
        "CONFIG_FTRACE=y",
    ]
    return "\n".join(lines) + "\n"


def proc_version(profile: Profile, kernel: str) -> str:
    gcc = _GCC.get(profile.major, _GCC[9])
    if profile.distro_id == "debian":
        return (
            f"Linux version {kernel} (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, "
            f"GNU ld (GNU Binutils for Debian) 2.40) {profile.kernel_build}\n"
        )
    return f"Linux version {kernel} (mockbuild@x86-64-01.build.eng.rdu2.redhat.com) ({gcc}) {profile.kernel_build}\n"


def passwd(users: dict[str, tuple[int, int, str, str]]) -> str:
    rows = sorted(users.items(), key=lambda item: (item[1][0] >= 1000, item[1][0] == 65534, item[1][0]))
    return "".join(f"{name}:x:{uid}:{gid}:{name}:{home}:{shell}\n" for name, (uid, gid, home, shell) in rows)


def group(users: dict[str, tuple[int, int, str, str]], debian: bool) -> str:
    lines = ["root:x:0:", "bin:x:1:", "daemon:x:2:", "sys:x:3:", "adm:x:4:"]
    lines.append("sudo:x:27:deploy" if debian else "wheel:x:10:deploy")
    lines += [f"{name}:x:{gid}:" for name, (_, gid, _, _) in users.items() if gid >= 20 and name != "root"]
    return "\n".join(dict.fromkeys(lines)) + "\n"


def shadow(users: dict[str, tuple[int, int, str, str]]) -> str:
    return "".join(
        f"{name}:{'$6$rounds=5000$simulated$' if name in ('root', 'deploy') else '!!'}:19800:0:99999:7:::\n"
        for name in users
    )


def sudoers(debian: bool) -> str:
    admins = "%sudo\tALL=(ALL:ALL) ALL" if debian else "%wheel\tALL=(ALL)\tALL"
    return (
        "Defaults   !visiblepw\nDefaults    always_set_home\nDefaults    env_reset\n"
        "Defaults    secure_path = /sbin:/bin:/usr/sbin:/usr/bin\n"
        f"root\tALL=(ALL) \tALL\n{admins}\n#includedir /etc/sudoers.d\n"
    )


def repo_files(profile: Profile) -> dict[str, str]:
    """The distribution's package repositories (the Microsoft one is added by the rollout)."""
    if profile.distro_id == "debian":
        return {
            "/etc/apt/sources.list": "deb http://deb.debian.org/debian bookworm main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n"
        }
    major = profile.major
    mirror = "https://mirror.corp.example"
    sections: list[tuple[str, str, str]]  # id, name, baseurl
    if profile.distro_id == "rhel" and major <= 7:
        sections = [
            (
                f"rhel-{major}-server-rpms",
                f"Red Hat Enterprise Linux {major} Server (RPMs)",
                f"https://cdn.redhat.com/content/dist/rhel/server/{major}/$releasever/$basearch/os",
            )
        ]
        name = "redhat.repo"
    elif profile.distro_id == "rhel":
        sections = [
            (
                f"rhel-{major}-for-x86_64-{kind.lower()}-rpms",
                f"Red Hat Enterprise Linux {major} for x86_64 - {kind} (RPMs)",
                f"https://cdn.redhat.com/content/dist/rhel{major}/$releasever/x86_64/{kind.lower()}/os",
            )
            for kind in ("BaseOS", "AppStream")
        ]
        name = "redhat.repo"
    elif profile.distro_id == "centos":
        sections = [
            ("base", "CentOS-$releasever - Base", f"{mirror}/centos/$releasever/os/$basearch/"),
            ("updates", "CentOS-$releasever - Updates", f"{mirror}/centos/$releasever/updates/$basearch/"),
        ]
        name = "CentOS-Base.repo"
    elif profile.distro_id == "ol":
        sections = [
            (f"ol{major}_baseos_latest", f"Oracle Linux {major} BaseOS Latest ($basearch)",
             f"https://yum$ociregion.oracle.com/repo/OracleLinux/OL{major}/baseos/latest/$basearch/"),
            (f"ol{major}_appstream", f"Oracle Linux {major} Application Stream ($basearch)",
             f"https://yum$ociregion.oracle.com/repo/OracleLinux/OL{major}/appstream/$basearch/"),
        ]  # fmt: skip
        name = f"oracle-linux-ol{major}.repo"
    else:
        label = "Rocky Linux" if profile.distro_id == "rocky" else "AlmaLinux"
        sections = [
            (
                kind.lower(),
                f"{label} $releasever - {kind}",
                f"{mirror}/{profile.distro_id}/$releasever/{kind}/$basearch/os/",
            )
            for kind in ("BaseOS", "AppStream")
        ]
        name = "rocky.repo" if profile.distro_id == "rocky" else "almalinux-baseos.repo"
    text = "".join(f"[{rid}]\nname={title}\nbaseurl={url}\nenabled=1\ngpgcheck=1\n\n" for rid, title, url in sections)
    return {f"/etc/yum.repos.d/{name}": text}


def cpuinfo(cores: int, mhz: float) -> str:
    blocks = []
    for cpu in range(cores):
        blocks.append(
            f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
            "model name\t: Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz\nstepping\t: 7\nmicrocode\t: 0x5003604\n"
            f"cpu MHz\t\t: {mhz:.3f}\ncache size\t: 36608 KB\nphysical id\t: 0\nsiblings\t: {cores}\n"
            f"core id\t\t: {cpu}\ncpu cores\t: {cores}\napicid\t\t: {cpu}\ninitial apicid\t: {cpu}\nfpu\t\t: yes\n"
            "fpu_exception\t: yes\ncpuid level\t: 22\nwp\t\t: yes\n"
            "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse"
            " sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon nopl xtopology tsc_reliable nonstop_tsc"
            " cpuid pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand"
            " hypervisor lahf_lm abm 3dnowprefetch avx2 bmi1 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl\n"
            "bogomips\t: 5985.93\nclflush size\t: 64\ncache_alignment\t: 64\n"
            "address sizes\t: 45 bits physical, 48 bits virtual\npower management:\n"
        )
    return "\n".join(blocks) + "\n"
