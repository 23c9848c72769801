"""The schedule fields of a rollout (on the new-rollout form and the schedule page): shapes only.

Times are read as wall-clock times in the chosen time zone; ``deployments/schedules.py`` holds the
rules and ``schedule_clean`` the validation, whose messages land beside these fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from deployments import schedules
from deployments.services.schedules import schedule_fields_clean

# Where ScheduleError keys are shown on the form.
SCHEDULE_ERROR_FIELDS = {
    "schedule_timezone": "schedule_timezone",
    "maintenance_windows": "windows",
    "blackout_dates": "blackout_dates",
    "start_at": "start_at",
    "start_before": "start_before",
}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _local(value: datetime | None, tz_name: str) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz_name or "UTC")).strftime(LOCAL_FORMAT)


class ScheduleForm(forms.Form):
    """Start time, deadline, weekly windows and blackout dates, all in one time zone."""

    schedule_timezone = forms.ChoiceField(
        required=False, label="Time zone", initial="UTC", help_text="Windows, dates and times below are in this zone"
    )
    start_at = forms.CharField(
        required=False,
        label="Start at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Not before this time; blank: as soon as a window is open",
    )
    start_before = forms.CharField(
        required=False,
        label="Start before",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Cancelled, not started late, if no window opened by then",
    )
    windows = forms.CharField(
        required=False,
        label="Maintenance windows",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "placeholder": "Tue, Thu 22:00-02:00"}),
        help_text="One per line: days and local hours; an end before the start runs past midnight. Blank: any time",
    )
    blackout_dates = forms.CharField(
        required=False,
        label="Blackout dates",
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono", "placeholder": "2026-12-24, 2026-12-31"}),
        help_text="No wave starts on these days (YYYY-MM-DD, comma-separated)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["schedule_timezone"].choices = [(z, z) for z in schedules.zone_choices()]
        self._schedule_data: dict[str, Any] = {}

    @staticmethod
    def initial_from(rollout: Any) -> dict[str, Any]:
        """Form values of a rollout's stored schedule (times shown in its zone)."""
        tz_name = rollout.schedule_timezone or "UTC"
        return {
            "schedule_timezone": tz_name,
            "start_at": _local(rollout.start_at, tz_name),
            "start_before": _local(rollout.start_before, tz_name),
            "windows": schedules.windows_text(rollout.maintenance_windows or []),
            "blackout_dates": ", ".join(rollout.blackout_dates or []),
        }

    def _local_time(self, name: str, tz: ZoneInfo | None) -> datetime | None:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            self.add_error(name, f"{text!r} is not a date and time like 2026-12-01 22:00")
            return None
        if value.tzinfo is None and tz is not None:
            value = value.replace(tzinfo=tz)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tz_name = data.get("schedule_timezone") or "UTC"
        try:
            tz: ZoneInfo | None = schedules.parse_timezone(tz_name)
        except ValueError:
            tz = None
        try:
            windows = schedules.parse_window_text(data.get("windows") or "")
        except ValueError as exc:
            self.add_error("windows", str(exc))
            windows = []
        fields = {
            "schedule_timezone": tz_name,
            "maintenance_windows": windows,
            "blackout_dates": data.get("blackout_dates") or "",
            "start_at": self._local_time("start_at", tz),
            "start_before": self._local_time("start_before", tz),
        }
        if any(name in self.errors for name in SCHEDULE_ERROR_FIELDS.values()):
            return data
        try:
            stored = schedule_fields_clean(fields)
        except schedules.ScheduleError as exc:
            self.add_schedule_errors(exc.errors)
            return data
        self._schedule_data = stored
        return data

    def schedule_data(self) -> dict[str, Any]:
        """The validated schedule as ``rollout_create(schedule=...)`` and ``rollout_schedule_set`` take it."""
        return dict(self._schedule_data)

    def add_schedule_errors(self, errors: dict[str, list[str]]) -> None:
        for key, messages in errors.items():
            field = SCHEDULE_ERROR_FIELDS.get(key)
            for message in messages:
                self.add_error(field, message)

    @property
    def schedule_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("schedule_timezone", "start_at", "start_before", "windows", "blackout_dates")]
