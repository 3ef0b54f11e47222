"""Text that is safe to show in Slack, and fits Slack's limits. Pure functions, no Slack calls.

Slack reads ``&``, ``<`` and ``>`` as control characters in mrkdwn and in a message's ``text``:
``<!channel>`` pings a channel, ``<@U…>`` mentions someone, ``<http://x|y>`` hides a link behind a
label. Anything a person typed (a reason, a review) goes through ``escape`` before it reaches Slack,
so it is shown exactly as typed and triggers nothing. Renderers also mark such text objects
``verbatim`` so Slack does not auto-link bare URLs or channel names inside them.

Limits (Slack refuses, or worse, silently cuts): 3,000 characters in a section or context text,
50 blocks in a message, 100 in a modal or the Home tab. ``truncate`` and ``fit_blocks`` cut cleanly
with an ellipsis and a note, never in the middle of an escape (``&amp;``) or a ``<…>`` token of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TEXT_LIMIT = 3000  # section text, context element, mrkdwn text object
FIELD_LIMIT = 2000  # a section field
HEADER_LIMIT = 150
BUTTON_LIMIT = 75
OPTION_LIMIT = 75  # option text in a select
TITLE_LIMIT = 24  # modal title, submit, close
MESSAGE_TEXT_LIMIT = 4000  # what we allow in a message's fallback ``text`` (Slack truncates past 4,000)
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
ELLIPSIS = "…"

Block = dict[str, Any]


def escape(text: str) -> str:
    """``text`` as Slack should show it literally: ``&``, ``<`` and ``>`` become entities.

    ``&`` first, so an entity the person typed (``&lt;``) stays visible as typed rather than turning
    into a ``<`` that Slack would then parse.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Text as the person typed it, from Slack's escaped form (slash command text arrives with ``&``,
    ``<`` and ``>`` escaped). Only for reading; anything shown again goes through ``escape``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def truncate(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, ending with an ellipsis when it was cut.

    The cut never splits an entity (``&amp;``) or a Slack token (``<@U123>``), which would leave a
    stray ``&`` or an unclosed ``<`` for Slack to misread; it backs off to before them instead.
    """
    if limit < len(ELLIPSIS):
        raise ValueError("limit is too small to hold the ellipsis")
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    head = text[:cut]
    opened = head.rfind("<")
    if opened > head.rfind(">"):
        head = head[:opened]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        rest = text[amp : amp + 8]
        if ";" in rest:  # an entity the cut would split
            head = head[:amp]
    return head.rstrip() + ELLIPSIS


def fit_blocks(blocks: Sequence[Block], limit: int = MESSAGE_BLOCKS, what: str = "items") -> list[Block]:
    """``blocks`` cut to ``limit``, the last one saying how many were left out."""
    if len(blocks) <= limit:
        return list(blocks)
    kept = list(blocks[: limit - 1])
    left_out = len(blocks) - len(kept)
    kept.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{ELLIPSIS} {left_out} more {what} not shown."}],
        }
    )
    return kept
