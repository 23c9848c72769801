"""What runs on a simulated host: processes, mounts, memory, services and packages.

Everything here is derived deterministically from the host's seed, profile, role, faults and
agent state, so it can be rebuilt whenever a fault or the agent changes and comes out the same
for everything that did not change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hosts.sim.profiles import Profile

# Not-UTF-8 bytes (Latin-1 "é") as Python keeps them after decoding with surrogateescape.
BAD = "\udce9"


@dataclass(slots=True)
class Proc:
    """One process as ps and /proc show it."""

    pid: int
    ppid: int
    user: str
    comm: str
    args: str
    pcpu: float = 0.0  # lifetime average, percent of one CPU
    rss: int = 0  # kB
    vsz: int = 0  # kB
    start: float = 0.0  # epoch seconds (simulated clock)
    nfds: int = 3
    fanotify: tuple[str, ...] = ()  # extra fdinfo lines of a fanotify fd
    threads: int = 1
    stat: str = "Ss"
    kernel: bool = False


@dataclass(slots=True)
class Mount:
    """One mounted filesystem."""

    source: str
    target: str
    fstype: str
    options: str
    size_kb: int = 0
    used_kb: int = 0
    reserved_kb: int = 0  # ext4 root reserve: size > used + available
    inodes: int = 0
    iused: int = 0
    mnt_id: int = 0
    dummy: bool = False  # proc, sysfs, cgroup...: hidden from df
    bind: bool = False

    @property
    def avail_kb(self) -> int:
        return max(0, self.size_kb - self.used_kb - self.reserved_kb)


@dataclass(slots=True)
class Service:
    """A systemd unit (or SysV service) and its state."""

    name: str
    description: str
    active: bool = True
    enabled: bool = True
    main_pid: int = 0
    unit_path: str = ""


@dataclass
class Memory:
    """The figures /proc/meminfo shows, in kB."""

    total: int
    free: int
    available: int
    buffers: int
    cached: int
    shmem: int
    sreclaimable: int
    sunreclaim: int
    anon: int
    swap_total: int
    swap_free: int


@dataclass
class AgentState:
    """Microsoft Defender's package on the host; licence and modes are read from its files (``agent.py``)."""

    installed: bool = False
    version: str = ""
    channel: str = "prod"
    installed_at: float = 0.0
    # Local CLI settings, definitions, threats and pending quarantines (see ``agent.py``).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Machine:
    """Everything derived from the host's seed, faults and agent state."""

    cores: int
    busy: float  # fraction of all cores busy, on average
    memory: Memory
    mounts: list[Mount]
    procs: list[Proc]
    services: dict[str, Service]
    packages: dict[str, str]  # name -> version-release.arch (rpm) or version (dpkg)
    users: dict[str, tuple[int, int, str, str]]  # name -> uid, gid, home, shell


ROLES = ("app", "app", "app", "app", "db", "db", "web", "web", "web", "ci")

