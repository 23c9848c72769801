"""The agent's last known state on a host, read from the health and definitions steps."""

from __future__ import annotations

from typing import Any

from deployments.steps.base import Outcome
from hosts.choices import AgentState


def host_agent_fields(outcomes: dict[str, Outcome]) -> dict[str, Any]:
    """Host field values from a run's outcomes ({} when the run learned nothing about the agent)."""
    health = outcomes.get("health")
    install = outcomes.get("install")
    fields: dict[str, Any] = {}
    if install is not None and install.data.get("version"):
        fields["agent_version"] = install.data["version"]
        fields["agent_state"] = AgentState.INSTALLED
    if health is not None and health.data:
        data = health.data
        fields["agent_healthy"] = data.get("healthy")
        fields["org_id"] = str(data.get("org_id") or "")[:64]
        fields["real_time_protection"] = data.get("real_time_protection_enabled")
        if data.get("app_version"):
            fields["agent_version"] = str(data["app_version"])[:40]
        if data.get("definitions_version"):
            fields["definitions_version"] = str(data["definitions_version"])[:40]
        if data.get("licensed"):
            fields["agent_state"] = AgentState.HEALTHY if data.get("healthy") else AgentState.UNHEALTHY
        else:
            fields["agent_state"] = AgentState.INSTALLED
    definitions = outcomes.get("definitions_update")
    if definitions is not None and definitions.data.get("version"):
        fields["definitions_version"] = str(definitions.data["version"])[:40]
    return fields
