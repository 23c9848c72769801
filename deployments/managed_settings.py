"""The managed settings file ``mdatp_managed.json``: its schema, validation, the traps, the recommendations.

The schema is a hand-written table of every documented key (MDE-FACTS §3: Microsoft's Linux
preferences page and the sample ``linux/configs/mdatp_managed.json`` of ``microsoft/mdatp-xplat``).
Unknown keys are refused: mdatp silently ignores a misspelt key, so a typo would otherwise ship
a setting that never applies. Every error carries the JSON path of the bad value
(``antivirusEngine.exclusions[2].$type``) and a message naming what is allowed there.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Where the settings step delivers the rendered file.
MANAGED_JSON_PATH = "/etc/opt/microsoft/mdatp/managed/mdatp_managed.json"

ROOT = "$"

# --- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsError:
    """One refused value: where it is (JSON path) and what is wrong with it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _join(path: str, key: str) -> str:
    return key if path in ("", ROOT) else f"{path}.{key}"


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _show(value: Any) -> str:
    """A value as it would appear in the JSON file, shortened for messages."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- schema nodes --------------------------------------------------------------------------------


class Node:
    """A schema node: checks one value at one path and appends what is wrong."""

    doc: str = ""
    default: Any = None

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """Allowed values in words, for messages and the page's help."""
        return ""


@dataclass
class Enum(Node):
    """A string from a fixed list."""

    values: tuple[str, ...]
    default: Any = None
    doc: str = ""

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        if value not in self.values or not isinstance(value, str):
            errors.append(SettingsError(path, f"{_show(value)} is not allowed; use one of: {self.describe()}"))

    def describe(self) -> str:
        return ", ".join(self.values)


@dataclass
class Boolean(Node):
    """A JSON ``true``/``false`` (a string "true" is refused: mdatp does not read it as a boolean)."""

    default: Any = None
    doc: str = ""

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        if not isinstance(value, bool):
            errors.append(SettingsError(path, f"expected true or false, got {_type_name(value)} {_show(value)}"))

    def describe(self) -> str:
        return "true, false"


@dataclass
class Integer(Node):
    """A JSON whole number within a range."""

    minimum: int
    maximum: int | None = None
    default: Any = None
    doc: str = ""

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(SettingsError(path, f"expected a whole number ({self.describe()}), got {_show(value)}"))
        elif value < self.minimum or (self.maximum is not None and value > self.maximum):
            errors.append(SettingsError(path, f"{value} is out of range; use {self.describe()}"))

    def describe(self) -> str:
        if self.maximum is None:
            return f"{self.minimum} or more"
        return f"from {self.minimum} to {self.maximum}"


@dataclass
class IntString(Node):
    """A number written as a JSON string ("90"), as the docs type it; a bare number is also read."""

    minimum: int
    maximum: int
    default: Any = None
    doc: str = ""

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        # Microsoft's own sample file writes these as bare numbers, so both spellings pass.
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            errors.append(
                SettingsError(path, f'expected a whole number as a string, e.g. "{self.default}", got {_show(value)}')
            )
            return
        if not self.minimum <= number <= self.maximum:
            errors.append(SettingsError(path, f"{number} is out of range; use {self.describe()}"))

    def describe(self) -> str:
        return f'"{self.minimum}" to "{self.maximum}"'


@dataclass
class Text(Node):
    """A non-empty single-line string, optionally matched by a check returning a complaint or None."""

    doc: str = ""
    max_length: int = 1024
    rule: Callable[[str], str | None] | None = None
    default: Any = None

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        if not isinstance(value, str):
            errors.append(SettingsError(path, f"expected a string, got {_type_name(value)} {_show(value)}"))
            return
        if not value.strip():
            errors.append(SettingsError(path, "must not be empty"))
            return
        if _CONTROL.search(value):
            errors.append(SettingsError(path, "must be one line without control characters"))
            return
        if len(value) > self.max_length:
            errors.append(SettingsError(path, f"is longer than {self.max_length} characters"))
            return
        if self.rule is not None:
            complaint = self.rule(value)
            if complaint:
                errors.append(SettingsError(path, complaint))

    def describe(self) -> str:
        return self.doc or "text"


@dataclass
class ListOf(Node):
    """A JSON list whose items all match ``item``."""

    item: Node
    unique: bool = False
    max_items: int = 5000
    doc: str = ""
    default: Any = None

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        if not isinstance(value, list):
            errors.append(SettingsError(path, f"expected a list, got {_type_name(value)} {_show(value)}"))
            return
        if len(value) > self.max_items:
            errors.append(SettingsError(path, f"has {len(value)} items; at most {self.max_items} are accepted"))
            return
        seen: set[str] = set()
        for i, item in enumerate(value):
            self.item.check(item, _index(path, i), errors)
            if self.unique:
                fingerprint = json.dumps(item, sort_keys=True)
                if fingerprint in seen:
                    errors.append(SettingsError(_index(path, i), f"{_show(item)} is listed twice"))
                seen.add(fingerprint)

    def describe(self) -> str:
        return f"a list of: {self.item.describe()}"


