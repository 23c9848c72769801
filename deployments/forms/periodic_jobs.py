"""The edit form of one periodic job: an interval or a crontab, and enabled."""

from __future__ import annotations

from typing import Any

from django import forms

from deployments.services.periodic_jobs import PERIOD_SECONDS


class PeriodicJobForm(forms.Form):
    """Run every N seconds/minutes/hours/days, or on a crontab (UTC); enabled or not."""

    kind = forms.ChoiceField(choices=[("interval", "Every"), ("crontab", "Crontab")], initial="interval")
    every = forms.IntegerField(required=False, min_value=1)
    period = forms.ChoiceField(required=False, choices=[(p, p) for p in PERIOD_SECONDS])
    crontab = forms.CharField(
        required=False, max_length=120, help_text="minute hour day-of-month month day-of-week (UTC), e.g. 0 6 * * *"
    )
    enabled = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("kind") == "interval" and not data.get("every"):
            self.add_error("every", "how often, e.g. every 10 seconds")
        if data.get("kind") == "crontab" and not (data.get("crontab") or "").strip():
            self.add_error("crontab", "a crontab such as 0 6 * * *")
        return data

    def update_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["kind"] == "crontab":
            return {"enabled": bool(data.get("enabled")), "crontab": data["crontab"].strip()}
        return {"enabled": bool(data.get("enabled")), "every": data["every"], "period": data.get("period") or "seconds"}

    @staticmethod
    def initial_for(task: Any) -> dict[str, Any]:
        if task.crontab_id:
            c = task.crontab
            cron = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
            return {"kind": "crontab", "crontab": cron, "enabled": task.enabled, "every": None, "period": "minutes"}
        every = task.interval.every if task.interval_id else 1
        period = task.interval.period if task.interval_id else "hours"
        return {"kind": "interval", "every": every, "period": period, "enabled": task.enabled}
