"""Cron entries of a profile: checking 5-field expressions and writing the /etc/cron.d/mdatp file.

The checker follows cronie (the cron of RHEL and its rebuilds): numbers, ranges, steps, lists,
three-letter month and weekday names, 7 as Sunday, and the ``@weekly``-style nicknames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CRON_FILE_PATH = "/etc/cron.d/mdatp"
SCAN_LOG = "/var/log/microsoft/mdatp/scheduled_scan.log"
UPDATE_LOG = "/var/log/microsoft/mdatp/mdatp_update.log"
SCAN_TYPES = ("quick", "full")

DEFAULT_SCAN_CRON = "0 2 * * sat"
DEFAULT_SCAN_TYPE = "quick"
# Monthly agent update on the 1st at 06:00. Not the docs' "0 6 * * sun [ $(date +%d) -le 15 ] && ..."
# form: that schedule hides in a shell guard (whose % must be escaped as \% in a cron file or cron
# cuts the command there), and "0 6 1-7 * sun" does not mean "first Sunday" because cron ORs the
# day-of-month and day-of-week fields. Stating the schedule in the expression keeps the preview honest.
DEFAULT_UPDATE_CRON = "0 6 1 * *"

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
    "@reboot": "",
}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    # Value of the first name: months count from 1, weekdays from 0.
    name_base: int = 0


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day of week", 0, 7, WEEKDAYS, 0),
)


@dataclass
class CronCheck:
    """The verdict on one expression: errors refuse it, warnings are shown beside it."""

    expression: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The values each field matches (None for @reboot or when invalid).
    sets: list[set[int]] | None = None
    dom_star: bool = True
    dow_star: bool = True

    @property
    def ok(self) -> bool:
        return not self.errors


def _value(token: str, spec: _Field) -> int:
    if token.isdigit():
        number = int(token)
    elif spec.names and token.lower() in spec.names:
        number = spec.names.index(token.lower()) + spec.name_base
    else:
        allowed = f"a number from {spec.low} to {spec.high}"
        if spec.names:
            allowed += f" or a name ({', '.join(spec.names)})"
        raise ValueError(f"{spec.name}: {token!r} is not {allowed}")
    if not spec.low <= number <= spec.high:
        raise ValueError(f"{spec.name}: {number} is out of range ({spec.low}-{spec.high})")
    return number


def _parse_field(text: str, spec: _Field) -> set[int]:
    values: set[int] = set()
    if not text:
        raise ValueError(f"{spec.name}: empty")
    for item in text.split(","):
        if not item:
            raise ValueError(f"{spec.name}: empty entry in the list {text!r}")
        if re.search(r"[?LW#]", item):
            raise ValueError(f"{spec.name}: {item!r} uses Quartz syntax (? L W #) that cron does not understand")
        body, _, step_text = item.partition("/")
        step = 1
        if "/" in item:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{spec.name}: the step in {item!r} must be a whole number of 1 or more")
            step = int(step_text)
            if body != "*" and "-" not in body:
                raise ValueError(f"{spec.name}: write a step over a range, e.g. */{step} or {body}-{spec.high}/{step}")
        if body == "*":
            start, end = spec.low, spec.high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, spec), _value(last, spec)
            if start > end:
                raise ValueError(f"{spec.name}: the range {body!r} goes backwards")
        else:
            start = end = _value(body, spec)
        values.update(range(start, end + 1, step))
    if spec.name == "day of week" and 7 in values:
        # 7 and 0 are both Sunday.
        values.discard(7)
        values.add(0)
    return values


def check_cron(expression: str) -> CronCheck:
    """Check a 5-field expression or a nickname; errors and warnings are sentences."""
    text = (expression or "").strip()
    result = CronCheck(expression=text)
    if not text:
        result.errors.append("Empty: write five fields (minute hour day-of-month month day-of-week), e.g. 0 2 * * sat.")
        return result
    if re.search(r"[\x00-\x1f\x7f]", text.replace("\t", " ")):
        result.errors.append("The expression must be one line.")
        return result
    if text.startswith("@"):
        if text.lower() not in NICKNAMES:
            result.errors.append(f"Unknown nickname {text!r}; use one of: {', '.join(NICKNAMES)}.")
            return result
        if text.lower() == "@reboot":
            result.warnings.append("@reboot runs only when the host starts, never on a calendar.")
            return result
        text = NICKNAMES[text.lower()]
    parts = text.split()
    if len(parts) != 5:
        hint = " (cron has no seconds field)" if len(parts) == 6 else ""
        result.errors.append(
            f"Expected 5 fields (minute hour day-of-month month day-of-week), found {len(parts)}{hint}."
        )
        return result
    sets: list[set[int]] = []
    for part, spec in zip(parts, FIELDS, strict=True):
        try:
            sets.append(_parse_field(part, spec))
        except ValueError as exc:
            message = str(exc)
            result.errors.append(message[0].upper() + message[1:] + ("" if message.endswith(".") else "."))
    if result.errors:
        return result
    # A date that never exists (30 February) is a job that never runs: refuse it.
    if parts[4].startswith("*") and not any(day <= _MONTH_DAYS[month - 1] for month in sets[3] for day in sets[2]):
        result.errors.append("No such date: this job would never run.")
        return result
    result.sets = sets
    # cronie: when both day fields are restricted (neither starts with *), a day matches if EITHER does.
    result.dom_star, result.dow_star = parts[2].startswith("*"), parts[4].startswith("*")
    minute, hour = parts[0], parts[1]
    if minute in ("*", "*/1"):
        where = "of every hour" if hour.startswith("*") else "of that hour"
        result.warnings.append(f"The minute field is *: the job runs every minute {where}. Give a minute, e.g. 0.")
    else:
        per_day = len(sets[0]) * len(sets[1])
        if per_day > 1:
            result.warnings.append(f"Runs {per_day} times on each day it runs.")
    if not result.dom_star and not result.dow_star:
        result.warnings.append(
            f"Both day of month ({parts[2]}) and day of week ({parts[4]}) are set: cron runs on days matching "
            "EITHER, not only days matching both."
        )
    elif not result.dom_star and min(sets[2]) > 28:
        result.warnings.append("Only days 29-31 are chosen: the job skips the months that lack them.")
    return result


def next_runs(expression: str, after: datetime, count: int = 3) -> list[datetime]:
    """The next times an expression fires after ``after`` (host local time; [] for @reboot or invalid)."""
    check = check_cron(expression)
    if not check.ok or check.sets is None:
        return []
    minutes, hours, doms, months, dows = check.sets
    runs: list[datetime] = []
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(366 * 5):
        if day.month in months:
            dom_ok, dow_ok = day.day in doms, (day.isoweekday() % 7) in dows
            if check.dom_star or check.dow_star:
                matches = dom_ok and dow_ok
            else:
                matches = dom_ok or dow_ok
            if matches:
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        moment = day.replace(hour=hour, minute=minute)
                        if moment > after:
                            runs.append(moment)
                            if len(runs) == count:
                                return runs
        day += timedelta(days=1)
    return runs


def _one_line(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)[:120]


def cron_lines(profile: Any) -> str:
    """The /etc/cron.d/mdatp file the schedules step delivers (blank cron fields leave their job out)."""
    lines = [
        f"# {CRON_FILE_PATH}: Microsoft Defender for Endpoint jobs of mdefleet profile {_one_line(profile.name)!r}.",
        "# Written by mdefleet at each deployment; local edits are overwritten.",
        "SHELL=/bin/sh",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
    ]
    scan_cron = (profile.scan_cron or "").strip()
    if scan_cron:
        scan_type = profile.scan_type if profile.scan_type in SCAN_TYPES else DEFAULT_SCAN_TYPE
        lines.append(f"{scan_cron} root /usr/bin/mdatp scan {scan_type} > {SCAN_LOG} 2>&1")
    update_cron = (profile.update_cron or "").strip()
    if update_cron:
        lines.append(f"{update_cron} root yum update mdatp -y >> {UPDATE_LOG} 2>&1")
    # cron ignores a last line that does not end in a newline.
    return "\n".join(lines) + "\n"


def schedule_warnings(*, scan_cron: str, update_cron: str, agent_version: str) -> list[str]:
    """Warnings about a profile's two jobs, each prefixed with the job it concerns."""
    found: list[str] = []
    for label, expression in (("Scheduled scan", scan_cron), ("Agent update", update_cron)):
        if expression.strip():
            found += [f"{label}: {warning}" for warning in check_cron(expression).warnings]
    if update_cron.strip() and agent_version:
        found.append(
            f"Agent update: the agent version is pinned to {agent_version}, but the monthly update job will move "
            "hosts past it. Clear the update schedule to keep the pin."
        )
    if not update_cron.strip():
        found.append(
            "Agent update: no update job. Each agent version expires nine months after its release; plan updates."
        )
    return found
