"""Drives many hosts at once: one SSH session per host, its steps in order, results streamed out.

The runner knows nothing of the database. Callers hand it jobs (a target, a context and the steps
to run) and a sink that receives each finished step and each finished host; the sink persists in
batches. Concurrency is bounded twice: hosts in flight, and SSH handshakes in flight (many
simultaneous handshakes time out on a small machine).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from deployments.steps.base import Outcome, Step, StepContext
from hosts.choices import RunStatus, StepStatus
from hosts.ssh import CommandResult, HostSession, SSHFailure, Target, fetch_host_key

log = logging.getLogger(__name__)

# Output kept per step in the database; the session already caps what it reads.
STORED_OUTPUT_CHARS = 16 * 1024
# First wait of a polling step (health after onboarding); later waits double up to its retry_delay.
FIRST_POLL_SECONDS = 0.5


@dataclass
class HostJob:
    """One host to drive: where, which steps, and what the steps may read."""

    run_id: int
    target: Target
    steps: Sequence[Step]
    context: StepContext
    trust_on_first_use: bool = False
    # Keys of steps already done in an earlier attempt (resume after a failure or a dead worker).
    done_steps: frozenset[str] = frozenset()


@dataclass
class StepRecord:
    """A finished step, ready to be stored."""

    run_id: int
    step: str
    status: str
    exit_code: int | None
    duration_ms: int
    command: str
    output: str
    parsed: dict[str, Any]
    reason: str
    finished_at: datetime

    def stored_fields(self) -> dict[str, Any]:
        """The fields every stored step row (StepResult, HostCheck) shares, reason bounded to its column."""
        return {
            "step": self.step,
            "status": self.status,
            "exit_code": self.exit_code,
            "duration_ms": self.duration_ms,
            "command": self.command,
            "output": self.output,
            "parsed": self.parsed,
            "reason": self.reason[:500],
            "finished_at": self.finished_at,
        }


@dataclass
class HostResult:
    """A finished host: its final status and reason, every step's outcome, a key pinned on first use."""

    run_id: int
    status: str
    reason: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    pinned_host_key: str = ""


class Sink:
    """Receives results as they happen; implementations batch them to the database."""

    async def step_done(self, record: StepRecord) -> None:
        raise NotImplementedError

    async def host_done(self, result: HostResult) -> None:
        raise NotImplementedError

    async def host_released(self, run_id: int) -> None:
        """A host that was claimed but not started (paused, aborted): give it back."""


@dataclass(frozen=True)
class RunnerLimits:
    """Timeouts and bounds of one batch."""

    connect_timeout: float = 10
    command_timeout: float = 120
    keepalive: int = 15
    max_output: int = 64 * 1024
    concurrency: int = 200
    handshakes: int = 100

    @classmethod
    def from_settings(cls) -> RunnerLimits:
        from django.conf import settings

        return cls(
            connect_timeout=settings.MDEFLEET_SSH_CONNECT_TIMEOUT,
            command_timeout=settings.MDEFLEET_SSH_COMMAND_TIMEOUT,
            keepalive=settings.MDEFLEET_SSH_KEEPALIVE,
            max_output=settings.MDEFLEET_SSH_MAX_OUTPUT,
            concurrency=settings.MDEFLEET_SSH_CONCURRENCY,
            handshakes=settings.MDEFLEET_SSH_HANDSHAKES,
        )


def _trim(text: str) -> str:
    if len(text) <= STORED_OUTPUT_CHARS:
        return text
    return text[:STORED_OUTPUT_CHARS] + f"\n… [{len(text) - STORED_OUTPUT_CHARS} more characters not kept]"


def _connect_record(job: HostJob, failure: SSHFailure, started: float) -> StepRecord:
    return StepRecord(
        run_id=job.run_id,
        step="connect",
        status=StepStatus.FAILED,
        exit_code=None,
        duration_ms=int((time.monotonic() - started) * 1000),
        command="",
        output="",
        parsed={"kind": failure.kind},
        reason=str(failure),
        finished_at=timezone.now(),
    )


