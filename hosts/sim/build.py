"""Deriving a host's machine from its seed, faults and agent: processes, services, packages, memory."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from hosts.sim.machine import (
    AGENT_PROCS,
    AV_PRODUCTS,
    BAD,
    KTHREADS_NEW,
    KTHREADS_OLD,
    USERS_DEBIAN,
    USERS_EL,
    AgentState,
    Machine,
    Mount,
    Proc,
    Service,
    base_rows,
    build_memory,
    build_mounts,
    fanotify_lines,
    init_args,
    mem_total_kb,
    workload_rows,
)

if TYPE_CHECKING:
    from hosts.sim.profiles import Profile
    from hosts.sim.state import HostSpec, HostState


def build_machine(state: HostState, faults: dict[str, Any]) -> Machine:
    """Processes, mounts, memory, services and packages of a host (deterministic per seed)."""
    spec, profile, agent = state.spec, state.profile, state.agent
    rng = random.Random(f"{spec.seed}:{spec.index}:machine")
    cores = 1 if faults.get("one-core") else spec.cores
    memory_mb = 768 if faults.get("low-memory") else spec.memory_mb
    total = mem_total_kb(memory_mb)
    mounts = build_mounts(profile, spec.hostname, random.Random(f"{spec.seed}:{spec.index}:mounts"), total, faults)
    users = dict(USERS_DEBIAN if profile.distro_id == "debian" else USERS_EL)
    boot = state.boot
    procs: list[Proc] = []
    used_pids: set[int] = set()

    def add(
        pid: int, ppid: int, user: str, comm: str, args: str, pcpu: float, rss: int, vsz: int, start: float, **kw: Any
    ) -> Proc:
        while pid in used_pids:
            pid += 1
        used_pids.add(pid)
        proc = Proc(pid, ppid, user, comm[:15], args, pcpu, rss, vsz, start, **kw)
        procs.append(proc)
        return proc

    init = init_args(profile)
    add(1, 0, "root", "systemd" if profile.init == "systemd" else "init", init, 0.0, 12000, 170000, boot + 0.5, nfds=60)
    add(2, 0, "root", "kthreadd", "[kthreadd]", 0.0, 0, 0, boot + 0.5, kernel=True, stat="S", nfds=0)
    kthreads = KTHREADS_NEW if profile.major >= 7 or profile.distro_id == "debian" else KTHREADS_OLD
    names = list(kthreads)
    for cpu in range(min(cores, 4)):
        names += [f"cpuhp/{cpu}", f"migration/{cpu}", f"ksoftirqd/{cpu}"] if profile.major >= 7 else []
    for offset, name in enumerate(names):
        add(
            3 + offset,
            2,
            "root",
            name,
            f"[{name}]",
            0.0,
            0,
            0,
            boot + 0.6,
            kernel=True,
            stat="I<" if "kworker" in name else "S",
            nfds=0,
        )
    pid = 500 + rng.randint(0, 200)
    for user, args, comm, pcpu, rss, vsz in base_rows(profile):
        pid += rng.randint(1, 40)
        add(
            pid,
            1,
            user,
            comm or args.split()[0].rsplit("/", 1)[-1],
            args,
            pcpu,
            rss,
            vsz,
            boot + rng.uniform(3, 25),
            nfds=rng.randint(4, 20),
            threads=rng.choice((1, 1, 2, 3, 4, 7)),
        )
    # The workload: the role's application, with most of the host's CPU time.
    workload = workload_rows(profile, spec.role, total)
    base_pct = sum(p.pcpu for p in procs)
    busy = spec.busy
    if agent.installed and "cpu-regression" in faults:
        busy = min(0.97, busy + float(faults["cpu-regression"]) / 100)
    want = max(0.0, spec.busy * cores * 100 * 0.9 - base_pct)
    weights = [row[3] for row in workload]
    started = boot + rng.uniform(60, max(120.0, spec.uptime * 0.8))
    parent = 0
    wpid = rng.randint(900, min(state.pid_max - 2000, 30000))
    for index, (user, args, comm, weight, rss, vsz) in enumerate(workload):
        share = want * weight / (sum(weights) or 1)
        wpid += rng.randint(1, 30)
        proc = add(
            wpid,
            parent or 1,
            user,
            comm or args.split()[0].rsplit("/", 1)[-1],
            args,
            round(share, 1),
            rss,
            vsz,
            started + index * 0.4,
            nfds=rng.randint(8, 90),
            threads=40 if comm == "java" else 1,
        )
        if index == 0 and len(workload) > 1:
            parent = proc.pid
    # Other software that holds fanotify or shows as a conflicting service.
    vendor = faults.get("conflicting-av")
    if vendor:
        product = AV_PRODUCTS[str(vendor)]
        apid = rng.randint(1100, 1500)
        for user, args, comm, holds in product["procs"]:
            apid += rng.randint(1, 9)
            add(
                apid,
                1,
                user,
                comm,
                args,
                round(rng.uniform(0.5, 3.0), 1),
                rng.randint(40000, 180000),
                rng.randint(600000, 1900000),
                boot + rng.uniform(20, 40),
                nfds=rng.randint(10, 30),
                fanotify=fanotify_lines(mounts, "10008") if holds else (),
            )
    if faults.get("fapolicyd"):
        add(
            rng.randint(700, 900),
            1,
            "fapolicyd",
            "fapolicyd",
            "/usr/sbin/fapolicyd",
            0.2,
            52000,
            430000,
            boot + 12,
            nfds=12,
            fanotify=fanotify_lines(mounts, "40020"),
        )
    if faults.get("bad-utf8"):
        add(
            rng.randint(2000, 3000),
            1,
            "root",
            "exportd",
            f"/opt/app/bin/exportd --dir=/srv/r{BAD}sultats --label=caf{BAD}",
            0.3,
            24000,
            240000,
            boot + 80,
        )
    # The agent's memory is added once below, not also through the workload's share.
    workload_rss = sum(p.rss for p in procs if not p.kernel)
    agent_rss = 0
    if agent.installed:
        users["mdatp"] = (989, 986, "/home/mdatp", "/usr/sbin/nologin")
        _agent_disk(mounts, agent_disk_kb())
        agent_total = float(faults["cpu-regression"]) * cores if "cpu-regression" in faults else rng.uniform(1, 4)
        apid = rng.randint(20000, max(21000, min(state.pid_max - 100, 900000)))
        parent_pid = 0
        for user, args, share, base_rss, vsz in AGENT_PROCS:
            apid += rng.randint(1, 6)
            rss = int(base_rss * rng.uniform(0.8, 1.25)) // 4 * 4
            proc = add(
                apid,
                parent_pid or 1,
                user,
                args.split()[0].rsplit("/", 1)[-1],
                args,
                round(agent_total * share, 1),
                rss,
                vsz,
                agent.installed_at,
                nfds=rng.randint(20, 60),
                threads=30,
                fanotify=fanotify_lines(mounts, "48010") if args.endswith("wdavdaemon") else (),
            )
            agent_rss += rss
            parent_pid = parent_pid or proc.pid
    procs.sort(key=lambda p: p.pid)
    anon = int(total * 0.05) + workload_rss // 2 + agent_rss
    swap = 0 if profile.distro_id == "debian" else (2097148 if memory_mb <= 16384 else 4194300)
    memory = build_memory(random.Random(f"{spec.seed}:{spec.index}:memory"), total, anon, swap)
    return Machine(
        cores=cores,
        busy=busy,
        memory=memory,
        mounts=mounts,
        procs=procs,
        services=build_services(profile, spec.role, faults, agent, procs),
        packages={**build_packages(profile, spec, faults, agent), **state.installed_packages},
        users=users,
    )


def agent_disk_kb() -> dict[str, int]:
    """What the installed agent takes: the payload under /opt, definitions and logs under /var."""
    from hosts.sim.pmc import MDATP_INSTALLED_MB

    return {"/opt": MDATP_INSTALLED_MB * 1024, "/var": 236 * 1024}


def _agent_disk(mounts: list[Mount], usage: dict[str, int]) -> None:
    """Charge the agent's files to the filesystems holding /opt and /var."""
    real = [m for m in mounts if not m.dummy and not m.bind and m.fstype not in ("tmpfs", "devtmpfs")]
    for path, kb in usage.items():
        holder = max(
            (m for m in real if path == m.target or path.startswith(m.target.rstrip("/") + "/")),
            key=lambda m: len(m.target),
            default=None,
        )
        if holder is not None:
            holder.used_kb = min(holder.size_kb - holder.reserved_kb, holder.used_kb + kb)


