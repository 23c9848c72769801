"""Reading the API's problem+json errors in tests: messages by path, like DRF's old shape."""

from __future__ import annotations

from typing import Any

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(body: Any, status: int) -> dict[str, Any]:
    """The body is an RFC 9457 problem with this status; returns it."""
    assert isinstance(body, dict) and PROBLEM_KEYS <= set(body), body
    assert body["status"] == status, body
    return body


def errors_by_path(body: Any) -> dict[str, list[str]]:
    """``{path: [messages]}`` of a 400 problem's ``errors``."""
    out: dict[str, list[str]] = {}
    for error in assert_problem(body, 400)["errors"]:
        out.setdefault(error["path"], []).append(error["message"])
    return out
