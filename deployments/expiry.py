"""Agent-version expiry: each Defender for Endpoint on Linux version expires nine months after release.

The release date comes from ``deployments/data/mdatp_releases.json`` (the vendor's release notes)
or, for a build not listed, from the month its version encodes: ``101.YYMMX.NNNN`` names the build
month, and builds were released one to three months later, so an unlisted build is taken as
released on the 1st of the following month — early rather than late, so a warning is never late.
Builds of the older ``101.NN.NN`` numbering (2021-2022) are all long expired.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from django.db.models import Q

EXPIRY_MONTHS = 9
WARN_DAYS = 30
RELEASES_FILE = Path(__file__).resolve().parent / "data" / "mdatp_releases.json"
VERSION_RE = re.compile(r"^101\.(\d{2})(\d{2})(\d)\.(\d{4})")
OLD_VERSION_RE = re.compile(r"^101\.\d{1,3}\.\d+")
# The older scheme ended in 2022; its builds expired by 2023 at the latest.
OLD_SCHEME_RELEASED = date(2022, 1, 1)


@dataclass(frozen=True)
class AgentRelease:
    """When a version was released, by what evidence, and when it expires."""

    version: str
    released: date
    source: str  # "release notes" or "version month"
    expires: date

    def days_left(self, today: date) -> int:
        return (self.expires - today).days


@cache
def release_table() -> dict[str, date]:
    """Build → release date, from the data file."""
    data = json.loads(RELEASES_FILE.read_text(encoding="utf-8"))
    return {version: date.fromisoformat(day) for version, day in data["releases"].items()}


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has fewer days)."""
    import calendar

    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def encoded_release(version: str) -> date | None:
    """The earliest plausible release of a 101.YYMMX.NNNN build: the 1st of the month after YYMM."""
    match = VERSION_RE.match(version.strip())
    if not match:
        return None
    year, month = 2000 + int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return add_months(date(year, month, 1), 1)


def _base(version: str) -> str:
    """``101.25092.0003_external`` and ``101.25092.0003-1`` → ``101.25092.0003``."""
    match = VERSION_RE.match(version.strip())
    return match.group(0) if match else version.strip()


def agent_release(version: str) -> AgentRelease | None:
    """Release and expiry of an installed version; None when the text is not an mdatp version."""
    if not version:
        return None
    base = _base(version)
    released = release_table().get(base)
    source = "release notes"
    if released is None:
        released = encoded_release(base)
        source = "version month"
    if released is None and OLD_VERSION_RE.match(base):
        released, source = OLD_SCHEME_RELEASED, "older version scheme"
    if released is None:
        return None
    return AgentRelease(version=version, released=released, source=source, expires=add_months(released, EXPIRY_MONTHS))


def is_expiring(release: AgentRelease | None, today: date, warn_days: int = WARN_DAYS) -> bool:
    """Expired, or expiring within ``warn_days``."""
    return release is not None and release.days_left(today) <= warn_days


def candidate_filter(today: date, warn_days: int = WARN_DAYS) -> Q:
    """A database filter on ``agent_version`` that every expiring version passes (a superset).

    Versions of the current scheme compare as text (five digits after ``101.``): every build whose
    encoded month is at most the last month that can be expiring by ``today + warn_days`` sorts
    below ``101.<that month + 1>``. The release table never dates a build before its encoded
    fallback (tested), so the fallback bounds it.
    """
    from datetime import timedelta

    horizon = today + timedelta(days=warn_days)
    # expires = encoded_release + 9 months ≤ horizon  ⇔  encoded month + 10 months ≤ horizon's month.
    last = add_months(date(horizon.year, horizon.month, 1), -(EXPIRY_MONTHS + 1))
    upper = add_months(last, 1)
    bound = f"101.{upper.year % 100:02d}{upper.month:02d}"
    return Q(agent_version__regex=r"^101\.\d{5}\.", agent_version__lt=bound) | Q(
        agent_version__regex=r"^101\.\d{1,3}\."
    )


def expiring_hosts(*, today: date, warn_days: int = WARN_DAYS, limit: int | None = None) -> list[dict[str, Any]]:
    """Hosts whose installed agent has expired or expires within ``warn_days``, soonest first (one query)."""
    from hosts.models import Host

    rows = (
        Host.objects.filter(candidate_filter(today, warn_days))
        .exclude(agent_version="")
        .values("id", "name", "address", "agent_version", "agent_state")
        .order_by("agent_version", "name")
    )
    found = []
    for row in rows:
        release = agent_release(row["agent_version"])
        if release is not None and is_expiring(release, today, warn_days):
            found.append({**row, "expires": release.expires, "days_left": release.days_left(today),
                          "source": release.source, "expired": release.days_left(today) < 0})  # fmt: skip
    found.sort(key=lambda h: (h["expires"], h["name"]))
    return found[:limit] if limit is not None else found