def _evaluate(step: Step, job: HostJob, result: CommandResult) -> Outcome:
    if result.timed_out:
        return Outcome.failed(
            f"timed out after {result.duration_ms / 1000:.0f} s with no answer; the command was stopped"
        )
    try:
        outcome = step.evaluate(job.context, result)
    except Exception as exc:  # a parser bug must fail one step on one host, not the whole batch
        log.exception("step %s could not judge the output of %s", step.key, job.target.label)
        outcome = Outcome.failed(f"could not read the output ({type(exc).__name__}: {exc})")
    if outcome.status == StepStatus.FAILED and result.truncated:
        # A login script printing a banner on every command buries the answer past the cap: say so.
        outcome.reason = (
            f"{outcome.reason} (the host printed more than MDEFLEET_SSH_MAX_OUTPUT allows and only the start "
            "was read; does a login script print on every command?)"
        )
    return outcome


def poll_delays(step: Step) -> Iterator[float]:
    """The waits between a polling step's attempts: ``FIRST_POLL_SECONDS``, doubling up to ``retry_delay``.

    The step's window stays ``(attempts - 1) * retry_delay`` seconds (health: 80 s for the licence);
    only the first answers come sooner, so a host that settles in one second is not held for ten.
    """
    window = max(0, step.attempts - 1) * step.retry_delay
    delay = min(FIRST_POLL_SECONDS, step.retry_delay)
    waited = 0.0
    while window - waited > 1e-6:
        wait = min(delay, step.retry_delay, window - waited)
        yield wait
        waited += wait
        delay *= 2


async def _run_step(step: Step, job: HostJob, session: HostSession) -> tuple[CommandResult, Outcome]:
    """One step, re-run while it asks to (polling), or judged locally when it sends no command."""
    delays = poll_delays(step)
    while True:
        command = step.command(job.context)
        if command is None:
            result = CommandResult(command="", exit_status=0, stdout="", stderr="", duration_ms=0)
        else:
            result = await session.run(command, stdin=step.stdin(job.context), timeout=step.timeout)
        outcome = _evaluate(step, job, result)
        delay = next(delays, None) if outcome.retry else None
        if delay is None:
            return result, outcome
        await asyncio.sleep(delay)


async def run_host(job: HostJob, sink: Sink, limits: RunnerLimits, handshakes: asyncio.Semaphore) -> HostResult:
    """Run the job's steps in order over one connection; stop at the first blocking failure."""
    started = time.monotonic()
    target = job.target
    pinned = ""
    outcomes: dict[str, Outcome] = {}
    try:
        if not target.host_key and job.trust_on_first_use:
            async with handshakes:
                pinned = await fetch_host_key(target.address, target.port, timeout=limits.connect_timeout)
            target = Target(**{**target.__dict__, "host_key": pinned})
        session = HostSession(
            target,
            connect_timeout=limits.connect_timeout,
            command_timeout=limits.command_timeout,
            keepalive=limits.keepalive,
            max_output=limits.max_output,
            handshakes=handshakes,
        )
        async with session:
            for step in job.steps:
                if step.key in job.done_steps:
                    continue
                delay = step.delay_before(job.context)
                if delay > 0:
                    await asyncio.sleep(delay)
                step_started = time.monotonic()
                result, outcome = await _run_step(step, job, session)
                outcomes[step.key] = outcome
                job.context.results[step.key] = outcome.data
                await sink.step_done(
                    StepRecord(
                        run_id=job.run_id,
                        step=step.key,
                        status=outcome.status,
                        exit_code=result.exit_status,
                        duration_ms=int((time.monotonic() - step_started) * 1000),
                        command=result.command,
                        output=_trim(result.combined()),
                        parsed=outcome.data,
                        reason=outcome.reason,
                        finished_at=timezone.now(),
                    )
                )
                if outcome.status == StepStatus.FAILED and step.blocking:
                    return HostResult(job.run_id, RunStatus.FAILED, f"{step.title}: {outcome.reason}", outcomes, pinned)
    except SSHFailure as failure:
        await sink.step_done(_connect_record(job, failure, started))
        outcomes["connect"] = Outcome.failed(str(failure), kind=failure.kind)
        return HostResult(job.run_id, RunStatus.FAILED, str(failure), outcomes, "")
    failed = [o.reason for o in outcomes.values() if o.status == StepStatus.FAILED]
    if failed:
        return HostResult(job.run_id, RunStatus.FAILED, failed[0], outcomes, pinned)
    return HostResult(job.run_id, RunStatus.OK, "", outcomes, pinned)


