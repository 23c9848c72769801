"""A rollout survives its own services restarting mid-wave: Redis, PostgreSQL, the web process.

Everything runs as production runs it, each in its own process: gunicorn serving the API, real
Celery workers, ``celery beat`` with the database scheduler running the safety-net tick, real SSH
to the simulated fleet. Redis and PostgreSQL are private instances on free ports (the machine's
shared ones serve other tests and are never restarted). After each restart the rollout must finish
with every host run ended exactly once, one good result per step, and each wave run and judged once.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from deployments.choices import HostRunStatus
from deployments.models import HostRun, Rollout, StepResult, Wave
from hosts.sim import SimFleet
from mdefleet.models import AuditEvent
from tests.integration.http import ApiClient
from tests.integration.private_services import (
    BeatProcess,
    PrivatePostgres,
    PrivateRedis,
    WebProcess,
    db_or_none,
    default_database_on,
    service_env,
)
from tests.integration.rollout_setup import discovered_fleet, profile_over_api, token_for
from tests.integration.test_rollout_end_to_end import FAST, SUPPORTED, rollout_body
from tests.integration.worker import BROKER_URL, WorkerProcess, wait_for

pytestmark = pytest.mark.integration

STEPS_PER_HOST = 17
# Every service reads these: quick CPU samples, a takeover after 4 s without a heartbeat.
ENV = {**FAST, "MDEFLEET_SSH_COMMAND_TIMEOUT": "30"}


class Stack:
    """The processes of one test; every one of them is stopped at teardown."""

    def __init__(self, log_dir: Path, broker_url: str) -> None:
        self.log_dir = log_dir
        self.broker_url = broker_url
        self.processes: list[Any] = []

    def env(self) -> dict[str, str]:
        return service_env(self.broker_url, **ENV)

    def web(self, port: int | None = None) -> WebProcess:
        web = WebProcess(self.env(), self.log_dir, port=port)
        web.start()
        self.processes.append(web)
        return web

    def worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess(name, {"CELERY_BROKER_URL": self.broker_url, **ENV}, self.log_dir)
        self.processes.append(worker)
        return worker

    def beat(self, every: int = 2) -> BeatProcess:
        """Beat with the rollout tick every ``every`` seconds (the migration's rows are gone after a flush)."""
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name="mdefleet: advance rollouts",
            defaults={"task": "deployments.tasks.rollouts_tick_task", "interval": interval, "enabled": True},
        )
        beat = BeatProcess(self.env(), self.log_dir)
        beat.start()
        self.processes.append(beat)
        return beat

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()}" for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def stack_factory(transactional_db: Any, tmp_path: Path) -> Iterator[Callable[[str], Stack]]:
    stacks: list[Stack] = []

    def make(broker_url: str) -> Stack:
        stack = Stack(tmp_path, broker_url)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


@pytest.fixture
def private_postgres(transactional_db: Any) -> Iterator[PrivatePostgres]:
    """This test's database moved to a private cluster (a copy of the clean test database)."""
    server = PrivatePostgres()
    try:
        server.start()
        with default_database_on(server, "mdefleet_restart"):
            yield server
    finally:
        server.destroy()


def start_rollout(stack: Stack, fleet: SimFleet, web: WebProcess, wave_plan: list[str]) -> tuple[ApiClient, str]:
    """The fleet discovered, a profile and a rollout made and started over HTTP; returns the client and URL."""
    hosts = discovered_fleet(fleet)
    assert all(h.eligibility == "eligible" for h in hosts), [(h.name, h.eligibility_reasons) for h in hosts]
    admin = ApiClient(web.url, token_for("admin"))
    operator = ApiClient(web.url, token_for("operator"))
    profile_id = profile_over_api(admin)
    created = operator.post("/api/v1/rollouts/", rollout_body(profile_id, [h.pk for h in hosts], wave_plan=wave_plan))
    assert created.status == 201, created.body
    url = f"/api/v1/rollouts/{created.body['id']}/"
    started = operator.post(url + "start/")
    assert started.status == 200, started.body
    return operator, url


def rollout_mid_wave(stack: Stack, fleet: SimFleet, wave_plan: list[str]) -> tuple[WebProcess, ApiClient, str]:
    """Web, a worker and beat started, the rollout started over HTTP, and its first wave past install."""
    web = stack.web()
    stack.worker("w1")
    stack.beat()
    operator, url = start_rollout(stack, fleet, web, wave_plan)
    wait_for(mid_wave, timeout=120, what="the first wave to be past install")
    return web, operator, url


def mid_wave() -> bool:
    """Some hosts of the first wave are past install, none has finished its run yet."""
    return bool(
        db_or_none(
            lambda: (
                StepResult.objects.filter(step="install").count() >= 1
                and not HostRun.objects.filter(status__in=[HostRunStatus.OK, HostRunStatus.FAILED]).exists()
            )
        )
    )


def wait_finished(stack: Stack, timeout: float) -> Rollout:
    def finished() -> bool:
        status = db_or_none(lambda: Rollout.objects.values_list("status", flat=True).get())
        return status in ("completed", "halted", "aborted")

    try:
        wait_for(finished, timeout=timeout, what="the rollout to finish")
    except AssertionError as error:
        runs = db_or_none(lambda: list(HostRun.objects.values_list("id", "status", "claimed_by", "current_step")))
        raise AssertionError(f"{error}\nhost runs: {runs}\n{stack.logs()}") from None
    return Rollout.objects.get()


