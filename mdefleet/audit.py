"""Recording audit events from services; callers pass who did it and from where."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from mdefleet.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who made a change: a user (person or service account), or the scheduler/system."""

    user: Any = None
    label: str = "system"
    source_ip: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        user = getattr(request, "user", None)
        label = user.get_username() if user is not None and user.is_authenticated else "anonymous"
        if getattr(request, "auth", None) is not None:
            label = f"{label} (token)"
        return cls(
            user=user if user is not None and user.is_authenticated else None, label=label, source_ip=client_ip(request)
        )


SYSTEM = Actor(label="system")


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address. Behind the TLS proxy (BEHIND_TLS_PROXY) it is the last X-Forwarded-For
    entry, the one our proxy appended; the entries before it are the client's word, so never used."""
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded and _is_ip(forwarded[-1]):
            return forwarded[-1]
    remote = request.META.get("REMOTE_ADDR") or ""
    return remote if _is_ip(remote) else None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def audit_record(*, actor: Actor, action: str, target: Any = None, details: dict[str, Any] | None = None) -> AuditEvent:
    """Append one audit event; ``target`` is any model instance (or None)."""
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_label=actor.label[:150],
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:255] if target is not None else "",
        source_ip=actor.source_ip,
        details=details or {},
    )


def audit_host_key_mismatches(records: list[Any], runs: Mapping[int, Any]) -> int:
    """One ``host.key_mismatch`` event per host whose presented key did not match its pin.

    ``records`` are a batch's step records (the runner files a failed connection as a ``connect``
    step with the failure kind); ``runs`` maps their run ids to runs with a ``host_id``. Costs nothing
    when no key mismatched, one read and one insert when some did.
    """
    from hosts.models import Host
    from hosts.ssh import SSHFailure

    found = {
        runs[r.run_id].host_id: r.reason
        for r in records
        if r.step == "connect" and (r.parsed or {}).get("kind") == SSHFailure.HOST_KEY_MISMATCH
    }
    if not found:
        return 0
    names = dict(Host.objects.filter(pk__in=found).values_list("pk", "name"))
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=None,
            actor_label=SYSTEM.label,
            action="host.key_mismatch",
            target_type="hosts.host",
            target_id=str(host_id),
            target_label=names.get(host_id, "")[:255],
            details={"reason": reason[:500]},
        )
        for host_id, reason in found.items()
    )
    return len(found)
