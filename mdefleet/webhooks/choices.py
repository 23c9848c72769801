"""The events a subscription can ask for, and the states of one delivery."""

from __future__ import annotations

from django.db import models

# Rollout events, in the order a rollout usually meets them.
EVENTS = [
    ("rollout.created", "A rollout was planned"),
    ("rollout.started", "A rollout started its first wave"),
    ("wave.started", "A wave started"),
    ("wave.completed", "A wave's hosts are done and its gate judged"),
    ("gate.failed", "A wave's gate failed"),
    ("wave.approved", "A wave waiting for approval was approved (approved_by says who)"),
    ("rollout.paused", "A rollout was paused"),
    ("rollout.resumed", "A paused rollout was resumed"),
    ("rollout.retried", "Failed and never-started hosts were queued again (hosts_retried says how many)"),
    ("rollout.halted", "A rollout halted (gate failed, approval expired, no window)"),
    ("rollout.completed", "A rollout completed"),
    ("rollout.aborted", "A rollout was aborted or cancelled"),
    ("host.failed", "Hosts failed (one event per batch of results)"),
    ("agent.expiring", "Installed agent versions expire within 30 days (fleet event, daily)"),
]
# Events about the fleet, not about one rollout: their payload carries no rollout block.
FLEET_EVENTS = {"agent.expiring"}
EVENT_NAMES = [name for name, _ in EVENTS]
# Sent to one subscription on request, never by a rollout.
PING = "ping"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
