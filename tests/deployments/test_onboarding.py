"""Reading the onboarding package: the portal's .py and .json, the org id, and what is refused."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployments.onboarding import MAX_PACKAGE_BYTES, OnboardingInvalid, clean_filename, read_onboarding_package

SAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "samples"
SAMPLE_PY = SAMPLES / "MicrosoftDefenderATPOnboardingLinuxServer.py"
SAMPLE_JSON = SAMPLES / "mdatp_onboard.json"
ORG = "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"
OTHER_ORG = "8c1f2a34-0b5e-4c6d-9e7f-a1b2c3d4e5f6"


def onboard_json(org_id: str = ORG, key: str = "orgId", marker: str = "") -> str:
    """An mdatp_onboard.json shaped like the portal's: JSON in a string in a string."""
    body = json.dumps({"previousOrgIds": [], key: org_id, "deviceType": "Server", "note": marker})
    info = json.dumps({"body": body, "sig": "c2ln", "sha256sig": "c2ln", "cert": "Y2VydA==", "chain": []})
    return json.dumps({"onboardingInfo": info}, indent=2)


def portal_script(org_id: str = ORG, marker: str = "") -> str:
    """A script shaped like the portal's: the JSON written from an escaped triple-quoted literal."""
    literal = onboard_json(org_id, marker=marker).replace("\\", "\\\\")
    return (
        "#!/usr/bin/env python\n\nimport sys, getopt, os, errno, json, syslog, tempfile\n\n"
        "try:\n"
        "    destfile = '/etc/opt/microsoft/mdatp/mdatp_onboard.json'\n"
        '    with open(destfile, "w") as json_file:\n'
        f"        json_file.write('''{literal}''')\n"
        "except Exception as e:\n"
        "    sys.exit(1)\n"
    )


def refusal(filename: str, content: bytes) -> str:
    with pytest.raises(OnboardingInvalid) as caught:
        read_onboarding_package(filename, content)
    return str(caught.value)


def test_the_sample_script_yields_its_org_id() -> None:
    package = read_onboarding_package(SAMPLE_PY.name, SAMPLE_PY.read_bytes())
    assert (package.kind, package.org_id) == ("py", ORG)
    assert len(package.sha256) == 64
    assert package.text == SAMPLE_PY.read_text()


def test_the_sample_json_yields_its_org_id() -> None:
    package = read_onboarding_package(SAMPLE_JSON.name, SAMPLE_JSON.read_bytes())
    assert (package.kind, package.org_id, package.filename) == ("json", ORG, "mdatp_onboard.json")


def test_a_script_shaped_like_the_portals_yields_its_org_id() -> None:
    package = read_onboarding_package("MicrosoftDefenderATPOnboardingLinuxServer.py", portal_script(OTHER_ORG).encode())
    assert package.org_id == OTHER_ORG


def test_a_python_2_script_is_read_by_its_text() -> None:
    script = 'print "Generating"\nx = """' + onboard_json().replace("\\", "\\\\") + '"""\n'
    assert read_onboarding_package("onboard.py", script.encode()).org_id == ORG


def test_a_base64_embedded_blob_is_read() -> None:
    blob = base64.b64encode(onboard_json().encode()).decode()
    script = f"import base64\nBLOB = base64.b64decode('{blob}')\n"
    assert read_onboarding_package("onboard.py", script.encode()).org_id == ORG


def test_the_org_id_key_is_read_whatever_its_case_and_lowercased() -> None:
    text = onboard_json(ORG.upper(), key="OrgId")
    assert read_onboarding_package("mdatp_onboard.json", text.encode()).org_id == ORG


def test_previous_org_ids_are_not_taken_for_the_org_id() -> None:
    body = json.dumps({"previousOrgIds": [OTHER_ORG], "orgId": ORG})
    text = json.dumps({"onboardingInfo": json.dumps({"body": body})})
    assert read_onboarding_package("mdatp_onboard.json", text.encode()).org_id == ORG


def test_the_sample_script_runs_and_writes_the_sample_json(tmp_path: Path) -> None:
    dest = tmp_path / "mdatp" / "mdatp_onboard.json"
    result = subprocess.run(
        [sys.executable, str(SAMPLE_PY), "--dest", str(dest)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert dest.read_text() == SAMPLE_JSON.read_text().rstrip("\n")
    assert read_onboarding_package("mdatp_onboard.json", dest.read_bytes()).org_id == ORG


def test_the_file_name_is_reduced_to_its_base_name() -> None:
    assert clean_filename("C:\\fakepath\\MicrosoftDefenderATPOnboardingLinuxServer.py") == (
        "MicrosoftDefenderATPOnboardingLinuxServer.py"
    )
    assert clean_filename("../../etc/mdatp_onboard.json") == "mdatp_onboard.json"
    assert clean_filename("a\nb.py") == "ab.py"


@pytest.mark.parametrize(
    ("filename", "content", "words"),
    [
        ("WindowsDefenderATPOnboardingPackage.zip", b"PK\x03\x04rest", "unzip it"),
        ("notes.txt", b"orgId d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21", "Unsupported file type (.txt)"),
        ("MicrosoftDefenderATPOnboardingMacOs.sh", b"#!/bin/sh", "another platform"),
        ("WindowsDefenderATPOnboardingScript.cmd", b"@echo off", "another platform"),
        ("MicrosoftDefenderATPOffboardingLinuxServer_valid_until_2027-01-01.py", b"x", "offboarding"),
        ("mdatp_onboard.json", b'{"offboardingInfo": "{}"}', "offboarding"),
        ("mdatp_onboard.json", b"", "empty"),
        ("mdatp_onboard.json", b"\xff\xfe{}", "not UTF-8"),
        ("mdatp_onboard.json", b"{not json", "not valid JSON (line 1"),
        ("mdatp_onboard.json", b'{"orgId": "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"}', 'no "onboardingInfo"'),
        ("mdatp_onboard.json", b'{"onboardingInfo": "{\\"body\\": \\"{}\\"}"}', "No organization id"),
        ("onboard.py", b"print('hello')\n", "No organization id"),
        ("onboard.py", b"x = 1\nwith open('/etc/opt/microsoft/mdatp/mdatp_offboard.json') as f: pass", "offboarding"),
        ("", b"{}", "no file name"),
    ],
)
def test_anything_else_is_refused_with_a_reason(filename: str, content: bytes, words: str) -> None:
    assert words in refusal(filename, content)


def test_a_package_naming_two_organizations_is_refused() -> None:
    body = json.dumps({"orgId": ORG, "nested": json.dumps({"orgId": OTHER_ORG})})
    text = json.dumps({"onboardingInfo": json.dumps({"body": body})})
    assert "more than one organization" in refusal("mdatp_onboard.json", text.encode())


def test_a_file_over_one_megabyte_is_refused() -> None:
    assert "at most 1 MB" in refusal("mdatp_onboard.json", b" " * (MAX_PACKAGE_BYTES + 1))


def test_refusals_and_the_package_never_quote_the_content() -> None:
    marker = "MARKER-never-echo-7c1e"
    for filename, content in (
        ("mdatp_onboard.json", ('{"onboardingInfo": "' + marker + '"}').encode()),
        ("onboard.py", f"# {marker}\n".encode()),
        ("mdatp_onboard.json", ("{" + marker).encode()),
    ):
        assert marker not in refusal(filename, content)
    package = read_onboarding_package("onboard.py", portal_script(marker=marker).encode())
    assert marker in package.text
    assert marker not in repr(package) and marker not in str(package)
