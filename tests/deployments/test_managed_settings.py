"""mdatp_managed.json: schema, traps, the recommended hardening, the delivered file."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace
from typing import Any

import pytest

from deployments import managed_settings as ms

# The seed's sample file, verbatim (the comma missing after automaticDefinitionUpdateEnabled is the seed's).
SEED_SAMPLE = """
    {
       "antivirusEngine":{
          "enforcementLevel":"real_time",
          "scanAfterDefinitionUpdate":true,
          "scanArchives":true,
          "maximumOnDemandScanThreads":2,
          "exclusionsMergePolicy":"merge",
          "exclusions":[
             {
                "$type":"excludedPath",
                "isDirectory":false,
                "path":"/var/log/system.log"
             },
             {
                "$type":"excludedPath",
                "isDirectory":true,
                "path":"/home"
             },
             {
                "$type":"excludedFileExtension",
                "extension":"pdf"
             },
             {
                "$type":"excludedFileName",
                "name":"cat"
             }
          ],
          "allowedThreats":[
             "<EXAMPLE DO NOT USE>EICAR-Test-File (not a virus)"
          ],
          "disallowedThreatActions":[
             "allow",
             "restore"
          ],
          "threatTypeSettingsMergePolicy":"merge",
          "threatTypeSettings":[
             {
                "key":"potentially_unwanted_application",
                "value":"block"
             },
             {
                "key":"archive_bomb",
                "value":"audit"
             }
          ]
       },
       "cloudService":{
          "enabled":true,
          "diagnosticLevel":"optional",
          "automaticSampleSubmissionConsent":"safe",
          "automaticDefinitionUpdateEnabled":true
          "proxy": "<EXAMPLE DO NOT USE> http://proxy.server:port/"
       }
    }
