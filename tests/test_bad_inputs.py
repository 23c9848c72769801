"""A corpus of bad inputs on every form and endpoint: each is refused, names its field, writes nothing.

Malformed CSV and JSON, uploads over the limits, invalid addresses and ports, settings with wrong
types and unknown keys, shell injection strings and unicode tricks, sent to the host import (page
and API), host create and update (API), credential create (page and API), profile create and edit
(pages and API), rollout create (page and API, with its wave plan and gates), rollout preview and
discovery start (page and API). Every case asserts:

- the request is refused (API: 400 or 413 problem+json; page: the form again, not a redirect),
- the refusal names the field (API: an error path; page: the field's error list or message),
- no row of any mdefleet, hosts or deployments model was written (counts before == after).

The corpus size is printed by the last test and must not shrink below ``MIN_CASES``.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import (
    CredentialFactory,
    HostFactory,
    ProfileFactory,
    ed25519_private_key,
    ed25519_public_key,
    eligible_hosts,
    fernet_keys,  # noqa: F401
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]

MIN_CASES = 280
MIB = 1024 * 1024

# Strings that must never get through a field that reaches a shell, a file name or a log line.
INJECTIONS = {
    "semicolon": "x; touch /tmp/pwned",
    "subshell": "$(touch /tmp/pwned)",
    "backticks": "`touch /tmp/pwned`",
    "newline": "x\ntouch /tmp/pwned",
    "quotes": "x' \"; id #",
    "option": "-oProxyCommand=touch /tmp/pwned",
}
UNICODE_TRICKS = {
    "rtl-override": "web\u202e1gpj.exe",
    "zero-width": "web\u200b01",
    "homoglyph": "w\u0435b01",  # Cyrillic ie
    "nul": "web\x0001",
    "fullwidth": "\uff57\uff45\uff4201",
}
KEY = ed25519_public_key()
GOOD_HOST = {"address": "10.9.9.9", "port": 22, "user": "root", "credential": "fleet-key", "host_key": KEY}
CSV_HEADER = "name,address,port,user,credential\n"


@dataclass(frozen=True)
class Case:
    """One bad request: where it goes, what it sends, and the field its refusal must name."""

    id: str
    method: str
    url: str
    body: Any
    field: str
    page: bool = False  # a browser form (session login), not the token API
    multipart: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    # Page cases: a text the re-shown form must contain (the field's message) when no error id is rendered.
    expect: str = ""


def api(id: str, url: str, body: Any, field: str, method: str = "post", **kw: Any) -> Case:
    return Case(id=f"api-{id}", method=method, url=url, body=body, field=field, **kw)


def page(id: str, url: str, body: dict[str, Any], field: str, **kw: Any) -> Case:
    return Case(id=f"page-{id}", method="post", url=url, body=body, field=field, page=True, **kw)


def host_body(**changes: Any) -> dict[str, Any]:
    return {**GOOD_HOST, **changes}


def rollout_body(**changes: Any) -> dict[str, Any]:
    body = {"name": "bad input", "profile": "{profile}", "selection": {"ids": "{eligible}"}, "wave_plan": ["1", "100%"]}
    return {**body, **changes}


def rollout_form(**changes: Any) -> dict[str, Any]:
    body = {
        "name": "bad input", "profile": "{profile}", "hosts": "{eligible_csv}", "wave_plan": "1, 100%",
        "max_failed_per_wave_value": "10", "max_failed_per_wave_unit": "pct", "max_failed_total_value": "5",
        "max_failed_total_unit": "count", "soak_minutes": "0", "settle_seconds": "60", "auto_promote": "1",
        "approval_timeout_hours": "24", "schedule_timezone": "UTC",
    }  # fmt: skip
    return {**body, **changes}


def managed(engine: dict[str, Any]) -> dict[str, Any]:
    return {"antivirusEngine": engine}


def corpus() -> list[Case]:
    cases: list[Case] = []
    add = cases.append

    # --- host create (API) ------------------------------------------------------------------------
    hosts = "/api/v1/hosts/"
    for name, value in {**INJECTIONS, **UNICODE_TRICKS}.items():
        add(api(f"host-address-{name}", hosts, host_body(address=value), "address"))
        add(api(f"host-user-{name}", hosts, host_body(user=value), "user"))
    for name, value in {
        "empty": "", "ipv4-octet": "256.1.1.1", "space": "exa mple.com", "too-long": "a" * 300,
        "url": "ssh://10.0.0.1", "zone": "fe80::1%eth0", "numeric-tld": "host.123", "list": ["10.0.0.1"],
    }.items():  # fmt: skip
        add(api(f"host-address-{name}", hosts, host_body(address=value), "address"))
    for name, value in {"zero": 0, "too-big": 65536, "negative": -1, "text": "ssh", "injection": "22; id",
                        "float": 22.5, "null": None}.items():  # fmt: skip
        add(api(f"host-port-{name}", hosts, host_body(port=value), "port"))
    add(api("host-user-upper", hosts, host_body(user="Root"), "user"))
    add(api("host-user-too-long", hosts, host_body(user="a" * 40), "user"))
    add(api("host-credential-unknown", hosts, host_body(credential="nope"), "credential"))
    add(api("host-credential-number", hosts, host_body(credential=7), "credential"))
    add(api("host-key-garbage", hosts, host_body(host_key="not a key"), "host_key"))
    add(api("host-key-injection", hosts, host_body(host_key="ssh-ed25519 AAAA; touch /tmp/pwned"), "host_key"))
    add(api("host-tags-injection", hosts, host_body(tags=["web;id"]), "tags"))
    add(api("host-tags-zero-width", hosts, host_body(tags=["we\u200bb"]), "tags"))
    add(api("host-tags-not-list", hosts, host_body(tags="web"), "tags"))
    add(api("host-name-nul", hosts, host_body(name="web\x0001"), "name"))
    add(api("host-name-newline", hosts, host_body(name="web\n01"), "name"))
    add(api("host-name-too-long", hosts, host_body(name="w" * 300), "name"))
    add(api("host-use-sudo-text", hosts, host_body(use_sudo="maybe"), "use_sudo"))
    add(api("host-duplicate", hosts, host_body(address="{host_address}", port="{host_port}"), "address"))

    # --- host update (API) ------------------------------------------------------------------------
    one = "/api/v1/hosts/{host}/"
    for name, value in {"empty": "", "nul": "web\x00", "rtl": "a\u202eb\n", "too-long": "n" * 300}.items():
        add(api(f"host-patch-name-{name}", one, {"name": value}, "name", method="patch"))
    for name, value in {"zero": 0, "too-big": 70000, "text": "x"}.items():
        add(api(f"host-patch-port-{name}", one, {"port": value}, "port", method="patch"))
    for name, value in INJECTIONS.items():
        add(api(f"host-patch-user-{name}", one, {"user": value}, "user", method="patch"))
    add(api("host-patch-address", one, {"address": "10.1.1.1"}, "address", method="patch"))
    add(api("host-patch-host-key", one, {"host_key": KEY}, "host_key", method="patch"))
    add(api("host-patch-credential", one, {"credential": "nope"}, "credential", method="patch"))
    add(api("host-patch-tags", one, {"tags": ["$(id)"]}, "tags", method="patch"))

    # --- host import (API, JSON body and multipart) -----------------------------------------------
    imp = "/api/v1/hosts/import/"
    bad_files = {
        "json-truncated": ('[{"address": "10.0.0.1", "user": "root"', "json"),
        "json-object": ('{"address": "10.0.0.1"}', "json"),
        "json-row-not-object": ('["10.0.0.1"]', "json"),
        "json-port-text": ('[{"address": "10.0.0.1", "user": "root", "credential": "fleet-key", "port": "ssh"}]', "json"),
        "json-unknown-key": ('[{"address": "10.0.0.1", "user": "root", "credential": "fleet-key", "evil": 1}]', "json"),
        "json-empty-list": ("[]", "json"),
        "csv-no-header": ("10.0.0.1,root,fleet-key\n", "csv"),
        "csv-unknown-column": ("address,user,credential,evil\n10.0.0.1,root,fleet-key,1\n", "csv"),
        "csv-missing-column": ("address,user\n10.0.0.1,root\n", "csv"),
        "csv-duplicate-column": ("address,address,user,credential\n10.0.0.1,10.0.0.2,root,fleet-key\n", "csv"),
        "csv-ragged-row": (CSV_HEADER + "web,10.0.0.1,22,root\n", "csv"),
        "csv-bad-port": (CSV_HEADER + "web,10.0.0.1,99999,root,fleet-key\n", "csv"),
        "csv-injection-address": (CSV_HEADER + "web,10.0.0.1;id,22,root,fleet-key\n", "csv"),
        "csv-subshell-user": (CSV_HEADER + "web,10.0.0.1,22,$(id),fleet-key\n", "csv"),
        "csv-backtick-address": (CSV_HEADER + "web,`id`.example,22,root,fleet-key\n", "csv"),
        "csv-rtl-address": (CSV_HEADER + "web,10.0.0.1\u202e,22,root,fleet-key\n", "csv"),
        "csv-homoglyph-address": (CSV_HEADER + "web,\u0435xample.com,22,root,fleet-key\n", "csv"),
        "csv-nul": (CSV_HEADER + "web\x00,10.0.0.1,22,root,fleet-key\n", "csv"),
        "csv-unknown-credential": (CSV_HEADER + "web,10.0.0.1,22,root,nope\n", "csv"),
        # One good row and one bad: nothing of the file may be imported.
        "csv-one-bad-row-of-two": (CSV_HEADER + "ok,10.0.0.1,22,root,fleet-key\nbad,10.0.0.2,0,root,fleet-key\n", "csv"),
        "csv-duplicate-rows": (CSV_HEADER + "a,10.0.0.1,22,root,fleet-key\nb,10.0.0.1,22,root,fleet-key\n", "csv"),
    }  # fmt: skip
    for name, (content, fmt) in bad_files.items():
        add(api(f"import-{name}", imp, {"content": content, "format": fmt}, "file|row|header|address|port|user|credential|name|content"))  # fmt: skip
    add(api("import-format-xml", imp, {"content": CSV_HEADER, "format": "xml"}, "format"))
    add(api("import-nothing", imp, {"format": "csv"}, "request|content|file"))
    big = CSV_HEADER + "web,10.0.0.1,22,root,fleet-key\n" * (4 * MIB // 30 + 10)
    add(api("import-content-over-4mib", imp, {"content": big, "format": "csv"}, "file|content|size|large"))
    add(api("import-body-over-upload-limit", imp, {"content": "x" * (6 * MIB), "format": "csv"}, "size|large|big"))
    add(api("import-file-over-4mib", imp, {"format": "csv"}, "file", multipart=True, files={"file": big.encode()}))
    add(api("import-file-latin1", imp, {"format": "csv"}, "file", multipart=True,
            files={"file": (CSV_HEADER + "caf\xe9,10.0.0.1,22,root,fleet-key\n").encode("latin-1")}))  # fmt: skip
    add(api("import-file-binary", imp, {"format": "auto"}, "file", multipart=True, files={"file": b"\x89PNG\r\n\x1a\n\x00\x00"}))  # fmt: skip

    # --- host import (page) -----------------------------------------------------------------------
    for name in ("json-truncated", "csv-unknown-column", "csv-bad-port", "csv-injection-address", "csv-nul",
                 "csv-one-bad-row-of-two", "csv-homoglyph-address"):  # fmt: skip
        content, fmt = bad_files[name]
        add(
            page(
                f"import-{name}",
                "/import/",
                {"content": content, "format": fmt},
                "content",
                expect="Nothing was imported",
            )
        )
    add(page("import-nothing", "/import/", {"format": "auto"}, "__all__", expect="Upload a file or paste"))
    add(page("import-file-over-4mib", "/import/", {"format": "csv"}, "file", files={"file": big.encode()}))
    add(page("import-file-latin1", "/import/", {"format": "csv"}, "file", expect="is not UTF-8",
             files={"file": (CSV_HEADER + "caf\xe9,10.0.0.1,22,root,fleet-key\n").encode("latin-1")}))  # fmt: skip

    # --- credentials (API and page) ---------------------------------------------------------------
    creds = "/api/v1/credentials/"
    for name, value in {"space": "my key", "dots": "../etc", "subshell": "$(id)", "empty": "", "nul": "k\x00",
                        "rtl": "key\u202e"}.items():  # fmt: skip
        add(api(f"credential-name-{name}", creds, {"name": value, "kind": "private_key", "secret": "{private_key}"}, "name"))  # fmt: skip
        add(page(f"credential-name-{name}", "/credentials/", {"name": value, "kind": "private_key", "secret": "{private_key}"}, "name"))  # fmt: skip
    add(api("credential-kind-unknown", creds, {"name": "k1", "kind": "token", "secret": "x"}, "kind"))
    add(api("credential-key-garbage", creds, {"name": "k1", "kind": "private_key", "secret": "not a key"}, "secret"))
    add(api("credential-key-empty", creds, {"name": "k1", "kind": "private_key", "secret": ""}, "secret"))
    add(api("credential-password-empty", creds, {"name": "k1", "kind": "password", "secret": ""}, "secret"))
    add(api("credential-name-taken", creds, {"name": "fleet-key", "kind": "password", "secret": "pw"}, "name"))
    add(page("credential-key-garbage", "/credentials/", {"name": "k1", "kind": "private_key", "secret": "not a key"}, "secret"))  # fmt: skip
    add(page("credential-kind-unknown", "/credentials/", {"name": "k1", "kind": "token", "secret": "x"}, "kind"))

    # --- profiles (API) ---------------------------------------------------------------------------
    profiles = "/api/v1/profiles/"
    profile_one = "/api/v1/profiles/{profile}/"
    profile_cases: dict[str, tuple[dict[str, Any], str]] = {
        "name-empty": ({"name": ""}, "name"),
        "name-nul": ({"name": "p\x00"}, "name"),
        "name-too-long": ({"name": "p" * 200}, "name"),
        "channel-unknown": ({"channel": "beta"}, "channel"),
        "channel-list": ({"channel": ["prod"]}, "channel"),
        "version-injection": ({"agent_version": "101.1; touch /tmp/pwned"}, "agent_version"),
        "version-subshell": ({"agent_version": "$(id)"}, "agent_version"),
        "version-newline": ({"agent_version": "101.25092.0003\nid"}, "agent_version"),
        "proxy-not-url": ({"proxy": "proxy.corp"}, "proxy"),
        "proxy-port": ({"proxy": "http://proxy.corp:99999"}, "proxy"),
        "proxy-injection": ({"proxy": "http://proxy.corp:3128/'; touch /tmp/pwned; '"}, "proxy"),
        "proxy-backticks": ({"proxy": "http://`id`.corp:3128"}, "proxy"),
        "proxy-newline": ({"proxy": "http://proxy.corp:3128\nid"}, "proxy"),
        "proxy-scheme": ({"proxy": "file:///etc/passwd"}, "proxy"),
        "settings-enforcement-number": ({"managed_settings": managed({"enforcementLevel": 3})}, "managed_settings"),
        "settings-enforcement-unknown": ({"managed_settings": managed({"enforcementLevel": "realtime"})}, "managed_settings"),
        "settings-bool-as-text": ({"managed_settings": managed({"enableRealTimeProtection": "yes"})}, "managed_settings"),
        "settings-threads-text": ({"managed_settings": managed({"maximumOnDemandScanThreads": "four"})}, "managed_settings"),
        "settings-threads-range": ({"managed_settings": managed({"maximumOnDemandScanThreads": 999})}, "managed_settings"),
        "settings-unknown-key": ({"managed_settings": managed({"bogusSetting": True})}, "managed_settings"),
        "settings-unknown-section": ({"managed_settings": {"bogusSection": {}}}, "managed_settings"),
        "settings-list": ({"managed_settings": [1, 2]}, "managed_settings"),
        "settings-malformed-text": ({"managed_settings": '{"antivirusEngine": {'}, "managed_settings"),
        "settings-exclusions-type": ({"managed_settings": managed({"exclusions": "all"})}, "managed_settings"),
        "settings-exclusion-relative": (
            {"managed_settings": managed({"exclusions": [{"$type": "excludedPath", "path": "tmp", "isDirectory": True}]})},
            "managed_settings",
        ),
        "exclusions-kind": ({"carried_exclusions": [{"kind": "bogus", "value": "/tmp"}]}, "carried_exclusions"),
        "exclusions-relative": ({"carried_exclusions": [{"kind": "path", "value": "tmp/x"}]}, "carried_exclusions"),
        "exclusions-not-list": ({"carried_exclusions": "/tmp"}, "carried_exclusions"),
        "exclusions-nul": ({"carried_exclusions": [{"kind": "path", "value": "/tmp/\x00x"}]}, "carried_exclusions"),
        "exclusions-newline": ({"carried_exclusions": [{"kind": "process", "value": "a\nb"}]}, "carried_exclusions"),
        "scan-cron-short": ({"scan_cron": "* * *"}, "scan_cron"),
        "scan-cron-injection": ({"scan_cron": "0 2 * * 6; touch /tmp/pwned"}, "scan_cron"),
        "scan-cron-range": ({"scan_cron": "61 2 * * 6"}, "scan_cron"),
        "update-cron-subshell": ({"update_cron": "$(id) * * * *"}, "update_cron"),
        "scan-type-unknown": ({"scan_type": "deep"}, "scan_type"),
        "unknown-field": ({"evil": 1}, "evil"),
    }  # fmt: skip
    for name, (changes, path) in profile_cases.items():
        add(api(f"profile-create-{name}", profiles, {"name": "new profile", "channel": "prod", **changes}, path))
        add(api(f"profile-patch-{name}", profile_one, changes, path, method="patch"))
    onboarding = "/api/v1/profiles/{profile}/onboarding/"
    add(api("onboarding-base64", onboarding, {"filename": "mdatp_onboard.json", "content_base64": "!!!"}, "content_base64|file"))  # fmt: skip
    add(api("onboarding-junk-json", onboarding,
            {"filename": "mdatp_onboard.json", "content_base64": base64.b64encode(b'{"x": 1}').decode()}, "file|package|onboarding|content"))  # fmt: skip
    add(api("onboarding-nothing", onboarding, {}, "file|package|content"))
    add(api("onboarding-huge", onboarding, {"format": "json"}, "file|size|large", multipart=True,
            files={"file": b"{" + b" " * (6 * MIB) + b"}"}))  # fmt: skip

    # --- profiles (pages) -------------------------------------------------------------------------
    general = {"name": "page profile", "channel": "prod", "agent_version": "", "proxy": ""}
    for name, changes, fld in (
        ("name-empty", {"name": ""}, "name"),
        ("name-nul", {"name": "p\x00q"}, "name"),
        ("channel-unknown", {"channel": "beta"}, "channel"),
        ("version-injection", {"agent_version": "$(id)"}, "agent_version"),
        ("proxy-injection", {"proxy": "http://proxy.corp:3128/`id`"}, "proxy"),
        ("proxy-port", {"proxy": "http://proxy.corp:0"}, "proxy"),
    ):
        add(page(f"profile-new-{name}", "/profiles/new/", {**general, **changes}, fld))
        add(page(f"profile-general-{name}", "/profiles/{profile}/general/", {**general, **changes}, fld))
    raw = "/profiles/{profile}/settings/raw/"
    for name, document in {
        "malformed": '{"antivirusEngine": {',
        "wrong-type": json.dumps(managed({"enforcementLevel": 3})),
        "unknown-key": json.dumps(managed({"bogusSetting": True})),
        "not-object": "[1, 2]",
        "nul": '{"antivirusEngine": {"enforcementLevel": "real_time\\u0000"}}',
    }.items():
        add(page(f"profile-settings-raw-{name}", raw, {"document": document}, "document", expect="Refused: nothing was saved"))  # fmt: skip
    sched = "/profiles/{profile}/schedules/"
    good_sched = {"scan_cron": "0 2 * * 6", "scan_type": "quick", "update_cron": "0 3 1 * *"}
    for name, changes, fld in (
        ("scan-cron-injection", {"scan_cron": "0 2 * * 6; id"}, "scan_cron"),
        ("scan-cron-short", {"scan_cron": "0 2"}, "scan_cron"),
        ("update-cron-backticks", {"update_cron": "`id` 3 1 * *"}, "update_cron"),
        ("scan-type", {"scan_type": "deep"}, "scan_type"),
    ):
        add(page(f"profile-schedules-{name}", sched, {**good_sched, **changes}, fld))
    excl = "/profiles/{profile}/exclusions/"
    formset = {"exclusions-TOTAL_FORMS": "1", "exclusions-INITIAL_FORMS": "0", "exclusions-MIN_NUM_FORMS": "0",
               "exclusions-MAX_NUM_FORMS": "1000"}  # fmt: skip
    for name, kind, value in (("relative", "path", "tmp/x"), ("kind", "bogus", "/tmp"), ("newline", "process", "a\nb")):
        add(page(f"profile-exclusions-{name}", excl,
                 {**formset, "exclusions-0-kind": kind, "exclusions-0-value": value}, "exclusions-0-kind|exclusions-0-value"))  # fmt: skip

    # --- rollouts (API, create and preview) -------------------------------------------------------
    rollouts = "/api/v1/rollouts/"
    rollout_cases: dict[str, tuple[dict[str, Any], str]] = {
        "name-empty": ({"name": ""}, "name"),
        "name-too-long": ({"name": "r" * 300}, "name"),
        "name-nul": ({"name": "r\x00"}, "name"),
        "profile-unknown": ({"profile": 999999}, "profile"),
        "profile-text": ({"profile": "prod"}, "profile"),
        "selection-text": ({"selection": "all"}, "selection"),
        "selection-empty": ({"selection": {}}, "hosts|selection"),
        "selection-unknown-key": ({"selection": {"everything": True}}, "hosts|selection"),
        "selection-ids-text": ({"selection": {"ids": "1,2"}}, "hosts|selection"),
        "selection-ids-bools": ({"selection": {"ids": [True]}}, "hosts|selection"),
        "selection-ids-missing": ({"selection": {"ids": [999999]}}, "hosts|selection"),
        "selection-filter-unknown": ({"selection": {"filter": {"evil": "1"}}}, "hosts|selection"),
        "selection-tags-injection": ({"selection": {"tags": "$(id)"}}, "hosts|selection"),
        "wave-plan-words": ({"wave_plan": "one, all"}, "wave_plan"),
        "wave-plan-zero": ({"wave_plan": ["0"]}, "wave_plan"),
        "wave-plan-over-100": ({"wave_plan": ["1", "150%"]}, "wave_plan"),
        "wave-plan-decreasing": ({"wave_plan": ["50%", "10%"]}, "wave_plan"),
        "wave-plan-bool": ({"wave_plan": [True]}, "wave_plan"),
        "wave-plan-object": ({"wave_plan": {"1": "100%"}}, "wave_plan"),
        "wave-plan-injection": ({"wave_plan": "1; $(id)"}, "wave_plan"),
        "wave-plan-negative": ({"wave_plan": ["-1", "100%"]}, "wave_plan"),
        "wave-plan-fullwidth": ({"wave_plan": ["\uff11", "100%"]}, "wave_plan"),
        "gates-text": ({"gates": "strict"}, "gates"),
        "gates-unknown": ({"gates": {"max_reboots": 1}}, "gates"),
        "gates-negative": ({"gates": {"max_failed_per_wave": {"value": -1, "unit": "count"}}}, "gates"),
        "gates-unit": ({"gates": {"max_failed_per_wave": {"value": 1, "unit": "hosts"}}}, "gates"),
        "gates-value-text": ({"gates": {"max_failed_total": {"value": "ten", "unit": "count"}}}, "gates"),
        "gates-pct-over-100": ({"gates": {"max_failed_per_wave": {"value": 150, "unit": "pct"}}}, "gates"),
        "gates-regression-text": ({"gates": {"regression": {"cpu_points": "lots"}}}, "gates"),
        "gates-regression-unknown": ({"gates": {"regression": {"gpu_points": 5}}}, "gates"),
        "soak-negative": ({"soak_seconds": -1}, "soak_seconds"),
        "settle-huge": ({"settle_seconds": 10**9}, "settle_seconds"),
        "approval-too-short": ({"approval_timeout_seconds": 1}, "approval_timeout_seconds"),
        "auto-promote-text": ({"auto_promote": "perhaps"}, "auto_promote"),
        "ticket-too-long": ({"ticket": "CHG" * 40}, "ticket"),
        "ticket-nul": ({"ticket": "CHG\x00"}, "ticket"),
    }  # fmt: skip
    for name, (changes, path) in rollout_cases.items():
        add(api(f"rollout-create-{name}", rollouts, rollout_body(**changes), path))
    for name in ("selection-text", "selection-ids-missing", "wave-plan-words", "wave-plan-zero", "wave-plan-over-100"):
        changes, path = rollout_cases[name]
        body = {"selection": {"ids": "{eligible}"}, "wave_plan": ["1", "100%"], **changes}
        add(api(f"rollout-preview-{name}", rollouts + "preview/", body, path))

    # --- rollouts (page) --------------------------------------------------------------------------
    for name, changes, fld in (
        ("name-nul", {"name": "r\x00"}, "name"),
        ("profile-unknown", {"profile": "999999"}, "profile"),
        ("hosts-text", {"hosts": "web01"}, "hosts"),
        ("hosts-missing", {"hosts": "999999"}, "hosts"),
        ("hosts-injection", {"hosts": "1;$(id)"}, "hosts"),
        ("wave-plan-words", {"wave_plan": "one, all"}, "wave_plan"),
        ("wave-plan-over-100", {"wave_plan": "1, 150%"}, "wave_plan"),
        ("wave-plan-backticks", {"wave_plan": "`id`"}, "wave_plan"),
        ("gate-negative", {"max_failed_per_wave_value": "-1"}, "max_failed_per_wave_value"),
        ("gate-text", {"max_failed_total_value": "ten"}, "max_failed_total_value"),
        ("gate-unit", {"max_failed_per_wave_unit": "hosts"}, "max_failed_per_wave_unit"),
        ("soak-negative", {"soak_minutes": "-5"}, "soak_minutes"),
        ("approval-text", {"approval_timeout_hours": "soon"}, "approval_timeout_hours"),
        ("timezone-unknown", {"schedule_timezone": "Mars/Olympus"}, "schedule_timezone"),
    ):
        expect = {"wave_plan": "is neither a host count|at most 100%", "hosts": "no host with id|host ids"}.get(fld, "")
        add(page(f"rollout-new-{name}", "/rollouts/new/", rollout_form(**changes), fld, expect=expect))

    # --- discovery start (API and page) -----------------------------------------------------------
    discover = "/api/v1/hosts/discover/"
    for name, body, path in (
        ("nothing", {}, "ids|filter|request"),
        ("ids-text", {"ids": "1,2"}, "ids"),
        ("ids-missing", {"ids": [999999]}, "ids"),
        ("ids-injection", {"ids": ["1; id"]}, "ids"),
        ("ids-nul", {"ids": ["\x00"]}, "ids"),
        ("filter-unknown", {"filter": {"evil": "1"}}, "filter"),
        ("filter-text", {"filter": "all"}, "filter"),
    ):
        add(api(f"discover-{name}", discover, body, path))
    add(page("discover-ids-text", "/discover/", {"ids": "web01"}, "ids", expect="Invalid selection"))
    return cases


CASES = corpus()


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    """What the bad inputs aim at: a credential, a host, a profile and eligible hosts, and clients."""
    from django.contrib.auth.models import Group, User

    credential = CredentialFactory(name="fleet-key")
    host = HostFactory(credential=credential)
    profile = ProfileFactory(name="baseline")
    eligible = eligible_hosts(3)
    admin = User.objects.create_user(username="corpus-admin", password="pw-for-tests-1")
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    token = Token.objects.create(user=admin)
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    page_client = Client()
    page_client.force_login(admin)
    values = {
        "host": str(host.pk), "host_address": host.address, "host_port": host.port, "profile": profile.pk,
        "eligible": [h.pk for h in eligible], "eligible_csv": ",".join(str(h.pk) for h in eligible),
        "private_key": ed25519_private_key(),
    }  # fmt: skip
    return {"values": values, "api": api_client, "page": page_client}


def fill(value: Any, values: dict[str, Any]) -> Any:
    """Replace ``"{name}"`` placeholders (whole strings keep the value's type; parts are formatted)."""
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def row_counts() -> dict[str, int]:
    """Rows of every model of the product's apps (audit events included: a refusal changes nothing)."""
    return {
        model._meta.label: model._default_manager.count()
        for app in ("mdefleet", "hosts", "deployments")
        for model in apps.get_app_config(app).get_models()
    }


def send(case: Case, world: dict[str, Any]) -> Any:
    values = world["values"]
    url = fill(case.url, values)
    body = fill(case.body, values)
    client = world["page"] if case.page else world["api"]
    if case.files or case.multipart or case.page:
        data = dict(body)
        for name, content in case.files.items():
            data[name] = SimpleUploadedFile(f"{name}.txt", content)
        return getattr(client, case.method)(url, data) if case.method == "post" else None
    return getattr(client, case.method)(url, json.dumps(body), content_type="application/json")


def names_field(case: Case, response: Any) -> bool:
    fields = case.field.split("|")
    text = response.content.decode(errors="replace")
    if not case.page:
        body = json.loads(text)
        paths = [str(e.get("path", "")) + " " + str(e.get("field", "")) for e in body.get("errors") or []]
        detail = str(body.get("detail", ""))
        return any(f in path for f in fields for path in paths) or any(f in detail for f in fields)
    # A page re-shows the form: the field's error list (Django ids it), or the message the case expects.
    if any(f'id="id_{f}_error"' in text for f in fields):
        return True
    return bool(case.expect) and any(e.lower() in text.lower() for e in case.expect.split("|"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_refused_naming_its_field_and_writes_nothing(
    case: Case, world: dict[str, Any], broker: Any
) -> None:
    before = row_counts()
    response = send(case, world)
    after = row_counts()
    text = response.content.decode(errors="replace")
    if case.page:
        # The form is shown again with its errors; a redirect would mean it was accepted.
        assert response.status_code in (200, 400, 413, 422), (response.status_code, text[:1500])
    else:
        assert response.status_code in (400, 413), (response.status_code, text[:1500])
        assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    assert names_field(case, response), f"the refusal does not name {case.field!r}: {text[-3000:]}"
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert broker.sent() == [], "a refused request enqueued work"


def test_the_corpus_counts_its_cases(capsys: pytest.CaptureFixture[str]) -> None:
    surfaces: dict[str, int] = {}
    for case in CASES:
        key = case.id.split("-", 2)[0] + " " + case.id.split("-", 2)[1]
        surfaces[key] = surfaces.get(key, 0) + 1
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    assert len(CASES) >= MIN_CASES
    with capsys.disabled():
        print(f"\nbad-input corpus: {len(CASES)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(surfaces.items())))
