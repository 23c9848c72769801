"""Writes to the inventory: credentials, hosts, host-key pinning, discovery requests and results.

Every function is keyword-only, runs in one transaction where it writes several rows, and
records an audit event for every state change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hosts import crypto
from hosts.models import Credential, Discovery, DiscoveryHost, Host
from mdefleet.audit import Actor, audit_record


def credential_create(*, actor: Actor, name: str, kind: str, secret: str, passphrase: str = "") -> Credential:
    """Store a new credential encrypted; the secret is never kept in clear."""
    from hosts.keys import private_key_fingerprint

    fingerprint = private_key_fingerprint(secret, passphrase) if kind == "private_key" else ""
    with transaction.atomic():
        credential = Credential.objects.create(
            name=name,
            kind=kind,
            secret_encrypted=crypto.encrypt(secret),
            passphrase_encrypted=crypto.encrypt(passphrase) if passphrase else "",
            public_fingerprint=fingerprint,
        )
        audit_record(actor=actor, action="credential.create", target=credential, details={"kind": kind})
    return credential


def credential_secret(*, credential: Credential) -> dict[str, str]:
    """Decrypted material for an SSH session (in memory only)."""
    return {
        "secret": crypto.decrypt(credential.secret_encrypted),
        "passphrase": crypto.decrypt(credential.passphrase_encrypted) if credential.passphrase_encrypted else "",
    }


def host_pin_key(*, actor: Actor, host: Host, host_key: str, reason: str) -> Host:
    """Pin (or re-pin) a host's public key; ``reason`` says why (import, trust on first use, re-pin)."""
    from hosts.keys import public_key_fingerprint

    previous = host.host_key_fingerprint
    with transaction.atomic():
        host.host_key = host_key.strip()
        host.host_key_fingerprint = public_key_fingerprint(host_key)
        host.host_key_pinned_at = timezone.now()
        host.save(update_fields=["host_key", "host_key_fingerprint", "host_key_pinned_at", "updated_at"])
        audit_record(
            actor=actor,
            action="host.pin_key",
            target=host,
            details={"before": previous, "after": host.host_key_fingerprint, "reason": reason},
        )
    return host


def discovery_start(*, actor: Actor, hosts: Iterable[Host]) -> Discovery:
    """Create a discovery over the hosts and enqueue it once the transaction commits."""
    from hosts.tasks import discovery_run_task

    host_ids = sorted({h.pk for h in hosts})
    with transaction.atomic():
        discovery = Discovery.objects.create(created_by=actor.user)
        DiscoveryHost.objects.bulk_create([DiscoveryHost(discovery=discovery, host_id=pk) for pk in host_ids])
        audit_record(actor=actor, action="discovery.start", target=discovery, details={"hosts": len(host_ids)})
        # One task per claim batch, so several workers share a large discovery.
        tasks = max(1, -(-len(host_ids) // settings.MDEFLEET_CLAIM_BATCH))
        transaction.on_commit(lambda: [discovery_run_task.delay(discovery.pk) for _ in range(tasks)])
    return discovery


def discovery_progress(*, discovery: Discovery) -> dict[str, Any]:
    """Counts of the discovery's host runs by status (one query)."""
    from django.db.models import Count

    counts = {row["status"]: row["n"] for row in discovery.host_runs.values("status").annotate(n=Count("id"))}
    total = sum(counts.values())
    done = counts.get("ok", 0) + counts.get("failed", 0)
    return {"total": total, "done": done, "counts": counts, "finished": total > 0 and done == total}
