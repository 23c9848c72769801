"""Pure parsers for what real RHEL-family tools print: os-release, /proc files, df, ps, curl.

Every function takes text and returns plain dicts and lists; nothing here touches Django,
the network or the clock, so the steps, the simulated fleet and the tests share one reading.
Values a host did not give are ``None``, never a guess.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import TypedDict

# --------------------------------------------------------------------------- distribution


def parse_os_release(text: str) -> dict[str, str]:
    """Parse ``/etc/os-release`` (shell-style KEY=value lines) into {KEY: value}."""
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        try:
            # os-release(5) allows shell quoting and backslash escapes; shlex reads them as sh would.
            words = shlex.split(value, comments=False, posix=True)
        except ValueError:
            words = [value.strip().strip("\"'")]
        fields[key] = " ".join(words)
    return fields


# Longest names first: "CentOS Stream" before "CentOS", "Red Hat Enterprise Linux" variants by prefix.
_REDHAT_RELEASE_IDS: tuple[tuple[str, str], ...] = (
    ("red hat enterprise linux", "rhel"),
    ("centos stream", "centos"),
    ("centos", "centos"),
    ("oracle linux", "ol"),
    ("enterprise linux", "ol"),  # Oracle Enterprise Linux 5 and early 6
    ("rocky linux", "rocky"),
    ("almalinux", "almalinux"),
    ("fedora", "fedora"),
    ("amazon linux", "amzn"),
    ("scientific linux", "scientific"),
    ("cloudlinux", "cloudlinux"),
)
_REDHAT_RELEASE_RE = re.compile(
    r"^(?P<name>.+?)\s+release\s+(?P<version>\d+(?:\.\d+)*)(?:\s+\((?P<codename>[^)]*)\))?", re.IGNORECASE
)


def parse_redhat_release(text: str) -> dict[str, str]:
    """Parse ``/etc/redhat-release`` ("CentOS Linux release 7.9.2009 (Core)") into id, version_id, name, codename."""
    line = next((raw.strip() for raw in text.splitlines() if raw.strip()), "")
    match = _REDHAT_RELEASE_RE.match(line)
    if not match:
        return {}
    name = match.group("name").strip()
    lowered = name.lower()
    distro_id = next((ident for prefix, ident in _REDHAT_RELEASE_IDS if lowered.startswith(prefix)), "")
    return {
        "id": distro_id,
        "version_id": match.group("version"),
        "name": name,
        "codename": match.group("codename") or "",
        "pretty_name": line,
    }


# --------------------------------------------------------------------------- memory


class Memory(TypedDict):
    """Memory figures in MB (one decimal); ``available_estimated`` when the kernel has no MemAvailable."""

    total_mb: float | None
    available_mb: float | None
    used_mb: float | None
    free_mb: float | None
    swap_total_mb: float | None
    swap_used_mb: float | None
    available_estimated: bool


def parse_meminfo_kb(text: str) -> dict[str, int]:
    """Read ``/proc/meminfo`` into {field: value}; values are kB except the unitless HugePages_* counts."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$", line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


def _mb(kb: int | None) -> float | None:
    """kB → MB with one decimal (None stays None)."""
    return None if kb is None else round(kb / 1024, 1)


def parse_meminfo(text: str) -> Memory:
    """Total, available, used and swap in MB; used = total - available, as free(1) reports it today."""
    kb = parse_meminfo_kb(text)
    total = kb.get("MemTotal")
    free = kb.get("MemFree")
    available = kb.get("MemAvailable")
    estimated = False
    if available is None and free is not None:
        # Kernels before 3.14 (RHEL 6 up to 6.5) lack MemAvailable; free+buffers+cache is the old reading.
        available = free + kb.get("Buffers", 0) + kb.get("Cached", 0)
        estimated = True
    if available is not None and total is not None:
        available = min(available, total)
    used = total - available if total is not None and available is not None else None
    swap_total = kb.get("SwapTotal")
    swap_free = kb.get("SwapFree")
    swap_used = swap_total - swap_free if swap_total is not None and swap_free is not None else None
    return {
        "total_mb": _mb(total),
        "available_mb": _mb(available),
        "used_mb": _mb(used),
        "free_mb": _mb(free),
        "swap_total_mb": _mb(swap_total),
        "swap_used_mb": _mb(swap_used),
        "available_estimated": estimated,
    }


