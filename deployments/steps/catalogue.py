"""The step catalogue: which steps discovery and a rollout run, in the seed's order, and lookup by key."""

from __future__ import annotations

from functools import cache

from deployments.steps.base import Step
from deployments.steps.conflicts import ConflictsStep
from deployments.steps.facts import FactsStep
from deployments.steps.network import NetworkStep
from deployments.steps.requirements import RequirementsStep
from deployments.steps.snapshot import AdhocSnapshotStep, PostSnapshotStep, SnapshotStep

# Steps 1-5 of the checklist: what a discovery runs on every host, in order.
DISCOVERY_STEPS: tuple[Step, ...] = (
    FactsStep(),
    RequirementsStep(),
    ConflictsStep(),
    NetworkStep(),
    SnapshotStep(),
)


@cache
def rollout_steps() -> tuple[Step, ...]:
    """Steps 1-17 of the checklist, in order: discovery again, then install, verify and compare."""
    # Imported here so discovery keeps working whatever state the deployment steps are in.
    from deployments.steps.compare import CompareStep
    from deployments.steps.connectivity import ConnectivityStep
    from deployments.steps.definitions import DefinitionsUpdateStep
    from deployments.steps.detection import DetectionStep
    from deployments.steps.health import HealthStep
    from deployments.steps.install import InstallStep
    from deployments.steps.onboarding_file import OnboardingStep
    from deployments.steps.platform_update import PlatformUpdateStep
    from deployments.steps.repository import RepositoryStep
    from deployments.steps.schedules import SchedulesStep
    from deployments.steps.settings_file import SettingsStep

    steps: tuple[Step, ...] = (
        *DISCOVERY_STEPS,
        RepositoryStep(),
        OnboardingStep(),
        SettingsStep(),
        SchedulesStep(),
        InstallStep(),
        HealthStep(),
        ConnectivityStep(),
        PlatformUpdateStep(),
        DefinitionsUpdateStep(),
        DetectionStep(),
        PostSnapshotStep(),
        CompareStep(),
    )
    return tuple(sorted(steps, key=lambda step: step.number))


def step_by_key(key: str) -> Step:
    """The step with this key; KeyError names the known keys when there is none."""
    for step in DISCOVERY_STEPS:
        if step.key == key:
            return step
    known = {step.key: step for step in rollout_steps()}
    if key in known:
        return known[key]
    raise KeyError(f"unknown step {key!r} (known: {', '.join(known)})")


def job_steps(kind: str) -> tuple[Step, ...]:
    """The steps a host job of this kind runs (facts first: later steps read the distro)."""
    from deployments.steps.offboard import OffboardStep, OffboardVerifyStep, UninstallStep

    if kind == "offboard":
        return (FactsStep(), OffboardStep(), OffboardVerifyStep())
    if kind == "uninstall":
        return (FactsStep(), UninstallStep())
    if kind == "snapshot":
        return (FactsStep(), AdhocSnapshotStep())
    if kind == "health":
        from deployments.steps.health import HealthRefreshStep

        return (HealthRefreshStep(),)
    if kind == "diagnose":
        from deployments.steps.diagnose import DiagnoseStep

        return (DiagnoseStep(),)
    return DISCOVERY_STEPS
