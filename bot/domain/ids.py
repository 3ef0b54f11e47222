"""Identifiers that must not be mixed up with each other, and request ids."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NewType

SlackUserId = NewType("SlackUserId", str)
RequestId = NewType("RequestId", str)

# Crockford-like: no 0/O, 1/I/L, U, so an id read aloud on an incident call is not misheard.
REQUEST_ID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REQUEST_ID_LENGTH = 6
_REQUEST_ID_RE = re.compile(rf"BG-[{REQUEST_ID_ALPHABET}]{{{REQUEST_ID_LENGTH}}}")
_SLACK_USER_RE = re.compile(r"[UW][A-Z0-9]{2,}")


def new_request_id() -> RequestId:
    return RequestId("BG-" + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(REQUEST_ID_LENGTH)))


def request_id_for(submission: str) -> RequestId:
    """The request id a submission (e.g. one form, by its Slack view id) is first tried under: the
    same submission delivered twice lands on the same id, so the store's create refuses the second."""
    number = int.from_bytes(hashlib.sha256(submission.encode()).digest()[:8], "big")
    chars = []
    for _ in range(REQUEST_ID_LENGTH):
        number, index = divmod(number, len(REQUEST_ID_ALPHABET))
        chars.append(REQUEST_ID_ALPHABET[index])
    return RequestId("BG-" + "".join(chars))


def parse_request_id(text: str) -> RequestId | None:
    """The canonical id for ``text`` (case-insensitive), or None when it is not a request id."""
    candidate = text.strip().upper()
    return RequestId(candidate) if _REQUEST_ID_RE.fullmatch(candidate) else None


def is_slack_user_id(text: str) -> bool:
    return _SLACK_USER_RE.fullmatch(text) is not None
