"""Parsers of the `mdatp` command-line tool's output (MDE-FACTS §2)."""

from __future__ import annotations

import json
import re
from typing import Any

ATTENTION = "ATTENTION:"
_HEALTH_LINE = re.compile(r"^([a-z_][a-z0-9_]*)\s+:\s?(.*)$")
_CONNECTIVITY_LINE = re.compile(r"^Testing connection with (\S+) \.\.\. \[(\w+)\]\s*(.*)$")


def _value(raw: str) -> Any:
    raw = raw.strip()
    if raw.endswith("[managed]"):
        raw = raw[: -len("[managed]")].strip()
    if raw == "unavailable" or raw == "":
        return None
    if raw in ("true", "false"):
        return raw == "true"
    if raw.startswith(('"', "[", "{")):
        try:
            return json.loads(raw)
        except ValueError:
            return raw.strip('"')
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw


def parse_health(text: str) -> dict[str, Any]:
    """``mdatp health`` → {field: value}; ``unavailable`` is None; an ATTENTION banner is noted."""
    fields: dict[str, Any] = {}
    managed: list[str] = []
    for line in text.splitlines():
        if line.startswith(ATTENTION):
            fields["attention"] = line[len(ATTENTION) :].strip()
            continue
        match = _HEALTH_LINE.match(line.rstrip())
        if match:
            name, raw = match.groups()
            if raw.strip().endswith("[managed]"):
                managed.append(name)
            fields[name] = _value(raw)
    if managed:
        fields["managed_fields"] = managed
    return fields


def parse_connectivity(text: str) -> list[dict[str, Any]]:
    """``mdatp connectivity test`` → [{url, ok, detail}] per endpoint line."""
    rows = []
    for line in text.splitlines():
        match = _CONNECTIVITY_LINE.match(line.strip())
        if match:
            url, status, detail = match.groups()
            rows.append({"url": url, "ok": status == "OK", "status": status, "detail": detail.strip()})
    return rows


def parse_threat_list(text: str) -> list[dict[str, str]]:
    """``mdatp threat list`` text records (``Id:``, ``Name:``, ``Status:``, ``Path:``...) → dicts."""
    threats: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.strip().partition(":")
        key = key.strip().lower().replace(" ", "_")
        if key == "id" and current:
            threats.append(current)
            current = {}
        current[key] = value.strip().strip('"')
    if current:
        threats.append(current)
    return [t for t in threats if "name" in t]