# --------------------------------------------------------------------------- cpu and load

# Field names of the aggregate "cpu" line of /proc/stat, in kernel order (proc(5)).
_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def parse_proc_stat_cpu(line: str) -> dict[str, int] | None:
    """Read the aggregate ``cpu`` line of /proc/stat (4 to 10 counters) into named jiffies; None if absent."""
    for candidate in line.splitlines() or [line]:
        parts = candidate.split()
        if len(parts) >= 5 and parts[0] == "cpu" and all(p.isdigit() for p in parts[1:]):
            counters = [int(p) for p in parts[1:]]
            values = {name: (counters[i] if i < len(counters) else 0) for i, name in enumerate(_CPU_FIELDS)}
            values["fields"] = len(counters)
            return values
    return None


def _cpu_total(values: dict[str, int]) -> int:
    """All jiffies spent; guest time is already counted inside user and nice, so it is not added twice."""
    return sum(values[name] for name in _CPU_FIELDS[:8])


def cpu_busy_pct(first: dict[str, int], second: dict[str, int]) -> float | None:
    """Busy % between two readings: delta(total - idle - iowait) / delta(total); None when no time passed."""
    total = _cpu_total(second) - _cpu_total(first)
    if total <= 0:
        return None
    waiting = (second["idle"] + second["iowait"]) - (first["idle"] + first["iowait"])
    busy = (total - waiting) / total * 100
    return round(min(100.0, max(0.0, busy)), 1)


class LoadAvg(TypedDict):
    """The five fields of /proc/loadavg."""

    load_1: float
    load_5: float
    load_15: float
    running: int | None
    total: int | None
    last_pid: int | None


def parse_loadavg(text: str) -> LoadAvg | None:
    """Read ``/proc/loadavg`` ("0.42 0.35 0.30 2/345 12873"); None if it does not look like one."""
    match = re.match(r"^\s*(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)(?:\s+(\d+)/(\d+))?(?:\s+(\d+))?", text)
    if not match:
        return None
    running, total, last_pid = (int(g) if g is not None else None for g in match.groups()[3:6])
    return {
        "load_1": float(match.group(1)),
        "load_5": float(match.group(2)),
        "load_15": float(match.group(3)),
        "running": running,
        "total": total,
        "last_pid": last_pid,
    }


# --------------------------------------------------------------------------- df


class Filesystem(TypedDict):
    """One row of ``df -P [-T] -k``; sizes in kB, ``None`` where df printed ``-``."""

    device: str
    type: str | None
    mount: str
    size_kb: int | None
    used_kb: int | None
    avail_kb: int | None
    use_pct: int | None


class InodeUsage(TypedDict):
    """One row of ``df -P -i``; ``None`` where df printed ``-`` (btrfs, vfat)."""

    device: str
    mount: str
    inodes: int | None
    inodes_used: int | None
    inodes_free: int | None
    inodes_use_pct: int | None


_NUM = r"(\d+|-)"
_PCT = r"(\d+%|-)"
# The device is lazy and the mount point greedy: mount points may hold spaces, device names rarely do.
_DF_TYPED_RE = re.compile(rf"^(?P<device>.+?)\s+(?P<type>\S+)\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_PCT}\s+(?P<mount>/.*)$")
_DF_PLAIN_RE = re.compile(rf"^(?P<device>.+?)\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_PCT}\s+(?P<mount>/.*)$")


