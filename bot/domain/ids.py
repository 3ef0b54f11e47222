"""Identifiers that must not be mixed up with each other, and request ids."""

from __future__ import annotations

import re
import secrets
from typing import NewType

SlackUserId = NewType("SlackUserId", str)
SlackTeamId = NewType("SlackTeamId", str)
SlackChannelId = NewType("SlackChannelId", str)
RequestId = NewType("RequestId", str)

# Crockford-like: no 0/O, 1/I/L, U, so an id read aloud on an incident call is not misheard.
REQUEST_ID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REQUEST_ID_LENGTH = 6
_REQUEST_ID_RE = re.compile(rf"BG-[{REQUEST_ID_ALPHABET}]{{{REQUEST_ID_LENGTH}}}")
_SLACK_USER_RE = re.compile(r"[UW][A-Z0-9]{2,}")


def new_request_id() -> RequestId:
    return RequestId("BG-" + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(REQUEST_ID_LENGTH)))


def parse_request_id(text: str) -> RequestId | None:
    """The canonical id for ``text`` (case-insensitive), or None when it is not a request id."""
    candidate = text.strip().upper()
    return RequestId(candidate) if _REQUEST_ID_RE.fullmatch(candidate) else None


def is_slack_user_id(text: str) -> bool:
    return _SLACK_USER_RE.fullmatch(text) is not None
