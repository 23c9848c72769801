"""Recording audit events from services; callers pass who did it and from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        ip = forwarded.split(",")[0].strip() if forwarded else request.META.get("REMOTE_ADDR")
        return cls(user=user if user is not None and user.is_authenticated else None, label=label, source_ip=ip or None)


SYSTEM = Actor(label="system")


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
