"""Structured logs: one JSON object per line on standard output, carrying the request id.

Secrets must never reach a log line. Settings keep tokens in SecretStr, and as a second line of
defence every formatted line is scrubbed of anything shaped like a Slack token or a bearer token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from bot.domain.ids import REQUEST_ID_ALPHABET, REQUEST_ID_LENGTH

_SECRET_SHAPES = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9._-]+)"
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# A line that does not say which request it is about but names exactly one (RQ's own lines name the
# job, "publish-BG-7K2QXM") gets it as its request_id field, so a log pipeline can follow one request
# through every process without parsing messages.
_REQUEST_ID_IN_TEXT = re.compile(rf"(?<![A-Za-z0-9])BG-[{REQUEST_ID_ALPHABET}]{{{REQUEST_ID_LENGTH}}}(?![A-Za-z0-9])")


def scrub(text: str) -> str:
    return _SECRET_SHAPES.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["error"] = self.formatException(record.exc_info)
        if "request_id" not in body:
            named = set(_REQUEST_ID_IN_TEXT.findall(body["message"]))
            if len(named) == 1:
                body["request_id"] = named.pop()
        return scrub(json.dumps(body, default=str, ensure_ascii=False))


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
