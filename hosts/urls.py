"""Inventory pages."""

from __future__ import annotations

from django.urls import path

from hosts import views

app_name = "hosts"
urlpatterns = [
    path("", views.fleet, name="fleet"),
    path("discover/", views.discover, name="discover"),
    path("way-back/", views.way_back, name="way-back"),
    path("discoveries/<int:pk>/", views.discovery_detail, name="discovery"),
    path("hosts/<int:pk>/", views.host_detail, name="host"),
    path("hosts/<int:pk>/checks/<int:check_id>/output/", views.host_check_output, name="check-output"),
    path("hosts/<int:pk>/host-key/", views.host_key_reset, name="host-key"),
    path("hosts/<int:pk>/snapshot/", views.host_snapshot, name="host-snapshot"),
    path("hosts/<int:pk>/health/", views.host_health, name="host-health"),
    path("hosts/<int:pk>/diagnose/", views.host_diagnose, name="host-diagnose"),
    path("import/", views.import_hosts, name="import"),
    path("credentials/", views.credentials, name="credentials"),
]
