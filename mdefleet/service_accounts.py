"""Service accounts and their API tokens: create (token shown once), revoke, authenticate.

A token is ``mdf_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored: the token has enough entropy that a fast hash is safe, and a lookup by hash needs no
constant-time comparison. Each account owns a Django user in its role's group, so the existing
role checks, audit trail and ``created_by`` fields need nothing new.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from mdefleet.audit import Actor, audit_record
from mdefleet.models import ServiceAccount
from mdefleet.roles import ROLE_ORDER

TOKEN_PREFIX = "mdf_"  # noqa: S105 - a public prefix, not a secret
DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=365)
MIN_LIFETIME = timedelta(hours=1)
# last_used_at is written at most once per this interval per account: one UPDATE, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
USERNAME_PREFIX = "svc-"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")


class ServiceAccountInvalid(Exception):
    """Input refused, nothing saved: messages by field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items()))
        self.errors = errors


class TokenRefused(Exception):
    """The presented token is unknown, revoked or expired; the message says which, for the 401."""


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    """True for strings shaped like a service-account token (``mdf_...``)."""
    return value.startswith(TOKEN_PREFIX)


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_service_user(user: Any) -> bool:
    """True when the user is the identity of a service account (not a person)."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and _account_of(user) is not None)


def _account_of(user: Any) -> ServiceAccount | None:
    try:
        return user.service_account
    except (ServiceAccount.DoesNotExist, AttributeError):
        return None


# --- selectors -------------------------------------------------------------------------------------


def service_account_list() -> QuerySet[ServiceAccount]:
    """All service accounts with who created and revoked them, by name."""
    return ServiceAccount.objects.select_related("created_by", "revoked_by", "user").order_by("name")


def service_account_state(account: ServiceAccount, *, now: datetime | None = None) -> str:
    """``active``, ``revoked`` or ``expired``."""
    now = now or timezone.now()
    if account.revoked_at is not None:
        return "revoked"
    if account.expires_at <= now:
        return "expired"
    return "active"


# --- services --------------------------------------------------------------------------------------


def service_account_create(
    *,
    actor: Actor,
    name: str,
    role: str,
    description: str = "",
    expires_at: datetime | None = None,
) -> tuple[ServiceAccount, str]:
    """Create an account with a fresh token; returns the account and the token (its only showing)."""
    now = timezone.now()
    name = (name or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if not NAME_RE.match(name):
        errors["name"] = [
            "2 to 63 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        ]
    elif ServiceAccount.objects.filter(name=name).exists():
        errors["name"] = [f"a service account named {name!r} exists already"]
    if role not in ROLE_ORDER:
        errors["role"] = [f"one of: {', '.join(ROLE_ORDER)}"]
    if expires_at is None:
        expires_at = now + DEFAULT_LIFETIME
    elif expires_at < now + MIN_LIFETIME:
        errors["expires_at"] = ["must be at least an hour from now"]
    elif expires_at > now + MAX_LIFETIME:
        errors["expires_at"] = ["must be at most 365 days from now; tokens never live forever"]
    if len(description) > 255:
        errors["description"] = ["at most 255 characters"]
    if errors:
        raise ServiceAccountInvalid(errors)
    token = _new_token()
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(username=f"{USERNAME_PREFIX}{name}"[:150], password=None)
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            account = ServiceAccount.objects.create(
                name=name,
                description=description,
                role=role,
                user=user,
                token_hash=token_hash(token),
                token_prefix=token[: len(TOKEN_PREFIX) + 6],
                created_by=actor.user,
                expires_at=expires_at,
            )
            audit_record(
                actor=actor,
                action="service_account.create",
                target=account,
                details={"role": role, "expires_at": expires_at.isoformat(), "token_prefix": account.token_prefix},
            )
    except IntegrityError:
        raise ServiceAccountInvalid({"name": [f"the name {name!r} (or its user) is taken"]}) from None
    return account, token


def service_account_revoke(*, actor: Actor, account: ServiceAccount) -> ServiceAccount:
    """Revoke for good: its token stops working at once and its user is deactivated. Idempotent."""
    with transaction.atomic():
        account = ServiceAccount.objects.select_for_update().get(pk=account.pk)
        if account.revoked_at is not None:
            return account
        account.revoked_at = timezone.now()
        account.revoked_by = actor.user
        account.save(update_fields=["revoked_at", "revoked_by"])
        get_user_model().objects.filter(pk=account.user_id).update(is_active=False)
        audit_record(actor=actor, action="service_account.revoke", target=account, details={"role": account.role})
    return account


def service_account_authenticate(*, token: str) -> ServiceAccount:
    """The active account holding ``token``; raises TokenRefused (unknown, revoked, expired)."""
    account = ServiceAccount.objects.select_related("user").filter(token_hash=token_hash(token)).first()
    if account is None:
        raise TokenRefused("Invalid token.")
    now = timezone.now()
    if account.revoked_at is not None or not account.user.is_active:
        raise TokenRefused("Token revoked.")
    if account.expires_at <= now:
        raise TokenRefused("Token expired.")
    if account.last_used_at is None or account.last_used_at < now - LAST_USED_RESOLUTION:
        # A conditional update: concurrent requests write it once, and never move it backwards.
        ServiceAccount.objects.filter(pk=account.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        account.last_used_at = now
    return account
