"""How the runner paces itself: health polling within the step's window, tasks enough for several workers."""

from __future__ import annotations

import pytest


def test_polling_asks_again_soon_then_every_retry_delay_within_the_same_window() -> None:
    from deployments.runner import FIRST_POLL_SECONDS, poll_delays
    from deployments.steps.health import HealthStep

    delays = list(poll_delays(HealthStep()))
    assert delays[:5] == [FIRST_POLL_SECONDS, 1, 2, 4, 8] and set(delays[5:-1]) == {10}
    assert sum(delays) == pytest.approx((HealthStep.attempts - 1) * HealthStep.retry_delay)


def test_a_wave_is_dispatched_as_enough_tasks_for_several_workers() -> None:
    from deployments.execution import WAVE_TASKS_MAX, rollout_tasks_needed

    assert [rollout_tasks_needed(n) for n in (0, 1, 25, 26, 100)] == [1, 1, 1, 2, 4]
    assert rollout_tasks_needed(923) == WAVE_TASKS_MAX
