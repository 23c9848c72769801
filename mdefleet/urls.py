"""URL map: pages per app, the REST API under /api/v1/, the OpenAPI schema and docs."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from mdefleet.permissions import RolePermission

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The schema needs a viewer (token or session); the docs page is for logged-in people.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[RolePermission]), name="api-schema"),
    path(
        "api/docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("api/v1/", include("hosts.api.urls")),
    path("api/v1/", include("deployments.api.urls")),
    path("", include("deployments.urls")),
    path("", include("hosts.urls")),
]
