"""The profiles API: token auth, roles, error shapes by JSON path, the onboarding upload."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from deployments import managed_settings as ms
from deployments.models import Profile
from deployments.services.profiles import profile_create
from hosts import crypto
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.problems import errors_by_path

SAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "samples"
ORG = "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"
MARKER = "MARKER-api-onboarding-51a7"
TEST_FERNET_KEY = "bGV0LXRoZS10ZXN0cy1oYXZlLWEta2V5LTMyYnl0ZXM="
LIST = "/api/v1/profiles/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keys_and_fast_hashing(settings: Any) -> Iterator[None]:
    settings.MDEFLEET_FERNET_KEYS = [TEST_FERNET_KEY]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    crypto.reset_keys()
    yield
    crypto.reset_keys()


@pytest.fixture
def profile(db: Any) -> Profile:
    return profile_create(actor=SYSTEM, data={"name": "web servers"})


@pytest.fixture
def admin(api_client_for: Any) -> APIClient:
    return api_client_for("admin")


def db_state() -> tuple[list[dict[str, Any]], int]:
    return list(Profile.objects.order_by("pk").values()), AuditEvent.objects.count()


def marked_package() -> bytes:
    text = (SAMPLES / "MicrosoftDefenderATPOnboardingLinuxServer.py").read_text()
    return text.replace("import getopt", f"# {MARKER}\nimport getopt", 1).encode()


# --- authentication and roles --------------------------------------------------------------------


def test_without_a_token_every_call_is_unauthorized(profile: Profile) -> None:
    anonymous = APIClient()
    assert anonymous.get(LIST).status_code == 401
    assert anonymous.post(LIST, {"name": "x"}, format="json").status_code == 401
    assert anonymous.patch(f"{LIST}{profile.pk}/", {"name": "x"}, format="json").status_code == 401


def test_a_viewer_reads_but_may_not_write(api_client_for: Any, profile: Profile) -> None:
    viewer = api_client_for("viewer")
    before = db_state()
    assert viewer.get(LIST).status_code == 200
    assert viewer.get(f"{LIST}{profile.pk}/").status_code == 200
    assert viewer.get(f"{LIST}{profile.pk}/recommendations/").status_code == 200
    assert viewer.post(LIST, {"name": "x"}, format="json").status_code == 403
    assert viewer.patch(f"{LIST}{profile.pk}/", {"channel": "insiders-fast"}, format="json").status_code == 403
    assert viewer.post(f"{LIST}{profile.pk}/recommendations/block-pua/adopt/").status_code == 403
    assert viewer.post(f"{LIST}{profile.pk}/onboarding/", {}, format="json").status_code == 403
    assert db_state() == before


@pytest.mark.parametrize("role", ["operator", "approver"])
def test_operators_and_approvers_may_not_write_profiles(api_client_for: Any, role: str) -> None:
    assert api_client_for(role).post(LIST, {"name": "x"}, format="json").status_code == 403


def test_a_user_without_a_role_may_not_read(api_client_for: Any) -> None:
    assert api_client_for("none").get(LIST).status_code == 403


def test_put_is_not_offered(admin: APIClient, profile: Profile) -> None:
    assert admin.put(f"{LIST}{profile.pk}/", {"name": "x"}, format="json").status_code == 405


# --- creating and changing -----------------------------------------------------------------------


def test_an_admin_creates_a_profile_from_the_baseline(admin: APIClient, users: dict) -> None:
    response = admin.post(LIST, {"name": "db servers", "channel": "insiders-slow"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["managed_settings"] == ms.RECOMMENDED_BASELINE
    assert body["hardening"] == {"adopted": len(ms.RULES), "total": len(ms.RULES)}
    assert body["onboarding"] is None
    assert body["created_by"] == "admin-user"
    assert "onboarding_encrypted" not in body
    event = AuditEvent.objects.get(action="profile.create")
    assert event.actor == users["admin"] and event.actor_label == "admin-user (token)"


def test_bad_managed_settings_answer_400_with_json_paths_and_save_nothing(admin: APIClient, profile: Profile) -> None:
    settings = ms.baseline()
    settings["antivirusEngine"]["enforcementLevel"] = "realtime"
    settings["antivirusEngine"]["exclusions"][1] = {"$type": "excludedPath", "path": "sys"}
    before = db_state()
    created = admin.post(LIST, {"name": "new", "managed_settings": settings}, format="json")
    changed = admin.patch(f"{LIST}{profile.pk}/", {"managed_settings": settings}, format="json")
    for response in (created, changed):
        assert response.status_code == 400
        assert errors_by_path(response.json()) == {
            "managed_settings.antivirusEngine.enforcementLevel": [
                '"realtime" is not allowed; use one of: real_time, on_demand, passive'
            ],
            "managed_settings.antivirusEngine.exclusions[1].path": [
                '"sys" must be an absolute path (starting with /) or start with a wildcard *'
            ],
        }
    assert db_state() == before


def test_settings_sent_as_text_with_a_syntax_error_answer_the_line(admin: APIClient, profile: Profile) -> None:
    response = admin.patch(
        f"{LIST}{profile.pk}/", {"managed_settings": '{"cloudService": {"enabled": true "x": 1}}'}, format="json"
    )
    assert response.status_code == 400
    (message,) = errors_by_path(response.json())["managed_settings"]
    assert "Expecting ',' delimiter at line 1" in message


def test_field_errors_are_keyed_by_field(admin: APIClient, profile: Profile) -> None:
    before = db_state()
    response = admin.patch(
        f"{LIST}{profile.pk}/",
        {"proxy": "http://proxy.example.com/proxy.pac", "scan_cron": "* * *", "agent_version": "1.2"},
        format="json",
    )
    assert response.status_code == 400
    body = errors_by_path(response.json())
    assert set(body) == {"proxy", "scan_cron", "agent_version"}
    assert "Expected 5 fields" in body["scan_cron"][0]
    assert db_state() == before


def test_carried_exclusion_errors_are_keyed_by_row(admin: APIClient, profile: Profile) -> None:
    rows = [{"kind": "path", "value": "/ok"}, {"kind": "path", "value": "relative"}]
    response = admin.patch(f"{LIST}{profile.pk}/", {"carried_exclusions": rows}, format="json")
    assert response.status_code == 400
    assert list(errors_by_path(response.json())) == ["carried_exclusions[1].value"]


def test_an_unknown_channel_and_an_unknown_field_are_refused(admin: APIClient, profile: Profile) -> None:
    assert "channel" in errors_by_path(admin.patch(f"{LIST}{profile.pk}/", {"channel": "beta"}, format="json").json())
    response = admin.patch(f"{LIST}{profile.pk}/", {"onboarding_encrypted": "x"}, format="json")
    assert response.status_code == 400
    assert errors_by_path(response.json()) == {"onboarding_encrypted": ["Unknown field."]}


def test_a_patch_changes_only_the_fields_sent_and_read_only_fields_are_ignored(
    admin: APIClient, profile: Profile
) -> None:
    current = admin.get(f"{LIST}{profile.pk}/").json()
    current.update({"channel": "insiders-fast", "org_id": "ignored", "warnings": []})
    response = admin.patch(f"{LIST}{profile.pk}/", current, format="json")
    assert response.status_code == 200, response.json()
    profile.refresh_from_db()
    assert (profile.channel, profile.org_id, profile.managed_settings) == ("insiders-fast", "", ms.RECOMMENDED_BASELINE)
    event = AuditEvent.objects.get(action="profile.update")
    assert event.details["changed"] == ["channel"]


def test_warnings_list_the_traps(admin: APIClient, profile: Profile) -> None:
    settings = ms.baseline()
    settings["antivirusEngine"]["allowedThreats"] = ["EICAR-Test-File (not a virus)"]
    body = admin.patch(f"{LIST}{profile.pk}/", {"managed_settings": settings}, format="json").json()
    assert any("EICAR" in warning for warning in body["warnings"])


# --- onboarding ----------------------------------------------------------------------------------


def test_a_multipart_package_is_stored_and_its_content_never_returned(admin: APIClient, profile: Profile) -> None:
    upload = SimpleUploadedFile("MicrosoftDefenderATPOnboardingLinuxServer.py", marked_package())
    response = admin.post(f"{LIST}{profile.pk}/onboarding/", {"file": upload}, format="multipart")
    assert response.status_code == 200
    body = response.json()
    assert body["org_id"] == ORG
    assert body["onboarding"]["filename"] == "MicrosoftDefenderATPOnboardingLinuxServer.py"
    assert body["onboarding"]["kind"] == "py"
    assert len(body["onboarding"]["sha256"]) == 64
    responses = [response, admin.get(LIST), admin.get(f"{LIST}{profile.pk}/"), admin.get(f"{LIST}{profile.pk}/files/")]
    for each in responses:
        assert MARKER not in each.content.decode()


def test_a_base64_package_is_accepted(admin: APIClient, profile: Profile) -> None:
    content = base64.b64encode((SAMPLES / "mdatp_onboard.json").read_bytes()).decode()
    response = admin.post(
        f"{LIST}{profile.pk}/onboarding/", {"filename": "mdatp_onboard.json", "content_base64": content}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["onboarding"]["kind"] == "json"


@pytest.mark.parametrize(
    ("payload", "key", "words"),
    [
        ({"filename": "mdatp_onboard.json", "content_base64": "%%%"}, "content_base64", "base64"),
        ({"filename": "mdatp_onboard.json"}, "onboarding", "multipart"),
        ({"filename": "a.json", "content_base64": base64.b64encode(b"{}").decode()}, "onboarding", "onboardingInfo"),
        ({"filename": "a.exe", "content_base64": base64.b64encode(b"MZ").decode()}, "onboarding", "Unsupported"),
    ],
)
def test_a_bad_package_answers_400_and_saves_nothing(
    admin: APIClient, profile: Profile, payload: dict, key: str, words: str
) -> None:
    before = db_state()
    response = admin.post(f"{LIST}{profile.pk}/onboarding/", payload, format="json")
    assert response.status_code == 400
    assert words in " ".join(errors_by_path(response.json())[key])
    assert db_state() == before


# --- recommendations, files, list ----------------------------------------------------------------


def test_recommendations_are_listed_and_adopted(admin: APIClient, profile: Profile) -> None:
    profile.managed_settings["cloudService"]["automaticSampleSubmissionConsent"] = "none"
    profile.save()
    rows = {row["id"]: row for row in admin.get(f"{LIST}{profile.pk}/recommendations/").json()}
    assert rows["sample-consent-safe"]["adopted"] is False
    assert rows["sample-consent-safe"]["current"] == "none"
    response = admin.post(f"{LIST}{profile.pk}/recommendations/sample-consent-safe/adopt/")
    assert response.status_code == 200
    assert response.json()["managed_settings"]["cloudService"]["automaticSampleSubmissionConsent"] == "safe"
    assert AuditEvent.objects.filter(action="profile.adopt_recommendation").count() == 1
    assert admin.post(f"{LIST}{profile.pk}/recommendations/nope/adopt/").status_code == 404


def test_the_files_are_the_exact_texts_the_steps_deliver(admin: APIClient, profile: Profile) -> None:
    files = admin.get(f"{LIST}{profile.pk}/files/").json()
    assert files["managed_json"]["path"] == "/etc/opt/microsoft/mdatp/managed/mdatp_managed.json"
    assert json.loads(files["managed_json"]["content"]) == ms.RECOMMENDED_BASELINE
    assert files["cron"]["path"] == "/etc/cron.d/mdatp"
    assert "0 2 * * sat root /usr/bin/mdatp scan quick" in files["cron"]["content"]


def test_the_list_filters_like_the_page(admin: APIClient) -> None:
    profile_create(actor=SYSTEM, data={"name": "web", "channel": "prod"})
    profile_create(actor=SYSTEM, data={"name": "db", "channel": "insiders-fast"})
    names = [row["name"] for row in admin.get(LIST, {"channel": "insiders-fast"}).json()["results"]]
    assert names == ["db"]
    assert [row["name"] for row in admin.get(LIST, {"q": "we"}).json()["results"]] == ["web"]


def test_the_list_costs_the_same_queries_for_one_or_many_profiles(admin: APIClient) -> None:
    profile_create(actor=SYSTEM, data={"name": "p0"})
    admin.get(LIST)
    with CaptureQueriesContext(connection) as one:
        admin.get(LIST)
    for index in range(1, 8):
        profile_create(actor=SYSTEM, data={"name": f"p{index}"})
    with CaptureQueriesContext(connection) as many:
        assert len(admin.get(LIST).json()["results"]) == 8
    assert len(many) == len(one)


def test_the_openapi_schema_describes_the_profile_endpoints(admin: APIClient) -> None:
    response = admin.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert "/api/v1/profiles/{id}/onboarding/" in schema["paths"]
    assert "/api/v1/profiles/{id}/recommendations/{recommendation_id}/adopt/" in schema["paths"]
