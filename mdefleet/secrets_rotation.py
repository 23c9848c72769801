"""Key rotation: re-encrypt every secret at rest under the newest key of MDEFLEET_FERNET_KEYS.

Encrypted columns are found by convention, not by a list kept by hand: every concrete field of
every installed model whose name ends in ``_encrypted`` holds a Fernet token (credentials'
keys/passwords/passphrases, profiles' onboarding packages, jobs' payloads, webhook secrets...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.db import models, transaction

from hosts import crypto
from mdefleet.audit import Actor, audit_record

SUFFIX = "_encrypted"
BATCH = 500


@dataclass
class RotationReport:
    """What one rotation did, per ``app.Model.field``: tokens re-encrypted and tokens already current."""

    rotated: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())

    @property
    def total_current(self) -> int:
        return sum(self.current.values())


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) holding a Fernet token, found by the ``_encrypted`` suffix."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for model_field in model._meta.concrete_fields:
            if model_field.name.endswith(SUFFIX):
                found.append((model, model_field.name))
    return sorted(found, key=lambda pair: (pair[0]._meta.label, pair[1]))


def secrets_rotate(*, actor: Actor, dry_run: bool = False) -> RotationReport:
    """Re-encrypt every token not under the newest key, in one transaction (all or nothing); audited.

    Running it again finds every token current and changes nothing. Rows are locked while
    rotated, so a concurrent edit is never overwritten by its older value.
    """
    report = RotationReport()
    with transaction.atomic():
        for model, name in encrypted_fields():
            label = f"{model._meta.label}.{name}"
            rows = list(
                model._default_manager.select_for_update().exclude(**{name: ""}).order_by("pk").values_list("pk", name)
            )
            changed = [
                model(pk=pk, **{name: crypto.rotate(token)}) for pk, token in rows if not crypto.is_current(token)
            ]
            report.rotated[label] = len(changed)
            report.current[label] = len(rows) - len(changed)
            if changed and not dry_run:
                model._default_manager.bulk_update(changed, [name], batch_size=BATCH)
        if not dry_run:
            audit_record(
                actor=actor,
                action="secrets.rotate_keys",
                details={"rotated": report.rotated, "already_current": report.current},
            )
    return report
