"""Writes of deployment profiles: create, update, onboarding package, adopting a recommendation.

Every service checks all of its input first and raises :class:`ProfileInvalid` (nothing saved) or
writes in one transaction with its audit event. The onboarding package's text is encrypted and
never audited: only its file name, kind, digest and org id are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from deployments import cron
from deployments import managed_settings as ms
from deployments.choices import Channel
from deployments.models import Profile
from deployments.onboarding import OnboardingInvalid, read_onboarding_package
from hosts.crypto import encrypt
from mdefleet.audit import Actor, audit_record

VERSION_PIN = re.compile(r"^101\.\d{1,5}\.\d{4}$")
# Fields a person or a token may write; each is audited with its value before and after.
EDITABLE_FIELDS = (
    "name",
    "description",
    "channel",
    "agent_version",
    "proxy",
    "managed_settings",
    "carried_exclusions",
    "scan_cron",
    "scan_type",
    "update_cron",
)
# Errors under these prefixes are JSON paths inside the field (``managed_settings.antivirusEngine.x``).
NESTED_FIELDS = ("managed_settings", "carried_exclusions")


class ProfileInvalid(Exception):
    """Input refused, nothing saved: messages by field name or by ``field.json.path``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items()))
        self.errors = errors

    def nested(self) -> dict[str, Any]:
        """Errors grouped by field, JSON paths inside: ``{"managed_settings": {"antivirusEngine.x": [...]}}``."""
        out: dict[str, Any] = {}
        for key, messages in self.errors.items():
            field, path = _split_key(key)
            if field in NESTED_FIELDS:
                out.setdefault(field, {}).setdefault(path or ms.ROOT, []).extend(messages)
            else:
                out.setdefault(key, []).extend(messages)
        return out

    def for_field(self, field: str) -> dict[str, list[str]]:
        """The errors of one nested field keyed by their JSON path inside it."""
        nested = self.nested().get(field, {})
        return nested if isinstance(nested, dict) else {ms.ROOT: nested}


def _split_key(key: str) -> tuple[str, str]:
    for field in NESTED_FIELDS:
        if key == field:
            return field, ""
        if key.startswith(field + ".") or key.startswith(field + "["):
            return field, key[len(field) :].lstrip(".")
    return key, ""