class HostPool:
    """Runs hosts handed in over time, at most ``limits.concurrency`` at once, under one handshake bound.

    A worker claims more hosts as slots free up (``wait_for_room`` then ``start``), so one batch's
    slow tail never idles the others and two workers share a wave by claiming as they go. Every
    host started ends in ``sink.host_done`` (or ``host_released``) exactly once.

    ``should_continue`` is asked before each host starts (pause, abort, a closing window): when it
    answers False the host is released, and hosts already running finish their steps.
    """

    def __init__(
        self, sink: Sink, limits: RunnerLimits, *, should_continue: Callable[[], Awaitable[bool]] | None = None
    ) -> None:
        self.sink = sink
        self.limits = limits
        self.should_continue = should_continue
        self.in_flight = asyncio.Semaphore(limits.concurrency)
        self.handshakes = asyncio.Semaphore(limits.handshakes)
        self.tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def room(self) -> int:
        """Hosts that could start now without waiting for a slot."""
        return max(0, self.limits.concurrency - len(self.tasks))

    def start(self, jobs: Sequence[HostJob]) -> None:
        for job in jobs:
            task = asyncio.ensure_future(self._one(job))
            self.tasks.add(task)
            task.add_done_callback(self._finished)

    async def wait_for_room(self, wanted: int) -> None:
        """Until at least ``wanted`` slots are free, or no host runs."""
        while self.tasks and self.room < wanted:
            self._changed.clear()
            await self._changed.wait()

    async def join(self) -> None:
        """Until every host started has ended."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._changed.set()

    async def _one(self, job: HostJob) -> None:
        async with self.in_flight:
            if self.should_continue is not None and not await self.should_continue():
                await self.sink.host_released(job.run_id)
                return
            try:
                result = await run_host(job, self.sink, self.limits, self.handshakes)
            except Exception as exc:  # never lose a host: an unexpected error fails it with the reason
                log.exception("host run %s crashed", job.run_id)
                result = HostResult(job.run_id, RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")
            await self.sink.host_done(result)


async def run_hosts(
    jobs: Sequence[HostJob],
    sink: Sink,
    limits: RunnerLimits,
    *,
    should_continue: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Drive all jobs with bounded concurrency; every host ends in ``sink.host_done`` exactly once.

    ``should_continue`` is asked before each host starts (see :class:`HostPool`).
    """
    pool = HostPool(sink, limits, should_continue=should_continue)
    pool.start(jobs)
    await pool.join()


async def run_and_store(
    run: Awaitable[None], take: Callable[[], Any], write: Callable[[Any], Awaitable[None]], every: float = 0.5
) -> None:
    """Await ``run`` while storing what it produced every ``every`` seconds, and once more at the end.

    ``take`` runs on the event loop's thread (it swaps the sink's buffers); ``write`` may run in
    another thread. The final write after ``run`` ends catches results that arrived while the
    previous write was in flight.
    """
    task = asyncio.ensure_future(run)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=every)
            await write(take())
        task.result()
    finally:
        if not task.done():
            task.cancel()
        await write(take())
