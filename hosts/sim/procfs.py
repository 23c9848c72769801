"""/proc of a simulated host, computed on every read from the host's state and clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hosts.sim.files import cpuinfo, proc_version
from hosts.sim.vfs import Node

if TYPE_CHECKING:
    from hosts.sim.machine import Memory, Proc
    from hosts.sim.state import HostState

_FILES = ("meminfo", "stat", "loadavg", "uptime", "version", "cpuinfo", "mounts", "swaps", "filesystems")
_PID_FILES = ("cmdline", "comm", "status", "environ", "fdinfo", "fd")


class ProcFS:
    """The /proc tree of one host."""

    def __init__(self, state: HostState) -> None:
        self.state = state

    def lookup(self, path: str) -> Node | None:
        parts = path[len("/proc") :].strip("/").split("/") if path != "/proc" else []
        if not parts:
            return Node("d", 0o555)
        head = parts[0]
        if head in _FILES and len(parts) == 1:
            return Node("f", 0o444, data=lambda: self.render(head))
        if head == "sys":
            return self._sys(parts[1:])
        if head == "self" and len(parts) == 1:
            return Node("l", 0o777, data=str(self.state.current_pid or 1))
        if not head.isdigit():
            return None
        proc = self.state.find_proc(int(head))
        if proc is None:
            return None
        uid = self.state.uid_of(proc.user)
        if len(parts) == 1:
            return Node("d", 0o555, uid, uid)
        name = parts[1]
        if name in ("fdinfo", "fd"):
            if len(parts) == 2:
                return Node("d", 0o500, uid, uid)
            if len(parts) == 3 and parts[2].isdigit() and int(parts[2]) < self._nfds(proc):
                fd = int(parts[2])
                if name == "fd":
                    return Node("l", 0o700, uid, uid, data=self._fd_target(proc, fd))
                return Node("f", 0o444, uid, uid, data=lambda: self._fdinfo(proc, fd))
            return None
        if len(parts) != 2 or name not in _PID_FILES:
            return None
        mode = 0o400 if name == "environ" else 0o444
        return Node("f", mode, uid, uid, data=lambda: self._pid_file(proc, name))

    def listdir(self, path: str) -> list[str] | None:
        parts = path[len("/proc") :].strip("/").split("/") if path != "/proc" else []
        if not parts:
            pids = sorted(p.pid for p in self.state.all_procs())
            return [str(pid) for pid in pids] + list(_FILES) + ["self", "sys"]
        if parts[0] == "sys":
            return {0: ["kernel", "vm"], 1: ["hostname", "osrelease", "pid_max"]}.get(len(parts) - 1, [])
        if parts[0].isdigit():
            proc = self.state.find_proc(int(parts[0]))
            if proc is None:
                return None
            if len(parts) == 1:
                return list(_PID_FILES)
            if len(parts) == 2 and parts[1] in ("fdinfo", "fd"):
                return [str(fd) for fd in range(self._nfds(proc))]
        return None

    # files -----------------------------------------------------------------------------------
    def render(self, name: str) -> str:
        state = self.state
        if name == "meminfo":
            return meminfo(state.machine.memory, state.profile.kernel_tuple, state.profile.major >= 6)
        if name == "stat":
            return state.proc_stat()
        if name == "loadavg":
            return state.loadavg()
        if name == "uptime":
            up = state.uptime()
            return f"{up:.2f} {up * state.machine.cores * (1 - state.machine.busy):.2f}\n"
        if name == "version":
            return proc_version(state.profile, state.spec.kernel)
        if name == "cpuinfo":
            return cpuinfo(state.machine.cores, 2992.968)
        if name == "mounts":
            return "".join(f"{m.source} {_octal(m.target)} {m.fstype} {m.options} 0 0\n" for m in state.machine.mounts)
        if name == "swaps":
            mem = state.machine.memory
            if not mem.swap_total:
                return "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
            return (
                "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                f"/dev/dm-1                               partition\t{mem.swap_total}\t\t"
                f"{mem.swap_total - mem.swap_free}\t\t-2\n"
            )
        return "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\txfs\n\text4\nnodev\tcgroup2\n"

    def _sys(self, parts: list[str]) -> Node | None:
        if len(parts) <= 1:
            return Node("d", 0o555)
        if len(parts) == 2 and parts[0] == "kernel":
            values = {
                "hostname": self.state.spec.hostname,
                "osrelease": self.state.spec.kernel,
                "pid_max": str(self.state.pid_max),
            }
            if parts[1] in values:
                value = values[parts[1]]
                return Node("f", 0o644, data=value + "\n")
        return None

    def _nfds(self, proc: Proc) -> int:
        return 0 if proc.kernel else proc.nfds + (1 if proc.fanotify else 0)

    def _fd_target(self, proc: Proc, fd: int) -> str:
        if proc.fanotify and fd == proc.nfds:
            return "anon_inode:[fanotify]"
        return "/dev/null" if fd < 3 else f"socket:[{40000 + proc.pid * 7 + fd}]"

    def _fdinfo(self, proc: Proc, fd: int) -> str:
        mnt_id = self.state.root_mnt_id
        ino = f"ino:\t{1000 + fd}\n" if self.state.profile.kernel_tuple >= (5, 14) else ""
        if proc.fanotify and fd == proc.nfds:
            head = f"pos:\t0\nflags:\t02004002\nmnt_id:\t15\n{ino}"
            return head + "".join(line + "\n" for line in proc.fanotify)
        return f"pos:\t0\nflags:\t0{'100002' if fd < 3 else '2004002'}\nmnt_id:\t{mnt_id}\n{ino}"

    def _pid_file(self, proc: Proc, name: str) -> str:
        if name == "cmdline":
            if proc.kernel:
                return ""
            if ": " in proc.args.split(" ", 1)[0] or proc.args.startswith(("postgres:", "sshd:", "php-fpm:")):
                return proc.args + "\0"  # a process title set with setproctitle: one string
            return "\0".join(proc.args.split(" ")) + "\0"
        if name == "comm":
            return proc.comm + "\n"
        if name == "environ":
            return "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin\0LANG=en_US.UTF-8\0"
        uid = self.state.uid_of(proc.user)
        state = "R (running)" if proc.stat.startswith("R") else "I (idle)" if proc.kernel else "S (sleeping)"
        return (
            f"Name:\t{proc.comm}\nUmask:\t0022\nState:\t{state}\nTgid:\t{proc.pid}\nNgid:\t0\nPid:\t{proc.pid}\n"
            f"PPid:\t{proc.ppid}\nTracerPid:\t0\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
            f"FDSize:\t64\nVmSize:\t{proc.vsz:8d} kB\nVmRSS:\t{proc.rss:8d} kB\nThreads:\t{proc.threads}\n"
        )


def _octal(path: str) -> str:
    # /proc/mounts escapes spaces and tabs in paths as octal.
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")


def meminfo(m: Memory, kernel: tuple[int, int], available: bool = True) -> str:
    """/proc/meminfo in the kernel's layout (label padded to 16, value right-aligned in 8, " kB")."""
    active_anon = int(m.anon * 0.1)
    inactive_anon = m.anon - active_anon + m.shmem
    active_file = int(m.cached * 0.45)
    inactive_file = m.cached + m.buffers - active_file
    rows: list[tuple[str, int, bool]] = [("MemTotal", m.total, True), ("MemFree", m.free, True)]
    if available:
        rows.append(("MemAvailable", m.available, True))
    rows += [
        ("Buffers", m.buffers, True),
        ("Cached", m.cached, True),
        ("SwapCached", 0, True),
        ("Active", active_anon + active_file, True),
        ("Inactive", inactive_anon + inactive_file, True),
        ("Active(anon)", active_anon, True),
        ("Inactive(anon)", inactive_anon, True),
        ("Active(file)", active_file, True),
        ("Inactive(file)", inactive_file, True),
        ("Unevictable", 0, True),
        ("Mlocked", 0, True),
        ("SwapTotal", m.swap_total, True),
        ("SwapFree", m.swap_free, True),
    ]
    if kernel >= (6, 1):
        rows += [("Zswap", 0, True), ("Zswapped", 0, True)]
    rows += [
        ("Dirty", 184, True),
        ("Writeback", 0, True),
        ("AnonPages", m.anon, True),
        ("Mapped", int(m.cached * 0.12), True),
        ("Shmem", m.shmem, True),
    ]
    if kernel >= (4, 18):
        rows.append(("KReclaimable", m.sreclaimable, True))
    rows += [
        ("Slab", m.sreclaimable + m.sunreclaim, True),
        ("SReclaimable", m.sreclaimable, True),
        ("SUnreclaim", m.sunreclaim, True),
        ("KernelStack", 4000 + m.total // 2000, True),
        ("PageTables", 2000 + m.anon // 200, True),
    ]
    if kernel >= (6, 1):
        rows.append(("SecPageTables", 0, True))
    rows += [
        ("NFS_Unstable", 0, True),
        ("Bounce", 0, True),
        ("WritebackTmp", 0, True),
        ("CommitLimit", m.total // 2 + m.swap_total, True),
        ("Committed_AS", m.anon * 2 + m.total // 10, True),
        ("VmallocTotal", 34359738367, True),
        ("VmallocUsed", 20000 + m.total // 300, True),
        ("VmallocChunk", 0 if kernel >= (4, 0) else 34359640000, True),
    ]
    if kernel >= (4, 0):
        rows.append(("Percpu", 1000 + m.total // 1000, True))
    rows += [("HardwareCorrupted", 0, True), ("AnonHugePages", (m.anon // 4 // 2048) * 2048, True)]
    if kernel >= (4, 8):
        rows += [("ShmemHugePages", 0, True), ("ShmemPmdMapped", 0, True)]
    if kernel >= (5, 4):
        rows += [("FileHugePages", 0, True), ("FilePmdMapped", 0, True)]
    rows += [
        ("HugePages_Total", 0, False),
        ("HugePages_Free", 0, False),
        ("HugePages_Rsvd", 0, False),
        ("HugePages_Surp", 0, False),
        ("Hugepagesize", 2048, True),
    ]
    if kernel >= (4, 0):
        rows.append(("Hugetlb", 0, True))
    direct = m.total + 300000
    rows += [("DirectMap4k", 210000, True), ("DirectMap2M", direct - 210000, True)]
    if direct > 8 * 1024 * 1024:
        rows.append(("DirectMap1G", 2097152, True))
    # show_val_kb(): a 16-character label and an 8-wide value; HardwareCorrupted has its own "%5lu".
    return "".join(
        f"{label}: {value:>5} kB\n"
        if label == "HardwareCorrupted"
        else f"{label + ':':<16}{value:>8}{' kB' if kb else ''}\n"
        for label, value, kb in rows
    )
