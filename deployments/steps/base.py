"""What a step is: a key, a title, the command it sends, and how its output becomes a verdict.

Steps are pure: ``command`` builds a shell string (every value through ``shlex.quote``) from the
context, ``evaluate`` turns the command's result into an :class:`Outcome`. The runner owns the
SSH session and the recording; steps never touch the network or the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hosts.choices import StepStatus
from hosts.ssh import CommandResult


def default_cpu_samples() -> int:
    """The sampling plan's number of CPU readings (MDEFLEET_SNAPSHOT_SAMPLES; 1 outside Django)."""
    from django.conf import settings

    return int(getattr(settings, "MDEFLEET_SNAPSHOT_SAMPLES", 1)) if settings.configured else 1


@dataclass
class StepContext:
    """What a step may read: the host, earlier steps' parsed data, and run settings."""

    host_label: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    proxy: str = ""
    cpu_sample_seconds: int = 2
    profile: Any = None
    # CPU readings a snapshot takes (each ``cpu_sample_seconds`` long); the setting unless a caller says.
    cpu_samples: int = field(default_factory=lambda: default_cpu_samples())

    def data(self, step_key: str) -> dict[str, Any]:
        """Parsed data of an earlier step ({} if it did not run)."""
        return self.results.get(step_key, {})


@dataclass
class Outcome:
    """A step's verdict: status, a reason a person can read, and the parsed data."""

    status: str
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # Ask the runner to run the step again after ``retry_delay`` (while attempts are left).
    retry: bool = False

    @classmethod
    def ok(cls, reason: str = "", **data: Any) -> Outcome:
        return cls(StepStatus.OK, reason, data)

    @classmethod
    def warn(cls, reason: str, **data: Any) -> Outcome:
        return cls(StepStatus.WARN, reason, data)

    @classmethod
    def failed(cls, reason: str, **data: Any) -> Outcome:
        return cls(StepStatus.FAILED, reason, data)


class Step:
    """Base of every step of the checklist."""

    key: str = ""
    number: int = 0
    title: str = ""
    # A failed blocking step stops the host's run; later steps are not attempted.
    blocking: bool = True
    # Seconds the command may run before the runner gives up on it (None: the default).
    timeout: float | None = None

    # Polling steps (health right after onboarding): re-run while evaluate says retry, for up to
    # (attempts - 1) * retry_delay seconds; the runner asks sooner at first (runner.poll_delays).
    attempts: int = 1
    retry_delay: float = 10

    def command(self, ctx: StepContext) -> str | None:
        """The shell command to send (every interpolated value quoted); None for a step judged locally."""
        raise NotImplementedError

    def delay_before(self, ctx: StepContext) -> float:
        """Seconds to wait before the step (the settle time before the post snapshot)."""
        return 0

    def stdin(self, ctx: StepContext) -> str | None:
        """Data to feed the command on standard input (file contents), if any."""
        return None

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        """Turn the command's result into a verdict with parsed data."""
        raise NotImplementedError


def sections(stdout: str) -> dict[str, str]:
    """Split output made of ``@@name`` marker lines into {name: text}; text before any marker is ''."""
    parts: dict[str, list[str]] = {"": []}
    current = ""
    for line in stdout.splitlines():
        if line.startswith("@@") and len(line) > 2 and " " not in line:
            current = line[2:]
            parts[current] = []
        else:
            parts[current].append(line)
    return {name: "\n".join(lines) for name, lines in parts.items()}
