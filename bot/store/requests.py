"""Requests in Redis, changed only through ``apply``: read, decide (pure), write with the audit entries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import redis

from bot.domain.audit import AuditEntry
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest, State
from bot.store.audit_log import AuditLog, Draft
from bot.store.automatic import AutomaticApprovals
from bot.store.escalations import Escalations
from bot.store.keys import Keys
from bot.store.kube_actions import ActionLedger
from bot.store.locks import RedisLock
from bot.store.outbox import Outbox
from bot.store.progress import RedisProgress

T = TypeVar("T")


@dataclass(frozen=True)
class Change(Generic[T]):
    """What a decision wants written: the request as it should be (None: unchanged), the audit
    entries, and a result handed back to the caller once the write has committed."""

    request: AccessRequest | None
    drafts: list[Draft] = field(default_factory=list)
    result: T | None = None


@dataclass(frozen=True)
class Applied(Generic[T]):
    request: AccessRequest | None
    entries: list[AuditEntry]
    result: T | None


class RequestExists(Exception):
    pass


class RequestStore:
    def __init__(self, client: redis.Redis, audit: AuditLog, prefix: str = "breakglass") -> None:
        self.redis = client
        self.audit = audit
        self.actions = ActionLedger(client, audit, prefix)
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.all_key = self.keys.requests
        self.pending_key = self.keys.pending
        self.approved_key = self.keys.approved
        self.active_key = self.keys.active
        self.progress = RedisProgress(client, prefix)
        self.outbox = Outbox(client, prefix)
        self.automatic = AutomaticApprovals(client, prefix)
        self.escalations = Escalations(client, prefix)

    def key(self, request_id: str) -> str:
        return self.keys.request(request_id)

    def claim(self, key: str, ttl: timedelta) -> bool:
        """Take ``key`` for ``ttl`` unless another holds it; left to lapse (the one lock, unreleased)."""
        return RedisLock(self.redis, key, ttl).acquire()

    def lock(self, key: str, ttl: timedelta) -> AbstractContextManager[bool]:
        """The one lock primitive (``bot.store.locks``): yields whether it was taken."""
        return RedisLock(self.redis, key, ttl).held()

    def get(self, request_id: str) -> AccessRequest | None:
        raw = self.redis.get(self.key(request_id))
        return AccessRequest.model_validate_json(raw) if raw else None

    def many(self, ids: Iterable[Any]) -> list[AccessRequest]:
        keys = [self.key(i) for i in ids]
        if not keys:
            return []
        return [AccessRequest.model_validate_json(raw) for raw in self.redis.mget(keys) if raw]

    def create(self, request: AccessRequest, drafts: list[Draft]) -> Applied[None]:
        def decide(current: AccessRequest | None) -> Change[None]:
            if current is not None:
                raise RequestExists(request.id)
            return Change(request, drafts)

        return self.apply(request.id, decide)

    def apply(self, request_id: str, decide: Callable[[AccessRequest | None], Change[T]]) -> Applied[T]:
        """Run ``decide`` on the current record and write its Change atomically.

        ``decide`` may run more than once (another writer got there first); it must be pure. It may
        raise to refuse, in which case nothing is written.
        """
        key = self.key(request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key, *self.audit.watch_keys)
                    raw = pipe.get(key)
                    current = AccessRequest.model_validate_json(raw) if raw else None
                    change = decide(current)
                    head = self.audit.read_head(pipe)
                    pipe.multi()
                    if change.request is not None:
                        self._queue_write(pipe, change.request)
                    entries = self.audit.queue_appends(pipe, head, change.drafts)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.audit.published(entries)
        return Applied(change.request if change.request is not None else current, entries, change.result)

    def _queue_write(self, pipe: redis.client.Pipeline, request: AccessRequest) -> None:
        pipe.set(self.key(request.id), request.model_dump_json())
        pipe.zadd(self.all_key, {request.id: request.created_at.timestamp()})
        for index in (self.pending_key, self.approved_key, self.active_key):
            pipe.zrem(index, request.id)
        if request.state is State.PENDING:
            pipe.zadd(self.pending_key, {request.id: request.created_at.timestamp()})
        elif request.state is State.APPROVED:
            pipe.zadd(self.approved_key, {request.id: request.updated_at.timestamp()})
        elif request.state is State.ACTIVE and request.expires_at is not None:
            pipe.zadd(self.active_key, {request.id: request.expires_at.timestamp()})
        if _review_owed(request):
            pipe.zadd(self.keys.reviews_owed, {request.id: request.updated_at.timestamp()})
        else:
            pipe.zrem(self.keys.reviews_owed, request.id)

    # --- queries ------------------------------------------------------------------------------

    def pending(self) -> list[AccessRequest]:
        return self.many(self.redis.zrange(self.pending_key, 0, -1))

    def approved(self) -> list[AccessRequest]:
        return self.many(self.redis.zrange(self.approved_key, 0, -1))

    def active(self) -> list[AccessRequest]:
        return self.many(self.redis.zrange(self.active_key, 0, -1))

    def overdue(self, before: datetime, limit: int = 500) -> list[RequestId]:
        """Active grants whose expiry is before ``before``, soonest first (the grant schedule's head)."""
        ids = self.redis.zrangebyscore(self.active_key, "-inf", before.timestamp(), start=0, num=limit)
        return [RequestId(str(i)) for i in ids]

    def next_expiry(self, after: datetime) -> datetime | None:
        """The soonest expiry of an active grant later than ``after`` (the grant schedule's next entry)."""
        found = self.redis.zrangebyscore(
            self.active_key, f"({after.timestamp()}", "+inf", start=0, num=1, withscores=True
        )
        return datetime.fromtimestamp(float(found[0][1]), UTC) if found else None

    def claim_daily(self, what: str, seconds: int) -> bool:
        """True for the first caller in ``seconds`` to claim ``what`` (a once-a-day duty): the one lock,
        taken and left to lapse, so a second process (or a second day's run inside the window) does
        not do the duty again."""
        return self.claim(self.keys.claimed(what), timedelta(seconds=seconds))

    def claim_reminder(self, request_id: str, expires_at: str, keep_for: timedelta) -> bool:
        """Mark the reminder for ``request_id``'s expiry ``expires_at`` as sent; False when it was
        already. The key holds the last expiry reminded of, and goes once that expiry has passed."""
        key = self.keys.reminded(request_id)
        seconds = max(int(keep_for.total_seconds()), 1)
        previous = self.redis.set(key, expires_at, ex=seconds, get=True)
        return previous != expires_at

    def release_reminder(self, request_id: str, expires_at: str) -> None:
        """Undo ``claim_reminder`` (its audit entry could not be written)."""
        key = self.keys.reminded(request_id)
        if self.redis.get(key) == expires_at:
            self.redis.delete(key)

    def count_refusal(self, person: str, window: timedelta) -> int:
        """Count one refused attempt by ``person``; how many in the current window (this one included).
        The counter expires with its window, so it never outlives it."""
        key = self.keys.refusals(person)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, int(window.total_seconds()), nx=True)
            count, _ = pipe.execute()
        return int(count)

    def reviews_owed(self) -> list[AccessRequest]:
        """Ended self-service grants whose review is owed, however old."""
        return self.many(self.redis.zrange(self.keys.reviews_owed, 0, -1))

    def recent(self, limit: int = 500) -> list[AccessRequest]:
        return self.many(self.redis.zrevrange(self.all_key, 0, limit - 1))

    def ids(self) -> list[RequestId]:
        return [RequestId(str(i)) for i in self.redis.zrange(self.all_key, 0, -1)]


def _review_owed(request: AccessRequest) -> bool:
    return (
        request.self_service
        and not request.extends
        and request.review_owed
        and request.state in (State.EXPIRED, State.REVOKED)
    )
