"""Strict readers for settings taken from the environment.

Each reader accepts ``NAME_FILE`` (a path whose content is the value) so secrets can come
from Docker or Kubernetes secret files instead of plain environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "on"}
_FALSE = {"0", "false", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    """The variable's value, its ``NAME_FILE`` content, or the default; missing without one is an error."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    value = os.environ.get(name)
    if value:  # an empty variable counts as unset, as in a .env file with NAME=
        return value
    if default is None:
        raise ImproperlyConfigured(f"Set the environment variable {name}.")
    return default


def env_bool(name: str, default: bool) -> bool:
    """A boolean that refuses anything but 1/0, true/false, on/off."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, on/off, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    """An integer, refused with the variable's name when it is not one."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from exc


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list with blanks dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]
