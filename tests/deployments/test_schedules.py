"""Maintenance-window math: midnight crossing, DST in Europe/Berlin, blackout dates, previews, validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from deployments import schedules as s

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def schedule(windows: list[dict] | None = None, tz: str = "Europe/Berlin", **kwargs: object) -> s.Schedule:
    built, _ = s.schedule_clean(timezone_name=tz, windows=windows or [], **kwargs)  # type: ignore[arg-type]
    return built


TUE_THU_NIGHTS = [{"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}]


def test_a_window_crossing_midnight_is_open_until_the_next_morning() -> None:
    sched = schedule(TUE_THU_NIGHTS)
    assert not s.is_open(sched, berlin(2026, 12, 1, 21, 59))  # Tuesday
    assert s.is_open(sched, berlin(2026, 12, 1, 22, 0))
    assert s.is_open(sched, berlin(2026, 12, 2, 1, 59))  # Wednesday morning still belongs to Tuesday's window
    assert not s.is_open(sched, berlin(2026, 12, 2, 2, 0))
    assert not s.is_open(sched, berlin(2026, 12, 2, 22, 30))  # no Wednesday window
    assert s.closes_at(sched, berlin(2026, 12, 1, 23, 0)) == berlin(2026, 12, 2, 2, 0)


def test_next_open_is_now_when_open_and_the_next_opening_otherwise() -> None:
    sched = schedule(TUE_THU_NIGHTS)
    monday_noon = berlin(2026, 11, 30, 12, 0)
    assert s.next_open(sched, monday_noon) == berlin(2026, 12, 1, 22, 0)
    inside = berlin(2026, 12, 3, 23, 15)
    assert s.next_open(sched, inside) == inside
    assert s.closes_at(sched, monday_noon) is None


def test_a_window_keeps_its_local_hours_across_the_autumn_dst_change() -> None:
    # Sunday 2026-10-25 03:00 CEST → 02:00 CET: Saturday's 22:00-04:00 window lasts seven real hours.
    sched = schedule([{"days": ["sat"], "start": "22:00", "end": "04:00"}])
    (opening,) = s.preview(sched, berlin(2026, 10, 24, 12, 0), 1)
    assert opening.opens == datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # 22:00 CEST
    assert opening.closes == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)  # 04:00 CET
    assert opening.closes - opening.opens == timedelta(hours=7)
    # The week after, in winter time, it is back to six hours, still 22:00 local.
    (later,) = s.preview(sched, berlin(2026, 10, 30, 12, 0), 1)
    assert later.opens == datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
    assert later.closes - later.opens == timedelta(hours=6)


def test_a_window_keeps_its_local_hours_across_the_spring_dst_change() -> None:
    # Sunday 2026-03-29 02:00 CET → 03:00 CEST: the 22:00-04:00 window is five real hours.
    sched = schedule([{"days": ["sat"], "start": "22:00", "end": "04:00"}])
    (opening,) = s.preview(sched, berlin(2026, 3, 28, 12, 0), 1)
    assert opening.opens == datetime(2026, 3, 28, 21, 0, tzinfo=UTC)
    assert opening.closes == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert s.is_open(sched, datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 CEST
    assert not s.is_open(sched, datetime(2026, 3, 29, 2, 0, tzinfo=UTC))  # 04:00 CEST


def test_a_window_opening_in_the_skipped_hour_opens_at_the_first_real_instant_after_it() -> None:
    sched = schedule([{"days": ["sun"], "start": "02:30", "end": "05:00"}])
    (opening,) = s.preview(sched, berlin(2026, 3, 28, 12, 0), 1)
    assert opening.opens.astimezone(BERLIN).hour == 3  # 02:30 CET does not exist: 03:30 CEST
    assert opening.opens == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_blackout_dates_close_the_whole_local_day_even_mid_window() -> None:
    # Thursday 2026-12-24 is a blackout: Thursday's window does not open; Tuesday's window
    # (Tue 22:00 → Wed 02:00) is untouched; a window reaching into a blackout day stops at midnight.
    sched = schedule(TUE_THU_NIGHTS, blackout_dates=["2026-12-24", "2026-12-30"])
    assert not s.is_open(sched, berlin(2026, 12, 24, 22, 30))
    assert s.is_open(sched, berlin(2026, 12, 22, 23, 0))
    assert s.is_open(sched, berlin(2026, 12, 29, 23, 30))  # Tue 29th 22:00 → cut at the 30th's midnight
    assert s.closes_at(sched, berlin(2026, 12, 29, 23, 30)) == berlin(2026, 12, 30, 0, 0)
    assert not s.is_open(sched, berlin(2026, 12, 30, 0, 30))
    # Thursday the 24th's window is closed for the day; its tail after midnight (the 25th) is not.
    assert s.next_open(sched, berlin(2026, 12, 23, 12, 0)) == berlin(2026, 12, 25, 0, 0)
    assert s.closes_at(sched, berlin(2026, 12, 25, 0, 30)) == berlin(2026, 12, 25, 2, 0)


def test_no_windows_means_open_except_on_blackout_days() -> None:
    sched = schedule([], blackout_dates=["2026-12-25"])
    assert s.is_open(sched, berlin(2026, 12, 24, 23, 59))
    assert not s.is_open(sched, berlin(2026, 12, 25, 12, 0))
    assert s.next_open(sched, berlin(2026, 12, 25, 12, 0)) == berlin(2026, 12, 26, 0, 0)
    assert s.closes_at(sched, berlin(2026, 12, 24, 9, 0)) == berlin(2026, 12, 25, 0, 0)


def test_the_preview_lists_the_next_openings_in_order_from_the_start_time() -> None:
    sched = schedule(TUE_THU_NIGHTS, start_at=berlin(2026, 12, 3, 23, 0), blackout_dates=["2026-12-08"])
    openings = [o.local(BERLIN) for o in s.preview(sched, berlin(2026, 11, 30, 9, 0), 4)]
    assert [(a.strftime("%a %d %H:%M"), b.strftime("%a %d %H:%M")) for a, b in openings] == [
        ("Thu 03 23:00", "Fri 04 02:00"),  # started inside the window: from start_at on
        ("Wed 09 00:00", "Wed 09 02:00"),  # Tuesday the 8th is a blackout; its window's tail on the 9th is not
        ("Thu 10 22:00", "Fri 11 02:00"),
        ("Tue 15 22:00", "Wed 16 02:00"),
    ]
    assert s.next_start(sched, berlin(2026, 11, 30, 9, 0)) == berlin(2026, 12, 3, 23, 0)
    assert not s.may_start(sched, berlin(2026, 12, 1, 22, 30))  # open, but before start_at


def test_the_labels_name_the_day_time_and_zone_abbreviation() -> None:
    assert s.short_label(berlin(2026, 12, 1, 22, 0), BERLIN) == "Tue 22:00 CET"
    assert s.short_label(berlin(2026, 7, 7, 22, 0), BERLIN) == "Tue 22:00 CEST"


def test_the_deadline_passes_at_start_before() -> None:
    sched = schedule(TUE_THU_NIGHTS, start_before=berlin(2026, 12, 2, 0, 0))
    assert not s.deadline_passed(sched, berlin(2026, 12, 1, 23, 59))
    assert s.deadline_passed(sched, berlin(2026, 12, 2, 0, 0))


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"timezone_name": "Mars/Olympus"}, "schedule_timezone", "not an IANA time zone"),
        ({"timezone_name": "/etc/localtime"}, "schedule_timezone", "not an IANA time zone"),
        ({"windows": [{"days": ["tue"], "start": "25:00", "end": "02:00"}]}, "maintenance_windows", "not a time"),
        ({"windows": [{"days": ["tuesday-ish"], "start": "22:00", "end": "02:00"}]}, "maintenance_windows", "weekday"),
        ({"windows": [{"days": [], "start": "22:00", "end": "02:00"}]}, "maintenance_windows", "days"),
        ({"windows": [{"days": ["tue"], "start": "22:00", "end": "22:00"}]}, "maintenance_windows", "same time"),
        ({"windows": [{"days": ["tue"], "start": "22:00", "end": "2:00", "x": 1}]}, "maintenance_windows", "unknown"),
        ({"windows": "Tue 22:00-02:00"}, "maintenance_windows", "a list"),
        ({"blackout_dates": ["2026-02-30"]}, "blackout_dates", "not a date"),
        ({"start_at": datetime(2026, 12, 1, 22, 0)}, "start_at", "time zone offset"),
        (
            {"start_at": berlin(2026, 12, 2, 0, 0), "start_before": berlin(2026, 12, 1, 0, 0)},
            "start_before",
            "after the start",
        ),
    ],
)
def test_bad_schedules_are_refused_by_field(kwargs: dict, field: str, words: str) -> None:
    with pytest.raises(s.ScheduleError) as caught:
        s.schedule_clean(**kwargs)
    assert words in " ".join(caught.value.errors[field])


def test_a_valid_schedule_is_stored_normalized() -> None:
    _, stored = s.schedule_clean(
        timezone_name="Europe/Berlin",
        windows=[{"days": ["Thursday", "TUE"], "start": "22:00", "end": "24:00"}],
        blackout_dates="2026-12-31, 2026-12-24",
        start_at=berlin(2026, 12, 1, 20, 0),
    )
    assert stored["maintenance_windows"] == [{"days": ["tue", "thu"], "start": "22:00", "end": "24:00"}]
    assert stored["blackout_dates"] == ["2026-12-24", "2026-12-31"]
    assert stored["start_at"] == datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
    assert s.parse_dates(stored["blackout_dates"]) == {date(2026, 12, 24), date(2026, 12, 31)}


def test_window_lines_round_trip_through_text() -> None:
    windows = s.parse_window_text("Tue, Thu 22:00-02:00\n\nsat 09:00 - 17:30")
    assert windows == [
        {"days": ["Tue", "Thu"], "start": "22:00", "end": "02:00"},
        {"days": ["sat"], "start": "09:00", "end": "17:30"},
    ]
    assert s.parse_window_text(s.windows_text(windows)) == [
        {"days": ["Tue", "Thu"], "start": "22:00", "end": "02:00"},
        {"days": ["Sat"], "start": "09:00", "end": "17:30"},
    ]
    with pytest.raises(ValueError, match="line 1"):
        s.parse_window_text("every night")
