"""Step 2 — requirements: free disk, memory and cores against the documented minimums; fanotify."""

from __future__ import annotations

from typing import Any

from deployments.steps.base import Outcome, Step, StepContext, sections
from deployments.steps.commands import join, marker, q
from deployments.steps.support import judge, no_output_reason
from hosts.parsers import Filesystem, parse_df, parse_kernel_config
from hosts.ssh import CommandResult

# The paths `df` is asked about, in order: df prints one line per argument, in that order.
DF_PATHS = ("/opt", "/var", "/tmp")  # noqa: S108 - df is asked about /tmp, nothing is written there
# The agent installs under /opt and keeps definitions and logs under /var.
CHECKED_PATHS = ("/opt", "/var")
# mde_installer.sh --min_req (MDE-FACTS §1.3): 2,048 MB free, 1,024 MB RAM, 1 core.
MIN_FREE_MB = 2048
MIN_MEMORY_MB = 1024
# 4 GB preferred; a 4 GB machine reports ~3.7 GB MemTotal (kernel reservations), so warn below 3.5 GB.
PREFERRED_MEMORY_MB = 3584
MIN_CORES = 1
# Real-time protection needs both options built in (RHEL 7 onwards; RHEL 6 used TALPA).
FANOTIFY_OPTIONS = ("CONFIG_FANOTIFY", "CONFIG_FANOTIFY_ACCESS_PERMISSIONS")


def filesystems_for(rows: list[Filesystem], paths: tuple[str, ...]) -> dict[str, Filesystem]:
    """Which df row answers each path: by position when every path got a line, else by longest mount prefix."""
    if len(rows) == len(paths):
        return dict(zip(paths, rows, strict=True))
    found: dict[str, Filesystem] = {}
    for path in paths:
        candidates = [r for r in rows if path == r["mount"] or path.startswith(r["mount"].rstrip("/") + "/")]
        if candidates:
            found[path] = max(candidates, key=lambda r: len(r["mount"]))
    return found


class RequirementsStep(Step):
    """Free space where the agent lives (/opt, /var), kernel fanotify options, SELinux mode, init."""

    key = "requirements"
    number = 2
    title = "System requirements"

    def command(self, ctx: StepContext) -> str:
        kernel = ctx.data("facts").get("kernel", "")
        return join(
            marker("df"),
            "df -P -k /opt /var /tmp",
            marker("kconfig"),
            # The kernel release comes from step 1's output: quoted like any remote value. The "is not
            # set" lines are matched too, so an empty section means the file itself could not be read.
            f"grep -E '^(# )?CONFIG_FANOTIFY(_ACCESS_PERMISSIONS)?[= ]' {q('/boot/config-' + kernel)} 2>/dev/null",
            marker("selinux"),
            "getenforce 2>/dev/null",
            marker("init"),
            "ps -p 1 -o comm=",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        missing = no_output_reason(result)
        if missing:
            return Outcome.failed(missing)
        parts = sections(result.stdout)
        facts = ctx.data("facts")
        failures: list[str] = []
        warnings: list[str] = []
        notes: list[str] = []

        disks = self._disks(parts.get("df", ""), failures, warnings, notes)
        memory_mb = facts.get("memory_mb")
        if memory_mb is None:
            warnings.append("memory unknown (step 1 did not report it)")
        elif memory_mb < MIN_MEMORY_MB:
            failures.append(f"{memory_mb:,} MB of memory, at least {MIN_MEMORY_MB:,} MB needed")
        elif memory_mb < PREFERRED_MEMORY_MB:
            warnings.append(f"{memory_mb:,} MB of memory: enough to install, 4 GB preferred")
        else:
            notes.append(f"{memory_mb:,} MB memory")

        cores = facts.get("cpu_cores")
        if cores is None:
            warnings.append("CPU cores unknown (step 1 did not report them)")
        elif cores < MIN_CORES:
            failures.append(f"{cores} CPU cores, at least {MIN_CORES} needed")
        elif cores == 1:
            warnings.append("1 CPU core: two are advised, four recommended")
        else:
            notes.append(f"{cores} cores")

        fanotify = self._fanotify(parts.get("kconfig", ""), facts, failures, warnings, notes)

        selinux = parts.get("selinux", "").strip().lower() or None
        init = parts.get("init", "").strip() or None
        if init is None:
            warnings.append("could not read the init system (PID 1)")
        elif init != "systemd":
            warnings.append(f"PID 1 is {init}, not systemd: the mdatp service expects systemd")

        data: dict[str, Any] = {
            "disks": disks,
            "min_free_mb": MIN_FREE_MB,
            "memory_mb": memory_mb,
            "cpu_cores": cores,
            **fanotify,
            "selinux": selinux,
            "init": init,
        }
        return judge(failures, warnings, "; ".join(notes), **data)

    def _disks(self, text: str, failures: list[str], warnings: list[str], notes: list[str]) -> list[dict[str, Any]]:
        """Free space on /opt and /var against the installer's 2,048 MB; /tmp is recorded only."""
        rows = filesystems_for(parse_df(text, with_type=False), DF_PATHS)
        disks: list[dict[str, Any]] = []
        for path in DF_PATHS:
            row = rows.get(path)
            if row is None:
                if path in CHECKED_PATHS:
                    warnings.append(f"could not read free space on {path}")
                continue
            free_mb = row["avail_kb"] // 1024 if row["avail_kb"] is not None else None
            size_mb = row["size_kb"] // 1024 if row["size_kb"] is not None else None
            disks.append(
                {
                    "path": path,
                    "mount": row["mount"],
                    "device": row["device"],
                    "size_mb": size_mb,
                    "free_mb": free_mb,
                    "use_pct": row["use_pct"],
                }
            )
            if path not in CHECKED_PATHS:
                continue
            where = path if row["mount"] == path else f"{path} (on {row['mount']})"
            if free_mb is None:
                warnings.append(f"could not read free space on {where}")
            elif free_mb < MIN_FREE_MB:
                failures.append(f"{free_mb:,} MB free on {where}, {MIN_FREE_MB:,} MB needed")
            else:
                notes.append(f"{free_mb:,} MB free on {where}")
        return disks

    def _fanotify(
        self, text: str, facts: dict[str, Any], failures: list[str], warnings: list[str], notes: list[str]
    ) -> dict[str, Any]:
        """Both fanotify options must be built in; a missing config file can only be a warning."""
        major = facts.get("version_major")
        kernel = facts.get("kernel") or "?"
        if facts.get("distro_id") in ("rhel", "centos") and major == 6:
            notes.append("RHEL 6 used the TALPA kernel driver: fanotify not checked")
            return {"fanotify_required": False, "fanotify": {}, "fanotify_enabled": None}
        options = parse_kernel_config(text)
        found = {name: options.get(name) for name in FANOTIFY_OPTIONS}
        if not options:
            warnings.append(f"cannot verify fanotify: /boot/config-{kernel} is missing or unreadable")
            return {"fanotify_required": True, "fanotify": found, "fanotify_enabled": None}
        # The file was read, so an option it does not list is not set.
        off = [name for name, value in found.items() if value != "y"]
        if off:
            failures.append(
                f"fanotify is not enabled in kernel {kernel} ({', '.join(off)} not =y): real-time "
                "protection needs CONFIG_FANOTIFY=y and CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y"
            )
        else:
            notes.append("fanotify enabled")
        return {"fanotify_required": True, "fanotify": found, "fanotify_enabled": not off}
