"""How far the audit log's durable copy (``BREAKGLASS_AUDIT_SINK``) has got, kept in Redis so that every
process can tell: ``/metrics``, ``/readyz`` and ``doctor`` read it; the worker copying entries writes it.

It is a report, not the cursor: where to continue is read from the sink itself (its head record), so
that losing or editing this key can neither skip entries nor copy any twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from bot.domain.audit_sink import SinkHead
from bot.store.keys import Keys


@dataclass(frozen=True)
class SinkProgress:
    chain: str | None
    seq: int  # the newest entry copied (0: none yet)
    behind: int  # entries in Redis not yet copied when last looked
    copied_at: datetime | None  # the last successful copy (or look that found nothing to copy)
    failing_since: datetime | None  # None while copying works
    error: str  # the last failure, one sentence (no credentials, no response bodies)

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


class SinkProgressStore:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.key = Keys(prefix).audit_sink

    def copied(self, head: SinkHead | None, behind: int, at: datetime) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key, mapping={"copied_at": at.isoformat(), "behind": behind})
            if head is not None:
                pipe.hset(self.key, mapping={"chain": head.chain, "seq": head.seq})
            pipe.hdel(self.key, "failing_since", "error")
            pipe.execute()

    def failed(self, error: str, behind: int, at: datetime) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hsetnx(self.key, "failing_since", at.isoformat())
            pipe.hset(self.key, mapping={"error": error, "behind": behind})
            pipe.execute()

    def read(self) -> SinkProgress | None:
        raw: dict[str, str] = self.redis.hgetall(self.key)  # type: ignore[assignment]  # decode_responses
        if not raw:
            return None
        return SinkProgress(
            chain=raw.get("chain") or None,
            seq=int(raw.get("seq") or 0),
            behind=int(raw.get("behind") or 0),
            copied_at=_instant(raw.get("copied_at")),
            failing_since=_instant(raw.get("failing_since")),
            error=str(raw.get("error") or ""),
        )


def _instant(raw: object) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw)).astimezone(UTC)
    except ValueError:
        return None
