"""One error shape for the whole API: RFC 9457 problem details (``application/problem+json``).

Every API error answers::

    {"type": "...", "title": "Invalid input", "status": 400, "detail": "wave_plan[2]: ...",
     "instance": "/api/v1/rollouts/", "code": "invalid",
     "errors": [{"path": "wave_plan[2]", "message": "...", "code": "invalid"}]}

``errors`` lists every refused value with its path: a field, a dotted/indexed path into the body
(``selection.ids[0]``, ``managed_settings.antivirusEngine.enforcementLevel``) or a query
parameter name; an empty path means the request as a whole.

Three pieces make it hold everywhere: the DRF ``EXCEPTION_HANDLER`` (exceptions raised in API
views), ``ApiProblemMiddleware`` (anything else under ``/api/``: unrouted 404s, 500s, and error
responses a view built by hand) and ``ProblemAutoSchema`` (documents it on every operation).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Not dereferenceable on purpose (RFC 9457 §3.1.1 suggests tag URIs for that); stable identifiers.
TYPE_BASE = "tag:mdefleet,2026:problem/"
TITLES = {
    400: "Invalid input",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Server error",
}
TYPES = {
    400: "invalid-input",
    401: "not-authenticated",
    403: "permission-denied",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    415: "unsupported-media-type",
    429: "too-many-requests",
    500: "server-error",
}
ROOT_KEYS = {"non_field_errors", "$", "detail", "__all__"}


class Problem(exceptions.APIException):
    """An API error with an explicit problem type, title and optional per-path errors."""

    def __init__(
        self,
        *,
        status_code: int,
        detail: str,
        problem_type: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail=detail, code=code or TYPES.get(status_code, "error"))
        self.status_code = status_code
        self.problem_type = problem_type
        self.title = title
        self.errors = errors


class Conflict(Problem):
    """409: the request does not fit the resource's current state; the detail says why."""

    def __init__(self, detail: str, *, problem_type: str = "conflict", title: str = "Conflict") -> None:
        super().__init__(status_code=409, detail=detail, problem_type=problem_type, title=title)


# --- shaping ---------------------------------------------------------------------------------------


def join_path(path: str, key: Any) -> str:
    """Extend an error path by a dict key or list index (``a`` + 2 → ``a[2]``; JSON paths kept)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = str(key)
    if key in ROOT_KEYS:
        return path
    if key.startswith("["):
        return path + key
    if key.startswith("$.") or key.startswith("$["):
        key = key[1:]
        return path + key if key.startswith("[") or not path else f"{path}{key}"
    return f"{path}.{key}" if path else key


def flatten_errors(detail: Any, path: str = "") -> Iterator[dict[str, Any]]:
    """DRF's nested error detail as ``[{path, message, code}]``."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from flatten_errors(value, join_path(path, key))
    elif isinstance(detail, list | tuple):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list | tuple):
                if item:
                    yield from flatten_errors(item, f"{path}[{index}]")
            else:
                yield from flatten_errors(item, path)
    elif detail is not None:
        yield {"path": path, "message": str(detail), "code": getattr(detail, "code", None) or "invalid"}


