"""The demo's terminal rendering of Slack mrkdwn."""

from __future__ import annotations

from bot.standins.terminal import columns, to_terminal, wrapped


def test_markers_are_rendered_or_removed_and_emoji_become_characters() -> None:
    text = ":unlock: You now have *admin* on `prod/payments` for _1h_."
    assert to_terminal(text) == "🔓 You now have admin on prod/payments for 1h."
    assert to_terminal(text, styled=True) == (
        "🔓 You now have \x1b[1madmin\x1b[0m on \x1b[36mprod/payments\x1b[0m for \x1b[3m1h\x1b[0m."
    )


def test_an_unknown_emoji_and_a_lone_asterisk_stay_as_they_are() -> None:
    assert to_terminal(":custom_thing: 2 * 3 = 6") == ":custom_thing: 2 * 3 = 6"


def test_lines_are_wrapped_within_the_width_counting_wide_emoji_twice() -> None:
    lines = wrapped("🚨 " + "word " * 60, indent=4, width=100)
    assert len(lines) > 1
    assert all(columns(line) <= 100 for line in lines)
    assert lines[1].startswith("      ")  # a continuation is indented under its first line
