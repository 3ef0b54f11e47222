"""Escaping makes every ping and link a person could type inert; truncation and block limits cut cleanly."""

from __future__ import annotations

import pytest

from bot.slack.text import ELLIPSIS, escape, fit_blocks, truncate
from bot.standins.slack_api import render_blocks

PINGS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0000000BOB>",
    "<@U0000000BOB|bob>",
    "<#C0000INCIDENT>",
    "<!subteam^S123|sre>",
    "<http://evil.example|click me>",
    "<mailto:a@b.c|mail>",
    "<!date^1700000000^{date}|x>",
]


@pytest.mark.parametrize("typed", PINGS)
def test_escaped_pings_and_links_have_no_control_characters_left(typed: str) -> None:
    shown = escape(typed)
    assert "<" not in shown
    assert ">" not in shown


@pytest.mark.parametrize("typed", PINGS)
def test_escaped_text_reads_back_exactly_as_typed(typed: str) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": f"reason: {escape(typed)}"}}
    assert render_blocks([section], users={"U0000000BOB": "bob"}) == f"reason: {typed}"


def test_escape_turns_ampersand_first_so_typed_entities_stay_visible() -> None:
    assert escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("x" * 3000) == "x" * 3000


def test_truncate_cuts_to_the_limit_with_an_ellipsis() -> None:
    cut = truncate("word " * 1000, 3000)
    assert len(cut) <= 3000
    assert cut.endswith(ELLIPSIS)


def test_truncate_never_splits_an_escape() -> None:
    text = "a" * 8 + escape("<<<<")  # aaaaaaaa&lt;&lt;&lt;&lt;
    for limit in range(9, len(text)):
        cut = truncate(text, limit)
        body = cut.removesuffix(ELLIPSIS)
        assert body.count("&") == body.count(";"), cut
        assert len(cut) <= limit


def test_truncate_never_leaves_an_unclosed_mention() -> None:
    text = "approved by <@U0000000BOB> and <@U00000CAROL>"
    for limit in range(15, len(text)):
        body = truncate(text, limit).removesuffix(ELLIPSIS)
        assert body.count("<") == body.count(">"), body


def test_fit_blocks_keeps_within_the_limit_and_says_how_many_were_left_out() -> None:
    blocks = [{"type": "divider"} for _ in range(120)]
    fitted = fit_blocks(blocks, 50, "requests")
    assert len(fitted) == 50
    assert "71 more requests not shown" in fitted[-1]["elements"][0]["text"]
    assert fit_blocks(blocks[:50], 50) == blocks[:50]
