"""The new-rollout form: field types and shapes only; the rules live in ``rollout_create``/``rollout_preview``."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from deployments.comparison import METRICS
from deployments.forms.schedules import SCHEDULE_ERROR_FIELDS, ScheduleForm
from deployments.gates import DEFAULT_GATES
from deployments.models import Profile
from hosts.choices import AgentState, Eligibility
from hosts.models import Host, Tag
from hosts.selectors import distro_choices

DEFAULT_PLAN = "1, 5%, 25%, 100%"
UNIT_CHOICES = [("count", "hosts"), ("pct", "% of hosts")]
MAX_LISTED_HOSTS = 5000
# Fields of the form that choose hosts, and the HostFilterSet parameter each fleet-filter field sets.
FILTER_FIELDS = {"filter_q": "q", "filter_tag": "tag", "filter_distro": "distro", "filter_eligibility": "eligibility"}
FILTER_FIELDS["filter_agent_state"] = "agent_state"
# Where the service's error keys are shown on the form.
ERROR_FIELDS = {
    "name": "name",
    "profile": "profile",
    "ticket": "ticket",
    "hosts": "hosts",
    "wave_plan": "wave_plan",
    "soak_seconds": "soak_minutes",
    "settle_seconds": "settle_seconds",
    "approval_timeout_seconds": "approval_timeout_hours",
    **SCHEDULE_ERROR_FIELDS,
}


def _regression_field(metric: str) -> str:
    return f"reg_{metric}"


class RolloutForm(ScheduleForm):
    """Name, profile, hosts (tags, fleet filter, explicit list), wave plan, gates, timings and schedule."""

    name = forms.CharField(max_length=200, required=False, widget=forms.TextInput(attrs={"autofocus": True}))
    profile = forms.ModelChoiceField(queryset=Profile.objects.order_by("name"), empty_label="choose a profile")
    ticket = forms.CharField(max_length=64, required=False, help_text="External change reference, e.g. CHG0031234")

    tags = forms.CharField(
        required=False, label="Hosts with tag(s)", help_text="Comma-separated; a host with any of them is chosen"
    )
    filter_q = forms.CharField(required=False, label="Name or address contains")
    filter_tag = forms.ChoiceField(required=False, label="Tag")
    filter_distro = forms.ChoiceField(required=False, label="Distro")
    filter_eligibility = forms.ChoiceField(
        required=False, label="Eligibility", choices=[("", "any"), *Eligibility.choices]
    )
    filter_agent_state = forms.ChoiceField(required=False, label="Agent", choices=[("", "any"), *AgentState.choices])
    hosts = forms.CharField(
        required=False,
        label="Host ids or names",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "placeholder": "web-01, web-02\n17"}),
        help_text="One per line or comma-separated",
    )

    wave_plan = forms.CharField(
        initial=DEFAULT_PLAN,
        required=False,
        help_text="Host counts or cumulative percentages: 1, 5%, 25%, 100% is a canary, then up to 5%, 25%, all",
    )

    max_failed_per_wave_value = forms.FloatField(
        min_value=0, initial=DEFAULT_GATES["max_failed_per_wave"]["value"], label="Halt when more than"
    )
    max_failed_per_wave_unit = forms.ChoiceField(
        choices=UNIT_CHOICES, initial=DEFAULT_GATES["max_failed_per_wave"]["unit"]
    )
    max_failed_total_value = forms.FloatField(
        min_value=0, initial=DEFAULT_GATES["max_failed_total"]["value"], label="Failure budget"
    )
    max_failed_total_unit = forms.ChoiceField(choices=UNIT_CHOICES, initial=DEFAULT_GATES["max_failed_total"]["unit"])

    soak_minutes = forms.IntegerField(min_value=0, initial=0, label="Soak", help_text="minutes between waves")
    settle_seconds = forms.IntegerField(
        min_value=0, initial=60, label="Settle", help_text="seconds before the post snapshot"
    )
    auto_promote = forms.TypedChoiceField(
        choices=[("1", "Start the next wave after the soak time"), ("0", "Wait for an approver after each wave")],
        coerce=lambda value: value == "1",
        initial="1",
        widget=forms.RadioSelect,
        label="Between waves",
    )
    approval_timeout_hours = forms.FloatField(
        min_value=0, initial=24, label="Approval timeout", help_text="hours; halted when nobody approves in time"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for metric, meta in METRICS.items():
            default = DEFAULT_GATES["regression"].get(metric)
            self.fields[_regression_field(metric)] = forms.FloatField(
                required=False,
                min_value=0,
                initial=default,
                label=meta["label"],
                help_text=meta["unit"],
                widget=forms.NumberInput(attrs={"step": "any", "placeholder": "not gated"}),
            )
        tags = [(name, name) for name in Tag.objects.order_by("name").values_list("name", flat=True)]
        self.fields["filter_tag"].choices = [("", "any tag"), *tags]
        self.fields["filter_distro"].choices = [("", "any distro"), *distro_choices()]

    # --- shapes ----------------------------------------------------------------------------------

    def clean_tags(self) -> list[str]:
        names = [t for t in re.split(r"[\s,]+", self.cleaned_data["tags"]) if t]
        unknown = sorted(set(names) - set(Tag.objects.filter(name__in=names).values_list("name", flat=True)))
        if unknown:
            raise forms.ValidationError(f"no tag named {', '.join(unknown)}")
        return names

    def clean_hosts(self) -> list[int]:
        """Ids and names (or addresses) to host ids; a name shared by several hosts is refused."""
        entries = [e for e in re.split(r"[\s,;]+", self.cleaned_data["hosts"]) if e]
        if len(entries) > MAX_LISTED_HOSTS:
            raise forms.ValidationError(f"at most {MAX_LISTED_HOSTS} hosts here; use tags or the fleet filter")
        ids = {int(e) for e in entries if e.isdigit()}
        names = {e for e in entries if not e.isdigit()}
        found: dict[str, list[int]] = {}
        if names:
            for pk, name in Host.objects.filter(name__in=names).values_list("id", "name"):
                found.setdefault(name, []).append(pk)
            for pk, address in Host.objects.filter(address__in=names - set(found)).values_list("id", "address"):
                found.setdefault(address, []).append(pk)
        errors = []
        missing = sorted(names - set(found))
        if missing:
            errors.append(f"no host named {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}")
        shared = sorted(name for name, pks in found.items() if len(pks) > 1)
        if shared:
            errors.append(f"{', '.join(shared[:5])}: several hosts have this name; give their ids")
        if errors:
            raise forms.ValidationError(errors)
        return sorted(ids | {pks[0] for pks in found.values()})

    def selection(self) -> dict[str, Any]:
        """The host selection as ``rollout_create`` takes it (ids, tags, filter), from cleaned data."""
        data = self.cleaned_data
        selection: dict[str, Any] = {}
        if data.get("hosts"):
            selection["ids"] = data["hosts"]
        if data.get("tags"):
            selection["tags"] = data["tags"]
        fleet = {param: data[name] for name, param in FILTER_FIELDS.items() if data.get(name)}
        if fleet:
            selection["filter"] = fleet
        return selection

    def preview_errors(self) -> dict[str, list[str]]:
        """Errors of the fields a preview needs (hosts and wave plan); others do not block it."""
        needed = ["tags", "hosts", "wave_plan", *FILTER_FIELDS]
        return {name: list(errors) for name, errors in self.errors.items() if name in needed}

    def gates(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "max_failed_per_wave": {
                "value": data["max_failed_per_wave_value"],
                "unit": data["max_failed_per_wave_unit"],
            },
            "max_failed_total": {"value": data["max_failed_total_value"], "unit": data["max_failed_total_unit"]},
            "regression": {metric: data.get(_regression_field(metric)) for metric in METRICS},
        }

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``rollout_create``."""
        data = self.cleaned_data
        return {
            "name": data["name"] or "",
            "profile": data["profile"],
            "ticket": data["ticket"] or "",
            "selection": self.selection(),
            "wave_plan": data["wave_plan"] or "",
            "gates": self.gates(),
            "soak_seconds": int(data["soak_minutes"]) * 60,
            "settle_seconds": int(data["settle_seconds"]),
            "auto_promote": bool(data["auto_promote"]),
            "approval_timeout_seconds": round(data["approval_timeout_hours"] * 3600),
            "schedule": self.schedule_data(),
        }

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Show ``RolloutInvalid.errors`` beside the fields they concern."""
        for key, messages in errors.items():
            for message in messages:
                field = self._field_for(key, message)
                if key == "gates" and field is not None:
                    # "max_failed_per_wave.value is a percentage…" beside that box reads "This is a percentage…".
                    message = "This " + message.split(" ", 1)[1] if " " in message else message
                self.add_error(field, message)

    def _field_for(self, key: str, message: str) -> str | None:
        if key in ERROR_FIELDS:
            return ERROR_FIELDS[key]
        if key == "gates":
            for metric in METRICS:
                if message.startswith(f"regression.{metric}"):
                    return _regression_field(metric)
            for gate in ("max_failed_per_wave", "max_failed_total"):
                if message.startswith(gate):
                    return f"{gate}_value"
        return None

    @property
    def regression_fields(self) -> list[forms.BoundField]:
        return [self[_regression_field(metric)] for metric in METRICS]