USERS_EL = {
    "root": (0, 0, "/root", "/bin/bash"),
    "bin": (1, 1, "/bin", "/sbin/nologin"),
    "daemon": (2, 2, "/sbin", "/sbin/nologin"),
    "adm": (3, 4, "/var/adm", "/sbin/nologin"),
    "lp": (4, 7, "/var/spool/lpd", "/sbin/nologin"),
    "sync": (5, 0, "/sbin", "/bin/sync"),
    "shutdown": (6, 0, "/sbin", "/sbin/shutdown"),
    "halt": (7, 0, "/sbin", "/sbin/halt"),
    "mail": (8, 12, "/var/spool/mail", "/sbin/nologin"),
    "operator": (11, 0, "/root", "/sbin/nologin"),
    "games": (12, 100, "/usr/games", "/sbin/nologin"),
    "ftp": (14, 50, "/var/ftp", "/sbin/nologin"),
    "nobody": (65534, 65534, "/", "/sbin/nologin"),
    "dbus": (81, 81, "/", "/sbin/nologin"),
    "tss": (59, 59, "/dev/null", "/sbin/nologin"),
    "sshd": (74, 74, "/var/empty/sshd", "/sbin/nologin"),
    "postfix": (89, 89, "/var/spool/postfix", "/sbin/nologin"),
    "polkitd": (998, 996, "/", "/sbin/nologin"),
    "chrony": (997, 995, "/var/lib/chrony", "/sbin/nologin"),
    "postgres": (26, 26, "/var/lib/pgsql", "/bin/bash"),
    "apache": (48, 48, "/usr/share/httpd", "/sbin/nologin"),
    "tomcat": (91, 91, "/opt/tomcat", "/sbin/nologin"),
    "jenkins": (996, 994, "/var/lib/jenkins", "/bin/false"),
    "fapolicyd": (995, 993, "/var/lib/fapolicyd", "/sbin/nologin"),
    "deploy": (1000, 1000, "/home/deploy", "/bin/bash"),
}
USERS_DEBIAN = {
    "root": (0, 0, "/root", "/bin/bash"),
    "daemon": (1, 1, "/usr/sbin", "/usr/sbin/nologin"),
    "bin": (2, 2, "/bin", "/usr/sbin/nologin"),
    "sys": (3, 3, "/dev", "/usr/sbin/nologin"),
    "nobody": (65534, 65534, "/nonexistent", "/usr/sbin/nologin"),
    "_apt": (42, 65534, "/nonexistent", "/usr/sbin/nologin"),
    "systemd-network": (998, 998, "/", "/usr/sbin/nologin"),
    "systemd-timesync": (997, 997, "/", "/usr/sbin/nologin"),
    "messagebus": (100, 107, "/nonexistent", "/usr/sbin/nologin"),
    "sshd": (101, 65534, "/run/sshd", "/usr/sbin/nologin"),
    "postgres": (102, 110, "/var/lib/postgresql", "/bin/bash"),
    "www-data": (33, 33, "/var/www", "/usr/sbin/nologin"),
    "tomcat": (103, 111, "/opt/tomcat", "/usr/sbin/nologin"),
    "jenkins": (104, 112, "/var/lib/jenkins", "/bin/bash"),
    "deploy": (1000, 1000, "/home/deploy", "/bin/bash"),
}

# (user, args, comm or "", pcpu, rss kB, vsz kB); comm defaults to argv[0]'s basename.
_Row = tuple[str, str, str, float, int, int]

