"""Durations as people type them on an incident: ``90s``, ``15m``, ``2h``, ``1h30m``, ``2d``, ``60min``,
``90 minutes``, ``1 hour``."""

from __future__ import annotations

import re
from datetime import timedelta

# A number and a unit, as people write them: 90s, 15m, 2h, 1h30m, 2d, and spelt out with or without a
# space: 60min, 90 minutes, 1 hour, 1 hour 30 minutes.
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_PART = re.compile(r"\s*(\d{1,9})\s*([a-z]+)")
# Nothing in this product is ever granted for longer than a week; a larger number is a typo.
_LONGEST = timedelta(days=7)
EXAMPLES = "90s, 15m, 2h, 1h30m, 60min or 1 hour"


class DurationError(ValueError):
    """The text is not a duration this product accepts; the message says why."""


def parse_duration(text: str) -> timedelta:
    raw = text.strip().lower()
    total, at = 0, 0
    units: set[int] = set()
    while at < len(raw):
        match = _PART.match(raw, at)
        unit = _UNITS.get(match.group(2)) if match else None
        if match is None or unit is None or (units and unit >= min(units)):  # largest unit first, once each
            raise DurationError(f"'{text}' is not a duration; write it like {EXAMPLES}")
        units.add(unit)
        total += int(match.group(1)) * unit
        at = match.end()
    if not units:
        raise DurationError(f"'{text}' is not a duration; write it like {EXAMPLES}")
    value = timedelta(seconds=total)
    if value <= timedelta(0):
        raise DurationError(f"'{text}' is not a positive duration")
    if value > _LONGEST:
        raise DurationError(f"'{text}' is longer than any grant can be (7 days)")
    return value


def split_duration(text: str) -> tuple[str, str] | None:
    """The duration at the start of ``text`` and what follows it (``"1 hour fix it"`` is ``("1 hour",
    "fix it")``), or None when ``text`` does not start with one. The longest duration wins, so a
    reason that starts with a number (``2h 3 pods down``) keeps it when it has no unit."""
    words = text.split()
    for take in range(min(len(words), 6), 0, -1):
        candidate = " ".join(words[:take])
        try:
            parse_duration(candidate)
        except DurationError:
            continue
        rest = text.strip()[len(candidate) :] if text.strip().startswith(candidate) else " ".join(words[take:])
        return candidate, rest.strip()
    return None


def format_duration(value: timedelta) -> str:
    """The shortest text that ``parse_duration`` reads back as ``value`` (whole seconds)."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts)
