"""`manage.py simfleet`: serves until stopped and writes what the demo needs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command


def test_it_writes_the_inventory_and_a_private_client_key(tmp_path: Path) -> None:
    inventory, key, out = tmp_path / "inv.json", tmp_path / "key", io.StringIO()
    call_command(
        "simfleet",
        "--hosts",
        "3",
        "--base-port",
        "0",
        "--faults",
        "auth:1",
        "--seed",
        "4",
        "--inventory-out",
        str(inventory),
        "--client-key-out",
        str(key),
        "--run-for",
        "0.2",
        stdout=out,
    )
    records = json.loads(inventory.read_text())
    assert [r["name"] for r in records] == [r["name"] for r in records if r["address"] == "127.0.0.1"]
    assert len(records) == 3 and records[1]["port"] == records[0]["port"] + 1
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert key.stat().st_mode & 0o777 == 0o600
    text = out.getvalue()
    assert "simulated fleet: 3 hosts on 127.0.0.1:" in text and " auth\n" in text and "stopped" in text


def test_a_bad_fault_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="unknown fault 'nosuch'"):
        call_command("simfleet", "--hosts", "2", "--faults", "nosuch:1", "--run-for", "0.1", stdout=io.StringIO())
