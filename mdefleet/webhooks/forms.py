"""Forms of the webhook pages: they validate input; the services write."""

from __future__ import annotations

from django import forms
from django.core.validators import URLValidator

from mdefleet.webhooks.choices import EVENTS


class WebhookForm(forms.Form):
    """A subscription's settings; the secret field is write-only and never filled back in."""

    name = forms.CharField(max_length=120)
    url = forms.CharField(
        label="URL",
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"], message="an http:// or https:// address")],
        widget=forms.URLInput(attrs={"size": 50, "placeholder": "https://tickets.example.com/hooks/mdefleet"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {label}") for name, label in EVENTS],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "choose at least one event"},
    )
    active = forms.BooleanField(required=False, initial=True)
    secret = forms.CharField(
        required=False,
        label="Signing secret",
        min_length=16,
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to have one generated (new) or to keep the current one (edit).",
    )
