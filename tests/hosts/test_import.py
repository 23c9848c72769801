"""Inventory import: parsing, validating every row, and the all-or-nothing write."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hosts.importing import MAX_BYTES, parse_inventory
from hosts.keys import public_key_fingerprint
from hosts.models import Host, Tag
from hosts.services import host_import
from mdefleet.audit import Actor
from mdefleet.models import AuditEvent
from tests.factories import CredentialFactory, HostFactory, ed25519_public_key, fernet_keys  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]

HEADER = "name,address,port,user,credential,tags,host_key,use_sudo"


@pytest.fixture
def cred() -> Any:
    return CredentialFactory(name="fleet-key")


def errors_of(content: str | bytes, fmt: str = "auto") -> list[tuple[int, str]]:
    parsed = parse_inventory(content=content, fmt=fmt)
    assert not parsed.rows, "a file with errors must return no rows"
    return [(e.line, e.field) for e in parsed.errors]


def test_a_good_csv_gives_every_row_with_defaults(cred: Any) -> None:
    csv_text = (
        f"{HEADER}\n"
        "web-01,10.0.4.11,22,deploy,fleet-key,web;prod,,\n"
        ",DB01.Example.NET,2222,root,fleet-key,db prod,,\n"
        "v6,[2001:DB8::1],,deploy,fleet-key,,,false\n"
    )
    parsed = parse_inventory(content=csv_text)
    assert parsed.ok, parsed.errors
    assert parsed.format == "csv"
    web, db, v6 = parsed.rows
    assert (web.line, web.name, web.address, web.port, web.user, web.tags) == (
        2, "web-01", "10.0.4.11", 22, "deploy", ["web", "prod"]
    )  # fmt: skip
    assert web.use_sudo is True and web.credential == cred
    assert (db.name, db.address, db.port, db.tags, db.use_sudo) == (
        "db01.example.net", "db01.example.net", 2222, ["db", "prod"], False
    )  # fmt: skip
    assert (v6.address, v6.port, v6.use_sudo) == ("2001:db8::1", 22, False)


def test_a_good_json_gives_every_row(cred: Any) -> None:
    content = (
        "[\n"
        '  {"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key", "tags": ["Web", "web"]},\n'
        "  {\n"
        '    "name": "b", "address": "b.example.net", "port": 2200, "user": "ops", "credential": "fleet-key"\n'
        "  }\n"
        "]\n"
    )
    parsed = parse_inventory(content=content)
    assert parsed.ok, parsed.errors
    assert parsed.format == "json"
    first, second = parsed.rows
    assert (first.line, first.name, first.tags) == (2, "10.0.0.1", ["web"])
    assert (second.line, second.name, second.port) == (3, "b", 2200)


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ("a,,22,deploy,fleet-key,,,", "address", "required"),
        ("a,10.0.0.1;reboot,22,deploy,fleet-key,,,", "address", "not a valid"),
        ("a,$(reboot),22,deploy,fleet-key,,,", "address", "not a valid"),
        ("a,host name,22,deploy,fleet-key,,,", "address", "whitespace"),
        ("a,-bad.example,22,deploy,fleet-key,,,", "address", "not a valid"),
        ("a,1.2.3,22,deploy,fleet-key,,,", "address", "numeric"),
        ("a,fe80::1%eth0,22,deploy,fleet-key,,,", "address", "zone"),
        (f"a,{'a.' * 127}example,22,deploy,fleet-key,,,", "address", "253"),
        ("a,10.0.0.1,0,deploy,fleet-key,,,", "port", "1 to 65535"),
        ("a,10.0.0.1,65536,deploy,fleet-key,,,", "port", "1 to 65535"),
        ("a,10.0.0.1,ssh,deploy,fleet-key,,,", "port", "1 to 65535"),
        ("a,10.0.0.1,22,Deploy,fleet-key,,,", "user", "lower-case login name"),
        ("a,10.0.0.1,22,,fleet-key,,,", "user", "required"),
        ("a,10.0.0.1,22,de`id`,fleet-key,,,", "user", "lower-case login name"),
        ("a,10.0.0.1,22,deploy,nope,,,", "credential", "no credential named"),
        ("a,10.0.0.1,22,deploy,,,,", "credential", "required"),
        ("a,10.0.0.1,22,deploy,fleet-key,web;pr*d,,", "tags", "not a slug"),
        ("a,10.0.0.1,22,deploy,fleet-key,,ssh-ed25519 AAAAnotakey,", "host_key", "not an OpenSSH public key"),
        ("a,10.0.0.1,22,deploy,fleet-key,,,maybe", "use_sudo", "true or false"),
    ],
)
def test_each_kind_of_bad_csv_row_is_reported_with_its_line(cred: Any, row: str, field: str, fragment: str) -> None:
    content = f"{HEADER}\nok,10.9.9.9,22,deploy,fleet-key,,,\n{row}\n"
    parsed = parse_inventory(content=content)
    assert parsed.rows == []
    assert [(e.line, e.field) for e in parsed.errors] == [(3, field)]
    assert fragment in parsed.errors[0].message


def test_every_bad_row_is_reported_not_just_the_first(cred: Any) -> None:
    content = (
        f"{HEADER}\n"
        "a,10.0.0.1,99999,deploy,fleet-key,,,\n"
        "b,10.0.0.2,22,deploy,fleet-key,,,\n"
        "c,bad host,22,BAD,missing,,,\n"
    )
    assert errors_of(content) == [(2, "port"), (4, "address"), (4, "user"), (4, "credential")]


def test_a_file_with_one_bad_row_imports_nothing(operator_client: Any, cred: Any) -> None:
    content = f"{HEADER}\na,10.0.0.1,22,deploy,fleet-key,,,\nb,10.0.0.2,22,deploy,fleet-key,,,\nc,10.0.0.3,0,deploy,fleet-key,,,\n"
    response = operator_client.post("/import/", {"content": content, "format": "auto"})
    assert response.status_code == 200
    assert b"Nothing was imported" in response.content
    assert Host.objects.count() == 0
    assert not AuditEvent.objects.filter(action="host.import").exists()


def test_duplicate_rows_in_the_file_are_refused_on_the_later_line(cred: Any) -> None:
    content = f"{HEADER}\na,10.0.0.1,22,deploy,fleet-key,,,\nb,10.0.0.2,22,deploy,fleet-key,,,\nc,10.0.0.1,22,ops,fleet-key,,,\n"
    parsed = parse_inventory(content=content)
    assert [(e.line, e.field) for e in parsed.errors] == [(4, "address")]
    assert "already on line 2" in parsed.errors[0].message


def test_the_same_address_on_another_port_is_not_a_duplicate(cred: Any) -> None:
    content = f"{HEADER}\na,10.0.0.1,22,deploy,fleet-key,,,\nb,10.0.0.1,2222,deploy,fleet-key,,,\n"
    assert parse_inventory(content=content).ok


def test_a_host_already_in_the_inventory_is_an_error(cred: Any) -> None:
    HostFactory(name="old", address="web01.example.net", port=22, credential=cred)
    content = f"{HEADER}\nnew,WEB01.example.net,22,deploy,fleet-key,,,\n"
    parsed = parse_inventory(content=content)
    assert [(e.line, e.field) for e in parsed.errors] == [(2, "address")]
    assert "already in the inventory" in parsed.errors[0].message


def test_json_errors_carry_the_line_each_object_starts_on(cred: Any) -> None:
    content = (
        "[\n"
        '  {"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key"},\n'
        '  {"address": "10.0.0.2", "user": "deploy", "credential": "fleet-key", "port": true},\n'
        '  {"address": "10.0.0.3", "user": "deploy", "credential": "fleet-key", "tags": "web"},\n'
        '  {"address": "10.0.0.4", "user": "deploy", "credential": "fleet-key", "colour": "red"},\n'
        '  "10.0.0.5"\n'
        "]\n"
    )
    assert errors_of(content) == [(3, "port"), (4, "tags"), (5, "row"), (6, "row")]


def test_broken_json_is_reported_with_its_line() -> None:
    assert errors_of('[\n  {"address": "10.0.0.1",\n  oops}\n]') == [(3, "file")]
    assert errors_of('{"hosts": []}') == [(1, "file")]


def test_csv_needs_a_header(cred: Any) -> None:
    errors = parse_inventory(content="10.0.0.1,22,deploy,fleet-key\n").errors
    assert {(e.line, e.field) for e in errors} == {(1, "header")}
    assert any("missing column(s) address, user, credential" in e.message for e in errors)


def test_a_csv_row_with_the_wrong_number_of_cells_is_reported(cred: Any) -> None:
    content = "address,user,credential\n10.0.0.1,deploy\n10.0.0.2,deploy,fleet-key\n"
    assert errors_of(content) == [(2, "row")]


def test_the_file_must_be_utf8() -> None:
    content = "address,user,credential\nhôte,deploy,k\n".encode("latin-1")
    parsed = parse_inventory(content=content)
    assert [(e.line, e.field) for e in parsed.errors] == [(2, "file")]
    assert "UTF-8" in parsed.errors[0].message


def test_a_utf8_bom_is_accepted(cred: Any) -> None:
    content = "\ufeffaddress,user,credential\n10.0.0.1,deploy,fleet-key\n".encode()
    assert parse_inventory(content=content).ok


def test_the_file_size_is_limited() -> None:
    content = b"address,user,credential\n" + b"#" * MAX_BYTES
    assert errors_of(content) == [(0, "file")]


def test_an_empty_file_is_refused() -> None:
    assert errors_of("") == [(0, "file")]
    assert errors_of("address,user,credential\n") == [(0, "file")]
    assert errors_of("[]") == [(0, "file")]


def test_the_chosen_format_wins_over_detection(cred: Any) -> None:
    content = '[{"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key"}]'
    assert parse_inventory(content=content, fmt="csv").errors[0].field == "header"


def test_import_creates_hosts_and_tags_in_one_go(cred: Any, users: Any) -> None:
    Tag.objects.create(name="web")
    content = f"{HEADER}\na,10.0.0.1,22,deploy,fleet-key,web;prod,,\nb,10.0.0.2,22,root,fleet-key,prod,,\n"
    parsed = parse_inventory(content=content)
    hosts = host_import(actor=Actor(user=users["operator"], label="op"), rows=parsed.rows, trust_on_first_use=False)
    assert [h.name for h in hosts] == ["a", "b"]
    a, b = Host.objects.order_by("name")
    assert sorted(a.tags.values_list("name", flat=True)) == ["prod", "web"]
    assert list(b.tags.values_list("name", flat=True)) == ["prod"]
    assert (a.use_sudo, b.use_sudo) == (True, False)
    assert Tag.objects.count() == 2
    event = AuditEvent.objects.get(action="host.import")
    assert event.details["hosts"] == 2 and event.actor == users["operator"]


def test_a_host_key_given_in_the_file_is_pinned_and_audited(cred: Any) -> None:
    key = ed25519_public_key(comment="root@web01")
    content = json.dumps(
        [
            {"address": "10.0.0.1", "user": "deploy", "credential": "fleet-key", "host_key": key},
            {"address": "10.0.0.2", "user": "deploy", "credential": "fleet-key"},
        ]
    )
    parsed = parse_inventory(content=content)
    host_import(actor=Actor(label="op"), rows=parsed.rows, trust_on_first_use=True)
    keyed, unkeyed = Host.objects.order_by("address")
    assert keyed.host_key == " ".join(key.split()[:2])
    assert keyed.host_key_fingerprint == public_key_fingerprint(key)
    assert keyed.host_key_pinned_at is not None
    assert keyed.trust_on_first_use is False
    assert unkeyed.host_key == "" and unkeyed.trust_on_first_use is True
    pin = AuditEvent.objects.get(action="host.pin_key")
    assert pin.target_id == str(keyed.pk) and pin.details["reason"] == "import"


@pytest.mark.parametrize("ticked", [True, False])
def test_trust_on_first_use_is_set_only_when_ticked_and_recorded(operator_client: Any, cred: Any, ticked: bool) -> None:
    content = f"{HEADER}\na,10.0.0.1,22,deploy,fleet-key,,,\n"
    data = {"content": content, "format": "csv"} | ({"trust_on_first_use": "on"} if ticked else {})
    response = operator_client.post("/import/", data)
    assert response.status_code == 302
    assert Host.objects.get().trust_on_first_use is ticked
    event = AuditEvent.objects.get(action="host.import")
    assert event.details["trust_on_first_use"] is ticked
    assert event.details["trust_on_first_use_hosts"] == (1 if ticked else 0)


def test_the_import_page_takes_an_uploaded_file(operator_client: Any, cred: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("hosts.csv", b"address,user,credential\n10.0.0.1,deploy,fleet-key\n")
    response = operator_client.post("/import/", {"file": upload, "format": "auto"})
    assert response.status_code == 302
    assert Host.objects.get().address == "10.0.0.1"


def test_the_import_page_shows_every_error_with_its_line(operator_client: Any, cred: Any) -> None:
    content = f"{HEADER}\na,10.0.0.1,0,deploy,fleet-key,,,\nb,bad host,22,deploy,fleet-key,,,\n"
    response = operator_client.post("/import/", {"content": content, "format": "csv"})
    html = response.content.decode()
    assert "2 problems" in html
    assert '<td class="num">2</td><td class="mono">port</td>' in html
    assert '<td class="num">3</td><td class="mono">address</td>' in html
