"""Writes to the inventory: credentials, hosts, host-key pinning, discovery requests and results.

Every function is keyword-only, runs in one transaction where it writes several rows, and
records an audit event for every state change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hosts import crypto
from hosts.choices import AgentState, DiscoveryStatus, JobKind
from hosts.models import Credential, Discovery, DiscoveryHost, Host, Tag
from mdefleet.audit import Actor, audit_record
from mdefleet.tasks import enqueue

if TYPE_CHECKING:
    from hosts.importing import HostRow


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
        transaction.on_commit(lambda: enqueue(discovery_run_task, discovery.pk, copies=tasks))
    return discovery


def discovery_progress(*, discovery: Discovery) -> dict[str, Any]:
    """Counts of the discovery's host runs by status (one query)."""
    from django.db.models import Count

    counts = {row["status"]: row["n"] for row in discovery.host_runs.values("status").annotate(n=Count("id"))}
    total = sum(counts.values())
    done = counts.get("ok", 0) + counts.get("failed", 0)
    return {"total": total, "done": done, "counts": counts, "finished": total > 0 and done == total}


# --- inventory edits: create, import, update, delete, host-key reset ---------------------------


def tags_ensure(*, names: Iterable[str]) -> dict[str, Tag]:
    """The tags with these (already cleaned) names, creating the missing ones."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    Tag.objects.bulk_create([Tag(name=name) for name in wanted], ignore_conflicts=True)
    return {tag.name: tag for tag in Tag.objects.filter(name__in=wanted)}


def host_create(
    *,
    actor: Actor,
    name: str,
    address: str,
    port: int,
    ssh_user: str,
    credential: Credential,
    tags: Iterable[str] = (),
    use_sudo: bool | None = None,
    host_key: str = "",
    trust_on_first_use: bool = False,
) -> Host:
    """Add one host (values already validated); a given host key is pinned, else TOFU as asked."""
    tag_names = list(tags)
    with transaction.atomic():
        host = Host.objects.create(
            name=name or address,
            address=address,
            port=port,
            ssh_user=ssh_user,
            credential=credential,
            use_sudo=ssh_user != "root" if use_sudo is None else use_sudo,
            trust_on_first_use=trust_on_first_use and not host_key,
        )
        host.tags.set(tags_ensure(names=tag_names).values())
        audit_record(
            actor=actor,
            action="host.create",
            target=host,
            details={
                "address": f"{address}:{port}",
                "credential": credential.name,
                "tags": tag_names,
                "trust_on_first_use": host.trust_on_first_use,
            },
        )
        if host_key:
            host_pin_key(actor=actor, host=host, host_key=host_key, reason="create")
    return host


def host_import(*, actor: Actor, rows: Sequence[HostRow], trust_on_first_use: bool) -> list[Host]:
    """Create the validated rows of an inventory file as hosts with their tags, in one transaction.

    Given host keys are pinned (audited as ``host.pin_key`` with reason ``import``); hosts without
    one trust the first key they present only when the person asked for it, which the
    ``host.import`` event records.
    """
    with transaction.atomic():
        tags = tags_ensure(names=[tag for row in rows for tag in row.tags])
        hosts = Host.objects.bulk_create(
            [
                Host(
                    name=row.name,
                    address=row.address,
                    port=row.port,
                    ssh_user=row.user,
                    credential=row.credential,
                    use_sudo=row.use_sudo,
                    trust_on_first_use=trust_on_first_use and not row.host_key,
                )
                for row in rows
            ]
        )
        Through = Host.tags.through
        Through.objects.bulk_create(
            [
                Through(host_id=host.pk, tag_id=tags[tag].pk)
                for host, row in zip(hosts, rows, strict=True)
                for tag in row.tags
            ]
        )
        audit_record(
            actor=actor,
            action="host.import",
            details={
                "hosts": len(hosts),
                "host_ids": [host.pk for host in hosts],
                "keys_pinned": sum(1 for row in rows if row.host_key),
                "trust_on_first_use": trust_on_first_use,
                "trust_on_first_use_hosts": sum(1 for host in hosts if host.trust_on_first_use),
            },
        )
        for host, row in zip(hosts, rows, strict=True):
            if row.host_key:
                host_pin_key(actor=actor, host=host, host_key=row.host_key, reason="import")
    return hosts


HOST_EDITABLE = ("name", "port", "ssh_user", "credential", "use_sudo")
# Changes to where and as whom we connect are flagged in the audit event.
HOST_SENSITIVE = {"address", "port", "credential"}


def host_update(*, actor: Actor, host: Host, changes: dict[str, Any]) -> Host:
    """Apply validated changes (name, port, ssh_user, credential, use_sudo, tags) with a before/after audit."""
    unknown = set(changes) - {*HOST_EDITABLE, "tags"}
    if unknown:
        raise ValueError(f"fields that cannot be changed: {', '.join(sorted(unknown))}")
    diff: dict[str, dict[str, Any]] = {}
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        for field in HOST_EDITABLE:
            if field in changes and getattr(host, field) != changes[field]:
                before = getattr(host, field)
                setattr(host, field, changes[field])
                diff[field] = {"before": str(before), "after": str(changes[field])}
        if diff:
            host.save(update_fields=[*diff, "updated_at"])
        if "tags" in changes:
            before_tags = sorted(host.tags.values_list("name", flat=True))
            after_tags = sorted(set(changes["tags"]))
            if before_tags != after_tags:
                host.tags.set(tags_ensure(names=after_tags).values())
                diff["tags"] = {"before": before_tags, "after": after_tags}
        if diff:
            audit_record(
                actor=actor,
                action="host.update",
                target=host,
                details={"changes": diff, "connection_changed": bool(HOST_SENSITIVE & set(diff))},
            )
    return host


def host_delete(*, actor: Actor, host: Host) -> None:
    """Remove a host with its snapshots and discovery results; the audit event keeps what it was."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="host.delete",
            target=host,
            details={"address": f"{host.address}:{host.port}", "fingerprint": host.host_key_fingerprint},
        )
        host.delete()


