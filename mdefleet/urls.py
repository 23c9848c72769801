"""URL map: pages per app, the REST API under /api/v1/, the OpenAPI schema and docs."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from mdefleet import audit_views, views_service_accounts
from mdefleet.login_limits import RateLimitedLoginView
from mdefleet.permissions import RolePermission
from mdefleet.roles import VIEWER
from mdefleet.views import role_required

urlpatterns = [
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The schema and the docs page need a viewer (token or session for the schema).
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[RolePermission]), name="api-schema"),
    path(
        "api/docs/",
        role_required(VIEWER)(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("api/v1/", include("hosts.api.urls")),
    path("api/v1/", include("mdefleet.api.urls")),
    path("service-accounts/", views_service_accounts.service_accounts, name="service-accounts"),
    path(
        "service-accounts/<int:pk>/revoke/",
        views_service_accounts.service_account_revoke_view,
        name="service-account-revoke",
    ),
    path("api/v1/", include("deployments.api.urls")),
    path("api/v1/", include("mdefleet.api_audit")),
    path("audit/", audit_views.audit_list, name="audit"),
    path("api/v1/", include("mdefleet.webhooks.api")),
    path("webhooks/", include("mdefleet.webhooks.urls")),
    path("", include("deployments.urls")),
    path("", include("hosts.urls")),
]
