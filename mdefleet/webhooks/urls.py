"""Pages of outgoing webhooks, mounted at /webhooks/ by mdefleet/urls.py."""

from __future__ import annotations

from django.urls import path

from mdefleet.webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("", views.webhook_list, name="list"),
    path("<int:pk>/", views.webhook_detail, name="detail"),
    path("<int:pk>/rotate-secret/", views.webhook_rotate_secret, name="rotate-secret"),
    path("<int:pk>/delete/", views.webhook_delete, name="delete"),
    path("<int:pk>/ping/", views.webhook_ping, name="ping"),
    path("<int:pk>/deliveries/<int:delivery_id>/redeliver/", views.webhook_redeliver, name="redeliver"),
]
