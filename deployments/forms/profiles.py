"""Forms of the profile pages, and the one FilterSet of the profile list (page and API).

Forms only shape input; the services decide what is valid. Their errors come back keyed by field
name or JSON path and are attached to the form field they belong to.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from deployments import cron
from deployments import managed_settings as ms
from deployments.choices import Channel
from deployments.filters import ProfileFilterSet  # noqa: F401 - the profile list's FilterSet, re-exported
from deployments.models import Profile

NOT_SET = ""


class ProfileGeneralForm(forms.Form):
    """Name, channel, version pin and proxy (also the form of a new profile)."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.PROD)
    agent_version = forms.CharField(
        required=False,
        max_length=40,
        label="Agent version pin",
        help_text="e.g. 101.25092.0003; blank installs the latest of the channel.",
    )
    proxy = forms.CharField(
        required=False,
        max_length=255,
        label="Static proxy",
        help_text="http://host:port. PAC files, WPAD and proxies that need a password are not supported.",
    )

    @classmethod
    def initial_for(cls, profile: Profile) -> dict[str, Any]:
        return {field: getattr(profile, field) for field in cls.base_fields}


class OnboardingUploadForm(forms.Form):
    """The package downloaded from the portal (Settings > Endpoints > Onboarding > Linux Server)."""

    package = forms.FileField(
        label="Onboarding package",
        help_text="MicrosoftDefenderATPOnboardingLinuxServer.py or mdatp_onboard.json, as downloaded (unzipped).",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,.json"}),
    )


def _not_set_label(path: str) -> str:
    node = ms.node_at(path)
    default = getattr(node, "default", None)
    if default is None:
        return "— not set —"
    shown = json.dumps(default) if not isinstance(default, str) else default
    return f"— not set (default {shown}) —"


def _enum_field(path: str, label: str, help_text: str = "") -> forms.ChoiceField:
    node = ms.node_at(path)
    assert isinstance(node, ms.Enum)
    return forms.ChoiceField(
        choices=[(NOT_SET, _not_set_label(path))] + [(value, value) for value in node.values],
        required=False,
        label=label,
        help_text=help_text,
    )


def _bool_field(path: str, label: str, help_text: str = "") -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=[(NOT_SET, _not_set_label(path)), ("true", "true"), ("false", "false")],
        required=False,
        label=label,
        help_text=help_text,
    )


def _threat_field(label: str) -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=[(NOT_SET, "— not set (default audit) —")] + [(value, value) for value in ms.THREAT_ACTIONS],
        required=False,
        label=label,
    )


AV = "antivirusEngine"
CLOUD = "cloudService"
PUA = "potentially_unwanted_application"