def host_key_clear(*, actor: Actor, host: Host) -> Host:
    """Forget the pinned key and trust the next key the host presents (a person's decision, audited)."""
    with transaction.atomic():
        previous = host.host_key_fingerprint
        host.host_key, host.host_key_fingerprint, host.host_key_pinned_at = "", "", None
        host.trust_on_first_use = True
        host.save(
            update_fields=["host_key", "host_key_fingerprint", "host_key_pinned_at", "trust_on_first_use", "updated_at"]
        )
        audit_record(
            actor=actor,
            action="host.clear_key",
            target=host,
            details={"before": previous, "trust_on_first_use": True, "reason": "re-pin"},
        )
    return host


class WayBackInvalid(ValueError):
    """An offboard/uninstall request that cannot run; the message says why. Nothing was saved."""


def hosts_way_back_start(*, actor: Actor, hosts: Iterable[Host], kind: str, offboarding_package: str = "") -> Discovery:
    """Offboard (deliver the portal's mdatp_offboard.json) or uninstall the agent on the hosts."""
    import json

    from deployments.services.rollouts import busy_hosts
    from hosts.choices import JobKind
    from hosts.tasks import discovery_run_task

    if kind not in (JobKind.OFFBOARD, JobKind.UNINSTALL):
        raise WayBackInvalid("mode must be 'offboard' or 'uninstall'")
    host_list = list(hosts)
    if not host_list:
        raise WayBackInvalid("choose at least one host")
    if kind == JobKind.OFFBOARD:
        try:
            parsed = json.loads(offboarding_package)
        except ValueError as exc:
            raise WayBackInvalid(f"the offboarding package is not JSON ({exc.msg}); give mdatp_offboard.json") from exc
        if not isinstance(parsed, dict) or not parsed:
            raise WayBackInvalid("the offboarding package must be the JSON object of mdatp_offboard.json")
    busy = busy_hosts(host_ids=[h.pk for h in host_list])
    if busy:
        names = {h.pk: h.name for h in host_list}
        raise WayBackInvalid(
            "; ".join(f"{names[h]} is in rollout {r!r}: finish or abort it first" for h, r in list(busy.items())[:10])
        )
    with transaction.atomic():
        job = Discovery.objects.create(
            created_by=actor.user,
            kind=kind,
            payload_encrypted=crypto.encrypt(offboarding_package) if kind == JobKind.OFFBOARD else "",
        )
        DiscoveryHost.objects.bulk_create([DiscoveryHost(discovery=job, host=h) for h in host_list])
        audit_record(
            actor=actor, action=f"host.{kind}", target=job, details={"hosts": [h.name for h in host_list][:200]}
        )
        tasks = max(1, -(-len(host_list) // settings.MDEFLEET_CLAIM_BATCH))
        transaction.on_commit(lambda: enqueue(discovery_run_task, job.pk, copies=tasks))
    return job


# --- looking at hosts as they are: ad-hoc snapshot, health refresh, high-CPU diagnosis ---------


class HostJobInvalid(ValueError):
    """A snapshot / health / diagnosis request that cannot run; the message says why. Nothing was saved."""


# Jobs that only read the host: safe on any host at any time, even one inside a rollout.
LOOK_JOBS = (JobKind.SNAPSHOT, JobKind.HEALTH, JobKind.DIAGNOSE)
# Hosts the periodic jobs visit: the agent is installed (onboarded or not).
AGENT_STATES_INSTALLED = (AgentState.INSTALLED, AgentState.HEALTHY, AgentState.UNHEALTHY)


def host_job_start(*, actor: Actor, hosts: Iterable[Host], kind: str) -> Discovery:
    """Start an ad-hoc snapshot, a health refresh or a high-CPU diagnosis on the hosts; enqueued on commit."""
    from hosts.tasks import discovery_run_task

    if kind not in LOOK_JOBS:
        raise HostJobInvalid(f"kind must be one of {', '.join(LOOK_JOBS)}")
    host_ids = sorted({h.pk for h in hosts})
    if not host_ids:
        raise HostJobInvalid("choose at least one host")
    with transaction.atomic():
        job = Discovery.objects.create(created_by=actor.user, kind=kind)
        DiscoveryHost.objects.bulk_create([DiscoveryHost(discovery=job, host_id=pk) for pk in host_ids])
        audit_record(
            actor=actor, action=f"host.{kind}", target=job, details={"hosts": len(host_ids), "host_ids": host_ids[:200]}
        )
        tasks = max(1, -(-len(host_ids) // settings.MDEFLEET_CLAIM_BATCH))
        transaction.on_commit(lambda: enqueue(discovery_run_task, job.pk, copies=tasks))
    return job


def fleet_job_start(*, actor: Actor, kind: str) -> Discovery | None:
    """A job of this kind over every host with the agent installed (the periodic schedules).

    Skipped (None) when no host has the agent, or while the previous scheduled job of the kind is
    still open, so a slow fleet never piles jobs up.
    """
    still_open = Discovery.objects.filter(
        kind=kind, created_by=None, status__in=[DiscoveryStatus.QUEUED, DiscoveryStatus.RUNNING]
    )
    if actor.user is None and still_open.exists():
        return None
    hosts = list(Host.objects.filter(agent_state__in=AGENT_STATES_INSTALLED).only("id"))
    if not hosts:
        return None
    return host_job_start(actor=actor, hosts=hosts, kind=kind)