def _summary(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "The request was refused."
    shown = [f"{e['path']}: {e['message']}" if e["path"] else e["message"] for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(shown) + more


def problem_body(
    *,
    status_code: int,
    detail: str,
    instance: str | None = None,
    problem_type: str | None = None,
    title: str | None = None,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A problem details object."""
    slug = problem_type or TYPES.get(status_code, "error")
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title or TITLES.get(status_code) or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body["code"] = code or slug
    if errors is not None:
        body["errors"] = errors
    return body


def problem_from_data(status_code: int, data: Any, instance: str | None = None) -> dict[str, Any]:
    """A problem from any DRF error payload (``{"detail": ...}``, field errors, a list)."""
    if isinstance(data, dict) and {"type", "title", "status"} <= set(data):
        return data
    if isinstance(data, dict) and set(data) <= {"detail"} and not isinstance(data.get("detail"), dict | list):
        detail = str(data.get("detail") or HTTPStatus(status_code).phrase)
        code = getattr(data.get("detail"), "code", None)
        return problem_body(status_code=status_code, detail=detail, instance=instance, code=code)
    if isinstance(data, dict) and set(data) == {"errors"} and isinstance(data["errors"], list):
        # The inventory import's row errors: keep line and field, add the path.
        errors = [_row_error(item) for item in data["errors"]]
        return problem_body(status_code=status_code, detail=_summary(errors), instance=instance, errors=errors)
    errors = list(flatten_errors(data))
    return problem_body(status_code=status_code, detail=_summary(errors), instance=instance, errors=errors)


def _row_error(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {"path": "", "message": str(item), "code": "invalid"}
    line, field = item.get("line") or 0, item.get("field") or ""
    path = f"line[{line}].{field}" if line and field else field or (f"line[{line}]" if line else "")
    return {**item, "path": path, "message": str(item.get("message", "")), "code": item.get("code", "invalid")}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: DRF's handling (status, headers, rollback), then the problem shape."""
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is a bare 400 "Bad Request": say what was refused and the limit.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        detail = f"The request body is larger than the {limit // (1024 * 1024)} MiB limit (MDEFLEET_MAX_UPLOAD_BYTES)."
        exc = exceptions.APIException(detail)
        exc.status_code = 413
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a server error: Django's 500 handling, then ApiProblemMiddleware
    request = context.get("request")
    instance = request.path if request is not None else None
    if isinstance(exc, Problem):
        body = problem_body(
            status_code=exc.status_code,
            detail=str(exc.detail),
            instance=instance,
            problem_type=exc.problem_type,
            title=exc.title,
            code=exc.problem_type,
            errors=exc.errors,
        )
    elif isinstance(exc, exceptions.ValidationError):
        errors = list(flatten_errors(exc.detail))
        body = problem_body(status_code=response.status_code, detail=_summary(errors), instance=instance, errors=errors)
    else:
        body = problem_from_data(response.status_code, response.data, instance)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            body["retry_after"] = int(exc.wait)
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


# --- the safety net ----------------------------------------------------------------------------------


class ApiProblemMiddleware:
    """Under /api/, turns any error response that is not a problem yet into one.

    Catches what the exception handler never sees: a URL no route matches, a server error, an
    error ``Response`` a view returned by hand.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith("/api/")
            or request.path.startswith("/api/docs/")
            or response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            return response
        data = getattr(response, "data", None)
        if data is None:
            data = {"detail": HTTPStatus(response.status_code).phrase}
            if response.status_code == 404:
                data = {"detail": f"No API endpoint at {request.path}."}
        body = problem_from_data(response.status_code, data, request.path)
        problem = HttpResponse(json.dumps(body), status=response.status_code, content_type=PROBLEM_CONTENT_TYPE)
        for header in ("Allow", "WWW-Authenticate", "Retry-After", "Vary"):
            if header in response:
                problem[header] = response[header]
        return problem


# --- OpenAPI -----------------------------------------------------------------------------------------


class ProblemErrorSerializer(serializers.Serializer):
    """One refused value."""

    path = serializers.CharField(
        help_text="Where: a field, a path into the body (wave_plan[2], selection.ids[0]), a query parameter, "
        "or empty for the request as a whole"
    )
    message = serializers.CharField()
    code = serializers.CharField(help_text="Machine-readable reason, e.g. required, invalid, invalid_choice")


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details: the one shape of every API error."""

    type = serializers.CharField(help_text="Identifies the kind of problem (a tag URI)")
    title = serializers.CharField(help_text="Short summary of the kind of problem")
    status = serializers.IntegerField(help_text="The HTTP status code")
    detail = serializers.CharField(help_text="What went wrong with this request, in words")
    instance = serializers.CharField(required=False, help_text="The request path")
    code = serializers.CharField(required=False, help_text="Machine-readable kind, e.g. not_found, invalid")
    errors = ProblemErrorSerializer(many=True, required=False, help_text="Every refused value (400 only)")
    retry_after = serializers.IntegerField(required=False, help_text="Seconds to wait (429 only)")


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: every refused value in `errors` with its path; nothing was changed",
    "401": "No credentials, or a token that is unknown, revoked or expired",
    "403": "The caller's role does not allow this",
    "404": "No such object (or page)",
    "409": "Conflict with the current state; the detail says why",
    "429": "Too many requests; retry after `Retry-After` seconds",
}


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, documenting the problem shape on every error response."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        params = operation.get("parameters", [])
        codes = {"429"}
        if operation.get("security"):
            codes |= {"401", "403"}
        if any(p.get("in") == "path" for p in params) or any(p.get("name") == "page" for p in params):
            codes.add("404")
        if any(p.get("in") == "query" for p in params) or "requestBody" in operation:
            codes.add("400")
        responses = operation.setdefault("responses", {})
        for code in codes:
            responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code]})
        for code, response in responses.items():
            if not re.fullmatch(r"[45]\d\d", str(code)):
                continue
            description = response.get("description") or ERROR_DESCRIPTIONS.get(str(code), "Error")
            if description in ("", "No response body"):
                description = ERROR_DESCRIPTIONS.get(str(code), "Error")
            responses[code] = {"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": problem}}}
        operation["responses"] = dict(sorted(responses.items()))
        return operation
