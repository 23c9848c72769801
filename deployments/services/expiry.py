"""Announcing agent versions that expire soon: once per host and version, by webhook."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments.expiry import WARN_DAYS, expiring_hosts
from deployments.models import AgentExpiryNotice
from mdefleet.audit import SYSTEM, audit_record

log = logging.getLogger(__name__)


def agent_expiry_announce(*, today: date | None = None, warn_days: int = WARN_DAYS) -> int:
    """Record and announce hosts newly found expired or expiring within ``warn_days``; returns how many.

    A host is announced once per installed version: the notice row's (host, version) uniqueness
    is the guard, so a second run (or two beat processes) announces nothing twice.
    """
    today = today or timezone.localdate()
    hosts = expiring_hosts(today=today, warn_days=warn_days)
    if not hosts:
        return 0
    with transaction.atomic():
        known = set(
            AgentExpiryNotice.objects.filter(host_id__in=[h["id"] for h in hosts]).values_list("host_id", "version")
        )
        fresh = []
        for host in hosts:
            if (host["id"], host["agent_version"]) in known:
                continue
            # One row per (host, version): a concurrent run that inserted it first wins, this one skips it.
            _, created = AgentExpiryNotice.objects.get_or_create(
                host_id=host["id"], version=host["agent_version"], defaults={"expires_on": host["expires"]}
            )
            if created:
                fresh.append(host)
        if not fresh:
            return 0
        by_version: dict[str, list[dict[str, Any]]] = {}
        for host in fresh:
            by_version.setdefault(host["agent_version"], []).append(host)
        for version, group in sorted(by_version.items()):
            payload = {
                "version": version,
                "expires_on": group[0]["expires"].isoformat(),
                "expired": group[0]["expired"],
                "days_left": group[0]["days_left"],
                "hosts": [{"id": h["id"], "name": h["name"], "address": h["address"]} for h in group],
            }
            audit_record(actor=SYSTEM, action="agent.expiring", details=payload)
            _emit_fleet_event("agent.expiring", payload)
    return len(fresh)


def _emit_fleet_event(event: str, payload: dict[str, Any]) -> None:
    """Announce a fleet event by webhook (sent after commit; a webhook problem never fails the caller)."""
    from mdefleet.webhooks.events import emit_fleet

    emit_fleet(event, **payload)
