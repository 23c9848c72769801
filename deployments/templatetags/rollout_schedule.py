"""Template helpers of rollout schedules: the window state of a rollout and its next openings."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from deployments.services.schedules import rollout_schedule_preview, rollout_window_state

register = template.Library()


@register.simple_tag
def window_state(rollout: Any) -> dict[str, Any]:
    """``{% window_state rollout as ws %}``: open, waiting_for_window, opens_at, closes_at, note."""
    return rollout_window_state(rollout, timezone.now())


@register.simple_tag
def schedule_openings(rollout: Any, count: int = 5) -> list[Any]:
    """``{% schedule_openings rollout 5 as openings %}``: (opens, closes) in the schedule's zone."""
    return rollout_schedule_preview(rollout, timezone.now(), count)
