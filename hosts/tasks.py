"""Celery tasks of the inventory: thin, they take ids and call one service."""

from __future__ import annotations

import os
import socket

from celery import shared_task


def worker_name() -> str:
    """Identifies this worker process in claims (host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(acks_late=True)
def discovery_run_task(discovery_id: int) -> int:
    """Run the discovery's pending hosts on this worker."""
    from hosts.discovery import discovery_execute

    return discovery_execute(discovery_id=discovery_id, worker=worker_name())


@shared_task(acks_late=True)
def discoveries_tick_task() -> int:
    """Periodic: re-dispatch discoveries left behind by a lost message or a dead worker."""
    from hosts.discovery import discoveries_tick

    return discoveries_tick()


@shared_task(acks_late=True)
def periodic_snapshots_task() -> int | None:
    """Periodic (beat): an ad-hoc snapshot of every host with the agent installed; returns the job id."""
    from hosts.choices import JobKind
    from hosts.services import fleet_job_start
    from mdefleet.audit import SYSTEM

    job = fleet_job_start(actor=SYSTEM, kind=JobKind.SNAPSHOT)
    return job.pk if job else None


@shared_task(acks_late=True)
def fleet_health_refresh_task() -> int | None:
    """Periodic (beat): ``mdatp health`` on every host with the agent installed; returns the job id."""
    from hosts.choices import JobKind
    from hosts.services import fleet_job_start
    from mdefleet.audit import SYSTEM

    job = fleet_job_start(actor=SYSTEM, kind=JobKind.HEALTH)
    return job.pk if job else None
