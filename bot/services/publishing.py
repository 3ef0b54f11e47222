"""Keeping Slack in step with the audit log: each request's thread shows its entries, in order, once.

A cursor per request records the last entry posted. Only one publisher works on a request at a time
(a short Redis lock), so replies never interleave out of order even with several workers; a
publisher that dies mid-way leaves the cursor behind, and the next run posts from there (at worst one
reply twice, never one lost).
"""

from __future__ import annotations

import uuid

import redis

from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest
from bot.ports import Notifier, TemporaryError
from bot.store import Change, RequestStore

LOCK_SECONDS = 30


class Publisher:
    def __init__(self, store: RequestStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier
        self.redis: redis.Redis = store.redis

    def cursor_key(self, request_id: str) -> str:
        return f"{self.store.prefix}:published:{request_id}"

    def publish(self, request_id: RequestId) -> int:
        """Post what is new for ``request_id``; returns how many entries were posted."""
        lock_key = f"{self.store.prefix}:publishing:{request_id}"
        token = uuid.uuid4().hex
        if not self.redis.set(lock_key, token, nx=True, ex=LOCK_SECONDS):
            raise TemporaryError(f"{request_id} is being published by another worker", delay=1.0)
        try:
            return self._publish(request_id)
        finally:
            # Release only our own lock (it may have expired and been taken by another worker).
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(lock_key)
                    if pipe.get(lock_key) == token:
                        pipe.multi()
                        pipe.delete(lock_key)
                        pipe.execute()
                except redis.WatchError:
                    pass

    def _publish(self, request_id: RequestId) -> int:
        request = self.store.get(request_id)
        if request is None:
            return 0
        cursor = int(self.redis.get(self.cursor_key(request_id)) or 0)
        entries = self.store.audit.for_request(request_id, after_seq=cursor)
        if not entries and request.message_ts is not None:
            return 0
        ts = self.notifier.publish(request, entries)
        if ts and request.message_ts != ts:
            self._remember_message(request_id, ts)
        if entries:
            self.redis.set(self.cursor_key(request_id), entries[-1].seq)
        return len(entries)

    def _remember_message(self, request_id: RequestId, ts: str) -> None:
        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.message_ts == ts:
                return Change(None)
            # Not a change of state, so no audit entry and no version bump that would look like one.
            return Change(current.model_copy(update={"message_ts": ts}))

        self.store.apply(request_id, decide)
