"""Celery tasks of rollouts: thin, they take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from hosts.tasks import worker_name


@shared_task(acks_late=True)
def rollout_run_task(rollout_id: int) -> int:
    """Run the rollout's claimable hosts on this worker, then advance the rollout."""
    from deployments.execution import rollout_execute

    return rollout_execute(rollout_id=rollout_id, worker=worker_name())


@shared_task(acks_late=True)
def rollout_advance_task(rollout_id: int) -> str:
    """Move one rollout forward if something is due."""
    from deployments.services.rollouts import rollout_advance

    return rollout_advance(rollout_id=rollout_id)


@shared_task(acks_late=True)
def rollouts_tick_task() -> int:
    """Periodic: advance due rollouts and re-dispatch work a lost message or a dead worker left behind."""
    from deployments.services.rollouts import rollouts_tick

    return rollouts_tick()


@shared_task(acks_late=True)
def agent_expiry_warn_task() -> int:
    """Daily: announce hosts whose agent version expires within 30 days (once per host and version)."""
    from deployments.services.expiry import agent_expiry_announce

    return agent_expiry_announce()
