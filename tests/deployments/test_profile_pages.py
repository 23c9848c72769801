"""Profile pages: who may see and change what, refusals that save nothing, the package kept secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deployments import managed_settings as ms
from deployments.models import Profile
from deployments.onboarding import onboarding_text
from deployments.services.profiles import profile_create
from hosts import crypto
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent

SAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "samples"
ORG = "d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21"
MARKER = "MARKER-secret-onboarding-0d5b9e"
HTMX = {"HTTP_HX_REQUEST": "true"}
TEST_FERNET_KEY = "bGV0LXRoZS10ZXN0cy1oYXZlLWEta2V5LTMyYnl0ZXM="

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keys_and_fast_hashing(settings: Any) -> Iterator[None]:
    """A Fernet key for the package (tests run with DEBUG off) and fast password hashing for personas."""
    settings.MDEFLEET_FERNET_KEYS = [TEST_FERNET_KEY]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    crypto.reset_keys()
    yield
    crypto.reset_keys()


@pytest.fixture
def profile(db: Any) -> Profile:
    return profile_create(actor=SYSTEM, data={"name": "web servers", "description": "RHEL 9 web tier"})


def url(name: str, profile: Profile | None = None, *args: Any) -> str:
    return reverse(f"deployments:{name}", args=([profile.pk] if profile else []) + list(args))


def db_state() -> tuple[list[dict[str, Any]], int]:
    """Every profile column and the number of audit events: equal before and after = nothing saved."""
    return list(Profile.objects.order_by("pk").values()), AuditEvent.objects.count()


def marked_package() -> bytes:
    """The sample script with a marker that must never leave the database."""
    text = (SAMPLES / "MicrosoftDefenderATPOnboardingLinuxServer.py").read_text()
    return text.replace("import getopt", f"# {MARKER}\nimport getopt", 1).encode()


def upload(
    client: Any, profile: Profile, content: bytes, name: str = "MicrosoftDefenderATPOnboardingLinuxServer.py"
) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(url("profile-onboarding", profile), {"package": SimpleUploadedFile(name, content)})


# --- roles ---------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client: Any, profile: Profile) -> None:
    for target in (url("profile-list"), url("profile-detail", profile), url("profile-new")):
        response = client.get(target)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_a_user_without_a_role_may_not_read_profiles(client: Any, users: dict, profile: Profile) -> None:
    client.force_login(users["none"])
    assert client.get(url("profile-list")).status_code == 403
    assert client.get(url("profile-detail", profile)).status_code == 403


def test_a_viewer_reads_the_list_and_the_profile_without_any_edit_control(viewer_client: Any, profile: Profile) -> None:
    listing = viewer_client.get(url("profile-list"))
    assert listing.status_code == 200
    assert "web servers" in listing.content.decode()
    assert "New profile" not in listing.content.decode()
    page = viewer_client.get(url("profile-detail", profile))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Read-only" in html
    for control in ("Save settings", "Save document", "Adopt", "Upload package", "Save exclusions", "Save schedules"):
        assert control not in html


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_only_admins_may_change_a_profile(client: Any, users: dict, profile: Profile, role: str) -> None:
    client.force_login(users[role])
    before = db_state()
    posts = [
        (url("profile-new"), {"name": "x", "channel": "prod"}),
        (url("profile-general", profile), {"name": "x", "channel": "prod"}),
        (url("profile-settings-raw", profile), {"document": "{}"}),
        (url("profile-settings-form", profile), {"enforcement_level": "passive"}),
        (url("profile-adopt", profile, "real-time-protection"), {}),
        (url("profile-exclusions", profile), {}),
        (url("profile-schedules", profile), {"scan_cron": "", "scan_type": "quick", "update_cron": ""}),
        (url("profile-onboarding", profile), {}),
    ]
    for target, data in posts:
        assert client.post(target, data).status_code == 403, target
    assert client.get(url("profile-new")).status_code == 403
    assert db_state() == before


# --- creating and the general form ---------------------------------------------------------------


def test_an_admin_creates_a_profile_that_starts_from_the_recommended_baseline(admin_client_: Any, users: dict) -> None:
    response = admin_client_.post(
        url("profile-new"), {"name": "db servers", "channel": "insiders-slow", "agent_version": "", "proxy": ""}
    )
    profile = Profile.objects.get(name="db servers")
    assert response.status_code == 302
    assert response["Location"] == url("profile-detail", profile)
    assert profile.managed_settings == ms.RECOMMENDED_BASELINE
    assert (profile.scan_cron, profile.update_cron, profile.created_by) == ("0 2 * * sat", "0 6 1 * *", users["admin"])
    event = AuditEvent.objects.get(action="profile.create")
    assert event.actor == users["admin"] and event.details["after"]["channel"] == "insiders-slow"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("agent_version", "latest", "101.25092.0003"),
        ("agent_version", "101.2509.3", "101.25092.0003"),
        ("proxy", "http://proxy.example.com:8080/proxy.pac", "PAC"),
        ("proxy", "http://wpad.example.com:80", "WPAD"),
        ("proxy", "http://bob:pw@proxy.example.com:3128", "authenticated"),
        ("proxy", "proxy.example.com:3128", "http://host:port"),
        ("name", "WEB SERVERS", "already exists"),
    ],
)
def test_a_bad_general_field_is_refused_and_nothing_is_saved(
    admin_client_: Any, profile: Profile, field: str, value: str, words: str
) -> None:
    other = profile_create(actor=SYSTEM, data={"name": "db servers"})
    before = db_state()
    data = {"name": "brand new", "channel": "prod", "agent_version": "", "proxy": "", field: value}
    created = admin_client_.post(url("profile-new"), data)
    assert created.status_code == 400
    assert words.lower() in created.content.decode().lower()
    data["name"] = value if field == "name" else "db servers"
    changed = admin_client_.post(url("profile-general", other), data)
    assert changed.status_code == 400
    assert words.lower() in changed.content.decode().lower()
    assert db_state() == before
    # A refused proxy password is not written back into the page.
    assert ":pw@" not in created.content.decode() + changed.content.decode()


def test_saving_the_general_form_audits_before_and_after(admin_client_: Any, profile: Profile) -> None:
    data = {"name": "web servers", "channel": "insiders-fast", "agent_version": "101.25092.0003", "proxy": ""}
    response = admin_client_.post(url("profile-general", profile), data)
    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.channel, profile.agent_version) == ("insiders-fast", "101.25092.0003")
    event = AuditEvent.objects.get(action="profile.update")
    assert event.details["changed"] == ["description", "channel", "agent_version"]
    assert event.details["before"]["channel"] == "prod" and event.details["after"]["channel"] == "insiders-fast"


def test_the_general_form_over_htmx_answers_its_fragment_and_the_dependents(
    admin_client_: Any, profile: Profile
) -> None:
    data = {
        "name": "web servers",
        "channel": "prod",
        "agent_version": "101.25092.0003",
        "proxy": "http://p.example:3128",
    }
    response = admin_client_.post(url("profile-general", profile), data, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<section id="profile-general"')
    assert 'id="profile-warnings" hx-swap-oob="true"' in html
    assert 'id="profile-preview" class="panel" hx-swap-oob="true"' in html
    assert "pinned to 101.25092.0003" in html
    assert "http://p.example:3128" in html


# --- managed settings ----------------------------------------------------------------------------


def test_a_raw_document_with_an_undocumented_value_is_refused_with_its_path_and_nothing_is_saved(
    admin_client_: Any, profile: Profile
) -> None:
    document = ms.baseline()
    document["antivirusEngine"]["enforcementLevel"] = "realtime"
    document["antivirusEngine"]["exclusions"].append({"$type": "excludedDir", "path": "/srv"})
    before = db_state()
    response = admin_client_.post(url("profile-settings-raw", profile), {"document": json.dumps(document)})
    html = response.content.decode()
    assert response.status_code == 400
    assert db_state() == before
    assert "Refused: nothing was saved." in html
    assert "antivirusEngine.enforcementLevel" in html and "real_time, on_demand, passive" in html
    assert "antivirusEngine.exclusions[3].$type" in html
    # The error also sits next to the form field it belongs to, and the bad text stays in the editor.
    assert response.context["settings_field_errors"]["enforcement_level"] == [
        'antivirusEngine.enforcementLevel: "realtime" is not allowed; use one of: real_time, on_demand, passive'
    ]
    assert "excludedDir" in response.context["json_form"]["document"].value()


def test_the_seeds_sample_with_its_missing_comma_is_refused_with_a_clear_message(
    admin_client_: Any, profile: Profile
) -> None:
    from tests.deployments.test_managed_settings import SEED_SAMPLE

    before = db_state()
    response = admin_client_.post(url("profile-settings-raw", profile), {"document": SEED_SAMPLE})
    assert response.status_code == 400
    assert "Expecting &#x27;,&#x27; delimiter" in response.content.decode()
    assert db_state() == before


def test_an_unknown_key_over_htmx_is_refused_in_the_fragment_and_nothing_is_saved(
    admin_client_: Any, profile: Profile
) -> None:
    before = db_state()
    response = admin_client_.post(
        url("profile-settings-raw", profile), {"document": '{"antivirusEngine": {"realTime": true}}'}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<section id="profile-settings"')
    assert "antivirusEngine.realTime" in html and "unknown key" in html
    assert "hx-swap-oob" not in html
    assert db_state() == before


def test_a_valid_raw_document_is_saved_and_audited(admin_client_: Any, profile: Profile) -> None:
    document = ms.baseline()
    document["antivirusEngine"]["maximumOnDemandScanThreads"] = 4
    response = admin_client_.post(url("profile-settings-raw", profile), {"document": json.dumps(document)})
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.managed_settings["antivirusEngine"]["maximumOnDemandScanThreads"] == 4
    event = AuditEvent.objects.get(action="profile.update")
    assert event.details["changed"] == ["managed_settings"]
    assert event.details["before"]["managed_settings"]["antivirusEngine"]["maximumOnDemandScanThreads"] == 2


def test_the_settings_form_rewrites_its_keys_and_keeps_the_others(admin_client_: Any, profile: Profile) -> None:
    profile.managed_settings["edr"] = {"groupIds": "web"}
    profile.save()
    data = {
        "enforcement_level": "passive",
        "pua_action": "audit",
        "archive_bomb_action": "",
        "disallowed_threat_actions": ["restore"],
        "cloud_enabled": "false",
        "maximum_on_demand_scan_threads": "3",
        "exclusions_merge_policy": "admin_only",
    }
    response = admin_client_.post(url("profile-settings-form", profile), data)
    assert response.status_code == 302
    profile.refresh_from_db()
    engine = profile.managed_settings["antivirusEngine"]
    assert engine["enforcementLevel"] == "passive"
    assert engine["threatTypeSettings"] == [{"key": "potentially_unwanted_application", "value": "audit"}]
    assert engine["disallowedThreatActions"] == ["restore"]
    assert engine["maximumOnDemandScanThreads"] == 3
    assert "threatTypeSettingsMergePolicy" not in engine
    assert engine["exclusions"] == ms.RECOMMENDED_BASELINE["antivirusEngine"]["exclusions"]
    assert profile.managed_settings["cloudService"]["enabled"] is False
    assert profile.managed_settings["edr"] == {"groupIds": "web"}
    page = admin_client_.get(url("profile-detail", profile)).content.decode()
    assert "enforcementLevel is passive" in page
    assert "cloudService.enabled is false" in page


def test_a_settings_form_value_out_of_range_is_refused_next_to_its_field(admin_client_: Any, profile: Profile) -> None:
    before = db_state()
    response = admin_client_.post(url("profile-settings-form", profile), {"maximum_on_demand_scan_threads": "100"})
    assert response.status_code == 400
    assert response.context["settings_form"].errors["maximum_on_demand_scan_threads"]
    assert db_state() == before


def test_checking_a_document_lists_its_traps_and_saves_nothing(admin_client_: Any, profile: Profile) -> None:
    document = ms.baseline()
    document["antivirusEngine"]["allowedThreats"] = ["EICAR-Test-File (not a virus)"]
    before = db_state()
    response = admin_client_.post(url("profile-settings-check", profile), {"document": json.dumps(document)}, **HTMX)
    html = response.content.decode()
    assert "Valid: every key and value is documented" in html
    assert "EICAR" in html and "detection check will fail" in html
    assert db_state() == before


# --- recommendations -----------------------------------------------------------------------------


def test_adopting_a_recommendation_changes_the_settings_and_is_audited(admin_client_: Any, profile: Profile) -> None:
    profile.managed_settings["antivirusEngine"]["exclusionsMergePolicy"] = "merge"
    profile.save()
    response = admin_client_.post(url("profile-adopt", profile, "exclusions-admin-only"))
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.managed_settings["antivirusEngine"]["exclusionsMergePolicy"] == "admin_only"
    event = AuditEvent.objects.get(action="profile.adopt_recommendation")
    assert event.details == {
        "recommendation": "exclusions-admin-only",
        "path": "antivirusEngine.exclusionsMergePolicy",
        "before": "merge",
        "after": "admin_only",
    }


def test_adopting_over_htmx_swaps_the_table_and_refreshes_the_editor_warnings_and_preview(
    admin_client_: Any, profile: Profile
) -> None:
    profile.managed_settings["antivirusEngine"].pop("enforcementLevel")
    profile.save()
    before = admin_client_.get(url("profile-detail", profile)).content.decode()
    assert "left at its default, passive" in before
    response = admin_client_.post(url("profile-adopt", profile, "real-time-protection"), **HTMX)
    html = response.content.decode()
    assert html.startswith('<section id="profile-recommendations"')
    assert "Adopted: Real-time protection." in html
    assert 'id="profile-settings" class="panel" hx-swap-oob="true"' in html
    assert 'id="profile-warnings" hx-swap-oob="true"' in html
    assert "left at its default, passive" not in html
    assert "&quot;enforcementLevel&quot;: &quot;real_time&quot;" in html


def test_an_unknown_recommendation_is_not_found(admin_client_: Any, profile: Profile) -> None:
    before = db_state()
    assert admin_client_.post(url("profile-adopt", profile, "make-it-safe")).status_code == 404
    assert db_state() == before


def test_the_recommendations_table_shows_the_seeds_reasons(viewer_client: Any, profile: Profile) -> None:
    html = viewer_client.get(url("profile-detail", profile)).content.decode()
    assert "Prevents the local admin from being able to restore a quarantined item" in html
    assert html.count('badge s-ok">adopted') == len(ms.RULES)


# --- onboarding package --------------------------------------------------------------------------


def test_the_onboarding_package_is_stored_encrypted_and_never_shown(
    admin_client_: Any, users: dict, profile: Profile, api_client_for: Any
) -> None:
    response = upload(admin_client_, profile, marked_package())
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.org_id == ORG and profile.onboarding_kind == "py"
    assert MARKER not in profile.onboarding_encrypted
    assert MARKER in onboarding_text(profile)

    shown = [
        admin_client_.get(url("profile-detail", profile)),
        admin_client_.post(url("profile-adopt", profile, "block-pua"), **HTMX),
        upload(admin_client_, profile, marked_package()),
        upload(admin_client_, profile, b"garbage " + MARKER.encode(), "x.py"),
        admin_client_.get(url("profile-list")),
        admin_client_.get(url("profile-managed-json", profile)),
        admin_client_.get(url("profile-cron-file", profile)),
    ]
    viewer = Client()
    viewer.force_login(users["viewer"])
    shown.append(viewer.get(url("profile-detail", profile)))
    api = api_client_for("admin")
    for path in ("", f"{profile.pk}/", f"{profile.pk}/files/", f"{profile.pk}/recommendations/"):
        shown.append(api.get(f"/api/v1/profiles/{path}"))
    for response in shown:
        body = response.content.decode()
        assert MARKER not in body
        assert profile.onboarding_encrypted not in body
    detail = shown[0].content.decode()
    assert ORG in detail
    assert profile.onboarding_sha256[:16] in detail
    assert "MicrosoftDefenderATPOnboardingLinuxServer.py" in detail
    for event in AuditEvent.objects.all():
        assert MARKER not in json.dumps(event.details)
    event = AuditEvent.objects.filter(action="profile.onboarding").first()
    assert event is not None
    assert set(event.details) == {"filename", "kind", "sha256", "org_id", "previous", "org_id_changed"}


def test_a_bad_onboarding_package_is_refused_and_nothing_is_saved(admin_client_: Any, profile: Profile) -> None:
    before = db_state()
    response = upload(admin_client_, profile, b"print('not a package')\n", "onboard.py")
    assert response.status_code == 400
    assert "No organization id" in response.content.decode()
    zipped = upload(admin_client_, profile, b"PK\x03\x04...", "WindowsDefenderATPOnboardingPackage.zip")
    assert "unzip it" in zipped.content.decode()
    assert db_state() == before


def test_the_json_package_is_accepted_over_htmx(admin_client_: Any, profile: Profile) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = (SAMPLES / "mdatp_onboard.json").read_bytes()
    response = admin_client_.post(
        url("profile-onboarding", profile), {"package": SimpleUploadedFile("mdatp_onboard.json", content)}, **HTMX
    )
    assert response.status_code == 200
    assert f"Package stored; organization {ORG}." in response.content.decode()
    profile.refresh_from_db()
    assert profile.onboarding_kind == "json"


# --- exclusions and schedules --------------------------------------------------------------------


def formset(rows: list[tuple[str, str]], deleted: tuple[int, ...] = ()) -> dict[str, str]:
    data = {"exclusions-TOTAL_FORMS": str(len(rows)), "exclusions-INITIAL_FORMS": "0"}
    for index, (kind, value) in enumerate(rows):
        data[f"exclusions-{index}-kind"] = kind
        data[f"exclusions-{index}-value"] = value
        if index in deleted:
            data[f"exclusions-{index}-DELETE"] = "on"
    return data


def test_carried_exclusions_are_saved_and_merged_into_the_delivered_file(admin_client_: Any, profile: Profile) -> None:
    rows = [("path", "/var/lib/pgsql/"), ("extension", "mdf"), ("process", "java"), ("path", ""), ("path", "/tmp/x")]
    response = admin_client_.post(url("profile-exclusions", profile), formset(rows, deleted=(4,)))
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.carried_exclusions == [
        {"kind": "path", "value": "/var/lib/pgsql/"},
        {"kind": "extension", "value": "mdf"},
        {"kind": "process", "value": "java"},
    ]
    delivered = json.loads(admin_client_.get(url("profile-managed-json", profile)).content)
    assert {"$type": "excludedFileName", "name": "java"} in delivered["antivirusEngine"]["exclusions"]


def test_a_relative_exclusion_path_is_refused_on_its_row_and_nothing_is_saved(
    admin_client_: Any, profile: Profile
) -> None:
    before = db_state()
    response = admin_client_.post(
        url("profile-exclusions", profile), formset([("path", ""), ("path", "/ok"), ("path", "var/log")])
    )
    assert response.status_code == 400
    forms = response.context["exclusions_formset"].forms
    assert "absolute path" in " ".join(forms[2].errors["value"])
    assert not forms[1].errors
    assert db_state() == before


def test_schedules_are_saved_and_previewed(admin_client_: Any, profile: Profile) -> None:
    response = admin_client_.post(
        url("profile-schedules", profile), {"scan_cron": "30 1 * * sun", "scan_type": "full", "update_cron": "@monthly"}
    )
    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.scan_cron, profile.scan_type, profile.update_cron) == ("30 1 * * sun", "full", "@monthly")
    cron_file = admin_client_.get(url("profile-cron-file", profile)).content.decode()
    assert "30 1 * * sun root /usr/bin/mdatp scan full" in cron_file
    assert "@monthly root yum update mdatp -y" in cron_file


def test_a_bad_cron_entry_is_refused_and_nothing_is_saved(admin_client_: Any, profile: Profile) -> None:
    before = db_state()
    response = admin_client_.post(
        url("profile-schedules", profile), {"scan_cron": "0 25 * * sat", "scan_type": "quick", "update_cron": ""}
    )
    assert response.status_code == 400
    assert "Hour: 25 is out of range (0-23)." in response.content.decode()
    assert db_state() == before


def test_the_schedule_preview_warns_about_a_star_minute_without_saving(admin_client_: Any, profile: Profile) -> None:
    before = db_state()
    response = admin_client_.post(
        url("profile-schedules-preview", profile),
        {"scan_cron": "* 2 * * sat", "scan_type": "quick", "update_cron": "0 6 1 * *"},
        **HTMX,
    )
    html = response.content.decode()
    assert html.startswith('<div id="schedule-preview"')
    assert "runs every minute of that hour" in html
    assert "* 2 * * sat root /usr/bin/mdatp scan quick" in html
    assert "preview, not saved" in html
    assert db_state() == before


# --- list ----------------------------------------------------------------------------------------


def test_the_list_filters_by_text_and_channel(viewer_client: Any) -> None:
    profile_create(actor=SYSTEM, data={"name": "web", "channel": "prod"})
    profile_create(actor=SYSTEM, data={"name": "db", "channel": "insiders-fast", "description": "postgres"})
    html = viewer_client.get(url("profile-list"), {"q": "postgres"}).content.decode()
    assert ">db<" in html and ">web<" not in html
    html = viewer_client.get(url("profile-list"), {"channel": "prod"}).content.decode()
    assert ">web<" in html and ">db<" not in html
    fragment = viewer_client.get(
        url("profile-list"), {"q": "web"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="profile-table"
    )
    assert fragment.content.decode().startswith('<div id="profile-table"')


def test_the_list_page_costs_the_same_queries_for_one_or_many_profiles(viewer_client: Any) -> None:
    profile_create(actor=SYSTEM, data={"name": "p0"})
    viewer_client.get(url("profile-list"))
    with CaptureQueriesContext(connection) as one:
        viewer_client.get(url("profile-list"))
    for index in range(1, 8):
        profile_create(actor=SYSTEM, data={"name": f"p{index}"})
    with CaptureQueriesContext(connection) as many:
        viewer_client.get(url("profile-list"))
    assert len(many) == len(one)