class ManagedSettingsForm(forms.Form):
    """The common keys of mdatp_managed.json; saving it rewrites only these keys of the document."""

    # Form field → JSON path; threat types and disallowed actions are handled on their own.
    PATHS = {
        "enforcement_level": f"{AV}.enforcementLevel",
        "behavior_monitoring": f"{AV}.behaviorMonitoring",
        "scan_after_definition_update": f"{AV}.scanAfterDefinitionUpdate",
        "scan_archives": f"{AV}.scanArchives",
        "maximum_on_demand_scan_threads": f"{AV}.maximumOnDemandScanThreads",
        "exclusions_merge_policy": f"{AV}.exclusionsMergePolicy",
        "threat_type_settings_merge_policy": f"{AV}.threatTypeSettingsMergePolicy",
        "disallowed_threat_actions": f"{AV}.disallowedThreatActions",
        "cloud_enabled": f"{CLOUD}.enabled",
        "diagnostic_level": f"{CLOUD}.diagnosticLevel",
        "automatic_sample_submission_consent": f"{CLOUD}.automaticSampleSubmissionConsent",
        "automatic_definition_update_enabled": f"{CLOUD}.automaticDefinitionUpdateEnabled",
    }
    BOOLEANS = ("scan_after_definition_update", "scan_archives", "cloud_enabled", "automatic_definition_update_enabled")
    THREATS = {"pua_action": PUA, "archive_bomb_action": "archive_bomb"}

    enforcement_level = _enum_field(
        f"{AV}.enforcementLevel",
        "enforcementLevel",
        "real_time protects as files are opened; passive (the default) and on_demand only scan when asked.",
    )
    behavior_monitoring = _enum_field(f"{AV}.behaviorMonitoring", "behaviorMonitoring", "Only with real_time.")
    scan_after_definition_update = _bool_field(
        f"{AV}.scanAfterDefinitionUpdate", "scanAfterDefinitionUpdate", "Only with real_time."
    )
    scan_archives = _bool_field(f"{AV}.scanArchives", "scanArchives", "On-demand scans only.")
    maximum_on_demand_scan_threads = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=64,
        label="maximumOnDemandScanThreads",
        help_text="1 to 64; blank = default 2.",
    )
    exclusions_merge_policy = _enum_field(
        f"{AV}.exclusionsMergePolicy", "exclusionsMergePolicy", "admin_only: local admins cannot add exclusions."
    )
    threat_type_settings_merge_policy = _enum_field(
        f"{AV}.threatTypeSettingsMergePolicy",
        "threatTypeSettingsMergePolicy",
        "admin_only: local admins cannot change threat type settings.",
    )
    pua_action = _threat_field("Potentially unwanted applications (threatTypeSettings)")
    archive_bomb_action = _threat_field("Archive bombs (threatTypeSettings)")
    disallowed_threat_actions = forms.MultipleChoiceField(
        choices=[("allow", "allow"), ("restore", "restore")],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="disallowedThreatActions",
        help_text="Ticked actions are taken away from local users (allow a threat, restore from quarantine).",
    )
    cloud_enabled = _bool_field(f"{CLOUD}.enabled", "cloudService.enabled")
    diagnostic_level = _enum_field(f"{CLOUD}.diagnosticLevel", "diagnosticLevel")
    automatic_sample_submission_consent = _enum_field(
        f"{CLOUD}.automaticSampleSubmissionConsent", "automaticSampleSubmissionConsent"
    )
    automatic_definition_update_enabled = _bool_field(
        f"{CLOUD}.automaticDefinitionUpdateEnabled", "automaticDefinitionUpdateEnabled"
    )

    @classmethod
    def initial_for(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """The form's values read from a document (unset keys show as not set)."""
        initial: dict[str, Any] = {}
        for name, path in cls.PATHS.items():
            value = ms.get_path(settings, path)
            if name in cls.BOOLEANS:
                initial[name] = NOT_SET if value is None else ("true" if value else "false")
            elif name == "disallowed_threat_actions":
                initial[name] = list(value or [])
            else:
                initial[name] = NOT_SET if value is None else value
        for name, key in cls.THREATS.items():
            initial[name] = ms.threat_type_action(settings, key) or NOT_SET
        return initial

    def apply_to(self, settings: dict[str, Any]) -> dict[str, Any]:
        """A copy of the document with this form's keys written (not set = key removed)."""
        data = json.loads(json.dumps(settings or {}))
        for name, path in self.PATHS.items():
            value = self.cleaned_data.get(name)
            if name in self.BOOLEANS:
                value = None if value in (NOT_SET, None) else value == "true"
            elif name == "disallowed_threat_actions":
                value = [action for action in ("allow", "restore") if action in (value or [])] or None
            elif value in (NOT_SET, None):
                value = None
            if value is None:
                ms.unset_path(data, path)
            else:
                ms.set_path(data, path, value)
        for name, key in self.THREATS.items():
            ms.set_threat_type_action(data, key, self.cleaned_data.get(name) or None)
        return data

    @classmethod
    def field_for_path(cls, path: str, settings: dict[str, Any] | None) -> str | None:
        """The form field a JSON path belongs to (None when the form has no field for it)."""
        for name, field_path in cls.PATHS.items():
            if path == field_path or path.startswith(field_path + "[") or path.startswith(field_path + "."):
                return name
        prefix = f"{AV}.threatTypeSettings"
        if path.startswith(prefix):
            items = ms.get_path(settings or {}, prefix)
            try:
                index = int(path[len(prefix) + 1 :].split("]")[0])
                key = items[index].get("key")
            except (ValueError, IndexError, TypeError, AttributeError):
                return None
            return {PUA: "pua_action", "archive_bomb": "archive_bomb_action"}.get(key)
        return None


class ManagedJsonForm(forms.Form):
    """The whole mdatp_managed.json as text."""

    document = forms.CharField(
        required=False,
        strip=False,
        label="mdatp_managed.json",
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false", "class": "code"}),
    )


class CarriedExclusionForm(forms.Form):
    """One exclusion taken over from the previous antivirus."""

    kind = forms.ChoiceField(choices=list(ms.CARRIED_KINDS.items()), label="Type")
    value = forms.CharField(required=False, max_length=4096, strip=False, label="Value")


CarriedExclusionFormSet = forms.formset_factory(
    CarriedExclusionForm, extra=3, can_delete=True, max_num=1000, validate_max=True
)


def carried_initial(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"kind": row["kind"], "value": row["value"]} for row in rows]


def carried_rows(formset: Any) -> tuple[list[dict[str, str]], list[int]]:
    """The rows to save (blank and deleted rows dropped) and each row's form index, for errors."""
    rows, indexes = [], []
    for index, form in enumerate(formset.forms):
        data = form.cleaned_data
        if not data or data.get("DELETE") or not (data.get("value") or "").strip():
            continue
        rows.append({"kind": data["kind"], "value": data["value"]})
        indexes.append(index)
    return rows, indexes


class SchedulesForm(forms.Form):
    """The scheduled scan and the agent update, as cron expressions."""

    scan_cron = forms.CharField(
        required=False,
        max_length=120,
        label="Scheduled scan",
        help_text="minute hour day-of-month month day-of-week, e.g. 0 2 * * sat. Blank: no scheduled scan.",
    )
    scan_type = forms.ChoiceField(choices=[(value, value) for value in cron.SCAN_TYPES], label="Scan type")
    update_cron = forms.CharField(
        required=False,
        max_length=120,
        label="Agent update",
        help_text="Monthly is recommended, e.g. 0 6 1 * *. Blank: no update job.",
    )

    @classmethod
    def initial_for(cls, profile: Profile) -> dict[str, Any]:
        return {"scan_cron": profile.scan_cron, "scan_type": profile.scan_type, "update_cron": profile.update_cron}