"""


def paths(errors: list[ms.SettingsError]) -> list[str]:
    return [error.path for error in errors]


def message_at(errors: list[ms.SettingsError], path: str) -> str:
    found = [error.message for error in errors if error.path == path]
    assert found, f"no error at {path}: {errors}"
    return found[0]


def with_engine(**keys: Any) -> dict[str, Any]:
    return {"antivirusEngine": {"enforcementLevel": "real_time", **keys}}


# --- the baseline --------------------------------------------------------------------------------


def test_the_recommended_baseline_is_valid_and_adopts_every_recommendation() -> None:
    assert ms.validate_managed_settings(ms.RECOMMENDED_BASELINE) == []
    assert all(rec.adopted for rec in ms.recommendations(ms.RECOMMENDED_BASELINE))
    assert ms.warnings(ms.RECOMMENDED_BASELINE) == []


def test_the_baseline_has_no_eicar_allowance_no_placeholders_and_no_proxy() -> None:
    engine = ms.RECOMMENDED_BASELINE["antivirusEngine"]
    assert "allowedThreats" not in engine
    assert "proxy" not in ms.RECOMMENDED_BASELINE["cloudService"]
    assert [item["path"] for item in engine["exclusions"]] == ["/proc", "/sys", "/dev"]
    assert engine["exclusionsMergePolicy"] == "admin_only"
    assert engine["threatTypeSettingsMergePolicy"] == "admin_only"
    assert engine["disallowedThreatActions"] == ["allow", "restore"]


def test_the_baseline_is_handed_out_as_a_copy() -> None:
    fresh = ms.baseline()
    fresh["antivirusEngine"]["enforcementLevel"] = "passive"
    assert ms.RECOMMENDED_BASELINE["antivirusEngine"]["enforcementLevel"] == "real_time"


# --- refusals with paths -------------------------------------------------------------------------


def test_an_unknown_key_is_refused_with_its_path_and_a_suggestion() -> None:
    errors = ms.validate_managed_settings({"antivirusEngine": {"enforcmentLevel": "real_time"}})
    assert paths(errors) == ["antivirusEngine.enforcmentLevel"]
    assert 'did you mean "enforcementLevel"' in errors[0].message


def test_an_unknown_section_is_refused() -> None:
    errors = ms.validate_managed_settings({"antivirus": {}})
    assert paths(errors) == ["antivirus"]
    assert "antivirusEngine" in errors[0].message


def test_the_correctly_spelt_fallback_key_is_refused_because_mdatp_reads_the_misspelt_one() -> None:
    errors = ms.validate_managed_settings(with_engine(offlineDefinitionUpdateFallbackToCloud=True))
    assert "offlineDefintionUpdateFallbackToCloud (sic)" in errors[0].message
    assert ms.validate_managed_settings(with_engine(offlineDefintionUpdateFallbackToCloud=True)) == []


def test_a_value_outside_the_documented_list_is_refused_naming_the_allowed_values() -> None:
    errors = ms.validate_managed_settings({"antivirusEngine": {"enforcementLevel": "realtime"}})
    assert paths(errors) == ["antivirusEngine.enforcementLevel"]
    assert errors[0].message == '"realtime" is not allowed; use one of: real_time, on_demand, passive'


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("cloudService", "diagnosticLevel", "full"),
        ("cloudService", "automaticSampleSubmissionConsent", "some"),
        ("cloudService", "cloudBlockLevel", "extreme"),
        ("networkProtection", "enforcementLevel", "on"),
        ("features", "moduleLoad", "on"),
        ("exclusionSettings", "mergePolicy", "admin"),
    ],
)
def test_every_section_refuses_undocumented_values(section: str, key: str, value: str) -> None:
    errors = ms.validate_managed_settings({section: {key: value}})
    assert paths(errors) == [f"{section}.{key}"]
    assert "use one of" in errors[0].message


def test_a_string_true_is_not_a_boolean() -> None:
    errors = ms.validate_managed_settings({"cloudService": {"enabled": "true"}})
    assert message_at(errors, "cloudService.enabled") == 'expected true or false, got a string "true"'


@pytest.mark.parametrize("value", [0, 65, "2", True, 2.5])
def test_scan_threads_must_be_a_whole_number_from_1_to_64(value: Any) -> None:
    errors = ms.validate_managed_settings(with_engine(maximumOnDemandScanThreads=value))
    assert "from 1 to 64" in message_at(errors, "antivirusEngine.maximumOnDemandScanThreads")


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("scanResultsRetentionDays", "90", ["0", "181", "ninety", 1.5, ""]),
        ("scanHistoryMaximumItems", "10000", ["4999", "15001", None]),
    ],
)
def test_scan_history_keys_are_numbers_written_as_strings_within_their_range(key: str, good: str, bad: list) -> None:
    assert ms.validate_managed_settings(with_engine(**{key: good})) == []
    for value in bad:
        assert paths(ms.validate_managed_settings(with_engine(**{key: value}))) == [f"antivirusEngine.{key}"]


def test_a_list_where_an_object_belongs_is_refused() -> None:
    errors = ms.validate_managed_settings({"cloudService": []})
    assert message_at(errors, "cloudService").startswith("expected an object")


def test_a_document_that_is_not_an_object_is_refused() -> None:
    data, errors = ms.parse_managed_json("[1, 2]")
    assert data is None
    assert "JSON object" in errors[0].message


def test_an_empty_document_is_refused_and_an_empty_object_is_fine() -> None:
    assert ms.parse_managed_json("   ")[1][0].message.startswith("the file is empty")
    assert ms.check_managed_json("{}") == ({}, [])


def test_duplicate_keys_are_refused() -> None:
    _, errors = ms.check_managed_json('{"cloudService": {"enabled": true, "enabled": false}}')
    assert 'the key "enabled" appears twice' in errors[0].message


# --- exclusions ----------------------------------------------------------------------------------


def test_exclusion_items_are_checked_by_their_type() -> None:
    data = with_engine(
        exclusions=[
            {"$type": "excludedPath", "isDirectory": True, "path": "/opt/app/"},
            {"$type": "excludedPath", "path": "*/cache"},
            {"$type": "excludedDirectory", "path": "/srv"},
            {"path": "/srv"},
            {"$type": "excludedPath", "isDirectory": "yes", "path": "srv/data"},
            {"$type": "excludedFileExtension", "extension": "tar/gz"},
            {"$type": "excludedFileName", "name": "bin/cat"},
            {"$type": "excludedFileName"},
            {"$type": "excludedFileName", "name": ""},
            {"$type": "excludedPath", "path": "/x", "scopes": ["epp"]},
        ]
    )
    errors = ms.validate_managed_settings(data)
    assert paths(errors) == [
        "antivirusEngine.exclusions[2].$type",
        "antivirusEngine.exclusions[3].$type",
        "antivirusEngine.exclusions[4].isDirectory",
        "antivirusEngine.exclusions[4].path",
        "antivirusEngine.exclusions[5].extension",
        "antivirusEngine.exclusions[6].name",
        "antivirusEngine.exclusions[7].name",
        "antivirusEngine.exclusions[8].name",
        "antivirusEngine.exclusions[9].scopes",
    ]
    assert message_at(errors, "antivirusEngine.exclusions[2].$type") == (
        '"excludedDirectory" is not allowed; use one of: excludedPath, excludedFileExtension, excludedFileName'
    )
    assert "absolute path" in message_at(errors, "antivirusEngine.exclusions[4].path")
    assert "only accepted in exclusionSettings" in message_at(errors, "antivirusEngine.exclusions[9].scopes")


def test_a_newline_in_an_exclusion_path_is_refused() -> None:
    errors = ms.validate_managed_settings(with_engine(exclusions=[{"$type": "excludedPath", "path": "/a\n/b"}]))
    assert "one line" in message_at(errors, "antivirusEngine.exclusions[0].path")


def test_the_same_exclusion_twice_is_refused() -> None:
    item = {"$type": "excludedFileExtension", "extension": "log"}
    errors = ms.validate_managed_settings(with_engine(exclusions=[item, dict(item)]))
    assert "listed twice" in message_at(errors, "antivirusEngine.exclusions[1]")


def test_global_scope_exclusions_follow_their_tighter_rules() -> None:
    data = {
        "exclusionSettings": {
            "mergePolicy": "admin_only",
            "exclusions": [
                {"$type": "excludedPath", "isDirectory": True, "path": "/var/lib/pgsql/", "scopes": ["global"]},
                {"$type": "excludedPath", "path": "/var/*/cache"},
                {"$type": "excludedFileExtension", "extension": "log", "scopes": ["epp", "global"]},
                {"$type": "excludedFileName", "name": "postgres", "scopes": ["global"]},
                {"$type": "excludedFileName", "name": "postgres", "scopes": ["epp"]},
                {"$type": "excludedPath", "path": "/x", "scopes": ["everywhere"]},
            ],
        }
    }
    errors = ms.validate_managed_settings(data)
    assert paths(errors) == [
        "exclusionSettings.exclusions[1].path",
        "exclusionSettings.exclusions[2].scopes",
        "exclusionSettings.exclusions[3].name",
        "exclusionSettings.exclusions[5].scopes[0]",
    ]
    assert "wildcards" in errors[0].message


def test_threat_type_settings_accept_each_documented_type_once() -> None:
    good = with_engine(threatTypeSettings=[{"key": "archive_bomb", "value": "off"}])
    assert ms.validate_managed_settings(good) == []
    errors = ms.validate_managed_settings(
        with_engine(
            threatTypeSettings=[
                {"key": "archive_bomb", "value": "audit"},
                {"key": "archive_bomb", "value": "block"},
                {"key": "ransomware", "value": "block"},
                {"key": "potentially_unwanted_application"},
            ]
        )
    )
    assert paths(errors) == [
        "antivirusEngine.threatTypeSettings[2].key",
        "antivirusEngine.threatTypeSettings[3].value",
    ]
    duplicate = ms.validate_managed_settings(
        with_engine(
            threatTypeSettings=[{"key": "archive_bomb", "value": "audit"}, {"key": "archive_bomb", "value": "block"}]
        )
    )
    assert paths(duplicate) == ["antivirusEngine.threatTypeSettings[1].key"]


def test_edr_tags_accept_only_the_group_key() -> None:
    assert ms.validate_managed_settings({"edr": {"groupIds": "g1", "tags": [{"key": "GROUP", "value": "web"}]}}) == []
    errors = ms.validate_managed_settings({"edr": {"tags": [{"key": "SITE", "value": "paris"}]}})
    assert message_at(errors, "edr.tags[0].key") == '"SITE" is not allowed; use one of: GROUP'


def test_sensor_configurations_and_features_are_known_keys() -> None:
    data = {
        "features": {
            "moduleLoad": "enabled",
            "supplementarySensorConfigurations": {
                "enableFilePermissionEvents": "enabled",
                "sendLowfiEvents": "disabled",
            },
            "ebpfSupplementaryEventProvider": "enabled",
        },
        "networkProtection": {"enforcementLevel": "audit", "disableIcmpInspection": False},
    }
    assert ms.validate_managed_settings(data) == []
    errors = ms.validate_managed_settings(
        {"features": {"supplementarySensorConfigurations": {"enableEverything": "x"}}}
    )
    assert paths(errors) == ["features.supplementarySensorConfigurations.enableEverything"]


def test_the_cloud_proxy_must_be_a_url_with_a_port_and_without_credentials() -> None:
    assert ms.validate_managed_settings({"cloudService": {"proxy": "http://proxy.example.com:3128/"}}) == []
    for bad in ("<EXAMPLE DO NOT USE> http://proxy.server:port/", "http://proxy.server:port/", "proxy:3128"):
        assert paths(ms.validate_managed_settings({"cloudService": {"proxy": bad}})) == ["cloudService.proxy"]
    errors = ms.validate_managed_settings({"cloudService": {"proxy": "http://bob:s3cret@proxy:3128"}})
    assert "credentials" in errors[0].message
    assert "s3cret" not in errors[0].message


# --- the seed's own samples ----------------------------------------------------------------------


def test_the_seeds_sample_is_refused_as_invalid_json_with_the_line_and_a_hint() -> None:
    data, errors = ms.check_managed_json(SEED_SAMPLE)
    assert data is None
    assert len(errors) == 1
    assert errors[0].path == ms.ROOT
    proxy_line = (
        SEED_SAMPLE.splitlines().index('          "proxy": "<EXAMPLE DO NOT USE> http://proxy.server:port/"') + 1
    )
    assert f"not valid JSON: Expecting ',' delimiter at line {proxy_line}, column 11" in errors[0].message
    assert "a comma is missing" in errors[0].message


def test_the_seeds_sample_with_its_comma_fixed_is_still_refused_for_its_placeholder_proxy() -> None:
    fixed = SEED_SAMPLE.replace(
        '"automaticDefinitionUpdateEnabled":true\n', '"automaticDefinitionUpdateEnabled":true,\n'
    )
    data, errors = ms.check_managed_json(fixed)
    assert paths(errors) == ["cloudService.proxy"]
    assert data is not None
    assert any("EICAR" in warning for warning in ms.warnings(data))


def test_the_seeds_recommendation_sample_is_refused_for_its_empty_placeholders() -> None:
    sample = ms.baseline()
    sample["antivirusEngine"]["exclusions"] += [
        {"$type": "excludedFileExtension", "extension": ""},
        {"$type": "excludedFileName", "name": ""},
    ]
    sample["antivirusEngine"]["allowedThreats"] = [""]
    errors = ms.validate_managed_settings(sample)
    assert paths(errors) == [
        "antivirusEngine.exclusions[3].extension",
        "antivirusEngine.exclusions[4].name",
        "antivirusEngine.allowedThreats[0]",
    ]


# --- traps ---------------------------------------------------------------------------------------


def test_allowing_the_eicar_test_file_is_a_warning() -> None:
    data = ms.baseline()
    data["antivirusEngine"]["allowedThreats"] = ["EICAR-Test-File (not a virus)"]
    (warning,) = ms.warnings(data)
    assert "EICAR" in warning and "detection check will fail" in warning


def test_an_unset_enforcement_level_warns_that_the_default_is_passive() -> None:
    (warning,) = ms.warnings({"cloudService": {"enabled": True}})
    assert "left at its default, passive" in warning
    assert "real-time protection is off" in warning


def test_passive_and_on_demand_enforcement_warn() -> None:
    assert "passive" in ms.warnings({"antivirusEngine": {"enforcementLevel": "passive"}})[0]
    assert "on_demand" in ms.warnings({"antivirusEngine": {"enforcementLevel": "on_demand"}})[0]


@pytest.mark.parametrize(
    ("proxy", "words"),
    [
        ("http://proxy.corp.example:8080/proxy.pac", "PAC"),
        ("http://wpad.corp.example/wpad.dat", "WPAD"),
        ("http://alice:hunter2@proxy.corp.example:8080", "authenticated"),
    ],
)
def test_unsupported_proxies_are_warned_about_without_showing_passwords(proxy: str, words: str) -> None:
    found = [warning for warning in ms.warnings(ms.baseline(), proxy) if "proxy" in warning]
    assert len(found) == 1
    assert words in found[0]
    assert "hunter2" not in found[0]


def test_a_pac_file_in_the_managed_proxy_is_warned_about() -> None:
    data = ms.baseline()
    data["cloudService"]["proxy"] = "http://proxy.corp.example:8080/proxy.pac"
    assert ms.validate_managed_settings(data) == []
    assert any("cloudService.proxy" in warning and "PAC" in warning for warning in ms.warnings(data))


def test_a_managed_proxy_that_differs_from_the_profiles_is_warned_about() -> None:
    data = ms.baseline()
    data["cloudService"]["proxy"] = "http://a.example:3128/"
    assert any("differs" in warning for warning in ms.warnings(data, "http://b.example:3128"))
    assert ms.warnings(data, "http://a.example:3128") == []


def test_many_scan_threads_cloud_off_and_no_definition_updates_are_warned_about() -> None:
    data = ms.baseline()
    data["antivirusEngine"]["maximumOnDemandScanThreads"] = 32
    data["cloudService"]["enabled"] = False
    data["cloudService"]["automaticDefinitionUpdateEnabled"] = False
    text = " ".join(ms.warnings(data))
    assert "maximumOnDemandScanThreads is 32" in text
    assert "cloudService.enabled is false" in text
    assert "automaticDefinitionUpdateEnabled is false" in text


def test_behavior_monitoring_without_real_time_is_warned_about() -> None:
    warnings = ms.warnings({"antivirusEngine": {"enforcementLevel": "passive", "behaviorMonitoring": "enabled"}})
    assert any("behaviorMonitoring only works" in warning for warning in warnings)


def test_the_mde_management_tag_is_warned_about() -> None:
    data = ms.baseline()
    data["edr"] = {"tags": [{"key": "GROUP", "value": "MDE-Management"}]}
    assert any("security settings management" in warning for warning in ms.warnings(data))


def test_nfs_and_fuse_being_unmonitored_by_default_is_noted() -> None:
    assert "NFS and Fuse" in ms.notes({})[0]
    assert ms.notes({"antivirusEngine": {"unmonitoredFilesystems": []}}) == []


# --- recommendations -----------------------------------------------------------------------------


def test_an_empty_document_adopts_no_recommendation_and_shows_the_defaults() -> None:
    rows = {rec.id: rec for rec in ms.recommendations({})}
    assert not any(rec.adopted for rec in rows.values())
    assert rows["real-time-protection"].current_display == 'not set (default "passive")'
    assert rows["exclusions-admin-only"].recommended == "admin_only"
    assert "Prevents the local admin" in rows["exclusions-admin-only"].why


@pytest.mark.parametrize("rule_id", [rule.id for rule in ms.RULES])
def test_applying_a_recommendation_adopts_it_and_nothing_else(rule_id: str) -> None:
    data = {"antivirusEngine": {"exclusions": [{"$type": "excludedPath", "path": "/home"}]}}
    original = copy.deepcopy(data)
    result = ms.apply_recommendation(data, rule_id)
    assert data == original
    adopted = {rec.id for rec in ms.recommendations(result) if rec.adopted}
    assert adopted == {rule_id}
    assert ms.validate_managed_settings(result) == []
    assert {"$type": "excludedPath", "path": "/home"} in result["antivirusEngine"]["exclusions"]


def test_excluding_pseudo_filesystems_adds_only_the_missing_ones() -> None:
    data = with_engine(exclusions=[{"$type": "excludedPath", "isDirectory": True, "path": "/proc/"}])
    row = {rec.id: rec for rec in ms.recommendations(data)}["exclude-pseudo-filesystems"]
    assert row.current == ["/proc"] and not row.adopted
    result = ms.apply_recommendation(data, "exclude-pseudo-filesystems")
    assert [item["path"] for item in result["antivirusEngine"]["exclusions"]] == ["/proc/", "/sys", "/dev"]


def test_adopting_the_threat_type_keeps_the_other_threat_type() -> None:
    data = with_engine(threatTypeSettings=[{"key": "archive_bomb", "value": "off"}])
    result = ms.apply_recommendation(data, "block-pua")
    assert result["antivirusEngine"]["threatTypeSettings"] == [
        {"key": "archive_bomb", "value": "off"},
        {"key": "potentially_unwanted_application", "value": "block"},
    ]


def test_an_unknown_recommendation_is_refused() -> None:
    with pytest.raises(ms.UnknownRecommendation):
        ms.apply_recommendation({}, "make-it-secure")


# --- the delivered file --------------------------------------------------------------------------


def test_carried_exclusions_are_merged_into_the_delivered_file_without_duplicates() -> None:
    profile = SimpleNamespace(
        managed_settings=ms.baseline(),
        carried_exclusions=[
            {"kind": "path", "value": "/proc/"},
            {"kind": "path", "value": "/var/lib/pgsql/"},
            {"kind": "path", "value": "/opt/app/run.log"},
            {"kind": "extension", "value": ".mdf"},
            {"kind": "process", "value": "/usr/bin/java"},
        ],
        proxy="http://proxy.example.com:3128",
    )
    text = ms.render_managed_json(profile)
    data = json.loads(text)
    assert text.endswith("}\n")
    assert data["antivirusEngine"]["exclusions"][3:] == [
        {"$type": "excludedPath", "isDirectory": True, "path": "/var/lib/pgsql/"},
        {"$type": "excludedPath", "isDirectory": False, "path": "/opt/app/run.log"},
        {"$type": "excludedFileExtension", "extension": ".mdf"},
        {"$type": "excludedFileName", "name": "/usr/bin/java"},
    ]
    assert data["cloudService"]["proxy"] == "http://proxy.example.com:3128"
    assert ms.validate_managed_settings(data) == []
    assert profile.managed_settings == ms.baseline()


def test_the_settings_own_proxy_wins_over_the_profiles() -> None:
    settings = {"cloudService": {"proxy": "http://managed.example:3128/"}}
    document = ms.build_managed_document(settings, [], "http://profile.example:3128")
    assert document["cloudService"]["proxy"] == "http://managed.example:3128/"


@pytest.mark.parametrize(
    ("rows", "path", "words"),
    [
        ([{"kind": "path", "value": "var/log"}], "[0].value", "absolute path"),
        ([{"kind": "path", "value": "/a\n/b"}], "[0].value", "one line"),
        ([{"kind": "folder", "value": "/a"}], "[0].kind", "path, extension, process"),
        ([{"kind": "extension", "value": "a/b"}], "[0].value", "not a file extension"),
        ([{"kind": "process", "value": "bin/java"}], "[0].value", "absolute path"),
        ([{"kind": "path", "value": " /a"}], "[0].value", "spaces"),
        ([{"kind": "path", "value": "/a"}, {"kind": "path", "value": "/a"}], "[1].value", "twice"),
        ([{"kind": "path", "value": ""}], "[0].value", "empty"),
        ("not a list", ms.ROOT, "expected a list"),
    ],
)
def test_carried_exclusions_are_validated(rows: Any, path: str, words: str) -> None:
    errors = ms.validate_carried_exclusions(rows)
    assert paths(errors) == [path]
    assert words in errors[0].message


@pytest.mark.parametrize(
    ("proxy", "words"),
    [
        ("http://proxy.example.com", "needs a port"),
        ("ftp://proxy.example.com:21", "http://host:port"),
        ("http://proxy.example.com:3128/proxy.pac", "PAC"),
        ("http://wpad.example.com:80", "WPAD"),
        ("http://u:p@proxy.example.com:3128", "authenticated"),
        ("http://proxy.example.com:3128/some/path", "only scheme, host and port"),
        ("http://proxy.example.com:99999", "not a URL"),
    ],
)
def test_the_profile_proxy_must_be_a_plain_static_proxy(proxy: str, words: str) -> None:
    assert words in (ms.proxy_problem(proxy) or "")


def test_plain_static_proxies_are_accepted() -> None:
    for proxy in ("http://proxy.example.com:3128", "https://10.0.0.1:8443/", "http://[2001:db8::1]:3128"):
        assert ms.proxy_problem(proxy) is None


def test_absurdly_deep_nesting_is_refused_without_crashing() -> None:
    data, errors = ms.parse_managed_json("[" * 100_000 + "]" * 100_000)
    assert data is None
    assert "nested too deeply" in errors[0].message