_EL9_BASE: list[_Row] = [
    ("root", "/usr/lib/systemd/systemd-journald", "", 0.0, 24000, 35000),
    ("root", "/usr/lib/systemd/systemd-udevd", "", 0.0, 11800, 33000),
    ("root", "/sbin/auditd", "auditd", 0.0, 2400, 93000),
    ("dbus", "/usr/bin/dbus-broker-launch --scope system --audit", "dbus-broker-lau", 0.0, 4800, 20000),
    (
        "dbus",
        "dbus-broker --log 4 --controller 9 --machine-id 7a1f0c2e9b4d4e0f8c3b5a6d7e8f9012 --max-bytes 536870912"
        " --max-fds 4096 --max-matches 131072 --audit",
        "dbus-broker",
        0.0,
        3900,
        6300,
    ),
    ("root", "/usr/sbin/irqbalance --foreground", "", 0.0, 4100, 82000),
    ("polkitd", "/usr/lib/polkit-1/polkitd --no-debug", "polkitd", 0.0, 22000, 530000),
    ("root", "/usr/lib/systemd/systemd-logind", "", 0.0, 8200, 19000),
    ("chrony", "/usr/sbin/chronyd -F 2", "", 0.0, 4200, 85000),
    ("root", "/usr/bin/python3 -s /usr/sbin/firewalld --nofork --nopid", "firewalld", 0.0, 42000, 124000),
    ("root", "/usr/sbin/NetworkManager --no-daemon", "NetworkManager", 0.0, 19000, 256000),
    ("root", "/usr/bin/python3 -Es /usr/sbin/tuned -l -P", "tuned", 0.1, 31000, 385000),
    ("root", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", "sshd", 0.0, 9100, 16000),
    ("root", "/usr/sbin/rsyslogd -n", "", 0.0, 7000, 161000),
    ("root", "/usr/sbin/crond -n", "", 0.0, 3600, 222000),
    ("root", "/usr/sbin/gssproxy -D", "", 0.0, 6000, 225000),
    ("root", "/sbin/agetty -o -p -- \\u --noclear - linux", "agetty", 0.0, 1100, 6800),
]
_EL8_BASE: list[_Row] = [
    ("root", "/usr/lib/systemd/systemd-journald", "", 0.0, 21000, 110000),
    ("root", "/usr/lib/systemd/systemd-udevd", "", 0.0, 10500, 112000),
    ("root", "/sbin/auditd", "auditd", 0.0, 2700, 48000),
    (
        "dbus",
        "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only",
        "dbus-daemon",
        0.0,
        5200,
        73000,
    ),
    ("root", "/usr/sbin/irqbalance --foreground", "", 0.0, 4300, 84000),
    ("polkitd", "/usr/lib/polkit-1/polkitd --no-debug", "polkitd", 0.0, 23000, 1600000),
    ("root", "/usr/lib/systemd/systemd-logind", "", 0.0, 9300, 96000),
    ("chrony", "/usr/sbin/chronyd", "", 0.0, 3900, 144000),
    ("root", "/usr/libexec/platform-python -s /usr/sbin/firewalld --nofork --nopid", "firewalld", 0.0, 38000, 405000),
    ("root", "/usr/sbin/NetworkManager --no-daemon", "NetworkManager", 0.0, 17000, 392000),
    ("root", "/usr/libexec/platform-python -Es /usr/sbin/tuned -l -P", "tuned", 0.1, 30000, 620000),
    (
        "root",
        "/usr/sbin/sshd -D -oCiphers=aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,"
        "aes256-cbc,aes128-gcm@openssh.com,aes128-ctr,aes128-cbc -oMACs=hmac-sha2-256-etm@openssh.com,"
        "hmac-sha1-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha1,"
        "umac-128@openssh.com,hmac-sha2-512 -oGSSAPIKexAlgorithms=gss-curve25519-sha256-,gss-nistp256-sha256-,"
        "gss-group14-sha256-,gss-group16-sha512-,gss-gex-sha1-,gss-group14-sha1- -oKexAlgorithms=curve25519-sha256,"
        "curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
        "diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,"
        "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha1",
        "sshd",
        0.0,
        7900,
        93000,
    ),
    ("root", "/usr/sbin/rsyslogd -n", "", 0.0, 6800, 215000),
    ("root", "/usr/sbin/crond -n", "", 0.0, 3500, 36000),
    ("root", "/usr/sbin/gssproxy -D", "", 0.0, 4600, 553000),
    ("root", "/usr/bin/rhsmcertd", "", 0.0, 2400, 60000),
    ("root", "/sbin/agetty -o -p -- \\u --noclear tty1 linux", "agetty", 0.0, 2200, 13000),
]
_EL7_BASE: list[_Row] = [
    ("root", "/usr/lib/systemd/systemd-journald", "", 0.0, 5800, 39000),
    ("root", "/usr/sbin/lvmetad -f", "", 0.0, 1800, 125000),
    ("root", "/usr/lib/systemd/systemd-udevd", "", 0.0, 2100, 46000),
    ("root", "/sbin/auditd", "auditd", 0.0, 1100, 55000),
    (
        "dbus",
        "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation",
        "dbus-daemon",
        0.0,
        2300,
        58000,
    ),
    ("root", "/usr/sbin/irqbalance --foreground", "", 0.0, 1000, 21000),
    ("polkitd", "/usr/lib/polkit/polkitd --no-debug", "polkitd", 0.0, 13000, 613000),
    ("root", "/usr/lib/systemd/systemd-logind", "", 0.0, 1800, 26000),
    ("chrony", "/usr/sbin/chronyd", "", 0.0, 1900, 117000),
    ("root", "/usr/bin/python2 -Es /usr/sbin/firewalld --nofork --nopid", "firewalld", 0.0, 29000, 358000),
    ("root", "/usr/sbin/NetworkManager --no-daemon", "NetworkManager", 0.0, 9000, 553000),
    ("root", "/usr/bin/python2 -Es /usr/sbin/tuned -l -P", "tuned", 0.1, 19000, 574000),
    ("root", "/usr/sbin/sshd -D", "", 0.0, 4300, 112000),
    ("root", "/usr/sbin/rsyslogd -n", "", 0.0, 4000, 216000),
    ("root", "/usr/sbin/crond -n", "", 0.0, 1700, 126000),
    ("root", "/usr/libexec/postfix/master -w", "master", 0.0, 2100, 89000),
    ("postfix", "qmgr -l -t unix -u", "qmgr", 0.0, 4100, 89000),
    ("postfix", "pickup -l -t unix -u", "pickup", 0.0, 4000, 89000),
    ("root", "/sbin/agetty --noclear tty1 linux", "agetty", 0.0, 850, 110000),
]
_EL6_BASE: list[_Row] = [
    ("root", "/sbin/udevd -d", "udevd", 0.0, 1200, 11000),
    ("root", "auditd", "auditd", 0.0, 900, 93000),
    ("root", "/sbin/rsyslogd -i /var/run/syslogd.pid -c 5", "rsyslogd", 0.0, 1600, 249000),
    ("root", "irqbalance --pid=/var/run/irqbalance.pid", "irqbalance", 0.0, 800, 9000),
    ("dbus", "dbus-daemon --system", "dbus-daemon", 0.0, 1000, 21000),
    ("root", "/usr/sbin/sshd", "sshd", 0.0, 1200, 66000),
    ("ntp", "ntpd -u ntp:ntp -p /var/run/ntpd.pid -g", "ntpd", 0.0, 1800, 30000),
    ("root", "/usr/libexec/postfix/master", "master", 0.0, 3400, 81000),
    ("postfix", "qmgr -l -t fifo -u", "qmgr", 0.0, 3400, 81000),
    ("postfix", "pickup -l -t fifo -u", "pickup", 0.0, 3300, 81000),
    ("root", "crond", "crond", 0.0, 1300, 117000),
    ("root", "/usr/sbin/atd", "atd", 0.0, 500, 21000),
    ("root", "/sbin/mingetty /dev/tty1", "mingetty", 0.0, 700, 4000),
    ("root", "/sbin/mingetty /dev/tty2", "mingetty", 0.0, 700, 4000),
]
_EL5_BASE: list[_Row] = [
    ("root", "/sbin/udevd -d", "udevd", 0.0, 700, 12000),
    ("root", "syslogd -m 0", "syslogd", 0.0, 600, 5900),
    ("root", "klogd -x", "klogd", 0.0, 400, 3800),
    ("root", "auditd", "auditd", 0.0, 700, 90000),
    ("root", "/usr/sbin/sshd", "sshd", 0.0, 1000, 62000),
    ("root", "crond", "crond", 0.0, 1100, 74000),
    ("root", "/sbin/mingetty tty1", "mingetty", 0.0, 500, 3800),
]
_DEBIAN_BASE: list[_Row] = [
    ("root", "/lib/systemd/systemd-journald", "", 0.0, 17000, 41000),
    ("root", "/lib/systemd/systemd-udevd", "", 0.0, 6700, 26000),
    ("systemd-timesync", "/lib/systemd/systemd-timesyncd", "", 0.0, 6600, 90000),
    ("root", "/usr/sbin/cron -f", "cron", 0.0, 2700, 6600),
    (
        "messagebus",
        "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only",
        "dbus-daemon",
        0.0,
        4800,
        9100,
    ),
    ("root", "/lib/systemd/systemd-logind", "", 0.0, 7800, 25000),
    ("root", "/usr/sbin/rsyslogd -n -iNONE", "rsyslogd", 0.0, 4300, 222000),
    (
        "root",
        "dhclient -4 -v -i -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases -I"
        " -df /var/lib/dhcp/dhclient6.eth0.leases eth0",
        "dhclient",
        0.0,
        5900,
        5900,
    ),
    ("root", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", "sshd", 0.0, 9300, 15000),
    (
        "root",
        "/usr/bin/python3 /usr/share/unattended-upgrades/unattended-upgrade-shutdown --wait-for-signal",
        "unattended-upgr",
        0.0,
        21000,
        110000,
    ),
    ("root", "/sbin/agetty -o -p -- \\u --noclear - linux", "agetty", 0.0, 1900, 5900),
]

KTHREADS_NEW = [
    "rcu_gp",
    "rcu_par_gp",
    "slub_flushwq",
    "netns",
    "kworker/0:0H-events_highpri",
    "mm_percpu_wq",
    "rcu_tasks_kthre",
    "rcu_preempt",
    "kdevtmpfs",
    "inet_frag_wq",
    "kauditd",
    "khungtaskd",
    "oom_reaper",
    "writeback",
    "kcompactd0",
    "ksmd",
    "khugepaged",
    "kintegrityd",
    "kblockd",
    "kswapd0",
    "kthrotld",
    "xfsalloc",
    "xfs_mru_cache",
    "xfsaild/dm-0",
    "kworker/u4:2-events_unbound",
]
KTHREADS_OLD = [
    "migration/0",
    "ksoftirqd/0",
    "watchdog/0",
    "events/0",
    "khelper",
    "kblockd/0",
    "kswapd0",
    "kauditd",
    "jbd2/dm-0-8",
    "ext4-dio-unwrit",
    "flush-253:0",
]


def base_rows(profile: Profile) -> list[_Row]:
    if profile.distro_id == "debian":
        return _DEBIAN_BASE
    return {5: _EL5_BASE, 6: _EL6_BASE, 7: _EL7_BASE, 8: _EL8_BASE}.get(profile.major, _EL9_BASE)


def init_args(profile: Profile) -> str:
    if profile.distro_id == "debian":
        return "/sbin/init"
    return {
        5: "init [3]",
        6: "/sbin/init",
        7: "/usr/lib/systemd/systemd --switched-root --system --deserialize 22",
        8: "/usr/lib/systemd/systemd --switched-root --system --deserialize 18",
    }.get(profile.major, "/usr/lib/systemd/systemd --switched-root --system --deserialize 31")


def workload_rows(profile: Profile, role: str, mem_kb: int) -> list[_Row]:
    """The role's application processes, sized to the host's memory."""
    big = int(mem_kb * 0.22)
    el = profile.distro_id != "debian"
    old = profile.major <= 7 and el
    if role == "db":
        if not el:
            main = "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf"
            comm, suffix = "postgres", ""
        elif old:
            main = (
                "/usr/bin/postgres -D /var/lib/pgsql/data -p 5432"
                if profile.major == 7
                else "/usr/bin/postmaster -p 5432 -D /var/lib/pgsql/data"
            )
            comm, suffix = ("postgres" if profile.major == 7 else "postmaster"), " process"
        else:
            main = "/usr/bin/postmaster -D /var/lib/pgsql/data"
            comm, suffix = "postmaster", ""
        names = ["logger", "checkpointer", "background writer", "walwriter", "autovacuum launcher", "stats collector"]
        if old:
            names = ["logger", "checkpointer", "writer", "wal writer", "autovacuum launcher", "stats collector"]
        rows: list[_Row] = [("postgres", main, comm, 0.4, big // 20, big + 200000)]
        rows += [
            ("postgres", f"postgres: {n}{suffix}", comm, 0.1, big // (4 if n == "checkpointer" else 40), big)
            for n in names
        ]
        rows += [
            ("postgres", "postgres: app appdb 10.20.4.31(51532) idle", comm, 2.5, big // 6, big + 4000),
            ("postgres", "postgres: app appdb 10.20.4.32(40112) SELECT", comm, 9.0, big // 5, big + 4000),
        ]
        return rows
    if role == "ci":
        if old:
            args = (
                "/etc/alternatives/java -Dcom.sun.akuma.Daemon=daemonized -Djava.awt.headless=true"
                " -DJENKINS_HOME=/var/lib/jenkins -jar /usr/lib/jenkins/jenkins.war"
                " --logfile=/var/log/jenkins/jenkins.log --webroot=/var/cache/jenkins/war --daemon"
                " --httpPort=8080 --debug=5 --handlerCountMax=100 --handlerCountMaxIdle=20"
            )
        else:
            args = (
                "/usr/bin/java -Djava.awt.headless=true -jar /usr/share/java/jenkins.war"
                " --webroot=%C/jenkins/war --httpPort=8080"
            )
        return [("jenkins", args, "java", 18.0, int(mem_kb * 0.3), int(mem_kb * 0.9) + 3000000)]
    if role == "web":
        user = "www-data" if not el else "apache"
        if not el:
            httpd = "/usr/sbin/apache2 -k start"
        elif profile.major <= 6:
            httpd = "/usr/sbin/httpd"
        else:
            httpd = "/usr/sbin/httpd -DFOREGROUND"
        comm = httpd.split()[0].rsplit("/", 1)[-1]
        rows = [("root", httpd, comm, 0.1, 11000, 270000)]
        rows += [(user, httpd, comm, 1.5, 9000 + i * 700, 1800000) for i in range(4)]
        if profile.major >= 7 or not el:
            rows.append(("root", "php-fpm: master process (/etc/php-fpm.conf)", "php-fpm", 0.1, 26000, 390000))
            rows += [(user, "php-fpm: pool www", "php-fpm", 4.0, 48000 + i * 3000, 420000) for i in range(3)]
        return rows
    java = "/usr/lib/jvm/jre/bin/java" if el else "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
    args = (
        f"{java} -Djava.util.logging.config.file=/opt/tomcat/conf/logging.properties"
        " -Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager -Xms1024m -Xmx2048m"
        " -Djdk.tls.ephemeralDHKeySize=2048 -Djava.protocol.handler.pkgs=org.apache.catalina.webresources"
        " -Dorg.apache.catalina.security.SecurityListener.UMASK=0027 -Dignore.endorsed.dirs="
        " -classpath /opt/tomcat/bin/bootstrap.jar:/opt/tomcat/bin/tomcat-juli.jar -Dcatalina.base=/opt/tomcat"
        " -Dcatalina.home=/opt/tomcat -Djava.io.tmpdir=/opt/tomcat/temp org.apache.catalina.startup.Bootstrap start"
    )
    return [("tomcat", args, "java", 12.0, int(mem_kb * 0.25), int(mem_kb * 0.8) + 2500000)]


# Other antivirus: processes (fanotify holder marked), the service the installer looks for, a package.
AV_PRODUCTS: dict[str, dict[str, Any]] = {
    "trend": {
        "procs": [
            ("root", "/opt/ds_agent/ds_agent -w /var/opt/ds_agent -b -i -e /opt/ds_agent/ext", "ds_agent", False),
            ("root", "/opt/ds_agent/ds_am -g ../diag -v 5 -s 1", "ds_am", True),
        ],
        "service": ("ds_agent", "Trend Micro Deep Security Agent"),
        "package": ("ds_agent", "20.0.1-9400.el{major}.x86_64"),
    },
    "mcafee": {
        "procs": [
            ("root", "/opt/McAfee/agent/bin/masvc self_start", "masvc", False),
            ("root", "/opt/McAfee/ens/tp/bin/mfetpd -P 8008", "mfetpd", True),
            ("root", "/opt/McAfee/ens/esp/bin/mfeespd", "mfeespd", False),
        ],
        "service": ("MFEcma", "McAfee Agent"),
        "package": ("MFEcma", "5.7.9-123.x86_64"),
    },
    "carbonblack": {
        "procs": [("root", "/usr/sbin/cbdaemon", "cbdaemon", False)],
        "service": ("cbsensor", "LSB: Carbon Black Sensor"),
        "package": ("cb-linux-sensor", "6.2.5-1.el{major}.x86_64"),
    },
    "sophos": {
        "procs": [
            ("root", "/opt/sophos-spl/base/bin/sophos_watchdog", "sophos_watchdog", False),
            ("root", "/opt/sophos-spl/plugins/av/sbin/soapd", "soapd", True),
        ],
        "service": ("sophos-spl", "Sophos Linux Protection"),
        "package": ("sophos-spl", "1.0.0-1.x86_64"),
    },
}

AGENT_PROCS = [
    ("root", "/opt/microsoft/mdatp/sbin/wdavdaemon", 0.25, 160000, 1500000),
    ("root", "/opt/microsoft/mdatp/sbin/wdavdaemon edr 12 11 --log_level info", 0.15, 210000, 1700000),
    ("mdatp", "/opt/microsoft/mdatp/sbin/wdavdaemon unprivileged 16 15 --log_level info", 0.6, 480000, 2600000),
    ("root", "/opt/microsoft/mdatp/sbin/telemetryd_v2", 0.0, 42000, 700000),
    (
        "root",
        "/opt/microsoft/mdatp/sbin/crashpad_handler --no-rate-limit --database=/var/opt/microsoft/mdatp/crash",
        0.0,
        6000,
        300000,
    ),
]


def fanotify_lines(mounts: list[Mount], mask: str) -> tuple[str, ...]:
    """fdinfo lines of a fanotify group watching every real mount (kernel fs/notify/fdinfo.c format)."""
    lines = ["fanotify flags:5 event-flags:8000"]
    lines += [f"fanotify mnt_id:{m.mnt_id:x} mflags:0 mask:{mask} ignored_mask:0" for m in mounts if not m.dummy]
    return tuple(lines)


def build_mounts(
    profile: Profile, hostname: str, rng: random.Random, mem_kb: int, faults: dict[str, Any]
) -> list[Mount]:
    """The host's mounts, /proc/mounts order; sizes in 1K blocks."""
    gb = 1024 * 1024
    el6 = profile.major <= 6 and profile.distro_id != "debian"
    fs = profile.root_fs
    opts = (
        "rw,seclabel,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota" if fs == "xfs" else "rw,seclabel,relatime"
    )
    if not profile.selinux:
        opts = opts.replace("seclabel,", "")
    mounts: list[Mount] = []
    next_id = iter(range(21, 400))

    def add(source: str, target: str, fstype: str, size: int, used_frac: float, **kw: Any) -> Mount:
        size -= size % 4  # filesystems count in 4 KiB blocks
        used = int(size * used_frac) // 4 * 4
        inodes = size // 2 if fstype == "xfs" else size // 16 if fstype.startswith("ext") else mem_kb // 4
        iused = max(1, int(inodes * used_frac * rng.uniform(0.05, 0.3))) if fstype != "tmpfs" else rng.randint(1, 900)
        mount = Mount(
            source,
            target,
            fstype,
            kw.pop("options", opts),
            size,
            used,
            inodes=inodes,
            iused=iused,
            mnt_id=next(next_id),
            **kw,
        )
        if fstype.startswith("ext") and target == "/":
            mount.reserved_kb = size // 20
        mounts.append(mount)
        return mount

    for source, target, fstype in _pseudo_mounts(profile):
        mounts.append(
            Mount(source, target, fstype, "rw,nosuid,nodev,noexec,relatime", mnt_id=next(next_id), dummy=True)
        )
    if not el6:
        dev_size = 4096 if profile.major >= 9 and profile.distro_id != "debian" else mem_kb // 2
        add(
            "udev" if profile.distro_id == "debian" else "devtmpfs",
            "/dev",
            "devtmpfs",
            dev_size,
            0.0,
            options=f"rw,nosuid,seclabel,size={dev_size}k,nr_inodes={mem_kb // 16},mode=755",
        )
    add("tmpfs", "/dev/shm", "tmpfs", mem_kb // 2, 0.0, options="rw,nosuid,nodev,seclabel")
    if not el6:
        run_size = mem_kb // 5 if profile.major >= 9 or profile.distro_id == "debian" else mem_kb // 2
        add("tmpfs", "/run", "tmpfs", run_size, rng.uniform(0.002, 0.03), options="rw,nosuid,nodev,seclabel,mode=755")
    if profile.cgroup_v1 and not el6:
        add("tmpfs", "/sys/fs/cgroup", "tmpfs", mem_kb // 2, 0.0, options="ro,nosuid,nodev,noexec,seclabel,mode=755")
    disk = "vda" if rng.random() < 0.5 else "sda"
    if profile.distro_id == "debian":
        root = add(f"/dev/{disk}1", "/", "ext4", rng.choice([20, 30, 50]) * gb, rng.uniform(0.15, 0.55))
        add("tmpfs", "/run/lock", "tmpfs", 5120, 0.0, options="rw,nosuid,nodev,noexec,relatime,size=5120k")
        add(f"/dev/{disk}15", "/boot/efi", "vfat", 126678, 0.05, options="rw,relatime,fmask=0022,dmask=0022")
    else:
        # RHEL 6 Anaconda: vg_<hostname> with everything but letters, digits, "." and "_" dropped.
        vg = profile.vg.replace("{host}", "".join(c for c in hostname.split(".")[0] if c.isalnum() or c in "._"))
        mapper = f"/dev/mapper/{vg.replace('-', '--')}"
        root_name = "lv_root" if el6 else "root"
        root = add(f"{mapper}-{root_name}", "/", fs, rng.choice([20, 30, 40, 50, 70]) * gb, rng.uniform(0.12, 0.55))
        boot_size = 487652 if profile.major <= 6 else 1038336
        add(f"/dev/{disk}1", "/boot", fs, boot_size, rng.uniform(0.2, 0.45))
        if not el6 and rng.random() < 0.8:
            add(f"{mapper}-var", "/var", fs, rng.choice([10, 20, 30]) * gb, rng.uniform(0.1, 0.5))
        add(
            f"{mapper}-{'lv_home' if el6 else 'home'}",
            "/home",
            fs,
            rng.choice([5, 10, 20]) * gb,
            rng.uniform(0.01, 0.2),
        )
        if profile.major >= 7 and rng.random() < 0.35:
            # Anaconda names the VG rhel_<hostname> when "rhel" is taken; LVM doubles dashes in dm names.
            long_vg = f"{vg}_{hostname}".replace("-", "--")
            add(f"/dev/mapper/{long_vg}-var_log_audit", "/var/log/audit", fs, 4 * gb, rng.uniform(0.05, 0.4))
    if profile.major >= 7 or profile.distro_id == "debian":
        add("tmpfs", "/run/user/0", "tmpfs", mem_kb // 10, 0.0, options="rw,nosuid,nodev,relatime,seclabel,mode=700")
    if rng.random() < 0.3:
        data = add(root.source, "/srv/data", root.fstype, root.size_kb, 0.0, bind=True)
        data.used_kb = root.used_kb
    if faults.get("bad-utf8"):
        add("/dev/sdb1", f"/mnt/donn{BAD}es", fs, 100 * gb, 0.42)
    if "disk-full" in faults:
        pct = float(faults["disk-full"])
        for mount in mounts:
            if mount.target in ("/", "/var"):
                free = min(int(mount.size_kb * (100 - pct) / 100), rng.randint(300_000, 450_000)) // 4 * 4
                mount.used_kb = mount.size_kb - mount.reserved_kb - free
    return mounts


def _pseudo_mounts(profile: Profile) -> list[tuple[str, str, str]]:
    rows = [("sysfs", "/sys", "sysfs"), ("proc", "/proc", "proc")]
    if profile.major >= 7 or profile.distro_id == "debian":
        rows += [("securityfs", "/sys/kernel/security", "securityfs"), ("devpts", "/dev/pts", "devpts")]
        rows.append(
            ("cgroup2", "/sys/fs/cgroup", "cgroup2")
            if not profile.cgroup_v1
            else ("cgroup", "/sys/fs/cgroup/systemd", "cgroup")
        )
        rows += [("pstore", "/sys/fs/pstore", "pstore"), ("bpf", "/sys/fs/bpf", "bpf")]
        if profile.selinux:
            rows.append(("selinuxfs", "/sys/fs/selinux", "selinuxfs"))
        rows += [
            ("mqueue", "/dev/mqueue", "mqueue"),
            ("hugetlbfs", "/dev/hugepages", "hugetlbfs"),
            ("debugfs", "/sys/kernel/debug", "debugfs"),
            ("configfs", "/sys/kernel/config", "configfs"),
        ]
    else:
        rows += [("devpts", "/dev/pts", "devpts"), ("none", "/proc/sys/fs/binfmt_misc", "binfmt_misc")]
    return rows


def build_memory(rng: random.Random, total_kb: int, anon_kb: int, swap_kb: int) -> Memory:
    """/proc/meminfo figures: anonymous use as given, the rest split into cache, buffers and free."""
    anon = min(anon_kb, int(total_kb * 0.85))
    slab_r = int(total_kb * rng.uniform(0.015, 0.04))
    slab_u = int(total_kb * rng.uniform(0.01, 0.02))
    rest = total_kb - anon - slab_r - slab_u
    cached = int(rest * rng.uniform(0.25, 0.6))
    buffers = int(rest * rng.uniform(0.005, 0.03))
    free = max(total_kb // 50, rest - cached - buffers)
    shmem = int(total_kb * rng.uniform(0.002, 0.02))
    available = min(total_kb, free + int(cached * 0.85) + buffers + int(slab_r * 0.6))
    swap_used = int(swap_kb * rng.uniform(0.0, 0.05)) if swap_kb and rng.random() < 0.4 else 0
    return Memory(total_kb, free, available, buffers, cached, shmem, slab_r, slab_u, anon, swap_kb, swap_kb - swap_used)


def mem_total_kb(memory_mb: int) -> int:
    """MemTotal for a machine of that size: firmware holes and the crash kernel take their share."""
    nominal = memory_mb * 1024
    crash = 262144 if memory_mb >= 4096 else 163840 if memory_mb >= 2048 else 0
    return (nominal - int(nominal * 0.028) - crash) // 4 * 4
