"""Forms of the inventory pages: they validate input; services do the writing."""

from __future__ import annotations

from typing import Any

from django import forms

from hosts import importing
from hosts.choices import CredentialKind
from hosts.keys import KeyFormatError, private_key_fingerprint
from hosts.models import Credential


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders its value back, not even after a failed submit."""

    def format_value(self, value: Any) -> None:
        return None


class ImportForm(forms.Form):
    """An inventory file, uploaded or pasted, and whether hosts without a key trust their first one."""

    file = forms.FileField(required=False, help_text="CSV or JSON, UTF-8, at most 4 MiB")
    content = forms.CharField(
        required=False,
        label="…or paste",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "mono"}),
    )
    format = forms.ChoiceField(
        choices=[("auto", "Detect"), ("csv", "CSV"), ("json", "JSON")], initial="auto", widget=forms.RadioSelect
    )
    trust_on_first_use = forms.BooleanField(
        required=False,
        label="Trust on first use",
        help_text="Hosts without a host_key pin the key they present at their first contact. "
        "Leave unticked to refuse hosts whose key you have not given.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get("file")
        pasted = cleaned.get("content") or ""
        if upload and pasted.strip():
            raise forms.ValidationError("Upload a file or paste the inventory, not both.")
        if not upload and not pasted.strip():
            raise forms.ValidationError("Upload a file or paste the inventory.")
        if upload is not None and upload.size > importing.MAX_BYTES:
            self.add_error("file", f"The file is larger than {importing.MAX_BYTES // (1024 * 1024)} MiB.")
        return cleaned

    def raw_content(self) -> bytes | str:
        """The file's bytes (decoded by the parser, which insists on UTF-8) or the pasted text."""
        upload = self.cleaned_data.get("file")
        if upload is not None:
            return b"".join(upload.chunks())
        return self.cleaned_data["content"]


class CredentialForm(forms.Form):
    """A new credential; the secret and passphrase are write-only."""

    name = forms.SlugField(max_length=80, help_text="Referenced by the import's credential column")
    kind = forms.ChoiceField(choices=CredentialKind.choices, initial=CredentialKind.PRIVATE_KEY)
    secret = forms.CharField(
        strip=False,
        widget=WriteOnlyTextarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false", "class": "mono"}),
        help_text="An OpenSSH/PEM private key, or the password. Stored encrypted; never shown again.",
    )
    passphrase = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Only for an encrypted private key.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Credential.objects.filter(name=name).exists():
            raise forms.ValidationError("A credential with this name exists.")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        secret, kind = cleaned.get("secret"), cleaned.get("kind")
        if secret and kind == CredentialKind.PRIVATE_KEY:
            try:
                private_key_fingerprint(secret, cleaned.get("passphrase") or "")
            except KeyFormatError:
                # The reason may quote the key; say only what to fix.
                self.add_error("secret", "This is not a private key that can be read (or the passphrase is wrong).")
        if kind == CredentialKind.PASSWORD and cleaned.get("passphrase"):
            self.add_error("passphrase", "A password credential has no passphrase.")
        return cleaned


class HostKeyForm(forms.Form):
    """Re-pin a host key: forget it and trust the next one presented, or pin a pasted key."""

    host_key = forms.CharField(
        required=False,
        label="New host key (optional)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text="An OpenSSH public key line, e.g. from ssh-keyscan. Empty: trust the key the host presents next.",
    )
    confirm = forms.BooleanField(label="I have checked why the host key changed")

    def clean_host_key(self) -> str:
        try:
            return importing.clean_host_key(self.cleaned_data.get("host_key") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class DiscoverForm(forms.Form):
    """Which hosts to discover: the ticked ones, or (``all_matching``) every host the posted filter matches."""

    all_matching = forms.BooleanField(required=False)
    ids = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any integer is a candidate; the view keeps only hosts that exist.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()  # type: ignore[attr-defined]


class WayBackForm(forms.Form):
    """Offboard (with the portal's mdatp_offboard.json) or uninstall the agent on chosen hosts."""

    ids = forms.CharField(widget=forms.HiddenInput)
    mode = forms.ChoiceField(
        choices=[
            ("offboard", "Offboard (the agent stays installed, stops reporting)"),
            ("uninstall", "Uninstall mdatp"),
        ],
        widget=forms.RadioSelect,
        initial="offboard",
    )
    offboarding_package = forms.FileField(
        required=False,
        label="Offboarding package (mdatp_offboard.json)",
        help_text="From the Defender portal: Settings > Endpoints > Offboarding > Linux Server. Never stored after use.",
    )
    confirm = forms.BooleanField(label="I understand these hosts stop being protected or reporting")

    def clean_ids(self) -> list[int]:
        raw = self.cleaned_data["ids"]
        try:
            ids = sorted({int(part) for part in raw.split(",") if part.strip()})
        except ValueError as exc:
            raise forms.ValidationError("host ids must be numbers") from exc
        if not ids:
            raise forms.ValidationError("select at least one host")
        return ids

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("mode") == "offboard" and not data.get("offboarding_package"):
            self.add_error("offboarding_package", "Offboarding needs the portal's mdatp_offboard.json.")
        return data

    def package_text(self) -> str:
        upload = self.cleaned_data.get("offboarding_package")
        if not upload:
            return ""
        if upload.size > 1024 * 1024:
            raise forms.ValidationError("the offboarding package is larger than 1 MB")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("the offboarding package is not UTF-8 text") from exc
