"""Block Kit rendered as a person reads it in Slack, and finding a button in blocks.

Pure: no state, no HTTP; user and channel names are passed in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.standins.slack.blockkit import SELECTS, JsonDict

_SPECIAL = re.compile(r"<([^<>]*)>")


def render_mrkdwn(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (users.get(target[1:]) or label or target[1:])
        if target.startswith("#"):
            return "#" + (label or channels.get(target[1:]) or target[1:])
        if target.startswith("!subteam^"):
            return label or "@group"
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!"):
            return "@" + target[1:]
        return label or target

    return html.unescape(_SPECIAL.sub(replace, text))


def _text_of(obj: Any, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    if not isinstance(obj, dict):
        return str(obj) if obj is not None else ""
    text = str(obj.get("text", ""))
    # Slack parses mentions and links only in mrkdwn; plain_text is shown exactly as sent.
    return render_mrkdwn(text, users, channels) if obj.get("type") == "mrkdwn" else text


def _element_label(element: Any, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "button":
        return f"[{_text_of(element.get('text'), users, channels)}]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind == "overflow":
        return "[⋯]"
    placeholder = element.get("placeholder")
    label = _text_of(placeholder, users, channels) if placeholder else str(kind)
    return f"[{label} ▾]" if kind in SELECTS else f"[{label}]"


def _rich_text(element: Any) -> str:
    if isinstance(element, dict):
        if "text" in element and isinstance(element["text"], str):
            return element["text"]
        if element.get("type") == "user":
            return "@" + str(element.get("user_id", ""))
        if element.get("type") == "link":
            return str(element.get("text") or element.get("url", ""))
        return "".join(_rich_text(e) for e in element.get("elements", []))
    return ""


def render_blocks(
    blocks: Sequence[Mapping[str, Any]],
    *,
    users: Mapping[str, str] | None = None,
    channels: Mapping[str, str] | None = None,
) -> str:
    """Block Kit as plain text, one line per visual line: buttons as ``[Approve]``, dividers as a rule."""
    users = users or {}
    channels = channels or {}
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(_text_of(block.get("text"), users, channels))
        elif kind == "section":
            if block.get("text"):
                lines.extend(_text_of(block["text"], users, channels).splitlines())
            for item in block.get("fields") or []:
                lines.extend(_text_of(item, users, channels).splitlines())
            if block.get("accessory"):
                lines.append(_element_label(block["accessory"], users, channels))
        elif kind == "context":
            parts = []
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "image":
                    parts.append(_element_label(element, users, channels))
                else:
                    parts.append(_text_of(element, users, channels))
            lines.extend("  ".join(parts).splitlines())
        elif kind == "actions":
            lines.append(" ".join(_element_label(e, users, channels) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("─" * 24)
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "input":
            label = _text_of(block.get("label"), users, channels)
            lines.append(f"{label}: {_element_label(block.get('element'), users, channels)}")
        elif kind == "rich_text":
            lines.extend(_rich_text(block).splitlines())
        elif kind == "markdown":
            lines.extend(str(block.get("text", "")).splitlines())
    return "\n".join(lines)


def format_ts(ts: str, *, full: bool = False) -> str:
    at = datetime.fromtimestamp(float(ts), UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC" if full else "%H:%M:%S")


def iter_buttons(blocks: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str | None, JsonDict]]:
    """Every button in ``blocks`` with the ``block_id`` of the block that holds it."""
    for block in blocks:
        block_id = block.get("block_id")
        if block.get("type") == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "button":
                    yield block_id, element
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "button":
            yield block_id, accessory


def find_button(
    blocks: Iterable[Mapping[str, Any]], action_id: str, value: str | None = None
) -> tuple[str | None, JsonDict] | None:
    """The first button with ``action_id`` (and ``value``, if given) in ``blocks``, with its block id."""
    for block_id, button in iter_buttons(blocks):
        if button.get("action_id") == action_id and (value is None or button.get("value") == value):
            return block_id, button
    return None
