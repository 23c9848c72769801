"""Reads of the inventory for pages and the API: querysets shaped so a list costs a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Prefetch, QuerySet

from hosts.models import Credential, Discovery, DiscoveryHost, Host, HostCheck, Snapshot, Tag

OUTPUT_SHOWN_MAX = 64 * 1024


def host_list() -> QuerySet[Host]:
    """Hosts with their credential and tags loaded (two queries for any number of rows)."""
    return Host.objects.select_related("credential").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name"))
    )


def host_get(*, host_id: int) -> Host:
    """One host with credential and tags; raises Host.DoesNotExist."""
    return host_list().get(pk=host_id)


def host_snapshots(*, host: Host) -> QuerySet[Snapshot]:
    """The host's snapshots, newest first."""
    return Snapshot.objects.filter(host=host).order_by("-taken_at", "-id")


def host_latest_checks(*, host: Host, with_output: bool = False) -> list[HostCheck]:
    """The step results of the host's latest discovery run that recorded any (output loaded only if asked)."""
    run_id = HostCheck.objects.filter(host=host).order_by("-id").values_list("run_id", flat=True).first()
    if run_id is None:
        return []
    checks = HostCheck.objects.filter(host=host, run_id=run_id).annotate(
        discovery_id=F("run__discovery_id"), job_kind=F("run__discovery__kind")
    )
    if not with_output:
        checks = checks.defer("output", "parsed")
    return list(checks.order_by("id"))


def latest_diagnoses(host_ids: Iterable[int]) -> dict[int, HostCheck]:
    """Each host's latest high-CPU diagnosis (the ``diagnose`` step's record), by host id, in one query."""
    ids = list(host_ids)
    if not ids:
        return {}
    # The newest row per host, portably (the demo runs on SQLite, which has no DISTINCT ON).
    newer = HostCheck.objects.filter(host_id=OuterRef("host_id"), step="diagnose", pk__gt=OuterRef("pk"))
    checks = (
        HostCheck.objects.filter(host_id__in=ids, step="diagnose")
        .filter(~Exists(newer))
        .annotate(discovery_id=F("run__discovery_id"))
        .defer("output")
    )
    return {check.host_id: check for check in checks}


def host_check_get(*, host: Host, check_id: int) -> HostCheck:
    """One step result of this host; raises HostCheck.DoesNotExist."""
    return HostCheck.objects.get(host=host, pk=check_id)


def check_output_shown(*, check: HostCheck) -> tuple[str, bool]:
    """The output as shown to a person, capped at 64 KB; True when it was cut."""
    output = check.output or ""
    encoded = output.encode("utf-8")
    if len(encoded) <= OUTPUT_SHOWN_MAX:
        return output, False
    return encoded[:OUTPUT_SHOWN_MAX].decode("utf-8", errors="ignore"), True


def discovery_list() -> QuerySet[Discovery]:
    return Discovery.objects.select_related("created_by")


def discovery_get(*, discovery_id: int) -> Discovery:
    return discovery_list().get(pk=discovery_id)


def discovery_host_runs(*, discovery: Discovery) -> QuerySet[DiscoveryHost]:
    """The discovery's per-host runs with their host, in order."""
    return (
        DiscoveryHost.objects.filter(discovery=discovery)
        .select_related("host")
        .only(
            "id",
            "status",
            "reason",
            "started_at",
            "finished_at",
            "discovery_id",
            "host__id",
            "host__name",
            "host__address",
            "host__port",
        )
        .order_by("id")
    )


def credential_list() -> QuerySet[Credential]:
    """Credentials with the number of hosts using each (secrets deferred: never needed for listing)."""
    return (
        Credential.objects.defer("secret_encrypted", "passphrase_encrypted")
        .annotate(host_count=Count("hosts"))
        .order_by("name")
    )


def tag_names() -> list[str]:
    return list(Tag.objects.order_by("name").values_list("name", flat=True))


def distro_choices() -> list[tuple[str, str]]:
    """Distros seen in the inventory, for the filter's choices."""
    ids = Host.objects.exclude(distro_id="").order_by("distro_id").values_list("distro_id", flat=True).distinct()
    return [(value, value) for value in ids]


# --- shaping a snapshot for the page (the parsers' dicts, read defensively) --------------------


@dataclass(frozen=True)
class FilesystemRow:
    mount: str
    device: str
    fstype: str
    size_mb: float | None
    used_mb: float | None
    avail_mb: float | None
    use_pct: float | None


@dataclass(frozen=True)
class ProcessRow:
    pid: Any
    user: str
    cpu_pct: float | None
    mem_pct: float | None
    rss_mb: float | None
    command: str


def _first(item: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if item.get(key) not in (None, ""):
            return item[key]
    return None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(str(value).rstrip("%"))
    except ValueError:
        return None


def _mb(item: dict[str, Any], base: str) -> float | None:
    kb = _number(_first(item, f"{base}_kb"))
    if kb is not None:
        return round(kb / 1024, 1)
    return _number(_first(item, f"{base}_mb", base))


def snapshot_filesystems(*, snapshot: Snapshot) -> list[FilesystemRow]:
    """The snapshot's filesystems with sizes in MB and use %, whatever unit the parser stored."""
    rows = []
    for item in snapshot.filesystems or []:
        if not isinstance(item, dict):
            continue
        size, used = _mb(item, "size"), _mb(item, "used")
        use_pct = _number(_first(item, "use_pct", "used_pct", "pct"))
        if use_pct is None and size and used is not None:
            use_pct = round(100 * used / size, 1)
        rows.append(
            FilesystemRow(
                mount=str(_first(item, "mount", "mountpoint", "target") or "?"),
                device=str(_first(item, "device", "source") or ""),
                fstype=str(_first(item, "fstype", "type") or ""),
                size_mb=size,
                used_mb=used,
                avail_mb=_mb(item, "avail") if _first(item, "avail_kb", "avail_mb", "avail") else _mb(item, "free"),
                use_pct=use_pct,
            )
        )
    return rows


def snapshot_processes(*, processes: list[dict[str, Any]] | None) -> list[ProcessRow]:
    """Process rows (top or agent) in a fixed shape."""
    rows = []
    for item in processes or []:
        if not isinstance(item, dict):
            continue
        rss_kb = _number(_first(item, "rss_kb", "rss"))
        rows.append(
            ProcessRow(
                pid=_first(item, "pid"),
                user=str(_first(item, "user") or ""),
                cpu_pct=_number(_first(item, "cpu_pct", "pcpu")),
                mem_pct=_number(_first(item, "mem_pct", "pmem")),
                rss_mb=round(rss_kb / 1024, 1) if rss_kb is not None else None,
                command=str(_first(item, "command", "args", "comm") or ""),
            )
        )
    return rows