def _add(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _text(errors: dict[str, list[str]], data: Mapping[str, Any], key: str, max_length: int) -> str:
    value = data[key]
    if value is None:
        value = ""
    if not isinstance(value, str):
        _add(errors, key, "Expected text.")
        return ""
    value = value.strip()
    if len(value) > max_length:
        _add(errors, key, f"At most {max_length} characters.")
    return value


def _clean(data: Mapping[str, Any], *, profile: Profile | None) -> dict[str, Any]:
    """Check the given fields; returns their cleaned values or raises ProfileInvalid."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    for key in unknown:
        _add(errors, key, f"Unknown field; the fields are: {', '.join(EDITABLE_FIELDS)}.")
    cleaned: dict[str, Any] = {}

    if "name" in data:
        name = _text(errors, data, "name", 120)
        if not name:
            _add(errors, "name", "A profile needs a name.")
        elif Profile.objects.filter(name__iexact=name).exclude(pk=getattr(profile, "pk", None)).exists():
            _add(errors, "name", f"A profile named {name!r} already exists.")
        cleaned["name"] = name
    elif profile is None:
        _add(errors, "name", "A profile needs a name.")
    if "description" in data:
        cleaned["description"] = _text(errors, data, "description", 5000)
    if "channel" in data:
        channel = data["channel"]
        if channel not in Channel.values:
            _add(errors, "channel", f"{channel!r} is not a channel; use one of: {', '.join(Channel.values)}.")
        cleaned["channel"] = channel
    if "agent_version" in data:
        version = _text(errors, data, "agent_version", 40)
        if version and not VERSION_PIN.match(version):
            _add(
                errors, "agent_version", "A version looks like 101.25092.0003 (101.<build>.<4 digits>); blank = latest."
            )
        cleaned["agent_version"] = version
    if "proxy" in data:
        proxy = _text(errors, data, "proxy", 255)
        problem = ms.proxy_problem(proxy) if proxy else None
        if problem:
            _add(errors, "proxy", problem[0].upper() + problem[1:] + ".")
        cleaned["proxy"] = proxy
    if "scan_type" in data:
        if data["scan_type"] not in cron.SCAN_TYPES:
            _add(errors, "scan_type", f"Use one of: {', '.join(cron.SCAN_TYPES)}.")
        cleaned["scan_type"] = data["scan_type"]
    for key in ("scan_cron", "update_cron"):
        if key in data:
            expression = " ".join(_text(errors, data, key, 120).split())
            if expression:
                for message in cron.check_cron(expression).errors:
                    _add(errors, key, message)
            cleaned[key] = expression

    if "managed_settings" in data:
        raw = data["managed_settings"]
        if isinstance(raw, str):
            settings, problems = ms.check_managed_json(raw)
        else:
            settings, problems = raw, ms.validate_managed_settings(raw)
        for problem in problems:
            key = "managed_settings" if problem.path == ms.ROOT else f"managed_settings.{problem.path}"
            _add(errors, key, problem.message)
        cleaned["managed_settings"] = settings
    if "carried_exclusions" in data:
        rows = data["carried_exclusions"]
        problems = ms.validate_carried_exclusions(rows)
        for problem in problems:
            key = "carried_exclusions" if problem.path == ms.ROOT else f"carried_exclusions{problem.path}"
            _add(errors, key, problem.message)
        if not problems:
            cleaned["carried_exclusions"] = [{"kind": row["kind"], "value": row["value"]} for row in rows]

    if not errors:
        # The delivered file must validate too (carried exclusions and the proxy are merged into it).
        settings = cleaned.get("managed_settings", profile.managed_settings if profile else {})
        carried = cleaned.get("carried_exclusions", profile.carried_exclusions if profile else [])
        proxy = cleaned.get("proxy", profile.proxy if profile else "")
        for problem in ms.validate_managed_settings(ms.build_managed_document(settings, carried, proxy)):
            _add(
                errors, "managed_settings", f"The delivered file would be invalid at {problem.path}: {problem.message}"
            )
    if errors:
        raise ProfileInvalid(errors)
    return cleaned


def _snapshot(profile: Profile) -> dict[str, Any]:
    """The audited (non-secret) fields of a profile."""
    return {field: getattr(profile, field) for field in EDITABLE_FIELDS}


def profile_create(*, actor: Actor, data: Mapping[str, Any]) -> Profile:
    """Create a profile; unset settings and schedules start from the recommended baseline."""
    cleaned = _clean(data, profile=None)
    profile = Profile(
        managed_settings=ms.baseline(),
        carried_exclusions=[],
        scan_cron=cron.DEFAULT_SCAN_CRON,
        scan_type=cron.DEFAULT_SCAN_TYPE,
        update_cron=cron.DEFAULT_UPDATE_CRON,
        created_by=actor.user,
    )
    for field, value in cleaned.items():
        setattr(profile, field, value)
    try:
        with transaction.atomic():
            profile.save()
            audit_record(actor=actor, action="profile.create", target=profile, details={"after": _snapshot(profile)})
    except IntegrityError:
        raise ProfileInvalid({"name": [f"A profile named {profile.name!r} already exists."]}) from None
    return profile


def profile_update(*, actor: Actor, profile: Profile, data: Mapping[str, Any]) -> Profile:
    """Change the given fields; audits ``profile.update`` with each changed field before and after."""
    try:
        with transaction.atomic():
            locked = Profile.objects.select_for_update().get(pk=profile.pk)
            cleaned = _clean(data, profile=locked)
            before = _snapshot(locked)
            for field, value in cleaned.items():
                setattr(locked, field, value)
            after = _snapshot(locked)
            changed = [field for field in EDITABLE_FIELDS if before[field] != after[field]]
            if changed:
                locked.save()
                audit_record(
                    actor=actor,
                    action="profile.update",
                    target=locked,
                    details={
                        "changed": changed,
                        "before": {field: before[field] for field in changed},
                        "after": {field: after[field] for field in changed},
                    },
                )
    except IntegrityError:
        raise ProfileInvalid({"name": ["A profile with this name already exists."]}) from None
    return locked


@sensitive_variables("content", "package")
def profile_set_onboarding(*, actor: Actor, profile: Profile, filename: str, content: bytes) -> Profile:
    """Store a new onboarding package (encrypted); audits its name, digest and org id, never its text."""
    try:
        package = read_onboarding_package(filename, content)
    except OnboardingInvalid as exc:
        raise ProfileInvalid({"onboarding": [str(exc)]}) from None
    with transaction.atomic():
        locked = Profile.objects.select_for_update().get(pk=profile.pk)
        previous = {"org_id": locked.org_id, "sha256": locked.onboarding_sha256, "filename": locked.onboarding_filename}
        locked.onboarding_encrypted = encrypt(package.text)
        locked.onboarding_kind = package.kind
        locked.onboarding_filename = package.filename
        locked.onboarding_sha256 = package.sha256
        locked.org_id = package.org_id
        locked.onboarding_uploaded_at = timezone.now()
        locked.save()
        audit_record(
            actor=actor,
            action="profile.onboarding",
            target=locked,
            details={
                "filename": package.filename,
                "kind": package.kind,
                "sha256": package.sha256,
                "org_id": package.org_id,
                "previous": previous,
                "org_id_changed": bool(previous["org_id"]) and previous["org_id"] != package.org_id,
            },
        )
    return locked


def profile_adopt_recommendation(*, actor: Actor, profile: Profile, recommendation_id: str) -> Profile:
    """Adopt one recommendation of the hardening diff into the profile's managed settings."""
    rule = ms.RULES_BY_ID.get(recommendation_id)
    if rule is None:
        raise ProfileInvalid({"recommendation": [f"No recommendation is called {recommendation_id!r}."]})
    with transaction.atomic():
        locked = Profile.objects.select_for_update().get(pk=profile.pk)
        before_value = rule.read(locked.managed_settings or {})
        settings = ms.apply_recommendation(locked.managed_settings or {}, recommendation_id)
        cleaned = _clean({"managed_settings": settings}, profile=locked)
        if cleaned["managed_settings"] == locked.managed_settings:
            return locked
        locked.managed_settings = cleaned["managed_settings"]
        locked.save()
        audit_record(
            actor=actor,
            action="profile.adopt_recommendation",
            target=locked,
            details={
                "recommendation": recommendation_id,
                "path": rule.path,
                "before": before_value,
                "after": rule.read(locked.managed_settings),
            },
        )
    return locked