def assert_nothing_lost_or_doubled(rollout: Rollout, hosts: int, waves: int) -> None:
    """Every host run ended once and OK, one good result per step, every wave started and judged once."""
    assert rollout.status == "completed", rollout.halt_reason
    runs = list(HostRun.objects.all())
    assert len(runs) == hosts and len({r.host_id for r in runs}) == hosts
    for run in runs:
        assert run.status == HostRunStatus.OK and run.finished_at is not None, (run.pk, run.status, run.reason)
        good = Counter(StepResult.objects.filter(host_run=run).exclude(status="failed").values_list("step", flat=True))
        assert len(good) == STEPS_PER_HOST and set(good.values()) == {1}, (run.host_id, good)
    assert sorted(Wave.objects.values_list("index", flat=True)) == list(range(waves))
    assert set(Wave.objects.values_list("status", flat=True)) == {"passed"}
    actions = Counter(AuditEvent.objects.values_list("action", flat=True))
    assert actions["wave.gate_pass"] == waves, actions
    assert actions["rollout.complete"] == 1 and actions["rollout.start"] == 1, actions


def test_a_redis_restart_mid_wave_loses_no_host_and_starts_no_wave_twice(
    stack_factory: Callable[[str], Stack], private_redis: PrivateRedis, sim_fleet_factory: Callable[..., SimFleet]
) -> None:
    stack = stack_factory(private_redis.url)
    fleet = sim_fleet_factory(6, profiles=SUPPORTED, faults="slow=0.15", seed=31, time_scale=0.05)
    _web, operator, url = rollout_mid_wave(stack, fleet, ["2", "100%"])

    private_redis.stop(signal.SIGKILL)  # every queued and unacked message is gone with it
    time.sleep(3)
    private_redis.start()  # empty: no persistence

    rollout = wait_finished(stack, timeout=180)
    assert_nothing_lost_or_doubled(rollout, hosts=6, waves=2)
    assert operator.get(url).body["status"] == "completed"


def test_a_postgresql_restart_mid_wave_loses_no_host_and_starts_no_wave_twice(
    stack_factory: Callable[[str], Stack], private_postgres: PrivatePostgres, sim_fleet_factory: Callable[..., SimFleet]
) -> None:
    stack = stack_factory(BROKER_URL)
    fleet = sim_fleet_factory(6, profiles=SUPPORTED, faults="slow=0.15", seed=32, time_scale=0.05)
    web, operator, url = rollout_mid_wave(stack, fleet, ["2", "100%"])
    connections.close_all()
    private_postgres.stop("fast")  # every session is cut, the workers' and the web's included
    time.sleep(3)
    private_postgres.start()

    rollout = wait_finished(stack, timeout=180)
    assert_nothing_lost_or_doubled(rollout, hosts=6, waves=2)
    for _ in range(4):  # each gunicorn worker reconnects instead of failing on its dead connection
        reply = operator.get(url)
        assert reply.status == 200 and reply.body["status"] == "completed", reply.body
    assert "Internal Server Error" not in web.log()


def test_a_web_restart_mid_rollout_loses_nothing_and_pages_show_the_database(
    stack_factory: Callable[[str], Stack], sim_fleet_factory: Callable[..., SimFleet]
) -> None:
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    stack = stack_factory(BROKER_URL)
    fleet = sim_fleet_factory(4, profiles=SUPPORTED, faults="slow=0.1", seed=33, time_scale=0.05)
    web, operator, url = rollout_mid_wave(stack, fleet, ["1", "100%"])

    # A pause sent just before the web process dies is kept: it was committed, not held in memory.
    assert operator.post(url + "pause/").status == 200
    web.stop(signal.SIGKILL)
    assert Rollout.objects.get().status == "paused"
    web = stack.web(port=web.port)  # the same address, a new process

    assert operator.get(url).body["status"] == "paused"
    wait_for(lambda: not HostRun.objects.filter(status=HostRunStatus.RUNNING).exists(), 120, "running hosts to finish")
    assert operator.post(url + "resume/").status == 200
    rollout = wait_finished(stack, timeout=180)
    assert_nothing_lost_or_doubled(rollout, hosts=4, waves=2)
    actions = Counter(AuditEvent.objects.values_list("action", flat=True))
    assert actions["rollout.pause"] == 1 and actions["rollout.resume"] == 1

    # Restarted again after the end: the API and the page both read the truth from the database.
    web.stop()
    web = stack.web(port=web.port)
    body = operator.get(url).body
    assert body["status"] == "completed"
    assert [w["status"] for w in body["waves"]] == ["passed", "passed"]
    runs = operator.get(url + "hosts/")
    assert runs.status == 200, runs.body
    listed = runs.body["results"] if isinstance(runs.body, dict) else runs.body
    assert sorted(r["status"] for r in listed) == ["ok"] * 4
    page = page_as(web, "operator-it", f"/rollouts/{rollout.pk}/")
    assert "Completed" in page or "completed" in page
    for run in HostRun.objects.select_related("host"):
        assert run.host.name in page


def page_as(web: WebProcess, username: str, path: str) -> str:
    """A page fetched over HTTP with a session stored in the database (as a browser logged in would)."""
    import urllib.request

    user = User.objects.get(username=username)
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    request = urllib.request.Request(web.url + path, headers={"Cookie": f"sessionid={session.session_key}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback
        assert reply.status == 200
        return str(reply.read().decode())
