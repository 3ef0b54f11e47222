"""Reading the API server's audit webhook batches: one event at a time, each cut to what is recorded.

A batch (an ``audit.k8s.io/v1`` ``EventList``) may be up to 16 MiB, and the events of a holder logged
at ``RequestResponse`` carry whole objects. Decoding the batch at once holds every event as Python
objects (an 11 MiB batch cost about 84 MiB); here the list is walked item by item and each event is
reduced, as it is decoded, to the fields the action record uses, every string capped. The raw body is
the largest thing held. A value of the wrong shape (``user: "x"``, ``objectRef: []``) becomes absent,
never an error: one odd event must not lose the batch.

To record more of an event, add its field to ``_KEPT`` (and keep the cap).
"""

from __future__ import annotations

import json
from typing import Any

MAX_FIELD_CHARS = 512
MAX_GROUPS = 32

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\n\r"

# field -> None (a scalar) or the sub-fields kept of an object
_KEPT: dict[str, tuple[str, ...] | None] = {
    "auditID": None,
    "stage": None,
    "level": None,
    "verb": None,
    "requestURI": None,
    "requestReceivedTimestamp": None,
    "stageTimestamp": None,
    "user": ("username", "uid", "groups"),
    "impersonatedUser": ("username", "groups"),
    "objectRef": ("resource", "subresource", "apiGroup", "apiVersion", "namespace", "name", "uid"),
    "responseStatus": ("code", "reason"),
}


class MalformedEventList(ValueError):
    """The body is not a JSON object with an ``items`` list."""


def read_event_list(text: str) -> dict[str, Any]:
    """``{"kind", "apiVersion", "items": [event, …]}`` from a batch's text, each event cut down."""
    batch: dict[str, Any] = {}
    at = _skip(text, 0)
    if text[at : at + 1] != "{":
        raise MalformedEventList("expected a JSON object")
    at = _skip(text, at + 1)
    if text[at : at + 1] == "}":
        return batch
    while True:
        key, at = _decode(text, at)
        if not isinstance(key, str):
            raise MalformedEventList("expected a key")
        at = _expect(text, at, ":")
        if key == "items":
            batch["items"], at = _items(text, at)
        else:
            value, at = _decode(text, at)
            if key in ("kind", "apiVersion") and isinstance(value, str):
                batch[key] = value[:MAX_FIELD_CHARS]
        at = _skip(text, at)
        if text[at : at + 1] == "}":
            if _skip(text, at + 1) != len(text):
                raise MalformedEventList("text after the object")
            return batch
        at = _expect(text, at, ",")


def _items(text: str, at: int) -> tuple[list[dict[str, Any]], int]:
    at = _skip(text, at)
    if text[at : at + 1] != "[":
        raise MalformedEventList("items is not a list")
    items: list[dict[str, Any]] = []
    at = _skip(text, at + 1)
    if text[at : at + 1] == "]":
        return items, at + 1
    while True:
        item, at = _decode(text, at)
        if isinstance(item, dict):
            items.append(cut_event(item))
        del item  # the whole event is dropped before the next is decoded
        at = _skip(text, at)
        if text[at : at + 1] == "]":
            return items, at + 1
        at = _expect(text, at, ",")


def cut_event(item: dict[str, Any]) -> dict[str, Any]:
    """The event with only the kept fields, of the right shapes, strings capped."""
    event: dict[str, Any] = {}
    for field, sub_fields in _KEPT.items():
        value = item.get(field)
        if sub_fields is None:
            kept = _scalar(value)
            if kept is not None:
                event[field] = kept
        elif isinstance(value, dict):
            inner: dict[str, Any] = {}
            for sub in sub_fields:
                sub_value = value.get(sub)
                if sub == "groups" and isinstance(sub_value, list):
                    inner[sub] = [g[:MAX_FIELD_CHARS] for g in sub_value[:MAX_GROUPS] if isinstance(g, str)]
                elif (kept := _scalar(sub_value)) is not None:
                    inner[sub] = kept
            event[field] = inner
    return event


def _scalar(value: object) -> str | int | None:
    if isinstance(value, str):
        return value[:MAX_FIELD_CHARS]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return value
    return None


def _decode(text: str, at: int) -> tuple[Any, int]:
    try:
        return _decoder.raw_decode(text, _skip(text, at))
    except json.JSONDecodeError as exc:
        raise MalformedEventList(f"not JSON at character {exc.pos}") from None
    except RecursionError:
        raise MalformedEventList("nested too deeply") from None


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _expect(text: str, at: int, char: str) -> int:
    at = _skip(text, at)
    if text[at : at + 1] != char:
        raise MalformedEventList(f"expected {char!r} at character {at}")
    return at + 1
