"""API shapes of service accounts. The token appears once, in the create response, and never again."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mdefleet.models import ServiceAccount
from mdefleet.roles import ROLE_ORDER
from mdefleet.service_accounts import service_account_state

ROLE_CHOICES = [(role, role) for role in ROLE_ORDER]
STATES = ["active", "expired", "revoked"]


@extend_schema_field({"type": "string", "enum": STATES}, component_name="ServiceAccountStateEnum")
class StateField(serializers.SerializerMethodField):
    pass


class ServiceAccountSerializer(serializers.ModelSerializer):
    """A service account as read: role, state, expiry, last use; never the token."""

    role = serializers.ChoiceField(choices=ROLE_CHOICES, read_only=True)
    state = StateField(help_text="active, expired or revoked")
    username = serializers.CharField(source="user.username", read_only=True, help_text="Its identity in the audit log")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    revoked_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ServiceAccount
        fields = [
            "id",
            "name",
            "description",
            "role",
            "state",
            "username",
            "token_prefix",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
        ]
        read_only_fields = fields

    def get_state(self, account: ServiceAccount) -> str:
        return service_account_state(account)


class ServiceAccountCreatedSerializer(ServiceAccountSerializer):
    """The new account and its token: store the token now, it is never shown again."""

    token = serializers.SerializerMethodField(help_text="Send as 'Authorization: Bearer <token>'. Shown only once.")

    class Meta(ServiceAccountSerializer.Meta):
        fields = [*ServiceAccountSerializer.Meta.fields, "token"]
        read_only_fields = fields

    def get_token(self, account: Any) -> str:
        return str(self.context["token"])


class ServiceAccountCreateSerializer(serializers.Serializer):
    """What creating a service account takes."""

    name = serializers.CharField(
        max_length=63, help_text="Lower-case letters, digits, '.', '_' or '-', e.g. servicenow-prod"
    )
    role = serializers.ChoiceField(choices=ROLE_CHOICES, help_text="The same roles as people")
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(
        required=False, help_text="Default: 90 days from now; at most 365 days; tokens never live forever"
    )
