"""What Slack has been shown of each request: the one record of publishing progress.

Per request, one hash: the root message's channel and ``ts`` (written right after it is posted, before
any reply), the highest audit seq whose thread reply went out, and the highest whose reply and DMs all
went out (``done``: the publisher's cursor). The notifier writes it as it goes, so a retry resumes
where the last attempt stopped; the publisher reads ``done`` to know what is new.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Protocol

import redis

from bot.store.keys import Keys

PROGRESS_DAYS = 90


class PublishProgress(Protocol):
    """What has already been sent to Slack for each request (see the module docstring)."""

    def root(self, request_id: str) -> tuple[str, str] | None:
        """(channel, ts) of the request's root message, if one was posted."""
        ...

    def remember_root(self, request_id: str, channel: str, ts: str) -> None: ...

    def replied(self, request_id: str) -> int:
        """The highest audit seq whose thread reply was posted (0: none)."""
        ...

    def mark_replied(self, request_id: str, seq: int) -> None: ...

    def done(self, request_id: str) -> int:
        """The highest audit seq whose reply and DMs were all sent (0: none)."""
        ...

    def mark_done(self, request_id: str, seq: int) -> None: ...


class RedisProgress:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.keys = Keys(prefix)
        self.ttl = timedelta(days=PROGRESS_DAYS)

    def _key(self, request_id: str) -> str:
        return self.keys.published(request_id)

    def root(self, request_id: str) -> tuple[str, str] | None:
        channel, ts = self.redis.hmget(self._key(request_id), ["channel", "ts"])
        return (str(channel), str(ts)) if channel and ts else None

    def remember_root(self, request_id: str, channel: str, ts: str) -> None:
        key = self._key(request_id)
        self.redis.hset(key, mapping={"channel": channel, "ts": ts})
        self.redis.expire(key, self.ttl)

    def replied(self, request_id: str) -> int:
        return int(self.redis.hget(self._key(request_id), "replied") or 0)

    def mark_replied(self, request_id: str, seq: int) -> None:
        self.redis.hset(self._key(request_id), "replied", seq)

    def done(self, request_id: str) -> int:
        return int(self.redis.hget(self._key(request_id), "done") or 0)

    def mark_done(self, request_id: str, seq: int) -> None:
        self.redis.hset(self._key(request_id), "done", seq)


class MemoryProgress:
    """``PublishProgress`` in memory: tests, and single-process demos."""

    def __init__(self) -> None:
        self._roots: dict[str, tuple[str, str]] = {}
        self._replied: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()

    def root(self, request_id: str) -> tuple[str, str] | None:
        with self._lock:
            return self._roots.get(request_id)

    def remember_root(self, request_id: str, channel: str, ts: str) -> None:
        with self._lock:
            self._roots[request_id] = (channel, ts)

    def replied(self, request_id: str) -> int:
        with self._lock:
            return self._replied.get(request_id, 0)

    def mark_replied(self, request_id: str, seq: int) -> None:
        with self._lock:
            self._replied[request_id] = seq

    def done(self, request_id: str) -> int:
        with self._lock:
            return self._done.get(request_id, 0)

    def mark_done(self, request_id: str, seq: int) -> None:
        with self._lock:
            self._done[request_id] = seq
