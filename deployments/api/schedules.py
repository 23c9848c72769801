"""API shapes of a rollout's schedule: the input fields (validated by deployments/schedules.py) and the window state."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from deployments import schedules
from deployments.services.schedules import schedule_fields_clean


class WindowSerializer(serializers.Serializer):
    """A weekly maintenance window in the schedule's time zone; an end at or before the start runs past midnight."""

    days = serializers.ListField(
        child=serializers.ChoiceField(choices=schedules.DAYS), help_text="Days it opens on: mon … sun"
    )
    start = serializers.CharField(help_text="Local opening time HH:MM, e.g. 22:00")
    end = serializers.CharField(help_text="Local closing time HH:MM (24:00 for midnight), e.g. 02:00")


class ScheduleInputSerializer(serializers.Serializer):
    """When the rollout may run: start time, deadline, weekly windows and blackout dates in one IANA zone."""

    start_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Waves start no earlier than this (with offset)"
    )
    start_before = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="A scheduled rollout that could not start by then is cancelled (status aborted, halt_reason "
        "says why, webhook rollout.aborted with reason start_before_passed) rather than started late",
    )
    schedule_timezone = serializers.CharField(
        required=False, default="UTC", help_text="IANA time zone of the windows and blackout dates, e.g. Europe/Berlin"
    )
    maintenance_windows = WindowSerializer(
        many=True,
        required=False,
        default=list,
        help_text='e.g. [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}]; empty: any time',
    )
    blackout_dates = serializers.ListField(
        child=serializers.DateField(),
        required=False,
        default=list,
        help_text="Dates (YYYY-MM-DD, in the schedule's zone) on which no wave starts",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        try:
            stored = schedule_fields_clean(
                {
                    "schedule_timezone": attrs.get("schedule_timezone"),
                    "maintenance_windows": [dict(w) for w in attrs.get("maintenance_windows") or []],
                    "blackout_dates": [d.isoformat() for d in attrs.get("blackout_dates") or []],
                    "start_at": attrs.get("start_at"),
                    "start_before": attrs.get("start_before"),
                }
            )
        except schedules.ScheduleError as exc:
            raise serializers.ValidationError(exc.errors) from None
        attrs["schedule"] = stored
        return attrs


class WindowStateSerializer(serializers.Serializer):
    """The schedule right now: open or not, and whether the rollout waits for a window."""

    scheduled = serializers.BooleanField(help_text="Whether a start time, windows or blackout dates are set")
    open = serializers.BooleanField(allow_null=True, help_text="Whether a window is open now (null: no schedule)")
    waiting_for_window = serializers.BooleanField(help_text="The rollout would start a wave or host but may not yet")
    opens_at = serializers.DateTimeField(allow_null=True, help_text="When it may go on (when waiting)")
    closes_at = serializers.DateTimeField(allow_null=True, help_text="When the open window closes")
    note = serializers.CharField(help_text='In words, e.g. "waiting for window (opens Tue 22:00 CET)"')
