"""REST API of service accounts: list, read, create (the token shown once), revoke. Admins only.

Service accounts themselves may not manage service accounts: a leaked ticketing token must not be
able to mint more tokens.
"""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.api.pagination import StandardPagination
from mdefleet.api import serializers as s
from mdefleet.api.filters import ServiceAccountFilterSet
from mdefleet.audit import Actor
from mdefleet.roles import ADMIN
from mdefleet.service_accounts import (
    ServiceAccountInvalid,
    is_service_user,
    service_account_create,
    service_account_list,
    service_account_revoke,
)


@extend_schema_view(
    list=extend_schema(summary="Service accounts (never their tokens)"),
    retrieve=extend_schema(summary="One service account"),
    create=extend_schema(
        summary="Create a service account; the response carries its token, shown this once",
        request=s.ServiceAccountCreateSerializer,
        responses={201: s.ServiceAccountCreatedSerializer},
    ),
)
@extend_schema(tags=["service-accounts"])
class ServiceAccountViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """API callers that are not people, with a role and an expiring token."""

    serializer_class = s.ServiceAccountSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ServiceAccountFilterSet
    pagination_class = StandardPagination
    read_role = ADMIN
    required_role = ADMIN

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if is_service_user(request.user):
            raise PermissionDenied("Service accounts cannot manage service accounts; a person (admin) must.")

    def get_queryset(self) -> Any:
        return service_account_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = s.ServiceAccountCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            account, token = service_account_create(
                actor=Actor.from_request(request),
                name=data["name"],
                role=data["role"],
                description=data["description"],
                expires_at=data.get("expires_at"),
            )
        except ServiceAccountInvalid as exc:
            raise ValidationError(exc.errors) from None
        body = s.ServiceAccountCreatedSerializer(account, context={"token": token}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(summary="Revoke: the token stops working at once (idempotent)", request=None)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        account = service_account_revoke(actor=Actor.from_request(request), account=self.get_object())
        return Response(s.ServiceAccountSerializer(account).data)
