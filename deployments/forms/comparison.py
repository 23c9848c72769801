"""The filter of the comparison page's host table: a name, a wave, and which hosts to show."""

from __future__ import annotations

from typing import Any

from django import forms

from deployments.report import HOST_VIEWS


class ComparisonHostsFilter(forms.Form):
    """Every field optional; a bad value is shown as an error and that filter is left out."""

    q = forms.CharField(required=False, max_length=100, label="Host", strip=True)
    wave = forms.IntegerField(required=False, min_value=1, max_value=10_000, label="Wave")
    show = forms.ChoiceField(required=False, choices=[("", "All hosts"), *HOST_VIEWS.items()], label="Show")

    def filters(self) -> dict[str, Any]:
        """The valid filters only, as :func:`deployments.report.hosts_matching` takes them."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "name": data.get("q") or "",
            "wave": data.get("wave"),
            "show": data.get("show") or "",
        }
