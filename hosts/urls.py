from __future__ import annotations

app_name = "hosts"
urlpatterns: list = []
