"""Reading an inventory file (CSV or JSON) into validated host rows, or every reason it cannot be.

Every row is checked before anything is written: a file with one bad row imports nothing, and
the person sees all the bad rows at once, each with its line number, the field and why.
``host_import`` in ``hosts/services.py`` writes the rows this module returns.

CSV: a header line naming the columns, one host per line; ``tags`` separated by ``;`` or spaces.
JSON: a list of objects with the same keys; ``tags`` a list of strings.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models.functions import Lower

from hosts.keys import KeyFormatError, normalize_public_key
from hosts.models import Credential, Host

MAX_BYTES = 4 * 1024 * 1024
MAX_ROWS = 20_000
FORMATS = ("auto", "csv", "json")

COLUMNS = ("name", "address", "port", "user", "credential", "tags", "host_key", "use_sudo")
REQUIRED_COLUMNS = ("address", "user", "credential")

USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
HOST_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
TAG_RE = re.compile(r"[a-z0-9_-]{1,64}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class RowError:
    """Why one row (or the whole file, ``line`` 0 or the header's line) cannot be imported."""

    line: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class HostRow:
    """One valid host of the file, ready for ``host_import``."""

    line: int
    name: str
    address: str
    port: int
    user: str
    credential: Credential
    tags: list[str] = field(default_factory=list)
    host_key: str = ""
    use_sudo: bool = True


@dataclass
class InventoryParse:
    """The file's rows when all are valid, else every error found (and no rows)."""

    format: str
    rows: list[HostRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- single-value validators, shared with the forms and the API serializers ---------------


def clean_address(value: Any) -> str:
    """An IPv4/IPv6 address (normalised) or an RFC 1123 host name (lower-cased); ValueError if neither."""
    value = _as_text(value).strip()
    if not value:
        raise ValueError("is required")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if "%" in value:
        raise ValueError("IPv6 zone ids (%) are not supported")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if ":" in value:
        raise ValueError("is not a valid IPv6 address")
    name = value.lower()
    if len(name) > 253:
        raise ValueError("is longer than 253 characters")
    labels = name.split(".")
    if not all(HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError("is not a valid IP address or host name (letters, digits, hyphens and dots only)")
    if labels[-1].isdigit():
        raise ValueError("is not a valid IP address (and a host name cannot end in a numeric label)")
    return name


def clean_port(value: Any) -> int:
    """A TCP port 1-65535; empty means 22."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 22
    if isinstance(value, bool):
        raise ValueError("must be a number from 1 to 65535")
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ValueError("must be a number from 1 to 65535")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("must be a number from 1 to 65535")
    try:
        port = int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError("must be a number from 1 to 65535") from exc
    if not 1 <= port <= 65535:
        raise ValueError("must be a number from 1 to 65535")
    return port


def clean_user(value: Any) -> str:
    """A POSIX login name: lower case, starting with a letter or underscore, at most 32 characters."""
    value = _as_text(value).strip()
    if not value:
        raise ValueError("is required")
    if not USER_RE.fullmatch(value):
        raise ValueError("must be a lower-case login name matching ^[a-z_][a-z0-9_.-]{0,31}$")
    return value


def clean_tag(value: str) -> str:
    """A tag slug (lower-cased): letters, digits, hyphens and underscores, at most 64 characters."""
    tag = value.strip().lower()
    if not TAG_RE.fullmatch(tag):
        raise ValueError(f"{value!r} is not a slug (letters, digits, - and _; at most 64)")
    return tag


def clean_tags(values: list[str]) -> list[str]:
    """Each tag cleaned, duplicates dropped, order kept."""
    tags: list[str] = []
    for value in values:
        tag = clean_tag(value)
        if tag not in tags:
            tags.append(tag)
    return tags


def split_tags(cell: str) -> list[str]:
    """A CSV cell's tags: separated by ``;`` or whitespace."""
    return [part for part in re.split(r"[;\s]+", cell) if part]


def clean_host_key(value: Any) -> str:
    """An OpenSSH public key line, normalised to ``type base64``; empty stays empty."""
    value = _as_text(value).strip()
    if not value:
        return ""
    try:
        normalized = normalize_public_key(value)
    except KeyFormatError as exc:
        raise ValueError(str(exc)) from exc
    # Only "type base64": a comment is not part of the key (and may hold anything).
    return " ".join(normalized.split()[:2])


def clean_name(value: Any) -> str:
    """A display name: printable, at most 255 characters (empty: the address is used)."""
    value = _as_text(value).strip()
    if len(value) > 255:
        raise ValueError("is longer than 255 characters")
    if any(not ch.isprintable() for ch in value):
        raise ValueError("must not contain control characters")
    return value


def clean_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


# --- decoding the file ------------------------------------------------------------------------


def decode(content: bytes | str) -> tuple[str, RowError | None]:
    """Text of the upload: UTF-8 only (a BOM is dropped), within the size limit."""
    if isinstance(content, str):
        raw_size = len(content.encode("utf-8", errors="surrogatepass"))
        text = content
    else:
        raw_size = len(content)
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = content[: exc.start].count(b"\n") + 1
            return "", RowError(line, "file", f"is not UTF-8 (byte {exc.start + 1}); save the file as UTF-8")
    if raw_size > MAX_BYTES:
        return "", RowError(0, "file", f"is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    return text.lstrip("\ufeff"), None


def detect_format(text: str) -> str:
    """JSON when the text starts with ``[`` or ``{``, else CSV."""
    return "json" if text.lstrip()[:1] in ("[", "{") else "csv"


def parse_inventory(*, content: bytes | str, fmt: str = "auto") -> InventoryParse:
    """Parse and validate the whole file; ``rows`` only when there is no error at all."""
    if fmt not in FORMATS:
        return InventoryParse(format=fmt, errors=[RowError(0, "format", "must be csv, json or auto")])
    text, error = decode(content)
    if error is not None:
        return InventoryParse(format=fmt, errors=[error])
    if fmt == "auto":
        fmt = detect_format(text)
    if not text.strip():
        return InventoryParse(format=fmt, errors=[RowError(0, "file", "is empty")])
    records, errors = _csv_records(text) if fmt == "csv" else _json_records(text)
    result = InventoryParse(format=fmt, errors=errors)
    if any(error.field in ("file", "header") for error in errors):
        return result
    if not records and not errors:
        result.errors.append(RowError(0, "file", "holds no hosts"))
        return result
    if len(records) > MAX_ROWS:
        result.errors = [RowError(0, "file", f"holds {len(records)} hosts; the limit is {MAX_ROWS} per import")]
        return result
    rows = _validate(records, tags_as_list=fmt == "json", errors=result.errors)
    if not result.errors:
        result.rows = rows
    return result


def _csv_records(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    header: list[str] | None = None
    header_line = 0
    previous_end = 0
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header, header_line = [cell.strip().lower() for cell in cells], start
                errors.extend(_header_errors(header, header_line))
                if errors:
                    return [], errors
                continue
            if len(cells) != len(header):
                errors.append(RowError(start, "row", f"has {len(cells)} cells; the header has {len(header)}"))
                continue
            records.append((start, dict(zip(header, cells, strict=True))))
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, "file", f"is not valid CSV: {exc}"))
    if header is None and not errors:
        errors.append(RowError(1, "header", "is missing (the first line must name the columns)"))
    return records, errors


def _header_errors(header: list[str], line: int) -> list[RowError]:
    errors = []
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        errors.append(RowError(line, "header", f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}"))
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        errors.append(RowError(line, "header", f"missing column(s) {', '.join(missing)} (is the header line there?)"))
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        errors.append(RowError(line, "header", f"column(s) named twice: {', '.join(duplicated)}"))
    return errors


def _json_records(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[RowError]]:
    """The top-level array's objects with the line each starts on (decoded one at a time to know it)."""
    decoder = json.JSONDecoder()
    records: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    pos = _skip_ws(text, 0)
    if text[pos : pos + 1] != "[":
        return [], [RowError(text.count("\n", 0, pos) + 1, "file", "must be a JSON list of host objects")]
    pos = _skip_ws(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return records, errors
    line, counted = 1, 0
    try:
        while True:
            line, counted = line + text.count("\n", counted, pos), pos
            item, pos = decoder.raw_decode(text, pos)
            if isinstance(item, dict):
                records.append((line, item))
            else:
                errors.append(RowError(line, "row", "must be an object with the host's keys"))
            pos = _skip_ws(text, pos)
            char = text[pos : pos + 1]
            if char == "]":
                break
            if char != ",":
                raise json.JSONDecodeError("Expecting ',' or ']'", text, pos)
            pos = _skip_ws(text, pos + 1)
        if text[_skip_ws(text, pos + 1) :]:
            raise json.JSONDecodeError("Extra data after the list", text, _skip_ws(text, pos + 1))
    except json.JSONDecodeError as exc:
        return [], [RowError(exc.lineno, "file", f"is not valid JSON: {exc.msg} (column {exc.colno})")]
    return records, errors


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def clean_credential_name(value: Any) -> str:
    name = _as_text(value).strip()
    if not name:
        raise ValueError("is required")
    return name


def _check(errors: list[RowError], line: int, name: str, fn: Any, value: Any) -> Any:
    """``fn(value)``, or None with the error recorded."""
    try:
        return fn(value)
    except ValueError as exc:
        errors.append(RowError(line, name, str(exc)))
        return None


def _validate(
    records: list[tuple[int, dict[str, Any]]], *, tags_as_list: bool, errors: list[RowError]
) -> list[HostRow]:
    credentials = {c.name: c for c in Credential.objects.all()}
    rows: list[HostRow] = []
    seen: dict[tuple[str, int], int] = {}
    for line, record in records:
        row_errors: list[RowError] = []
        unknown = sorted(str(key) for key in record if key not in COLUMNS)
        if unknown:
            row_errors.append(RowError(line, "row", f"unknown key(s) {', '.join(unknown)}"))
        name = _check(row_errors, line, "name", clean_name, record.get("name"))
        address = _check(row_errors, line, "address", clean_address, record.get("address"))
        port = _check(row_errors, line, "port", clean_port, record.get("port"))
        user = _check(row_errors, line, "user", clean_user, record.get("user"))
        credential_name = _check(row_errors, line, "credential", clean_credential_name, record.get("credential"))
        credential = credentials.get(credential_name) if credential_name else None
        if credential_name and credential is None:
            row_errors.append(RowError(line, "credential", f"no credential named {credential_name!r}"))
        tags = _check(row_errors, line, "tags", _list_tags if tags_as_list else _cell_tags, record.get("tags"))
        host_key = _check(row_errors, line, "host_key", clean_host_key, record.get("host_key"))
        raw_sudo = record.get("use_sudo")
        if raw_sudo is None or (isinstance(raw_sudo, str) and not raw_sudo.strip()):
            use_sudo = user != "root"
        else:
            use_sudo = _check(row_errors, line, "use_sudo", clean_bool, raw_sudo)
        if address is not None and port is not None:
            first = seen.setdefault((address, port), line)
            if first != line:
                row_errors.append(RowError(line, "address", f"{address}:{port} is already on line {first}"))
        errors.extend(row_errors)
        if not row_errors:
            rows.append(
                HostRow(
                    line=line,
                    name=name or address,
                    address=address,
                    port=port,
                    user=user,
                    credential=credential,  # type: ignore[arg-type]
                    tags=tags or [],
                    host_key=host_key or "",
                    use_sudo=bool(use_sudo),
                )
            )
    errors.extend(_existing_errors(seen))
    errors.sort(key=lambda e: (e.line, COLUMNS.index(e.field) if e.field in COLUMNS else -1))
    return rows


def _list_tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return clean_tags(value)


def _cell_tags(value: Any) -> list[str]:
    return clean_tags(split_tags(_as_text(value)))


def _existing_errors(seen: dict[tuple[str, int], int]) -> list[RowError]:
    """Rows whose address:port is already a host of the inventory (one query per 1,000 addresses)."""
    errors = []
    addresses = sorted({address for address, _ in seen})
    for start in range(0, len(addresses), 1000):
        chunk = addresses[start : start + 1000]
        matches = Host.objects.annotate(address_lower=Lower("address")).filter(address_lower__in=chunk)
        for host in matches.only("name", "address", "port"):
            line = seen.get((host.address.lower(), host.port))
            if line is not None:
                errors.append(
                    RowError(
                        line, "address", f"{host.address}:{host.port} is already in the inventory as {host.name!r}"
                    )
                )
    return errors
