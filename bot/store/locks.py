"""The one Redis lock: taken with ``SET NX PX`` under a random token, renewed and released only by
its holder (the token is compared inside one Lua script), lapsing by itself if the holder dies.

A holder that stalled past its TTL can never extend or delete the lock someone else has taken since.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import redis

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLock:
    def __init__(self, client: redis.Redis, key: str, ttl: timedelta) -> None:
        self.redis = client
        self.key = key
        self.ttl_ms = max(int(ttl.total_seconds() * 1000), 100)
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extend the lock if it is still ours. False: it lapsed (and may be someone else's now)."""
        return bool(self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> bool:
        """Delete the lock if it is still ours; never anyone else's."""
        return bool(self.redis.eval(_RELEASE, 1, self.key, self.token))

    @contextmanager
    def held(self) -> Iterator[bool]:
        """Yields whether the lock was taken, and releases it (if still ours) on the way out."""
        if not self.acquire():
            yield False
            return
        try:
            yield True
        finally:
            self.release()