_SERVICES_SYSTEMD = [
    ("sshd", "OpenSSH server daemon", "sshd"),
    ("crond", "Command Scheduler", "crond"),
    ("rsyslog", "System Logging Service", "rsyslogd"),
    ("auditd", "Security Auditing Service", "auditd"),
    ("chronyd", "NTP client/server", "chronyd"),
    ("firewalld", "firewalld - dynamic firewall daemon", "firewalld"),
    ("NetworkManager", "Network Manager", "NetworkManager"),
    ("tuned", "Dynamic System Tuning Daemon", "tuned"),
    ("systemd-journald", "Journal Service", "systemd-journal"),
    ("irqbalance", "irqbalance daemon", "irqbalance"),
    ("polkit", "Authorization Manager", "polkitd"),
]
_SERVICES_DEBIAN = [
    ("ssh", "OpenBSD Secure Shell server", "sshd"),
    ("cron", "Regular background program processing daemon", "cron"),
    ("rsyslog", "System Logging Service", "rsyslogd"),
    ("systemd-timesyncd", "Network Time Synchronization", "systemd-timesyn"),
    ("systemd-journald", "Journal Service", "systemd-journal"),
]
_ROLE_SERVICES = {
    "db": [("postgresql", "PostgreSQL database server", "postmaster")],
    "ci": [("jenkins", "Jenkins Continuous Integration Server", "java")],
    "web": [("httpd", "The Apache HTTP Server", "httpd"), ("php-fpm", "The PHP FastCGI Process Manager", "php-fpm")],
    "app": [("tomcat", "Apache Tomcat Web Application Container", "java")],
}


