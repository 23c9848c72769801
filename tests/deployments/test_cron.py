"""Cron expressions of the scheduled scan and the agent update, and the /etc/cron.d/mdatp file."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from deployments import cron


def profile(**fields: str) -> SimpleNamespace:
    values = {
        "name": "web servers",
        "scan_cron": cron.DEFAULT_SCAN_CRON,
        "scan_type": "quick",
        "update_cron": cron.DEFAULT_UPDATE_CRON,
    }
    values.update(fields)
    return SimpleNamespace(**values)


@pytest.mark.parametrize(
    "expression",
    [
        "0 2 * * sat",
        "0 2 * * 6",
        "0 2 * * 7",
        "30 1 * * mon-fri",
        "0 */6 * * *",
        "0 0-23/4 * * *",
        "15 3 1,15 * *",
        "0 6 1 jan,apr,jul,oct *",
        "0 6 1 JAN-MAR *",
        "@weekly",
        "@monthly",
        "  0   2 * *   sat ",
    ],
)
def test_valid_expressions_pass(expression: str) -> None:
    assert cron.check_cron(expression).errors == []


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("", "Empty"),
        ("0 2 * *", "Expected 5 fields"),
        ("0 0 2 * * sat", "no seconds field"),
        ("60 2 * * *", "Minute: 60 is out of range (0-59)"),
        ("0 24 * * *", "Hour: 24 is out of range (0-23)"),
        ("0 2 0 * *", "Day of month: 0 is out of range (1-31)"),
        ("0 2 * 13 *", "Month: 13 is out of range (1-12)"),
        ("0 2 * * 8", "Day of week: 8 is out of range (0-7)"),
        ("0 2 * * saturday", "is not a number from 0 to 7 or a name"),
        ("0 2 * sat *", "Month: 'sat' is not"),
        ("*/0 * * * *", "must be a whole number of 1 or more"),
        ("5/10 * * * *", "write a step over a range"),
        ("0 2 5-1 * *", "goes backwards"),
        ("0 2 ? * L", "Quartz syntax"),
        ("0 2 1,,2 * *", "empty entry"),
        ("0 0 30 2 *", "never run"),
        ("@fortnightly", "Unknown nickname"),
        ("0 2 * * sat\n* * * * * root rm -rf /", "one line"),
    ],
)
def test_invalid_expressions_are_refused_with_a_clear_message(expression: str, words: str) -> None:
    errors = cron.check_cron(expression).errors
    assert errors, expression
    assert words in " ".join(errors)


def test_a_star_minute_warns_that_the_job_runs_every_minute_of_that_hour() -> None:
    # Microsoft's schedule_scan.py writes "* <hour> * * <day>" (MDE-FACTS §1.9).
    check = cron.check_cron("* 2 * * sat")
    assert check.ok
    assert "runs every minute of that hour" in check.warnings[0]
    assert "every minute of every hour" in cron.check_cron("* * * * *").warnings[0]


def test_setting_both_day_fields_warns_that_cron_ors_them() -> None:
    (warning,) = cron.check_cron("0 6 1-7 * sun").warnings
    assert "EITHER" in warning


def test_several_runs_a_day_are_pointed_out() -> None:
    assert cron.check_cron("0,30 */6 * * *").warnings == ["Runs 8 times on each day it runs."]


def test_reboot_is_accepted_with_a_warning() -> None:
    check = cron.check_cron("@reboot")
    assert check.ok and "only when the host starts" in check.warnings[0]


def test_next_runs_follow_the_schedule() -> None:
    after = datetime(2026, 11, 25, 12, 0)
    assert cron.next_runs("0 2 * * sat", after, 2) == [datetime(2026, 11, 28, 2, 0), datetime(2026, 12, 5, 2, 0)]
    assert cron.next_runs("@monthly", after, 1) == [datetime(2026, 12, 1, 0, 0)]


def test_next_runs_or_the_two_day_fields_as_cron_does() -> None:
    runs = cron.next_runs("0 6 1-7 * sun", datetime(2026, 11, 25), 3)
    assert runs == [datetime(2026, 11, 29, 6, 0), datetime(2026, 12, 1, 6, 0), datetime(2026, 12, 2, 6, 0)]


def test_the_default_update_runs_monthly_and_the_default_scan_weekly() -> None:
    after = datetime(2026, 11, 25)
    assert [run.day for run in cron.next_runs(cron.DEFAULT_UPDATE_CRON, after, 3)] == [1, 1, 1]
    assert {run.weekday() for run in cron.next_runs(cron.DEFAULT_SCAN_CRON, after, 3)} == {5}
    assert cron.check_cron(cron.DEFAULT_UPDATE_CRON).warnings == []
    assert cron.check_cron(cron.DEFAULT_SCAN_CRON).warnings == []


def test_the_cron_file_runs_both_jobs_as_root_with_their_logs() -> None:
    text = cron.cron_lines(profile(scan_type="full"))
    lines = text.splitlines()
    assert lines[-2] == ("0 2 * * sat root /usr/bin/mdatp scan full > /var/log/microsoft/mdatp/scheduled_scan.log 2>&1")
    assert lines[-1] == "0 6 1 * * root yum update mdatp -y >> /var/log/microsoft/mdatp/mdatp_update.log 2>&1"
    assert text.endswith("\n")
    assert "%" not in text


def test_a_blank_schedule_leaves_its_job_out() -> None:
    text = cron.cron_lines(profile(update_cron=""))
    assert "yum update" not in text
    assert "mdatp scan quick" in text


def test_the_profile_name_cannot_inject_a_cron_line() -> None:
    text = cron.cron_lines(profile(name="evil\n* * * * * root rm -rf /"))
    assert not any(line.startswith("* * * * *") for line in text.splitlines())
    assert text.count("\n") == 6


def test_a_version_pin_with_an_update_job_is_warned_about() -> None:
    warnings = cron.schedule_warnings(scan_cron="0 2 * * sat", update_cron="0 6 1 * *", agent_version="101.25092.0003")
    assert any("pinned to 101.25092.0003" in warning for warning in warnings)


def test_no_update_job_is_warned_about() -> None:
    warnings = cron.schedule_warnings(scan_cron="", update_cron="", agent_version="")
    assert warnings == [
        "Agent update: no update job. Each agent version expires nine months after its release; plan updates."
    ]


def test_schedule_warnings_name_their_job() -> None:
    warnings = cron.schedule_warnings(scan_cron="* 2 * * sat", update_cron="0 6 1 * *", agent_version="")
    assert warnings[0].startswith("Scheduled scan: The minute field is *")
