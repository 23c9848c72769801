"""Maintenance windows: pure functions over a schedule and an instant, time-zone and DST correct.

A schedule is weekly windows in one IANA time zone ("Tue and Thu 22:00-02:00 Europe/Berlin"),
blackout dates in that zone (no waves at all on those days), and optionally ``start_at`` (not
before) and ``start_before`` (a deadline after which a rollout that could not start is cancelled).

A window belongs to the day it opens on: Tue 22:00-02:00 runs from Tuesday 22:00 to Wednesday
02:00, local wall-clock time. Wall-clock times are turned into instants through ``zoneinfo`` one
date at a time, so a window keeps its local hours across a DST change (it is an hour shorter or
longer that night). A wall time the clocks skip (02:30 on the spring-forward night) is read with
the offset before the change, i.e. an hour later. Every instant is compared in UTC: Python
compares two datetimes of the same tzinfo by wall time, which is wrong around a DST change.

No windows means "always open" (outside blackout dates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES = {
    **{d: i for i, d in enumerate(DAYS)},
    **{n: i for i, n in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])},
}
# How far ahead the next opening is looked for: a year and a bit (blackouts are finite lists).
HORIZON_DAYS = 400
MAX_WINDOWS = 14
MAX_BLACKOUT_DATES = 366
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """Input that is not a schedule: ``errors`` maps field names to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Window:
    """A weekly window: the days it opens on (0 = Monday), its local start and end (end ≤ start: next day)."""

    days: frozenset[int]
    start: time
    end: time  # time(0, 0) with end_of_day=True means 24:00
    end_of_day: bool = False

    @property
    def crosses_midnight(self) -> bool:
        return self.end_of_day or self.end <= self.start

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": [DAYS[d] for d in sorted(self.days)],
            "start": self.start.strftime("%H:%M"),
            "end": "24:00" if self.end_of_day else self.end.strftime("%H:%M"),
        }

    def label(self) -> str:
        d = self.as_dict()
        return f"{', '.join(x.capitalize() for x in d['days'])} {d['start']}-{d['end']}"