def _int_or_none(value: str) -> int | None:
    """A df/ps number, ``-`` (unknown) as None."""
    value = value.rstrip("%")
    return int(value) if value.isdigit() else None


def _df_rows(text: str, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    """Match df data lines, joining a long device name that df wrapped onto a line of its own."""
    matches: list[re.Match[str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or (not pending and line.startswith("Filesystem")):
            continue
        candidate = f"{pending} {line.strip()}" if pending else line.strip()
        match = pattern.match(candidate)
        if match:
            matches.append(match)
            pending = ""
        elif len(candidate.split()) == 1:
            # Without -P, df puts a device name wider than its column alone on a line.
            pending = candidate
        else:
            pending = ""  # an error line ("df: '/x': No such file or directory"): skip it
    return matches


def _dedupe(rows: list[Filesystem]) -> list[Filesystem]:
    """Drop bind mounts: a real device (a path or host:/export) listed again with the same figures."""
    seen: set[tuple[str, int | None, int | None]] = set()
    kept: list[Filesystem] = []
    for row in rows:
        key = (row["device"], row["size_kb"], row["used_kb"])
        # tmpfs, proc and friends are all called "tmpfs"/"none": distinct filesystems, never merged.
        if "/" in row["device"] and key in seen:
            continue
        seen.add(key)
        kept.append(row)
    return kept


def parse_df(text: str, with_type: bool, dedupe: bool = False) -> list[Filesystem]:
    """Read ``df -P -k`` (``with_type``: ``df -P -T -k``) output; ``dedupe`` drops bind-mount repeats."""
    rows: list[Filesystem] = []
    for match in _df_rows(text, _DF_TYPED_RE if with_type else _DF_PLAIN_RE):
        numbers = match.groups()[2:6] if with_type else match.groups()[1:5]
        rows.append(
            {
                "device": match.group("device"),
                "type": match.group("type") if with_type else None,
                "mount": match.group("mount"),
                "size_kb": _int_or_none(numbers[0]),
                "used_kb": _int_or_none(numbers[1]),
                "avail_kb": _int_or_none(numbers[2]),
                "use_pct": _int_or_none(numbers[3]),
            }
        )
    return _dedupe(rows) if dedupe else rows


def parse_df_inodes(text: str) -> list[InodeUsage]:
    """Read ``df -P -i`` output (same layout as df -P, counts instead of kB)."""
    rows: list[InodeUsage] = []
    for match in _df_rows(text, _DF_PLAIN_RE):
        numbers = match.groups()[1:5]
        rows.append(
            {
                "device": match.group("device"),
                "mount": match.group("mount"),
                "inodes": _int_or_none(numbers[0]),
                "inodes_used": _int_or_none(numbers[1]),
                "inodes_free": _int_or_none(numbers[2]),
                "inodes_use_pct": _int_or_none(numbers[3]),
            }
        )
    return rows


# --------------------------------------------------------------------------- ps


class Process(TypedDict):
    """One line of ``ps -eo pid=,ppid=,user=,pcpu=,pmem=,rss=,vsz=,etime=,args=``."""

    pid: int
    ppid: int
    user: str
    cpu_pct: float
    mem_pct: float
    rss_kb: int
    vsz_kb: int
    elapsed_s: int | None
    name: str
    role: str
    args: str


def parse_etime(value: str) -> int | None:
    """ps ``etime`` ``[[dd-]hh:]mm:ss`` → seconds; None if malformed."""
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", value.strip())
    if not match:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def process_name(args: str) -> tuple[str, str]:
    """(name, role) from a command line: basename of argv[0]; role tells ``wdavdaemon edr`` from the others."""
    text = args.strip()
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1], ""  # kernel thread: "[kworker/0:1H]"
    words = text.split()
    if not words:
        return "", ""
    first = words[0]
    if first.endswith(":"):
        # Processes that rewrite their title ("postgres: checkpointer", "sshd: alice@pts/0").
        return posixpath.basename(first[:-1]), " ".join(words[1:])
    name = posixpath.basename(first)
    role = ""
    if name == "wdavdaemon" and len(words) > 1 and words[1].isalpha():
        role = words[1]  # "wdavdaemon edr 12 11 --log_level info", "wdavdaemon unprivileged ..."
    return name, role


def parse_ps(text: str) -> list[Process]:
    """Read ps lines in the field order above; right-aligned numbers, args keep their spaces."""
    processes: list[Process] = []
    for line in text.splitlines():
        parts = line.split(None, 8)
        if len(parts) < 8:
            continue
        pid, ppid, user, pcpu, pmem, rss, vsz, etime = parts[:8]
        args = parts[8].rstrip() if len(parts) > 8 else ""
        try:
            record: Process = {
                "pid": int(pid),
                "ppid": int(ppid),
                "user": user,
                "cpu_pct": float(pcpu),
                "mem_pct": float(pmem),
                "rss_kb": int(rss),
                "vsz_kb": int(vsz),
                "elapsed_s": parse_etime(etime),
                "name": "",
                "role": "",
                "args": args,
            }
        except ValueError:
            continue  # not a ps line (a shell error mixed into the section)
        record["name"], record["role"] = process_name(args)
        processes.append(record)
    return processes


def parse_ps_args(text: str) -> dict[int, str]:
    """Read ``ps -eo pid=,args=`` into {pid: args}."""
    table: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if parts and parts[0].isdigit():
            table[int(parts[0])] = parts[1].rstrip() if len(parts) > 1 else ""
    return table


# --------------------------------------------------------------------------- curl


class Probe(TypedDict):
    """One ``curl -sS -o /dev/null -w '%{http_code} %{url_effective}\\n' URL 2>&1`` transfer."""

    url: str
    http_code: str
    ok: bool
    curl_code: int | None
    error: str | None


_PROBE_RE = re.compile(r"^(\d{3}) (\S+://\S*)\s*$")
_CURL_ERROR_RE = re.compile(r"^curl: \((\d+)\) (.*)$")


def parse_curl_probe(text: str) -> Probe | None:
    """One transfer's output, ``curl -sS -o /dev/null -w '%{http_code} %{url_effective}\\n' URL 2>&1``.

    The ``-w`` line and the ``curl: (N) message`` error line of the same transfer come in either
    order: curl up to 7.61 (RHEL 6, 7 and 8) prints the ``-w`` text first, curl 7.76 (RHEL 9) the
    error first. So each probe's output is read on its own (the network step puts a marker line
    before every curl) and the order does not matter. The lines curl adds after error 60 ("More
    details here: ...") are skipped. None when the transfer printed no ``-w`` line at all.
    """
    written: tuple[str, str] | None = None
    error: tuple[int, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        failure = _CURL_ERROR_RE.match(line)
        if failure:
            error = error or (int(failure.group(1)), failure.group(2).strip())
            continue
        probe = _PROBE_RE.match(line)
        if probe and written is None:
            written = (probe.group(1), probe.group(2))
    if written is None:
        return None
    code, url = written
    return {
        "url": url,
        "http_code": code,
        # Any HTTP answer means the name resolved, TCP connected and TLS verified.
        "ok": code != "000",
        "curl_code": error[0] if error else None,
        "error": error[1] if error else None,
    }


def parse_tls_certificate(text: str) -> dict[str, str | None]:
    """Subject, issuer and verify result of the server certificate in ``curl -v`` output.

    OpenSSL builds (RHEL 8+) print ``*  issuer: C=US; O=...; CN=...``; NSS builds (RHEL 6/7) print
    ``* <TAB>issuer: CN=...,O=...,C=US``. A proxy's own certificate (``Proxy certificate:``) is ignored.
    """
    found: dict[str, str | None] = {"subject": None, "issuer": None, "verify": None}
    loose: dict[str, str | None] = dict(found)  # lines seen outside any "... certificate:" block
    block = ""
    for raw in text.splitlines():
        if not raw.startswith("*"):
            continue
        line = raw[1:].strip()
        lowered = line.lower()
        if lowered in ("server certificate:", "proxy certificate:"):
            block = lowered.split()[0]
            if block == "server":
                found = {"subject": None, "issuer": None, "verify": None}
            continue
        target = found if block == "server" else loose if not block else None
        if target is None:
            continue
        for key in ("subject", "issuer"):
            if lowered.startswith(key + ":"):
                target[key] = line[len(key) + 1 :].strip()
        if lowered.startswith("ssl certificate verify"):
            target["verify"] = line
    return found if found["issuer"] or found["subject"] else loose


def parse_tls_issuer(text: str) -> str | None:
    """The issuer DN of the server certificate in ``curl -v`` output, or None if none was shown."""
    return parse_tls_certificate(text)["issuer"]


_DN_SPLIT_RE = re.compile(r'\s*[;,/+]\s*(?=[A-Za-z][A-Za-z0-9.]*\s*=)(?=(?:[^"]*"[^"]*")*[^"]*$)')


def parse_dn(dn: str) -> dict[str, str]:
    """A distinguished name in OpenSSL (``C=US; O=X``), NSS (``CN=X,O="A, B"``) or slash form → {ATTR: value}."""
    attributes: dict[str, str] = {}
    for part in _DN_SPLIT_RE.split(dn.strip().lstrip("/")):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        attributes.setdefault(key.strip().upper(), value.replace("\\", ""))
    return attributes


# Organisations whose CAs issue the Defender endpoints' certificates (MDE-FACTS §4, Azure CA details).
TRUSTED_ISSUER_ORGS = ("microsoft corporation", "digicert", "baltimore")


def issuer_is_microsoft(issuer: str | None) -> bool:
    """True when the issuer is a Microsoft, DigiCert or Baltimore CyberTrust CA (no interception)."""
    if not issuer:
        return False
    attributes = parse_dn(issuer)
    organisation = attributes.get("O", "").lower()
    if organisation:
        return organisation.startswith(TRUSTED_ISSUER_ORGS)
    common_name = attributes.get("CN", issuer).lower()
    return common_name.startswith(("microsoft", "digicert", "baltimore cybertrust"))


# --------------------------------------------------------------------------- kernel, services, fanotify


def parse_kernel_config(text: str) -> dict[str, str]:
    """Kernel config lines → {CONFIG_X: value}; ``# CONFIG_X is not set`` becomes ``"n"``."""
    options: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        unset = re.match(r"^#\s*(CONFIG_[A-Za-z0-9_]+) is not set$", line)
        if unset:
            options[unset.group(1)] = "n"
            continue
        match = re.match(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$", line)
        if match:
            options[match.group(1)] = match.group(2).strip().strip('"')
    return options


_UNIT_STATES = {"active", "inactive", "failed", "activating", "deactivating", "reloading", "unknown", "maintenance"}


def parse_systemctl_is_active(units: list[str], text: str) -> dict[str, str | None]:
    """``systemctl is-active A B C`` prints one state per unit, in order; None where nothing was printed."""
    states = [line.strip() for line in text.splitlines() if line.strip() in _UNIT_STATES]
    return {unit: (states[i] if i < len(states) else None) for i, unit in enumerate(units)}


def parse_fanotify_holders(grep_output: str, ps_output: str) -> list[dict[str, int | str]]:
    """Processes holding a fanotify descriptor, from ``grep -l`` paths ``/proc/<pid>/fdinfo/<fd>``."""
    pids = sorted({int(m.group(1)) for m in re.finditer(r"/proc/(\d+)/fdinfo/\d+", grep_output)})
    table = parse_ps_args(ps_output)
    return [{"pid": pid, "args": table.get(pid, "")} for pid in pids]
