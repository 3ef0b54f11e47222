"""Durations as typed on an incident: ``90s``, ``15m``, ``2h``, ``1h30m``."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h0m30s", timedelta(hours=1, seconds=30)),
        ("2H", timedelta(hours=2)),
        (" 45m ", timedelta(minutes=45)),
        ("168h", timedelta(days=7)),
        ("2d", timedelta(days=2)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("60min", timedelta(hours=1)),
        ("1 hour", timedelta(hours=1)),
        ("90 minutes", timedelta(minutes=90)),
        ("1 hour 30 minutes", timedelta(minutes=90)),
    ],
    ids=[
        "seconds",
        "minutes",
        "hours",
        "hours-and-minutes",
        "all-three",
        "upper-case",
        "padded",
        "a-week",
        "days",
        "space-inside",
        "min",
        "an-hour-in-words",
        "minutes-in-words",
        "both-in-words",
    ],
)
def test_parse_duration_reads_what_people_type(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is not a duration"),
        ("90", "is not a duration"),
        ("1 fortnight", "is not a duration"),
        ("1h1h", "is not a duration"),
        ("30m1h", "is not a duration"),
        ("-5m", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("soon", "is not a duration"),
        ("0m", "is not a positive duration"),
        ("0h0m0s", "is not a positive duration"),
        ("169h", "longer than any grant can be"),
        ("10081m", "longer than any grant can be"),
    ],
    ids=[
        "empty",
        "no-unit",
        "unknown-unit",
        "unit-twice",
        "units-out-of-order",
        "negative",
        "fraction",
        "word",
        "zero",
        "all-zero",
        "over-a-week-in-hours",
        "over-a-week-in-minutes",
    ],
)
def test_parse_duration_refuses_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(DurationError, match=says):
        parse_duration(text)


def test_refusal_tells_how_to_write_a_duration() -> None:
    with pytest.raises(DurationError) as raised:
        parse_duration("an hour")
    assert str(raised.value) == "'an hour' is not a duration; write it like 90s, 15m, 2h, 1h30m, 60min or 1 hour"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(hours=4), "4h"),
        (timedelta(hours=2, seconds=5), "2h5s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=-5), "0s"),
    ],
    ids=["seconds-over-a-minute", "minutes", "hours-and-minutes", "hours", "hours-and-seconds", "zero", "negative"],
)
def test_format_duration_is_the_shortest_form(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=7 * 24 * 3600))
def test_format_then_parse_gives_back_the_same_duration(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value
