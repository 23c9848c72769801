"""Rollout API routes, mounted under /api/v1/ by mdefleet/urls.py."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from deployments.api import profiles, rollouts

app_name = "deployments-api"

router = DefaultRouter(trailing_slash=True)
# The hosts API mounts under the same prefix; one root view would shadow the other.
router.include_root_view = False
# JSON only: the ".json" suffix routes crashed the @action views (they take no format argument).
router.include_format_suffixes = False
router.register("profiles", profiles.ProfileViewSet, basename="profile")
router.register("rollouts", rollouts.RolloutViewSet, basename="rollout")

urlpatterns = [
    # Before the router: its format-suffix route would take "report.csv" as report/ in format "csv".
    path("rollouts/<int:pk>/report.csv", rollouts.RolloutReportCsvView.as_view(), name="rollout-report-csv"),
    *router.urls,
]
