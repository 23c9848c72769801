"""Role personas: one logged-in client per role, and API clients with tokens."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from mdefleet.roles import ROLE_ORDER


def make_user(role: str | None, username: str | None = None) -> User:
    user = User.objects.create_user(username=username or f"{role or 'nobody'}-user", password="pw-for-tests-1")
    if role:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user


@pytest.fixture
def users(db: Any) -> dict[str, User]:
    """One user per role, plus one with no role at all."""
    made = {role: make_user(role) for role in ROLE_ORDER}
    made["none"] = make_user(None)
    return made


@pytest.fixture
def operator_client(client: Any, users: dict[str, User]) -> Any:
    client.force_login(users["operator"])
    return client


@pytest.fixture
def viewer_client(client: Any, users: dict[str, User]) -> Any:
    client.force_login(users["viewer"])
    return client


@pytest.fixture
def admin_client_(client: Any, users: dict[str, User]) -> Any:
    client.force_login(users["admin"])
    return client


@pytest.fixture
def api_client_for(users: dict[str, User]) -> Any:
    """``api_client_for("operator")`` → an APIClient sending that user's token."""

    def make(role: str) -> APIClient:
        token, _ = Token.objects.get_or_create(user=users[role])
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return api

    return make
