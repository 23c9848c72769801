"""Step 11 — health: healthy, licensed, the expected org id, real-time protection, no conflicts."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.mdatp_output import parse_health
from hosts.choices import StepStatus
from hosts.ssh import CommandResult

# Fields kept as the step's data (and copied to the host's agent state).
KEPT = [
    "healthy", "health_issues", "licensed", "org_id", "app_version", "engine_version", "release_ring",
    "product_expiration", "real_time_protection_enabled", "passive_mode_enabled", "definitions_status",
    "definitions_version", "definitions_updated_minutes_ago", "conflicting_applications",
    "real_time_protection_subsystem", "supplementary_events_subsystem", "edr_machine_id", "managed_fields",
]  # fmt: skip


class HealthStep(Step):
    """Polls ``mdatp health`` while the fresh onboarding settles (licence, first definitions)."""

    key = "health"
    number = 11
    title = "Agent health"
    attempts = 9  # the installer waits up to 80 s for the licence after onboarding
    retry_delay = 10

    def command(self, ctx: StepContext) -> str:
        return "mdatp health"

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        if result.exit_status == 127 or "command not found" in result.stderr:
            return Outcome.failed("mdatp is not on the PATH (is the package installed?)")
        health = parse_health(result.stdout)
        if "healthy" not in health:
            return Outcome.failed(f"mdatp health gave no health fields (exit {result.exit_status})")
        data = {key: health.get(key) for key in KEPT}
        problems: list[str] = []
        settling: list[str] = []
        if health.get("licensed") is not True:
            settling.append("not licensed yet (onboarding not taken)")
        expected = ctx.profile.org_id if ctx.profile else ""
        if expected and health.get("org_id") and str(health["org_id"]).lower() != expected.lower():
            problems.append(f"onboarded to org {health['org_id']}, the profile's package is for {expected}")
        elif expected and health.get("licensed") is True and not health.get("org_id"):
            settling.append("org id not available yet")
        if health.get("conflicting_applications"):
            problems.append(f"conflicting applications: {health['conflicting_applications']}")
        if health.get("healthy") is not True:
            issues = health.get("health_issues") or []
            if health.get("definitions_status") == "updating":
                settling.append("first definitions still downloading")
            else:
                problems.append(f"unhealthy: {', '.join(map(str, issues)) or 'no issue listed'}")
        if problems:
            return Outcome.failed("; ".join(problems), **data)
        if settling:
            return Outcome(StepStatus.FAILED, "; ".join(settling) + " after waiting", data, retry=True)
        if health.get("real_time_protection_enabled") is not True:
            mode = "passive mode" if health.get("passive_mode_enabled") else "real-time protection off"
            return Outcome.warn(f"healthy and onboarded, but {mode}: files are not scanned on access", **data)
        return Outcome.ok(f"healthy, licensed, org {health.get('org_id')}, version {health.get('app_version')}", **data)


class HealthRefreshStep(HealthStep):
    """``mdatp health`` once, for the fleet health refresh: the agent's state as it is, no waiting."""

    title = "Agent health (refresh)"
    attempts = 1

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        outcome = super().evaluate(ctx, result)
        if outcome.retry:
            # Nothing is settling on a refresh: an unlicensed or updating agent is simply reported.
            reason = outcome.reason.removesuffix(" after waiting")
            return Outcome.warn(
                reason.replace("not licensed yet (onboarding not taken)", "not licensed (not onboarded)"),
                **outcome.data,
            )
        return outcome