@dataclass(frozen=True)
class Schedule:
    """When waves may start: windows and blackout dates in ``tz``, plus an optional start and deadline."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    windows: tuple[Window, ...] = ()
    blackout_dates: frozenset[date] = frozenset()
    start_at: datetime | None = None
    start_before: datetime | None = None

    @property
    def restricted(self) -> bool:
        """Whether anything here can hold a wave back."""
        return bool(self.windows or self.blackout_dates)


@dataclass(frozen=True)
class Opening:
    """One period in which the schedule is open: [opens, closes), as UTC instants."""

    opens: datetime
    closes: datetime

    def local(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return self.opens.astimezone(tz), self.closes.astimezone(tz)


# --- parsing and validation -------------------------------------------------------------------------


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA zone by name; refuses what zoneinfo does not know (and local paths)."""
    name = (name or "").strip()
    if not name or name not in _zone_names():
        raise ValueError(f"{name!r} is not an IANA time zone name such as Europe/Berlin or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unloadable
        raise ValueError(f"{name!r} is not an IANA time zone name such as Europe/Berlin or UTC") from exc


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def zone_choices() -> list[str]:
    """Every IANA zone name, sorted, UTC first."""
    return ["UTC", *sorted(_zone_names() - {"UTC"})]


def _parse_time(value: Any, what: str, allow_24: bool = False) -> tuple[time, bool]:
    text = str(value).strip()
    if allow_24 and text == "24:00":
        return time(0, 0), True
    match = TIME_RE.match(text)
    if not match:
        raise ValueError(f"{what} {text!r} is not a time HH:MM (00:00 to 23:59{', or 24:00' if allow_24 else ''})")
    return time(int(match.group(1)), int(match.group(2))), False


def parse_window(raw: Any) -> Window:
    """A window from {"days": ["tue", "thu"], "start": "22:00", "end": "02:00"}."""
    if not isinstance(raw, dict):
        raise ValueError('each window is an object {"days": ["tue"], "start": "22:00", "end": "02:00"}')
    unknown = set(raw) - {"days", "start", "end"}
    if unknown:
        raise ValueError(f"unknown window key {sorted(unknown)[0]!r}; use days, start and end")
    days_raw = raw.get("days")
    if not isinstance(days_raw, list) or not days_raw:
        raise ValueError('days: a list of weekdays, e.g. ["tue", "thu"]')
    days = set()
    for day in days_raw:
        key = str(day).strip().lower()
        if key not in DAY_NAMES:
            raise ValueError(f"{day!r} is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
        days.add(DAY_NAMES[key])
    start, _ = _parse_time(raw.get("start", ""), "start")
    end, end_of_day = _parse_time(raw.get("end", ""), "end", allow_24=True)
    if not end_of_day and end == start:
        raise ValueError("start and end are the same time; for a whole day use 00:00-24:00")
    return Window(days=frozenset(days), start=start, end=end, end_of_day=end_of_day)


def parse_window_text(text: str) -> list[dict[str, Any]]:
    """Lines such as "Tue, Thu 22:00-02:00" (or "tue,thu 22:00 - 02:00") to window dicts."""
    windows = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = re.match(r"^(?P<days>[A-Za-z ,]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$", line)
        if not match:
            raise ValueError(f"line {number}: {line!r} is not like 'Tue, Thu 22:00-02:00'")
        days = [d for d in re.split(r"[\s,]+", match.group("days")) if d]
        windows.append({"days": days, "start": match.group("start"), "end": match.group("end")})
    return windows


def windows_text(windows: Iterable[dict[str, Any]]) -> str:
    """Window dicts as the lines ``parse_window_text`` reads."""
    return "\n".join(
        f"{', '.join(str(d).capitalize() for d in w.get('days', []))} {w.get('start')}-{w.get('end')}" for w in windows
    )


def parse_dates(raw: Any) -> frozenset[date]:
    """Blackout dates from a list of "YYYY-MM-DD" (or text with dates separated by commas/spaces)."""
    if isinstance(raw, str):
        raw = [d for d in re.split(r"[\s,;]+", raw) if d]
    if not isinstance(raw, list):
        raise ValueError('a list of dates "YYYY-MM-DD"')
    if len(raw) > MAX_BLACKOUT_DATES:
        raise ValueError(f"at most {MAX_BLACKOUT_DATES} blackout dates")
    dates = set()
    for value in raw:
        try:
            dates.add(date.fromisoformat(str(value).strip()))
        except ValueError:
            raise ValueError(f"{value!r} is not a date YYYY-MM-DD") from None
    return frozenset(dates)


def schedule_clean(
    *,
    timezone_name: str = "UTC",
    windows: Any = None,
    blackout_dates: Any = None,
    start_at: datetime | None = None,
    start_before: datetime | None = None,
) -> tuple[Schedule, dict[str, Any]]:
    """Validate schedule input: the Schedule and its stored (normalized) fields, or ScheduleError by field."""
    errors: dict[str, list[str]] = {}
    tz = ZoneInfo("UTC")
    try:
        tz = parse_timezone(timezone_name or "UTC")
    except ValueError as exc:
        errors["schedule_timezone"] = [str(exc)]
    parsed: list[Window] = []
    if windows in (None, ""):
        windows = []
    if not isinstance(windows, list):
        errors["maintenance_windows"] = ['a list of windows {"days": ["tue"], "start": "22:00", "end": "02:00"}']
    elif len(windows) > MAX_WINDOWS:
        errors["maintenance_windows"] = [f"at most {MAX_WINDOWS} windows"]
    else:
        for index, raw in enumerate(windows):
            try:
                parsed.append(parse_window(raw))
            except ValueError as exc:
                errors.setdefault("maintenance_windows", []).append(f"window {index + 1}: {exc}")
    dates: frozenset[date] = frozenset()
    try:
        dates = parse_dates(blackout_dates or [])
    except ValueError as exc:
        errors["blackout_dates"] = [str(exc)]
    for name, value in (("start_at", start_at), ("start_before", start_before)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            errors[name] = ["give a time zone offset, e.g. 2026-12-01T22:00:00+01:00"]
    if start_at is not None and start_before is not None and "start_at" not in errors and "start_before" not in errors:
        if start_before <= start_at:
            errors["start_before"] = ["the deadline must come after the start time"]
    if errors:
        raise ScheduleError(errors)
    schedule = Schedule(
        tz=tz,
        windows=tuple(parsed),
        blackout_dates=dates,
        start_at=start_at.astimezone(UTC) if start_at else None,
        start_before=start_before.astimezone(UTC) if start_before else None,
    )
    stored = {
        "schedule_timezone": tz.key,
        "maintenance_windows": [w.as_dict() for w in parsed],
        "blackout_dates": [d.isoformat() for d in sorted(dates)],
        "start_at": schedule.start_at,
        "start_before": schedule.start_before,
    }
    return schedule, stored


def schedule_from_fields(
    *,
    schedule_timezone: str,
    maintenance_windows: list[dict[str, Any]],
    blackout_dates: list[str],
    start_at: datetime | None = None,
    start_before: datetime | None = None,
) -> Schedule:
    """The Schedule of stored fields (already validated; a bad stored value raises ScheduleError)."""
    schedule, _ = schedule_clean(
        timezone_name=schedule_timezone or "UTC",
        windows=maintenance_windows or [],
        blackout_dates=blackout_dates or [],
        start_at=start_at,
        start_before=start_before,
    )
    return schedule


# --- the window math ------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("an aware datetime is needed")
    return value.astimezone(UTC)


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time on a local date (a skipped time reads an hour later)."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def _window_periods(schedule: Schedule, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """Raw window periods opening on local dates first..last, as UTC instants."""
    day = first
    while day <= last:
        if not schedule.windows:
            yield _at(day, time(0, 0), schedule.tz), _at(day + timedelta(days=1), time(0, 0), schedule.tz)
        for window in schedule.windows:
            if day.weekday() not in window.days:
                continue
            end_day = day + timedelta(days=1) if window.crosses_midnight else day
            yield _at(day, window.start, schedule.tz), _at(end_day, window.end, schedule.tz)
        day += timedelta(days=1)


def _minus_blackouts(
    periods: Iterable[tuple[datetime, datetime]], schedule: Schedule
) -> Iterator[tuple[datetime, datetime]]:
    """Cut every blackout day (local midnight to midnight) out of the periods."""
    for opens, closes in periods:
        pieces = [(opens, closes)]
        local_first = opens.astimezone(schedule.tz).date()
        local_last = closes.astimezone(schedule.tz).date()
        day = local_first
        while day <= local_last:
            if day in schedule.blackout_dates:
                b_start = _at(day, time(0, 0), schedule.tz)
                b_end = _at(day + timedelta(days=1), time(0, 0), schedule.tz)
                cut = []
                for a, b in pieces:
                    if b <= b_start or a >= b_end:
                        cut.append((a, b))
                        continue
                    if a < b_start:
                        cut.append((a, b_start))
                    if b > b_end:
                        cut.append((b_end, b))
                pieces = cut
            day += timedelta(days=1)
        yield from pieces


def openings(schedule: Schedule, since: datetime, *, days: int = HORIZON_DAYS) -> list[Opening]:
    """Open periods that end after ``since``, within ``days``, merged where they touch, in order."""
    since = _utc(since)
    local = since.astimezone(schedule.tz).date()
    # A window that opened yesterday may still be open (crossing midnight).
    raw = sorted(
        p
        for p in _minus_blackouts(
            _window_periods(schedule, local - timedelta(days=1), local + timedelta(days=days)), schedule
        )
        if p[1] > p[0]
    )
    merged: list[list[datetime]] = []
    for opens, closes in raw:
        if merged and opens <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], closes)
        else:
            merged.append([opens, closes])
    return [Opening(a, b) for a, b in merged if b > since]


def is_open(schedule: Schedule, now: datetime) -> bool:
    """Whether a wave may start at ``now`` by the windows and blackout dates (not by start_at)."""
    now = _utc(now)
    return any(o.opens <= now < o.closes for o in openings(schedule, now, days=2))


def _first_opening(schedule: Schedule, now: datetime, *, whole: bool) -> Opening | None:
    """The first opening ending after ``now``; ``whole``: its end is certain (not cut by the range looked at)."""
    for days in (8, 60, HORIZON_DAYS):
        found = openings(schedule, now, days=days)
        if not found:
            continue
        first = found[0]
        range_end = now + timedelta(days=days - 1)
        if not whole or first.closes < range_end or days == HORIZON_DAYS:
            return first
    return None


def next_open(schedule: Schedule, now: datetime) -> datetime | None:
    """The first instant at or after ``now`` when the schedule is open (``now`` if open); None within the horizon."""
    now = _utc(now)
    first = _first_opening(schedule, now, whole=False)
    return max(first.opens, now) if first else None


def closes_at(schedule: Schedule, now: datetime) -> datetime | None:
    """When the open period holding ``now`` ends; None when closed now or open past the horizon."""
    now = _utc(now)
    first = _first_opening(schedule, now, whole=True)
    if first is None or not first.opens <= now < first.closes:
        return None
    return first.closes if first.closes < now + timedelta(days=HORIZON_DAYS - 1) else None


def next_start(schedule: Schedule, now: datetime) -> datetime | None:
    """When a scheduled rollout may start: not before ``start_at``, inside a window; None if never within the horizon."""
    now = _utc(now)
    if schedule.start_at is not None and schedule.start_at > now:
        now = schedule.start_at
    return next_open(schedule, now)


def may_start(schedule: Schedule, now: datetime) -> bool:
    """Whether a wave may start now: past start_at (if any) and inside an open window."""
    now = _utc(now)
    if schedule.start_at is not None and now < schedule.start_at:
        return False
    return is_open(schedule, now)


def deadline_passed(schedule: Schedule, now: datetime) -> bool:
    return schedule.start_before is not None and _utc(now) >= schedule.start_before


def preview(schedule: Schedule, now: datetime, count: int = 5) -> list[Opening]:
    """The next ``count`` open periods from ``now`` on (the one holding now first), honouring start_at."""
    since = _utc(now)
    if schedule.start_at is not None and schedule.start_at > since:
        since = schedule.start_at
    result = []
    for opening in openings(schedule, since):
        result.append(Opening(max(opening.opens, since), opening.closes))
        if len(result) >= count:
            break
    return result


def local_label(moment: datetime, tz: ZoneInfo) -> str:
    """ "Tue 2026-12-01 22:00 CET" in the schedule's zone."""
    local = moment.astimezone(tz)
    return local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or tz.key)


def short_label(moment: datetime, tz: ZoneInfo) -> str:
    """ "Tue 22:00 CET" in the schedule's zone."""
    local = moment.astimezone(tz)
    return local.strftime("%a %H:%M ") + (local.tzname() or tz.key)
