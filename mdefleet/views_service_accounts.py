"""Service-account pages (admin only): list, create (the token shown once), revoke."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from mdefleet.api.filters import ServiceAccountFilterSet
from mdefleet.audit import Actor
from mdefleet.models import ServiceAccount
from mdefleet.roles import ADMIN, ROLE_ORDER
from mdefleet.service_accounts import (
    DEFAULT_LIFETIME,
    ServiceAccountInvalid,
    service_account_create,
    service_account_list,
    service_account_revoke,
    service_account_state,
)
from mdefleet.views import form_errors_attach, role_required


class ServiceAccountForm(forms.Form):
    """A new service account: name, role, what it is for, and how long its token lives."""

    name = forms.CharField(max_length=63, help_text="e.g. servicenow-prod: lower-case letters, digits, . _ -")
    role = forms.ChoiceField(choices=[(r, r) for r in ROLE_ORDER], initial="operator")
    description = forms.CharField(max_length=255, required=False)
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=365,
        initial=DEFAULT_LIFETIME.days,
        label="Expires in (days)",
        help_text="1 to 365; tokens never live forever.",
    )


def _page(request: HttpRequest, form: ServiceAccountForm, created_token: str = "", status: int = 200) -> HttpResponse:
    filterset = ServiceAccountFilterSet(request.GET or None, queryset=service_account_list())
    accounts = list(filterset.qs if filterset.is_bound and filterset.is_valid() else service_account_list())
    now = timezone.now()
    for account in accounts:
        account.state = service_account_state(account, now=now)
    response = render(
        request,
        "mdefleet/service_accounts.html",
        {"form": form, "accounts": accounts, "filter": filterset, "created_token": created_token},
        status=status,
    )
    if created_token:
        response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def service_accounts(request: HttpRequest) -> HttpResponse:
    """List service accounts and create one; a new token is shown on this response only."""
    if request.method == "GET":
        return _page(request, ServiceAccountForm())
    form = ServiceAccountForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            account, token = service_account_create(
                actor=Actor.from_request(request),
                name=data["name"],
                role=data["role"],
                description=data["description"],
                expires_at=timezone.now() + timedelta(days=data["expires_in_days"]),
            )
        except ServiceAccountInvalid as exc:
            form_errors_attach(form, exc.errors)
        else:
            messages.success(request, f"Service account {account.name} created.")
            return _page(request, ServiceAccountForm(), created_token=token, status=201)
    return _page(request, form, status=400)


@require_POST
@role_required(ADMIN)
def service_account_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a service account's token for good."""
    account = get_object_or_404(ServiceAccount, pk=pk)
    service_account_revoke(actor=Actor.from_request(request), account=account)
    messages.success(request, f"Service account {account.name} revoked: its token no longer works.")
    return redirect("service-accounts")
