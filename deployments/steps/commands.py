"""Small builders shared by step commands: quoting and section markers."""

from __future__ import annotations

import shlex


def q(value: str) -> str:
    """Quote one value for a POSIX shell."""
    return shlex.quote(str(value))


def marker(name: str) -> str:
    """A command that prints a section marker line (``@@name``) read back by ``sections``."""
    return f"echo {q('@@' + name)}"


def join(*commands: str) -> str:
    """Run commands one after another regardless of their exit status."""
    return "; ".join(c for c in commands if c)