@dataclass
class Obj(Node):
    """A JSON object with known keys; unknown keys are refused with a suggestion."""

    fields: dict[str, Node]
    required: tuple[str, ...] = ()
    doc: str = ""
    # Why a key that is not accepted here may have been written, keyed by that key.
    hints: dict[str, str] = field(default_factory=dict)
    # Checks across keys, run when every key is valid on its own.
    cross_check: Callable[[dict[str, Any], str, list[SettingsError]], None] | None = None
    default: Any = None

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        if not isinstance(value, dict):
            errors.append(SettingsError(path, f"expected an object {{...}}, got {_type_name(value)} {_show(value)}"))
            return
        before = len(errors)
        for key, child in value.items():
            node = self.fields.get(key)
            if node is None:
                errors.append(SettingsError(_join(path, key), self._unknown(key)))
                continue
            node.check(child, _join(path, key), errors)
        for key in self.required:
            if key not in value:
                errors.append(SettingsError(_join(path, key), f'missing "{key}" (required here)'))
        if self.cross_check is not None and len(errors) == before:
            self.cross_check(value, path, errors)

    def _unknown(self, key: str) -> str:
        message = f'unknown key "{key}"'
        if key in self.hints:
            return f"{message}: {self.hints[key]}"
        close = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.75)
        if close:
            return f'{message}; did you mean "{close[0]}"?'
        return f"{message}; keys allowed here: {', '.join(self.fields)}"

    def describe(self) -> str:
        return "an object with keys: " + ", ".join(self.fields)


@dataclass
class Tagged(Node):
    """A list item chosen by its ``$type`` (the exclusions)."""

    variants: dict[str, Obj]
    tag: str = "$type"
    doc: str = ""
    default: Any = None

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        if not isinstance(value, dict):
            errors.append(SettingsError(path, f"expected an object {{...}}, got {_type_name(value)} {_show(value)}"))
            return
        kind = value.get(self.tag)
        if self.tag not in value:
            errors.append(SettingsError(_join(path, self.tag), f'missing "{self.tag}"; use one of: {self.describe()}'))
            return
        variant = self.variants.get(kind) if isinstance(kind, str) else None
        if variant is None:
            errors.append(
                SettingsError(_join(path, self.tag), f"{_show(kind)} is not allowed; use one of: {self.describe()}")
            )
            return
        variant.check(value, path, errors)

    def describe(self) -> str:
        return ", ".join(self.variants)


# --- value rules ---------------------------------------------------------------------------------


def _path_rule(value: str) -> str | None:
    # The seed notes Linux accepts paths that start with a wildcard; otherwise they are absolute.
    if not value.startswith(("/", "*")):
        return f"{_show(value)} must be an absolute path (starting with /) or start with a wildcard *"
    return None


def _extension_rule(value: str) -> str | None:
    if "/" in value or " " in value.strip():
        return f"{_show(value)} is not a file extension (e.g. pdf or .pdf)"
    return None


def _process_rule(value: str) -> str | None:
    if "/" in value and not value.startswith("/"):
        return f"{_show(value)} must be a process name (e.g. cat) or an absolute path (e.g. /bin/cat)"
    return None