def build_services(
    profile: Profile, role: str, faults: dict[str, Any], agent: AgentState, procs: list[Proc]
) -> dict[str, Service]:
    debian = profile.distro_id == "debian"
    rows = list(_SERVICES_DEBIAN if debian else _SERVICES_SYSTEMD)
    if profile.init != "systemd":
        rows = [("sshd", "", "sshd"), ("crond", "", "crond"), ("rsyslog", "", "rsyslogd"), ("auditd", "", "auditd")]
    rows += _ROLE_SERVICES[role]
    vendor = faults.get("conflicting-av")
    if vendor:
        name, description = AV_PRODUCTS[str(vendor)]["service"]
        rows.append((name, description, AV_PRODUCTS[str(vendor)]["procs"][0][2]))
    if faults.get("fapolicyd"):
        rows.append(("fapolicyd", "File Access Policy Daemon", "fapolicyd"))
    if agent.installed:
        rows.append(("mdatp", "Microsoft Defender", "wdavdaemon"))
    unit_dir = "/lib/systemd/system" if debian else "/usr/lib/systemd/system"
    by_comm: dict[str, int] = {}
    for proc in procs:
        by_comm.setdefault(proc.comm, proc.pid)
    services = {}
    for name, description, comm in rows:
        services[name] = Service(name, description, True, True, by_comm.get(comm, 0), f"{unit_dir}/{name}.service")
    return services


