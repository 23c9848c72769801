"""Reading the onboarding package downloaded from the Defender portal, without ever echoing it.

The portal's "Local Script" package is ``MicrosoftDefenderATPOnboardingLinuxServer.py``: a small
Python program that writes ``/etc/opt/microsoft/mdatp/mdatp_onboard.json`` from a string literal
embedded in it. The configuration-management package is that JSON itself: an object whose
``onboardingInfo`` is a JSON string, whose ``body`` is again a JSON string holding ``orgId``.
Only the org id (tenant GUID) and a digest are read out; the package's text goes to the caller
to be encrypted, and no message here quotes any part of it.
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from django.views.decorators.debug import sensitive_variables

from deployments.choices import OnboardingKind
from hosts.crypto import decrypt

MAX_PACKAGE_BYTES = 1024 * 1024
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# "orgId" followed by any run of quotes, backslashes, colons and spaces, then the GUID: this reads
# the key at any depth of escaping (\" inside \\\" inside a Python literal...).
_ORG_ID_TEXT = re.compile(r"(?<![A-Za-z])org_?id[\\\"' :=]{1,40}(" + GUID.pattern + ")", re.IGNORECASE)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
# Where the package ends up on the host, by kind.
DESTINATIONS = {
    OnboardingKind.PYTHON: "/etc/opt/microsoft/mdatp/MicrosoftDefenderATPOnboardingLinuxServer.py",
    OnboardingKind.JSON: "/etc/opt/microsoft/mdatp/mdatp_onboard.json",
}


class OnboardingInvalid(ValueError):
    """The upload is not a Linux onboarding package; the message says why (never quoting it)."""


@dataclass(frozen=True)
class OnboardingPackage:
    """A package that was read: its kind, tenant, digest and text (the secret: encrypt, never show)."""

    kind: str
    org_id: str
    sha256: str
    text: str
    filename: str

    def __repr__(self) -> str:
        # Keeps the text out of tracebacks, debug pages and log lines that format the object.
        return f"OnboardingPackage(kind={self.kind!r}, org_id={self.org_id!r}, sha256={self.sha256[:12]!r}...)"


def clean_filename(filename: str) -> str:
    """The file's base name (browsers may send C:\\fakepath\\...), one line, at most 255 characters."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:255]


@sensitive_variables("content", "text", "data")
def read_onboarding_package(filename: str, content: bytes) -> OnboardingPackage:
    """Check an uploaded package and read its org id; raises OnboardingInvalid with a reason."""
    name = clean_filename(filename)
    lower = name.lower()
    if not name:
        raise OnboardingInvalid("The upload has no file name.")
    if len(content) > MAX_PACKAGE_BYTES:
        raise OnboardingInvalid(
            f"The file is {len(content) // 1024} KB; an onboarding package is a few KB (at most 1 MB accepted)."
        )
    if not content.strip():
        raise OnboardingInvalid("The file is empty.")
    if content.startswith(b"PK\x03\x04"):
        raise OnboardingInvalid(
            "This is the zip archive from the portal: unzip it and upload "
            "MicrosoftDefenderATPOnboardingLinuxServer.py (or mdatp_onboard.json) from inside."
        )
    if "offboard" in lower:
        raise OnboardingInvalid("This is an offboarding package; upload the onboarding package.")
    if lower.endswith(".py"):
        kind = OnboardingKind.PYTHON.value
    elif lower.endswith(".json"):
        kind = OnboardingKind.JSON.value
    else:
        suffix = PurePosixPath(lower).suffix or "no extension"
        hint = ""
        if suffix in (".sh", ".cmd", ".onboarding", ".xml", ".mobileconfig"):
            hint = " This looks like the package for another platform; choose Linux Server in the portal."
        raise OnboardingInvalid(
            f"Unsupported file type ({suffix}): upload MicrosoftDefenderATPOnboardingLinuxServer.py "
            f"or mdatp_onboard.json.{hint}"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise OnboardingInvalid("The file is not UTF-8 text; upload the file exactly as downloaded.") from None
    if text.startswith("\ufeff"):
        text = text[1:]

    if kind == OnboardingKind.JSON:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OnboardingInvalid(f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
        if isinstance(data, dict) and "offboardingInfo" in data:
            raise OnboardingInvalid("This is an offboarding package; upload the onboarding package.")
        if not isinstance(data, dict) or "onboardingInfo" not in data:
            raise OnboardingInvalid('This JSON has no "onboardingInfo": it is not an mdatp_onboard.json.')
        org_ids = _org_ids_in(data)
    else:
        if "offboardingInfo" in text or "mdatp_offboard.json" in text:
            raise OnboardingInvalid("This is an offboarding script; upload the onboarding package.")
        org_ids = _org_ids_in_script(text)

    if not org_ids:
        raise OnboardingInvalid(
            "No organization id (orgId) was found in the package; download it again from the portal."
        )
    if len(org_ids) > 1:
        raise OnboardingInvalid("The package names more than one organization id; download it again from the portal.")
    return OnboardingPackage(
        kind=kind,
        org_id=org_ids.pop(),
        sha256=hashlib.sha256(content).hexdigest(),
        text=text,
        filename=name,
    )


def _org_ids_in(value: Any, depth: int = 0) -> set[str]:
    """Org ids under any "orgId" key, descending into strings that are themselves JSON."""
    found: set[str] = set()
    if depth > 8:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(key, str) and key.lower() == "orgid" and isinstance(child, str) and GUID.fullmatch(child):
                found.add(child.lower())
            else:
                found |= _org_ids_in(child, depth + 1)
    elif isinstance(value, list):
        for child in value:
            found |= _org_ids_in(child, depth + 1)
    elif isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            found |= _org_ids_in(json.loads(value), depth + 1)
        except (json.JSONDecodeError, RecursionError):
            pass
    return found


@sensitive_variables("text")
def _org_ids_in_script(text: str) -> set[str]:
    """Org ids in the script: its string literals parsed as JSON first, then looser textual reads."""
    found: set[str] = set()
    literals: list[str] = []
    try:
        # Parsing (never running) the script yields its string literals already unescaped.
        tree = ast.parse(text)
        literals = [
            node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
    except (SyntaxError, ValueError, RecursionError):
        literals = []
    for literal in literals:
        stripped = literal.strip()
        if stripped[:1] in ("{", "["):
            try:
                found |= _org_ids_in(json.loads(stripped))
            except (json.JSONDecodeError, RecursionError):
                found |= _org_ids_in_text(stripped)
    if found:
        return found
    # Not Python 3 syntax, or the blob is not a plain literal: read "orgId ... GUID" at any escaping.
    found = _org_ids_in_text(text)
    if found:
        return found
    # Some generations embed the blob base64-encoded.
    for run in _BASE64_RUN.findall(text):
        try:
            decoded = base64.b64decode(run + "=" * (-len(run) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        found |= _org_ids_in_text(decoded)
    return found


def _org_ids_in_text(text: str) -> set[str]:
    return {match.lower() for match in _ORG_ID_TEXT.findall(text)}


@sensitive_variables("text")
def onboarding_text(profile: Any) -> str:
    """The stored package's text, decrypted, for the onboarding step to deliver ('' if none)."""
    if not profile.onboarding_encrypted:
        return ""
    return decrypt(profile.onboarding_encrypted)


def onboarding_destination(profile: Any) -> str:
    """Where the onboarding step writes the package on the host."""
    return DESTINATIONS.get(profile.onboarding_kind, DESTINATIONS[OnboardingKind.JSON])