def _url_rule(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{_show(value)} is not an http:// or https:// URL"
    return None


def _proxy_rule(value: str) -> str | None:
    # PAC/WPAD here is reported as a trap (warnings); credentials are refused outright because this
    # document is stored in clear, shown to viewers and copied into the audit trail.
    problem = proxy_problem(value, allow_unsupported=True)
    if problem is None and _has_credentials(value):
        return "must not hold credentials: authenticated proxies are not supported and the password would be stored in clear"
    return problem


# --- the schema ----------------------------------------------------------------------------------

MERGE = ("merge", "admin_only")
ON_OFF = ("disabled", "enabled")
THREAT_TYPES = ("potentially_unwanted_application", "archive_bomb")
THREAT_ACTIONS = ("audit", "block", "off")
SCOPES = ("epp", "global")


def _exclusion_variants(with_scopes: bool) -> dict[str, Obj]:
    scopes = {"scopes": ListOf(Enum(SCOPES), unique=True, doc="epp, global")} if with_scopes else {}
    hints = {} if with_scopes else {"scopes": "scopes are only accepted in exclusionSettings.exclusions"}
    return {
        "excludedPath": Obj(
            {
                "$type": Enum(("excludedPath",)),
                "path": Text(rule=_path_rule, max_length=4096, doc="absolute path"),
                "isDirectory": Boolean(default=False),
                **scopes,
            },
            required=("path",),
            hints=hints,
            cross_check=_global_scope_check if with_scopes else None,
        ),
        "excludedFileExtension": Obj(
            {
                "$type": Enum(("excludedFileExtension",)),
                "extension": Text(rule=_extension_rule, max_length=64),
                **scopes,
            },
            required=("extension",),
            hints=hints,
            cross_check=_global_scope_check if with_scopes else None,
        ),
        "excludedFileName": Obj(
            {"$type": Enum(("excludedFileName",)), "name": Text(rule=_process_rule, max_length=4096), **scopes},
            required=("name",),
            hints=hints,
            cross_check=_global_scope_check if with_scopes else None,
        ),
    }


def _global_scope_check(item: dict[str, Any], path: str, errors: list[SettingsError]) -> None:
    # Global scope (exclusionSettings, 101.23092.0012+) has tighter rules than the epp scope.
    scopes = item.get("scopes", ["global"])
    if "global" not in scopes:
        return
    kind = item.get("$type")
    if kind == "excludedFileExtension":
        errors.append(SettingsError(_join(path, "scopes"), "extension exclusions cannot have the global scope"))
    elif kind == "excludedPath" and any(ch in item["path"] for ch in "*?"):
        errors.append(SettingsError(_join(path, "path"), "paths with the global scope cannot use wildcards"))
    elif kind == "excludedFileName" and not item["name"].startswith("/"):
        errors.append(
            SettingsError(_join(path, "name"), "processes with the global scope must be given by their full path")
        )


def _threat_type_unique(items: Any, path: str, errors: list[SettingsError]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        key = item.get("key")
        if key in seen:
            errors.append(SettingsError(_join(_index(path, i), "key"), f"{_show(key)} is configured twice"))
        seen.add(key)


@dataclass
class ThreatTypeList(ListOf):
    """threatTypeSettings: each threat type at most once."""

    def check(self, value: Any, path: str, errors: list[SettingsError]) -> None:
        before = len(errors)
        super().check(value, path, errors)
        if len(errors) == before:
            _threat_type_unique(value, path, errors)


ANTIVIRUS_ENGINE = Obj(
    {
        "enforcementLevel": Enum(
            ("real_time", "on_demand", "passive"),
            default="passive",
            doc="passive (the default since 101.23062.0001) leaves real-time protection off",
        ),
        "behaviorMonitoring": Enum(ON_OFF, default="disabled", doc="only with real_time"),
        "scanAfterDefinitionUpdate": Boolean(default=True, doc="only with real_time"),
        "scanArchives": Boolean(default=True, doc="on-demand scans only"),
        "maximumOnDemandScanThreads": Integer(1, 64, default=2),
        "exclusionsMergePolicy": Enum(MERGE, default="merge"),
        "exclusions": ListOf(Tagged(_exclusion_variants(with_scopes=False)), unique=True),
        "nonExecMountPolicy": Enum(("unmute", "mute"), default="unmute"),
        "unmonitoredFilesystems": ListOf(Enum(("NFS", "Fuse")), unique=True, default=["NFS", "Fuse"]),
        "enableFileHashComputation": Boolean(default=False),
        "allowedThreats": ListOf(Text(max_length=256, doc="threat name"), unique=True),
        "disallowedThreatActions": ListOf(Enum(("allow", "restore")), unique=True),
        "threatTypeSettingsMergePolicy": Enum(MERGE, default="merge"),
        "threatTypeSettings": ThreatTypeList(
            Obj(
                {"key": Enum(THREAT_TYPES), "value": Enum(THREAT_ACTIONS, default="audit")},
                required=("key", "value"),
            )
        ),
        "scanResultsRetentionDays": IntString(1, 180, default="90"),
        "scanHistoryMaximumItems": IntString(5000, 15000, default="10000"),
        "scanFileModifyPermissions": Boolean(default=False),
        "scanFileModifyOwnership": Boolean(default=False),
        "scanNetworkSocketEvent": Boolean(default=False),
        "offlineDefinitionUpdateUrl": Text(rule=_url_rule, doc="http(s) URL of the offline definitions mirror"),
        # Spelled so (sic) in Microsoft's documentation and sample; the correct spelling is ignored by mdatp.
        "offlineDefintionUpdateFallbackToCloud": Boolean(),
        "offlineDefinitionUpdate": Enum(ON_OFF, default="disabled"),
    },
    hints={
        "offlineDefinitionUpdateFallbackToCloud": (
            "Microsoft spells this key offlineDefintionUpdateFallbackToCloud (sic); mdatp ignores the correct spelling"
        ),
        "proxy": "the proxy belongs in cloudService.proxy",
        "mergePolicy": "use exclusionsMergePolicy here (mergePolicy belongs in exclusionSettings)",
    },
)

EXCLUSION_SETTINGS = Obj(
    {
        "mergePolicy": Enum(MERGE, default="merge"),
        "exclusions": ListOf(Tagged(_exclusion_variants(with_scopes=True)), unique=True),
    }
)

CLOUD_SERVICE = Obj(
    {
        "enabled": Boolean(default=True),
        "diagnosticLevel": Enum(("optional", "required"), default="required"),
        "cloudBlockLevel": Enum(("normal", "moderate", "high", "high_plus", "zero_tolerance"), default="normal"),
        "automaticSampleSubmissionConsent": Enum(("none", "safe", "all"), default="safe"),
        "automaticDefinitionUpdateEnabled": Boolean(default=True),
        "proxy": Text(rule=_proxy_rule, doc="static proxy, http://host:port/"),
        "definitionUpdatesInterval": Integer(1, doc="seconds between definition updates, e.g. 28800"),
    }
)

_SENSORS = (
    "enableFilePermissionEvents",
    "enableFileOwnershipEvents",
    "enableRawSocketEvent",
    "enableBootLoaderCalls",
    "enableProcessCalls",
    "enablePseudofsCalls",
    "enableEbpfModuleLoadEvents",
    "enableOtherFsOpenEvents",
    "enableEbpfSourceEnrichment",
    # Microsoft's sample file lists the engine cache among the sensors; the docs under features.
    "enableAntivirusEngineCache",
    "sendLowfiEvents",
)

FEATURES = Obj(
    {
        "moduleLoad": Enum(ON_OFF, default="disabled"),
        "remediateInfectedFile": Enum(ON_OFF, default="disabled"),
        "supplementarySensorConfigurations": Obj({key: Enum(ON_OFF, default="disabled") for key in _SENSORS}),
        "enableAntivirusEngineCache": Enum(ON_OFF, default="disabled"),
        "ebpfSupplementaryEventProvider": Enum(ON_OFF, default="enabled"),
        "offlineDefinitionUpdateVerifySig": Enum(ON_OFF),
    }
)

NETWORK_PROTECTION = Obj(
    {
        "enforcementLevel": Enum(("disabled", "audit", "block"), default="disabled"),
        "disableIcmpInspection": Boolean(default=True),
    }
)

EDR = Obj(
    {
        "groupIds": Text(max_length=256, doc="device group id"),
        "tags": ListOf(
            Obj(
                {
                    "key": Enum(("GROUP",)),
                    "value": Text(max_length=256, doc="tag value"),
                },
                required=("key", "value"),
            ),
            unique=True,
        ),
    }
)

SCHEMA = Obj(
    {
        "antivirusEngine": ANTIVIRUS_ENGINE,
        "exclusionSettings": EXCLUSION_SETTINGS,
        "cloudService": CLOUD_SERVICE,
        "features": FEATURES,
        "networkProtection": NETWORK_PROTECTION,
        "edr": EDR,
    },
    hints={"proxy": "the proxy belongs in cloudService.proxy"},
)


def node_at(path: str) -> Node | None:
    """The schema node of a dotted path without list indexes (``antivirusEngine.enforcementLevel``)."""
    node: Node | None = SCHEMA
    for part in path.split("."):
        if not isinstance(node, Obj):
            return None
        node = node.fields.get(part)
    return node


# --- parsing and validating ----------------------------------------------------------------------


def parse_managed_json(text: str) -> tuple[dict[str, Any] | None, list[SettingsError]]:
    """Parse the raw file; returns (data, errors) where errors name the line and column of bad JSON."""
    # json.loads silently keeps the last of two equal keys; mdatp's reader may not, so refuse them.
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    if not text.strip():
        return None, [SettingsError(ROOT, "the file is empty; write {} for no managed settings")]
    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except RecursionError:
        return None, [SettingsError(ROOT, "not valid here: the JSON is nested too deeply")]
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg.startswith("Expecting ',' delimiter"):
            hint = " (a comma is missing between two entries, usually at the end of the line before)"
        elif exc.msg.startswith("Expecting property name"):
            hint = " (JSON allows no trailing comma and no comments)"
        return None, [SettingsError(ROOT, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{hint}")]
    errors = [
        SettingsError(ROOT, f'the key "{key}" appears twice in one object; mdatp would keep only one')
        for key in dict.fromkeys(duplicates)
    ]
    if not isinstance(data, dict):
        errors.append(SettingsError(ROOT, f"the file must hold a JSON object {{...}}, not {_type_name(data)}"))
        return None, errors
    return data, errors


def validate_managed_settings(data: Any) -> list[SettingsError]:
    """Every problem of a parsed document, each with its JSON path; [] when it may be delivered."""
    errors: list[SettingsError] = []
    if not isinstance(data, dict):
        return [SettingsError(ROOT, f"the settings must be a JSON object {{...}}, not {_type_name(data)}")]
    SCHEMA.check(data, ROOT, errors)
    return errors


def check_managed_json(text: str) -> tuple[dict[str, Any] | None, list[SettingsError]]:
    """Parse and validate raw text: (data, []) when good, (None or data, errors) when not."""
    data, errors = parse_managed_json(text)
    if data is None:
        return None, errors
    return data, errors + validate_managed_settings(data)


def dump_managed_json(data: dict[str, Any]) -> str:
    """The document as the file's text: two-space indents, key order kept, final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- reading and writing by path -----------------------------------------------------------------


_MISSING = object()


def get_path(data: dict[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted path of objects, or ``default`` when any part is absent."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path, creating the objects on the way."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def unset_path(data: dict[str, Any], path: str) -> None:
    """Remove a dotted path, and any object that became empty on the way."""
    parts = path.split(".")
    chain = [data]
    for part in parts[:-1]:
        child = chain[-1].get(part)
        if not isinstance(child, dict):
            return
        chain.append(child)
    chain[-1].pop(parts[-1], None)
    for depth in range(len(chain) - 1, 0, -1):
        if not chain[depth]:
            chain[depth - 1].pop(parts[depth - 1], None)


def threat_type_action(data: dict[str, Any], key: str) -> str | None:
    """The configured action of one threat type (None when not configured)."""
    for item in get_path(data, "antivirusEngine.threatTypeSettings", []) or []:
        if isinstance(item, dict) and item.get("key") == key:
            return item.get("value")
    return None


def set_threat_type_action(data: dict[str, Any], key: str, value: str | None) -> None:
    """Set (or with None remove) one threat type's action, keeping the others in order."""
    items = [item for item in get_path(data, "antivirusEngine.threatTypeSettings", []) or []]
    for item in items:
        if isinstance(item, dict) and item.get("key") == key:
            if value is None:
                items.remove(item)
            else:
                item["value"] = value
            break
    else:
        if value is not None:
            items.append({"key": key, "value": value})
    if items:
        set_path(data, "antivirusEngine.threatTypeSettings", items)
    else:
        unset_path(data, "antivirusEngine.threatTypeSettings")


# --- the recommended hardening (the seed's "Recommendations") -------------------------------------

PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")


def _excluded_directories(data: dict[str, Any]) -> set[str]:
    found = set()
    for item in get_path(data, "antivirusEngine.exclusions", []) or []:
        if isinstance(item, dict) and item.get("$type") == "excludedPath" and isinstance(item.get("path"), str):
            found.add(item["path"].rstrip("/") or "/")
    return found


@dataclass(frozen=True)
class Recommendation:
    """One row of the diff against the recommended hardening."""

    id: str
    title: str
    why: str
    path: str
    current: Any
    recommended: Any
    adopted: bool
    # The value mdatp uses when the key is absent (None: no documented default).
    default: Any = None

    @property
    def current_display(self) -> str:
        if self.current is None:
            return "not set" + (f" (default {_show(self.default)})" if self.default is not None else "")
        return _show(self.current) if not isinstance(self.current, list) else json.dumps(self.current)

    @property
    def recommended_display(self) -> str:
        return json.dumps(self.recommended)


@dataclass(frozen=True)
class _Rule:
    id: str
    title: str
    why: str
    path: str
    recommended: Any
    read: Callable[[dict[str, Any]], Any]
    adopted: Callable[[dict[str, Any]], bool]
    apply: Callable[[dict[str, Any]], None]
    default: Any = None


def _scalar_rule(rule_id: str, title: str, why: str, path: str, value: Any) -> _Rule:
    return _Rule(
        rule_id,
        title,
        why,
        path,
        value,
        read=lambda data: get_path(data, path),
        adopted=lambda data: get_path(data, path, _MISSING) == value,
        apply=lambda data: set_path(data, path, value),
        default=getattr(node_at(path), "default", None),
    )


def _threat_rule(rule_id: str, title: str, why: str, key: str, value: str) -> _Rule:
    # Shown as the action alone; the path names the threat type it applies to.
    return _Rule(
        rule_id,
        title,
        why,
        f"antivirusEngine.threatTypeSettings[key={key}].value",
        value,
        read=lambda data: threat_type_action(data, key),
        adopted=lambda data: threat_type_action(data, key) == value,
        apply=lambda data: set_threat_type_action(data, key, value),
        default="audit",
    )


def _apply_disallowed(data: dict[str, Any]) -> None:
    current = get_path(data, "antivirusEngine.disallowedThreatActions", []) or []
    set_path(
        data,
        "antivirusEngine.disallowedThreatActions",
        ["allow", "restore"] + [action for action in current if action not in ("allow", "restore")],
    )


def _apply_pseudo_fs(data: dict[str, Any]) -> None:
    present = _excluded_directories(data)
    items = list(get_path(data, "antivirusEngine.exclusions", []) or [])
    for path in PSEUDO_FILESYSTEMS:
        if path not in present:
            items.append({"$type": "excludedPath", "isDirectory": True, "path": path})
    set_path(data, "antivirusEngine.exclusions", items)


_ADMIN_ONLY = "Prevents the local admin from being able to"

RULES: tuple[_Rule, ...] = (
    _scalar_rule(
        "real-time-protection",
        "Real-time protection",
        "Without enforcementLevel real_time the agent runs passive (the default since 101.23062.0001): "
        "nothing is blocked or quarantined as it appears, and the EICAR detection check fails.",
        "antivirusEngine.enforcementLevel",
        "real_time",
    ),
    _scalar_rule(
        "exclusions-admin-only",
        "Exclusions only from this file",
        f"{_ADMIN_ONLY} add the local exclusions (via bash (the command prompt)).",
        "antivirusEngine.exclusionsMergePolicy",
        "admin_only",
    ),
    _Rule(
        "disallow-allow-restore",
        "No local allow or restore",
        f"{_ADMIN_ONLY} restore a quarantined item (via bash (the command prompt)).",
        "antivirusEngine.disallowedThreatActions",
        ["allow", "restore"],
        read=lambda data: get_path(data, "antivirusEngine.disallowedThreatActions"),
        adopted=lambda data: (
            {"allow", "restore"} <= set(get_path(data, "antivirusEngine.disallowedThreatActions", []) or [])
        ),
        apply=_apply_disallowed,
    ),
    _scalar_rule(
        "threat-types-admin-only",
        "Threat type settings only from this file",
        f"{_ADMIN_ONLY} add False Positives or True Positives that are benign to the threat types "
        "(via bash (the command prompt)).",
        "antivirusEngine.threatTypeSettingsMergePolicy",
        "admin_only",
    ),
    _Rule(
        "exclude-pseudo-filesystems",
        "Exclude /proc, /sys and /dev",
        "The seed's recommended mdatp_managed.json excludes the kernel's pseudo-filesystems /proc, /sys and /dev: "
        "they hold no files to scan and scanning them only costs CPU.",
        "antivirusEngine.exclusions",
        list(PSEUDO_FILESYSTEMS),
        read=lambda data: [path for path in PSEUDO_FILESYSTEMS if path in _excluded_directories(data)] or None,
        adopted=lambda data: set(PSEUDO_FILESYSTEMS) <= _excluded_directories(data),
        apply=_apply_pseudo_fs,
    ),
    _threat_rule(
        "block-pua",
        "Block potentially unwanted applications",
        "The seed and Microsoft's recommended profile block PUA instead of only auditing it (the default).",
        "potentially_unwanted_application",
        "block",
    ),
    _threat_rule(
        "audit-archive-bombs",
        "Audit archive bombs",
        "The seed and Microsoft's recommended profile set archive_bomb to audit: logged, never silently off.",
        "archive_bomb",
        "audit",
    ),
    _scalar_rule(
        "cloud-protection",
        "Cloud-delivered protection on",
        "The seed and Microsoft's recommended profile keep cloudService enabled: fast verdicts on new threats.",
        "cloudService.enabled",
        True,
    ),
    _scalar_rule(
        "automatic-definition-updates",
        "Automatic definition updates",
        "The seed and Microsoft's recommended profile keep automaticDefinitionUpdateEnabled true.",
        "cloudService.automaticDefinitionUpdateEnabled",
        True,
    ),
    _scalar_rule(
        "sample-consent-safe",
        "Submit safe samples",
        "The seed and Microsoft's recommended profile set automaticSampleSubmissionConsent to safe: "
        "samples without personal data are sent for analysis.",
        "cloudService.automaticSampleSubmissionConsent",
        "safe",
    ),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}


def recommendations(data: dict[str, Any]) -> list[Recommendation]:
    """The diff of a document against the recommended hardening, one row per recommendation."""
    return [
        Recommendation(
            id=rule.id,
            title=rule.title,
            why=rule.why,
            path=rule.path,
            current=rule.read(data),
            recommended=rule.recommended,
            adopted=rule.adopted(data),
            default=rule.default,
        )
        for rule in RULES
    ]


class UnknownRecommendation(KeyError):
    """No recommendation has this id."""


def apply_recommendation(data: dict[str, Any], recommendation_id: str) -> dict[str, Any]:
    """A copy of the document with one recommendation adopted (the input is not changed)."""
    rule = RULES_BY_ID.get(recommendation_id)
    if rule is None:
        raise UnknownRecommendation(recommendation_id)
    result = copy.deepcopy(data)
    rule.apply(result)
    return result


def _baseline() -> dict[str, Any]:
    # The seed's recommended file, in its order, without its placeholders: no allowedThreats at all (its
    # sample names EICAR, which defeats the detection check), no empty extension/name exclusions, no
    # example proxy, and no /var/log/system.log (a macOS path carried over from the macOS sample).
    return {
        "antivirusEngine": {
            "enforcementLevel": "real_time",
            "scanAfterDefinitionUpdate": True,
            "scanArchives": True,
            "maximumOnDemandScanThreads": 2,
            "exclusionsMergePolicy": "admin_only",
            "exclusions": [{"$type": "excludedPath", "isDirectory": True, "path": path} for path in PSEUDO_FILESYSTEMS],
            "disallowedThreatActions": ["allow", "restore"],
            "threatTypeSettingsMergePolicy": "admin_only",
            "threatTypeSettings": [
                {"key": "potentially_unwanted_application", "value": "block"},
                {"key": "archive_bomb", "value": "audit"},
            ],
        },
        "cloudService": {
            "enabled": True,
            "diagnosticLevel": "optional",
            "automaticSampleSubmissionConsent": "safe",
            "automaticDefinitionUpdateEnabled": True,
        },
    }


RECOMMENDED_BASELINE: dict[str, Any] = _baseline()


def baseline() -> dict[str, Any]:
    """A fresh copy of the recommended baseline, for new profiles."""
    return copy.deepcopy(RECOMMENDED_BASELINE)


# --- proxies -------------------------------------------------------------------------------------


_PROXY_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?|[0-9a-f:.]+", re.ASCII)


def proxy_problem(value: str, *, allow_unsupported: bool = False) -> str | None:
    """Why a static proxy URL is refused (None if acceptable).

    With ``allow_unsupported`` the syntax is still checked but PAC/WPAD and credentials pass,
    so the traps can be reported as warnings instead (the managed file's own proxy key).
    """
    shown = _show(redact_proxy(value))
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return f"{shown} is not a URL like http://proxy.example.com:3128"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{shown} must look like http://host:port or https://host:port"
    if not _PROXY_HOST.fullmatch(parts.hostname):
        # The URL reaches the package manager's config and the agent's: no quotes, $() or backticks.
        return f"{shown}: the host must be a name (letters, digits, hyphens, dots) or an IP address"
    if not port:  # none given, or 0
        return f"{shown} needs a port from 1 to 65535, e.g. http://{parts.hostname}:3128"
    if not allow_unsupported:
        unsupported = unsupported_proxy_reason(value)
        if unsupported:
            return unsupported
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            return f"{shown} must be only scheme, host and port (http://host:port)"
    return None


def _has_credentials(value: str) -> bool:
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return bool(parts.username or parts.password or "@" in parts.netloc)


def redact_proxy(value: str) -> str:
    """The URL with any user and password replaced, safe to show and log."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return "(unreadable URL)"
    if "@" not in parts.netloc:
        return value
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def unsupported_proxy_reason(value: str) -> str | None:
    """Why Defender for Endpoint cannot use this proxy: PAC, WPAD or credentials (MDE-FACTS §4)."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    path = parts.path.lower()
    host = (parts.hostname or "").lower()
    if _has_credentials(value):
        return "authenticated proxies (user:password@host) are not supported by Defender for Endpoint"
    if path.endswith((".pac", ".dat")) or "proxy.pac" in path or host.startswith("wpad") or "wpad" in path:
        return "proxy auto-configuration (PAC) and WPAD are not supported by Defender for Endpoint; give a static proxy"
    return None


# --- traps ---------------------------------------------------------------------------------------


def warnings(data: dict[str, Any], proxy: str = "") -> list[str]:
    """Settings that are valid but known to hurt (MDE-FACTS §7), in words a reviewer can act on."""
    found: list[str] = []
    for name in get_path(data, "antivirusEngine.allowedThreats", []) or []:
        if isinstance(name, str) and "eicar" in name.lower():
            found.append(
                f'allowedThreats names the EICAR test file ("{name}"): mdatp will let EICAR through and the '
                "detection check will fail. The seed's sample profile does this; remove the entry."
            )
    level = get_path(data, "antivirusEngine.enforcementLevel")
    if level in (None, "passive"):
        state = "left at its default, passive" if level is None else "passive"
        found.append(
            f"enforcementLevel is {state}: real-time protection is off, threats are not blocked or remediated "
            "automatically, and the EICAR detection check will fail. Set it to real_time."
        )
    elif level == "on_demand":
        found.append("enforcementLevel is on_demand: no real-time protection, only scans you start.")
    if level != "real_time" and get_path(data, "antivirusEngine.behaviorMonitoring") == "enabled":
        found.append("behaviorMonitoring only works with enforcementLevel real_time; here it has no effect.")
    threads = get_path(data, "antivirusEngine.maximumOnDemandScanThreads")
    if isinstance(threads, int) and not isinstance(threads, bool) and threads > 8:
        found.append(
            f"maximumOnDemandScanThreads is {threads}: a scheduled scan may take {threads} cores from the "
            "server's workload (the default is 2)."
        )
    if get_path(data, "cloudService.enabled") is False:
        found.append(
            "cloudService.enabled is false: no cloud-delivered protection (slower verdicts on new threats) and no "
            "sample submission."
        )
    if get_path(data, "cloudService.automaticDefinitionUpdateEnabled") is False:
        found.append(
            "automaticDefinitionUpdateEnabled is false: definitions only update when someone runs "
            "mdatp definitions update."
        )
    for label, url in (("the profile's proxy", proxy), ("cloudService.proxy", get_path(data, "cloudService.proxy"))):
        if isinstance(url, str) and url:
            reason = unsupported_proxy_reason(url)
            if reason:
                found.append(f"{label} {redact_proxy(url)} cannot work: {reason}.")
    managed_proxy = get_path(data, "cloudService.proxy")
    if proxy and isinstance(managed_proxy, str) and managed_proxy.rstrip("/") != proxy.rstrip("/"):
        found.append(
            f"cloudService.proxy ({redact_proxy(managed_proxy)}) differs from the profile's proxy "
            f"({redact_proxy(proxy)}): the package "
            "manager and the agent would use different proxies."
        )
    for tag in get_path(data, "edr.tags", []) or []:
        if isinstance(tag, dict) and tag.get("value") == "MDE-Management":
            found.append(
                "edr.tags has GROUP=MDE-Management: this enrols the devices in security settings management, "
                "whose policies then override this file."
            )
    return found


def notes(data: dict[str, Any]) -> list[str]:
    """Facts worth knowing about a document that are not problems."""
    found = []
    unmonitored = get_path(data, "antivirusEngine.unmonitoredFilesystems")
    if unmonitored is None:
        found.append(
            "NFS and Fuse mounts are not monitored by real-time protection (the default); set "
            'unmonitoredFilesystems to [] to monitor them, or ["Fuse"] to monitor NFS only.'
        )
    return found


# --- exclusions carried over from the previous antivirus -----------------------------------------

CARRIED_KINDS = {
    "path": "Path (file, or directory ending in /)",
    "extension": "File extension",
    "process": "Process (name or full path)",
}


def validate_carried_exclusions(rows: Any) -> list[SettingsError]:
    """Problems of the carried-over exclusions, with paths like ``[2].value``."""
    if not isinstance(rows, list):
        return [SettingsError(ROOT, f"expected a list of {{kind, value}} rows, got {_type_name(rows)}")]
    errors: list[SettingsError] = []
    if len(rows) > 1000:
        return [SettingsError(ROOT, f"{len(rows)} rows; at most 1000 are accepted")]
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(rows):
        here = f"[{i}]"
        if not isinstance(row, dict):
            errors.append(SettingsError(here, f"expected an object {{kind, value}}, got {_type_name(row)}"))
            continue
        unknown = set(row) - {"kind", "value"}
        if unknown:
            errors.append(SettingsError(here, f"unknown keys {sorted(unknown)}; rows have kind and value"))
        kind, value = row.get("kind"), row.get("value")
        if kind not in CARRIED_KINDS:
            errors.append(
                SettingsError(f"{here}.kind", f"{_show(kind)} is not allowed; use one of: path, extension, process")
            )
            continue
        if not isinstance(value, str) or not value.strip():
            errors.append(SettingsError(f"{here}.value", "must not be empty"))
            continue
        if _CONTROL.search(value):
            errors.append(SettingsError(f"{here}.value", "must be one line without control characters"))
            continue
        if value != value.strip():
            errors.append(SettingsError(f"{here}.value", "must not start or end with spaces"))
            continue
        if len(value) > 4096:
            errors.append(SettingsError(f"{here}.value", "is longer than 4096 characters"))
            continue
        rule = {"path": _absolute_only, "extension": _extension_rule, "process": _process_rule}[kind]
        complaint = rule(value)
        if complaint:
            errors.append(SettingsError(f"{here}.value", complaint))
            continue
        if (kind, value) in seen:
            errors.append(SettingsError(f"{here}.value", f"{_show(value)} is listed twice"))
        seen.add((kind, value))
    return errors


def _absolute_only(value: str) -> str | None:
    if not value.startswith("/"):
        return f"{_show(value)} must be an absolute path (starting with /)"
    return None


def carried_to_managed(rows: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
    """Carried-over rows as antivirusEngine exclusion items."""
    items: list[dict[str, Any]] = []
    for row in rows:
        kind, value = row["kind"], row["value"]
        if kind == "path":
            # A trailing slash marks a directory (the previous product's exports write them so).
            items.append({"$type": "excludedPath", "isDirectory": value.endswith("/"), "path": value})
        elif kind == "extension":
            items.append({"$type": "excludedFileExtension", "extension": value})
        else:
            items.append({"$type": "excludedFileName", "name": value})
    return items


def _exclusion_key(item: Any) -> tuple[str, str]:
    if not isinstance(item, dict):
        return ("", json.dumps(item, sort_keys=True))
    kind = item.get("$type", "")
    if kind == "excludedPath":
        return (kind, str(item.get("path", "")).rstrip("/") or "/")
    if kind == "excludedFileExtension":
        return (kind, str(item.get("extension", "")).lstrip(".").lower())
    return (kind, str(item.get("name", "")))


def build_managed_document(
    settings: dict[str, Any], carried: Iterable[dict[str, str]], proxy: str = ""
) -> dict[str, Any]:
    """The file to deliver: the settings, carried exclusions merged in (no duplicates), the proxy."""
    data = copy.deepcopy(settings)
    extra = carried_to_managed(carried)
    if extra:
        items = list(get_path(data, "antivirusEngine.exclusions", []) or [])
        seen = {_exclusion_key(item) for item in items}
        for item in extra:
            key = _exclusion_key(item)
            if key not in seen:
                items.append(item)
                seen.add(key)
        set_path(data, "antivirusEngine.exclusions", items)
    # The profile's proxy reaches the agent through the managed file unless the file names its own.
    if proxy and get_path(data, "cloudService.proxy") is None:
        set_path(data, "cloudService.proxy", proxy)
    return data


def render_managed_json(profile: Any) -> str:
    """The exact text the settings step writes to MANAGED_JSON_PATH for this profile."""
    return dump_managed_json(
        build_managed_document(profile.managed_settings or {}, profile.carried_exclusions or [], profile.proxy or "")
    )


# --- mdatp itself, to exclude in the other antivirus (seed) --------------------------------------

MDATP_SBIN = "/opt/microsoft/mdatp/sbin/"
# The seed spells one of them "mdatp_audis_plugin"; the binary is mdatp_audisp_plugin (its own CPU section).
MDATP_PROCESSES = ("wdavdaemon", "crashpad_handler", "mdatp_audisp_plugin", "telemetryd_v2")
MDATP_PATHS = ("/opt/microsoft/mdatp/", "/var/opt/microsoft/mdatp/", "/etc/opt/microsoft/mdatp/")


def profile_warnings(profile: Any) -> list[str]:
    """Every warning of a profile, as the list, the editor and the API show them."""
    from deployments.cron import schedule_warnings

    found = warnings(profile.managed_settings or {}, profile.proxy or "")
    found += schedule_warnings(
        scan_cron=profile.scan_cron or "", update_cron=profile.update_cron or "", agent_version=profile.agent_version
    )
    if not profile.onboarding_sha256:
        found.append("No onboarding package: hosts would install the agent but stay unlicensed (missing license).")
    return found
