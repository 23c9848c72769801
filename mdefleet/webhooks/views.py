"""Pages of outgoing webhooks (admins only): list and create, a subscription's settings and deliveries.

A secret appears on a page exactly once: in the answer to the request that created or rotated it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from mdefleet.audit import Actor
from mdefleet.models import WebhookDelivery, WebhookSubscription
from mdefleet.roles import ADMIN
from mdefleet.views import form_errors_attach, htmx_target, role_required
from mdefleet.webhooks import selectors, services
from mdefleet.webhooks.choices import DeliveryStatus
from mdefleet.webhooks.forms import WebhookForm

DELIVERIES_FRAGMENT = "mdefleet/partials/webhooks_deliveries.html"


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def webhook_list(request: HttpRequest) -> HttpResponse:
    """Subscriptions with their delivery counts, and a form for a new one."""
    form = WebhookForm(request.POST if request.method == "POST" else None, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            subscription, secret = services.webhook_subscription_create(
                actor=Actor.from_request(request),
                name=data["name"],
                url=data["url"],
                events=data["events"],
                secret=data["secret"] or None,
                active=data["active"],
            )
        except services.WebhookInvalid as exc:
            form_errors_attach(form, exc.errors)
        else:
            messages.success(request, f"Webhook {subscription.name} created.")
            # The generated secret is shown in this answer only; a secret the person typed is not echoed.
            return _detail(request, subscription, new_secret=None if data["secret"] else secret, status=201)
    subscriptions = selectors.webhook_subscription_list()
    return render(request, "mdefleet/webhooks.html", {"form": form, "subscriptions": subscriptions})


def _deliveries_context(request: HttpRequest, subscription: WebhookSubscription) -> dict[str, Any]:
    page = Paginator(selectors.webhook_deliveries(subscription=subscription), 25).get_page(request.GET.get("page"))
    return {
        "subscription": subscription,
        "page": page,
        "deliveries": list(page),
        "polling": any(d.status == DeliveryStatus.PENDING for d in page),
    }


def _detail(
    request: HttpRequest,
    subscription: WebhookSubscription,
    form: WebhookForm | None = None,
    new_secret: str | None = None,
    status: int = 200,
) -> HttpResponse:
    initial = {"name": subscription.name, "url": subscription.url, "events": subscription.events}
    form = form or WebhookForm(initial={**initial, "active": subscription.active})
    context = {"form": form, "new_secret": new_secret, **_deliveries_context(request, subscription)}
    response = render(request, "mdefleet/webhooks_detail.html", context, status=status)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A subscription: edit its settings; its recent deliveries with every attempt (the fragment polls while any is pending)."""
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    if request.method == "GET" and htmx_target(request) == "deliveries":
        return render(request, DELIVERIES_FRAGMENT, _deliveries_context(request, subscription))
    if request.method == "POST":
        form = WebhookForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.webhook_subscription_update(
                    actor=Actor.from_request(request),
                    subscription=subscription,
                    name=data["name"],
                    url=data["url"],
                    events=data["events"],
                    active=data["active"],
                    secret=data["secret"] or None,
                )
            except services.WebhookInvalid as exc:
                form_errors_attach(form, exc.errors)
            else:
                messages.success(request, "Webhook saved.")
                return redirect("webhooks:detail", pk=subscription.pk)
        return _detail(request, subscription, form=form, status=400)
    return _detail(request, subscription)


@require_POST
@role_required(ADMIN)
def webhook_rotate_secret(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace the signing secret with a generated one and show it this once."""
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    secret = services.webhook_secret_rotate(actor=Actor.from_request(request), subscription=subscription)
    messages.success(request, "A new signing secret replaces the old one.")
    return _detail(request, subscription, new_secret=secret)


@require_POST
@role_required(ADMIN)
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a subscription with its deliveries."""
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    services.webhook_subscription_delete(actor=Actor.from_request(request), subscription=subscription)
    messages.success(request, f"Webhook {subscription.name} deleted.")
    return redirect("webhooks:list")


def _after_send(request: HttpRequest, subscription: WebhookSubscription, message: str) -> HttpResponse:
    if htmx_target(request) == "deliveries":
        return render(request, DELIVERIES_FRAGMENT, _deliveries_context(request, subscription))
    messages.success(request, message)
    return redirect("webhooks:detail", pk=subscription.pk)


@require_POST
@role_required(ADMIN)
def webhook_ping(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a test event (ping) to this subscription."""
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    services.webhook_ping(actor=Actor.from_request(request), subscription=subscription)
    return _after_send(request, subscription, "Test event queued.")


@require_POST
@role_required(ADMIN)
def webhook_redeliver(request: HttpRequest, pk: int, delivery_id: int) -> HttpResponse:
    """Send one delivery again now."""
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_id, subscription=subscription)
    services.webhook_redeliver(actor=Actor.from_request(request), delivery=delivery)
    return _after_send(request, subscription, f"Delivery {delivery.pk} queued again.")
