"""Durations as people type them on an incident: ``90s``, ``15m``, ``2h``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"(?:(?P<h>\d{1,9})h)?(?:(?P<m>\d{1,9})m)?(?:(?P<s>\d{1,9})s)?")
# Nothing in this product is ever granted for longer than a week; a larger number is a typo.
_LONGEST = timedelta(days=7)


class DurationError(ValueError):
    """The text is not a duration this product accepts; the message says why."""


def parse_duration(text: str) -> timedelta:
    raw = text.strip().lower()
    match = _DURATION_RE.fullmatch(raw)
    if not raw or match is None or not any(match.group(k) for k in ("h", "m", "s")):
        raise DurationError(f"'{text}' is not a duration; write it like 90s, 15m, 2h or 1h30m")
    value = timedelta(
        hours=int(match.group("h") or 0),
        minutes=int(match.group("m") or 0),
        seconds=int(match.group("s") or 0),
    )
    if value <= timedelta(0):
        raise DurationError(f"'{text}' is not a positive duration")
    if value > _LONGEST:
        raise DurationError(f"'{text}' is longer than any grant can be (7 days)")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest text that ``parse_duration`` reads back as ``value`` (whole seconds)."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts)
