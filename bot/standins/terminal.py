"""Slack mrkdwn, as the demo prints it in a terminal: bold as bold, emoji as characters, code set apart,
and no line wider than the page.

Only what breakglass's own messages use is rendered (``*bold*``, ``_italic_``, `` `code` ``,
``:emoji:``); text the Slack double has already turned into ``@name`` and dates stays as it is. On a
terminal that understands escape codes bold and code get them; anywhere else (a pipe, a file, a test)
the markers are simply removed, so the printout reads as Slack shows it.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable

WIDTH = 100

# The emoji breakglass's wording uses (bot/slack/wording.py), as the characters Slack shows. Those that
# take two columns in a terminal are counted so by ``columns``.
EMOJI = {
    "alarm_clock": "⏰",
    "ballot_box_with_check": "☑",
    "bell": "🔔",
    "broom": "🧹",
    "heavy_minus_sign": "➖",
    "heavy_plus_sign": "➕",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "inbox_tray": "📥",
    "information_source": "ℹ",
    "key": "🔑",
    "closed_lock_with_key": "🔐",
    "lock": "🔒",
    "mag": "🔍",
    "memo": "📝",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "repeat": "🔁",
    "rotating_light": "🚨",
    "unlock": "🔓",
    "warning": "⚠",
    "white_check_mark": "✅",
    "x": "❌",
}
_WIDE_BELOW_EMOJI_PLANE = set("⏰⌛⏳⛔✅❌➕➖")

_EMOJI = re.compile(r":([a-z0-9_+-]+):")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def to_terminal(mrkdwn: str, *, styled: bool = False) -> str:
    """``mrkdwn`` with its markers rendered (``styled``: ANSI bold, dim italic, cyan code) or removed."""

    def style(code: str) -> Callable[[re.Match[str]], str]:
        return lambda m: f"\x1b[{code}m{m.group(1)}\x1b[0m" if styled else m.group(1)

    text = _CODE.sub(style("36"), mrkdwn)
    text = _BOLD.sub(style("1"), text)
    text = _ITALIC.sub(style("3"), text)
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), "" if m.group(1) == "slack" else m.group(0)), text)


def columns(text: str) -> int:
    """How many terminal columns ``text`` takes: escape codes none, most emoji two."""
    plain = _ESCAPE.sub("", text)
    return len(plain) + sum(1 for ch in plain if ord(ch) >= 0x1F000 or ch in _WIDE_BELOW_EMOJI_PLANE)


def wrapped(text: str, indent: int = 0, width: int = WIDTH) -> list[str]:
    """``text`` (already rendered) as lines of at most ``width`` columns, each indented by ``indent``;
    a continuation is indented two more, so a wrapped line reads as one."""
    out: list[str] = []
    for line in text.splitlines() or [""]:
        pad = " " * indent
        if columns(pad + line) <= width:
            out.append((pad + line).rstrip())
            continue
        room = width - indent - 2  # emoji counted double: leave their extra column spare
        extra = columns(line) - len(_ESCAPE.sub("", line))
        pieces = textwrap.wrap(line, width=max(room - extra, 20), break_long_words=True, break_on_hyphens=False)
        out.append(pad + pieces[0])
        out.extend(pad + "  " + piece for piece in pieces[1:])
    return out
