"""The audit log as a Redis stream plus a head record, appended inside the caller's transaction."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TextIO

import redis
from redis.client import Pipeline

from bot.domain.audit import GENESIS_HASH, AuditEntry, Verdict, next_entry, verify_chain


@dataclass(frozen=True)
class Draft:
    """An audit entry before the chain gives it a sequence number and hashes."""

    event: str
    actor: str
    request_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class AuditLog:
    def __init__(
        self,
        client: redis.Redis,
        now: Callable[[], datetime],
        prefix: str = "breakglass",
        out: TextIO | None = None,
    ) -> None:
        self.redis = client
        self.now = now
        self.stream_key = f"{prefix}:audit"
        self.head_key = f"{prefix}:audit:head"
        self._out = out
        # Called with every batch of entries once it is committed (metrics are derived here).
        self.observers: list[Callable[[list[AuditEntry]], None]] = []

    def by_request_key(self, request_id: str) -> str:
        return f"{self.stream_key}:request:{request_id}"

    # --- inside a transaction -------------------------------------------------------------

    def read_head(self, pipe: Pipeline) -> tuple[int, str]:
        """Call while ``head_key`` is WATCHed and before ``pipe.multi()``."""
        head = pipe.hgetall(self.head_key)
        if not head:
            return 0, GENESIS_HASH
        return int(head["seq"]), str(head["hash"])

    def queue_appends(self, pipe: Pipeline, head: tuple[int, str], drafts: list[Draft]) -> list[AuditEntry]:
        """Queue XADDs for ``drafts`` after ``pipe.multi()``; the caller executes."""
        seq, prev_hash = head
        entries = []
        at = self.now()
        for draft in drafts:
            seq += 1
            entry = next_entry(
                seq=seq,
                prev_hash=prev_hash,
                at=at,
                request_id=draft.request_id,
                event=draft.event,
                actor=draft.actor,
                details=draft.details,
            )
            pipe.xadd(self.stream_key, {"entry": entry.to_json()}, id=f"{seq}-0")
            if draft.request_id is not None:
                pipe.rpush(self.by_request_key(draft.request_id), seq)
            prev_hash = entry.hash
            entries.append(entry)
        if entries:
            pipe.hset(self.head_key, mapping={"seq": seq, "hash": prev_hash})
        return entries

    def published(self, entries: list[AuditEntry]) -> None:
        """After EXEC: the structured-log copy that outlives Redis."""
        out = self._out or sys.stdout
        for entry in entries:
            out.write('{"log":"audit",' + entry.to_json()[1:] + "\n")
        out.flush()
        for observe in self.observers:
            observe(entries)

    # --- standalone -------------------------------------------------------------------------

    def append(self, *drafts: Draft) -> list[AuditEntry]:
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.head_key)
                    head = self.read_head(pipe)
                    pipe.multi()
                    entries = self.queue_appends(pipe, head, list(drafts))
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.published(entries)
        return entries

    def entries(self, since: datetime | None = None, request_id: str | None = None) -> Iterator[AuditEntry]:
        for entry in self._all():
            if request_id is not None and entry.request_id != request_id:
                continue
            if since is not None and datetime.fromisoformat(entry.at.replace("Z", "+00:00")) < since:
                continue
            yield entry

    def for_request(self, request_id: str, after_seq: int = 0) -> list[AuditEntry]:
        """One request's entries in order, through its index (no scan of the whole stream)."""
        seqs = [int(s) for s in self.redis.lrange(self.by_request_key(request_id), 0, -1)]
        wanted = [s for s in seqs if s > after_seq]
        with self.redis.pipeline(transaction=False) as pipe:
            for seq in wanted:
                pipe.xrange(self.stream_key, min=f"{seq}-0", max=f"{seq}-0")
            found = pipe.execute()
        entries = []
        for rows in found:
            for _, fields in rows:
                entries.append(AuditEntry.from_dict(json.loads(fields["entry"])))
        return entries

    def head(self) -> tuple[int, str]:
        head = self.redis.hgetall(self.head_key)
        return (int(head["seq"]), str(head["hash"])) if head else (0, GENESIS_HASH)

    def verify(self) -> Verdict:
        # The head is read first, so only the entries up to it are checked: one appended while the
        # stream is being read is not part of this check, and must not look like a lost tail.
        head = self.head()
        return verify_chain(islice(self._all(), head[0]), head=head)

    def _all(self) -> Iterator[AuditEntry]:
        start = "-"
        while True:
            batch: list[Any] = self.redis.xrange(self.stream_key, min=start, max="+", count=1000) or []
            if not batch:
                return
            for _, fields in batch:
                yield AuditEntry.from_dict(json.loads(fields["entry"]))
            start = "(" + str(batch[-1][0])  # exclusive: continue after the last one read
