"""Wave plans: turning ``["1", "5%", "25%", "100%"]`` into wave sizes for N hosts."""

from __future__ import annotations

import math
import re

# ASCII digits only: fullwidth or Arabic-Indic digits would pass \d and read as numbers.
_ENTRY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$", re.ASCII)


class PlanError(ValueError):
    """A wave plan that cannot be used; the message says which entry and why."""


def parse_plan(text_or_list: str | list[str]) -> list[str]:
    """Normalise a plan given as ``"1, 5%, 25%, 100%"`` or a list; refuse bad entries."""
    entries = text_or_list.split(",") if isinstance(text_or_list, str) else [str(e) for e in text_or_list]
    entries = [e.strip() for e in entries if e.strip()]
    if not entries:
        raise PlanError("the wave plan is empty: give sizes or percentages, e.g. 1, 5%, 25%, 100%")
    if len(entries) > 50:
        raise PlanError("at most 50 waves")
    previous_pct = 0.0
    for position, entry in enumerate(entries, start=1):
        match = _ENTRY.match(entry)
        if not match:
            raise PlanError(f"wave {position}: {entry!r} is neither a host count (5) nor a percentage (5%)")
        value, pct = float(match.group(1)), match.group(2) == "%"
        if pct:
            if not 0 < value <= 100:
                raise PlanError(f"wave {position}: {entry} must be above 0% and at most 100%")
            if value <= previous_pct:
                raise PlanError(
                    f"wave {position}: percentages are cumulative and must grow ({entry} after {previous_pct:g}%)"
                )
            previous_pct = value
        elif value < 1 or value != int(value):
            raise PlanError(f"wave {position}: {entry} must be a whole number of hosts, at least 1")
    return [e.replace(" ", "") for e in entries]


def plan_sizes(plan: list[str], total: int) -> list[int]:
    """Wave sizes for ``total`` hosts.

    A count is that many hosts; a percentage is the cumulative share of all hosts done by the end
    of that wave (so ``1, 5%, 25%, 100%`` is a canary, then up to 5%, 25%, everything). Empty waves
    are dropped and the last wave takes whatever is left.
    """
    sizes: list[int] = []
    done = 0
    for entry in parse_plan(plan):
        if done >= total:
            break
        if entry.endswith("%"):
            target = math.ceil(total * float(entry[:-1]) / 100)
            size = max(target - done, 0)
        else:
            size = min(int(entry), total - done)
        if size > 0:
            sizes.append(size)
            done += size
    if done < total:
        if sizes:
            sizes[-1] += total - done
        else:
            sizes.append(total)
    return sizes