_PACKAGES = {
    9: {
        "bash": "5.1.8-9.el9",
        "coreutils": "8.32-35.el9",
        "curl": "7.76.1-29.el9_4",
        "procps-ng": "3.3.17-14.el9",
        "grep": "3.6-5.el9",
        "openssh-server": "8.7p1-38.el9",
        "systemd": "252-32.el9_4",
        "glibc": "2.34-100.el9_4.2",
        "python3": "3.9.18-3.el9_4.1",
        "policycoreutils": "3.6-2.1.el9",
        "selinux-policy-targeted": "38.1.35-2.el9_4",
        "audit": "3.1.2-2.el9",
        "dnf": "4.14.0-9.el9",
        "yum": "4.14.0-9.el9",
        "rpm": "4.16.1.3-29.el9",
        "openssl": "3.0.7-27.el9",
        "sudo": "1.9.5p2-10.el9_3",
        "which": "2.21-29.el9",
        "dnf-plugins-core": "4.3.0-13.el9",
    },
    8: {
        "bash": "4.4.20-5.el8",
        "coreutils": "8.30-15.el8",
        "curl": "7.61.1-34.el8_10.2",
        "procps-ng": "3.3.15-14.el8",
        "grep": "3.1-6.el8",
        "openssh-server": "8.0p1-24.el8",
        "systemd": "239-82.el8_10.1",
        "glibc": "2.28-251.el8_10.2",
        "platform-python": "3.6.8-62.el8_10",
        "policycoreutils": "2.9-26.el8_10",
        "selinux-policy-targeted": "3.14.3-139.el8_10",
        "audit": "3.1.2-1.el8",
        "dnf": "4.7.0-20.el8",
        "yum": "4.7.0-20.el8",
        "rpm": "4.14.3-31.el8",
        "openssl": "1.1.1k-12.el8_9",
        "sudo": "1.9.5p2-1.el8_9",
        "which": "2.21-20.el8",
        "dnf-plugins-core": "4.0.21-25.el8",
    },
    7: {
        "bash": "4.2.46-35.el7_9",
        "coreutils": "8.22-24.el7_9.2",
        "curl": "7.29.0-59.el7_9.2",
        "procps-ng": "3.3.10-28.el7",
        "grep": "2.20-3.el7",
        "openssh-server": "7.4p1-23.el7_9",
        "systemd": "219-78.el7_9.9",
        "glibc": "2.17-326.el7_9.3",
        "python": "2.7.5-94.el7_9",
        "policycoreutils": "2.5-34.el7",
        "selinux-policy-targeted": "3.13.1-268.el7_9.2",
        "audit": "2.8.5-4.el7",
        "yum": "3.4.3-168.el7",
        "rpm": "4.11.3-48.el7_9",
        "openssl": "1.0.2k-26.el7_9",
        "sudo": "1.8.23-10.el7_9.3",
        "which": "2.20-7.el7",
    },
    6: {
        "bash": "4.1.2-48.el6",
        "coreutils": "8.4-47.el6",
        "curl": "7.19.7-54.el6_10",
        "procps": "3.2.8-45.el6_9.3",
        "grep": "2.20-6.el6",
        "openssh-server": "5.3p1-124.el6_10",
        "upstart": "0.6.5-17.el6",
        "glibc": "2.12-1.212.el6_10.3",
        "python": "2.6.6-68.el6_10",
        "yum": "3.2.29-81.el6",
        "rpm": "4.8.0-59.el6",
        "openssl": "1.0.1e-58.el6_10",
        "sudo": "1.8.6p3-29.el6_10.4",
        "which": "2.19-6.el6",
    },
    5: {
        "bash": "3.2-33.el5_11.4",
        "coreutils": "5.97-34.el5_8.1",
        "curl": "7.15.5-17.el5_9",
        "rpm": "4.4.2.3-36.el5_11",
        "yum": "3.2.22-40.el5",
        "openssl": "0.9.8e-40.el5_11",
        "sudo": "1.7.2p1-29.el5_10",
    },
}
_DEBIAN_PACKAGES = {
    "bash": "5.2.15-2+b7",
    "coreutils": "9.1-1",
    "curl": "7.88.1-10+deb12u6",
    "procps": "2:4.0.2-3",
    "openssh-server": "1:9.2p1-2+deb12u3",
    "systemd": "252.26-1~deb12u2",
    "libc6": "2.36-9+deb12u7",
    "sudo": "1.9.13p3-1+deb12u1",
    "apt": "2.6.1",
    "gnupg": "2.2.40-1.1",
}
_ROLE_PACKAGES = {
    "db": {"postgresql-server": {7: "9.2.24-9.el7_9", 8: "13.14-1.module+el8.10.0+21404+2d5ab0e4", 9: "13.14-1.el9_3"}},
    "web": {"httpd": {7: "2.4.6-99.el7_9.1", 8: "2.4.37-65.module+el8.10.0+21982+14717793", 9: "2.4.57-8.el9"}},
    "ci": {"jenkins": {7: "2.426.3-1.1", 8: "2.462.1-1.1", 9: "2.462.1-1.1"}},
    "app": {},
}


def build_packages(profile: Profile, spec: HostSpec, faults: dict[str, Any], agent: AgentState) -> dict[str, str]:
    if profile.distro_id == "debian":
        packages = dict(_DEBIAN_PACKAGES)
        packages["linux-image-" + spec.kernel] = "6.1.99-1"
        if agent.installed:
            packages["mdatp"] = agent.version
        return packages
    major = profile.major
    arch = "x86_64"
    packages = {name: f"{version}.{arch}" for name, version in _PACKAGES[major].items()}
    kernel_name = "kernel-uek" if "uek" in spec.kernel else "kernel"
    packages[kernel_name] = spec.kernel if spec.kernel.endswith("x86_64") else spec.kernel + ".x86_64"
    for name, versions in _ROLE_PACKAGES[spec.role].items():
        if major in versions:
            packages[name] = f"{versions[major]}.{'noarch' if name == 'jenkins' else arch}"
    vendor = faults.get("conflicting-av")
    if vendor:
        name, version = AV_PRODUCTS[str(vendor)]["package"]
        packages[name] = version.format(major=major)
    if faults.get("fapolicyd") and major >= 8:
        packages["fapolicyd"] = f"1.3.2-100.el{major}.x86_64"
    if agent.installed:
        packages["mdatp"] = f"{agent.version}-1.x86_64"
    return packages
