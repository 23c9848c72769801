"""Project-wide API routes, mounted under /api/v1/ by mdefleet/urls.py."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

from mdefleet.api import views

app_name = "mdefleet-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# JSON only: the ".json" suffix routes crashed the @action views (they take no format argument).
router.include_format_suffixes = False
router.register("service-accounts", views.ServiceAccountViewSet, basename="service-account")

urlpatterns = router.urls
