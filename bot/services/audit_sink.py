"""Copying the audit log to its durable sink (``BREAKGLASS_AUDIT_SINK``), in order and in batches, and
checking the copy (``audit verify``, ``audit verify --sink``).

The worker runs ``AuditShipper.ship`` in a loop of its own (``workers.audit_sink``), never in a job:
a sink that hangs or is down delays nothing else, revokes least of all. Entries stay in Redis until
copied, so a sink that is down loses nothing; it is retried with backoff and reported (``/metrics``,
``/readyz``, ``doctor``). Where to continue is read from the sink's own head record, never from Redis,
so nothing in Redis can make the shipper skip entries or copy any twice.

Before an entry is copied its place in the chain and its HMAC are checked: the sink holds only entries
that verify. Redis losing its data starts a new chain (entry 1 again); the sink keeps the old one and
records where it ended (``bot.domain.audit_sink``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.audit import GENESIS_HASH, AuditEntry, entry_verifies
from bot.domain.audit_sink import SinkHead, SinkVerdict, chain_name, redis_versus_sink, verify_copy
from bot.ports import AuditSink
from bot.store import AuditLog, UnreadableEntry

BATCH_ENTRIES = 1000  # entries per object: one object a second at most in normal use, 1,000 in a backlog
ROUND_ENTRIES = 20_000  # read per round, so a long backlog is copied in steps that each report progress


class RedisLogProblem(RuntimeError):
    """Redis's log cannot be copied as it is (behind the sink, rewritten, an entry that does not verify).
    Nothing is written; one sentence says what, for the logs, ``/readyz`` and ``doctor``."""


@dataclass(frozen=True)
class ShipReport:
    copied: int  # entries written to the sink this round
    behind: int  # entries in Redis not in the sink after it
    head: SinkHead | None  # the sink's head after it


class AuditShipper:
    def __init__(
        self,
        audit: AuditLog,
        sink: AuditSink,
        key: bytes,
        now: Callable[[], datetime],
        retention: timedelta,
        batch_entries: int = BATCH_ENTRIES,
    ) -> None:
        self.audit = audit
        self.sink = sink
        self.key = key
        self.now = now
        self.retention = retention
        self.batch_entries = batch_entries
        self._head: SinkHead | None = None  # the sink's head as this shipper last wrote or read it
        self._known = False

    def forget(self) -> None:
        """Read the sink's head again before the next copy (another worker may have copied meanwhile)."""
        self._known = False

    def behind(self) -> int:
        """Entries in Redis past the sink's head as last known (all of them when it is another chain)."""
        redis_seq = self.audit.head()[0]
        head = self._head
        if head is None:
            return redis_seq
        there = self.audit.entry(head.seq) if head.seq <= redis_seq else None
        return redis_seq - head.seq if there is not None and there.hash == head.hash else redis_seq

    def ship(self) -> ShipReport:
        """Copy every entry Redis holds past the sink's head. Raises SinkUnavailable or SinkRefused (the
        sink), or RedisLogProblem (Redis's log is not one the sink can continue)."""
        if not self._known:
            self._head = self.sink.read_head()
            self._known = True
        redis_seq, _ = self.audit.head()
        if redis_seq == 0:
            if self._head is not None:
                raise RedisLogProblem(redis_versus_sink((0, GENESIS_HASH), None, {}, self._head))
            return ShipReport(0, 0, None)
        chain, after, prev_hash = self._place(redis_seq)
        if after >= redis_seq:
            return ShipReport(0, 0, self._head)
        copied = 0
        retain_until = self.now() + self.retention
        entries = self.audit.entries_after(after, min(ROUND_ENTRIES, redis_seq - after))
        for start in range(0, len(entries), self.batch_entries):
            batch = entries[start : start + self.batch_entries]
            prev_hash = self._checked(batch, after + 1, prev_hash)
            self.sink.write_batch(chain, batch, retain_until)
            head = SinkHead(chain, batch[-1].seq, batch[-1].hash)
            self.sink.write_head(head, retain_until)
            self._head = head
            after += len(batch)
            copied += len(batch)
        return ShipReport(copied, max(redis_seq - after, 0), self._head)

    def _place(self, redis_seq: int) -> tuple[str, int, str]:
        """(chain, the last seq the sink holds of it, that entry's hash) for Redis's log as it is now."""
        head = self._head
        if head is not None:
            there = self._entry(head.seq)
            if there is not None and there.hash == head.hash:
                return head.chain, head.seq, head.hash  # Redis continues what the sink holds
        first = self._entry(1)
        if first is None:
            raise RedisLogProblem(f"Redis's audit log has no entry 1 (it holds entries up to {redis_seq}); not copied")
        chain = chain_name(first)
        if head is None:
            return chain, 0, GENESIS_HASH
        if chain != head.chain:
            problem = redis_versus_sink((redis_seq, ""), chain, {}, head)
            if problem:
                raise RedisLogProblem(problem)
            # Redis lost its data and began again: a new chain, recorded as following the old one.
            self.sink.write_previous(chain, head, self.now() + self.retention)
            return chain, 0, GENESIS_HASH
        raise RedisLogProblem(
            redis_versus_sink((redis_seq, ""), chain, {}, head)
            or f"Redis's entry {head.seq} differs from the sink's copy; not copied"
        )

    def _entry(self, seq: int) -> AuditEntry | None:
        try:
            return self.audit.entry(seq)
        except UnreadableEntry as exc:
            raise RedisLogProblem(f"Redis's {exc}; not copied") from None

    def _checked(self, batch: list[AuditEntry], expected: int, prev_hash: str) -> str:
        """The hash of the batch's last entry, once every entry is in place and verifies."""
        for entry in batch:
            if entry.seq != expected or entry.prev_hash != prev_hash:
                raise RedisLogProblem(f"Redis's entry {expected} is missing or out of place; not copied")
            if not entry_verifies(entry, self.key):
                raise RedisLogProblem(f"Redis's entry {entry.seq} does not verify (altered?); not copied")
            prev_hash, expected = entry.hash, expected + 1
        return prev_hash


def verify_sink(sink: AuditSink, key: bytes) -> SinkVerdict:
    """The sink's copy alone. Raises SinkUnavailable or SinkRefused when it cannot be read."""
    chains, head = sink.read_copy()
    return verify_copy(chains, head, key)


def compare_with_sink(audit: AuditLog, sink: AuditSink) -> tuple[str, SinkHead | None]:
    """(one sentence when Redis's log disagrees with the sink's head, else "", that head). Redis's own
    chain is checked by ``AuditLog.verify``; agreeing at the sink's head means agreeing up to it."""
    head = sink.read_head()
    redis_head = audit.head()
    first = audit.entry(1) if redis_head[0] else None
    chain = chain_name(first) if first is not None else None
    at = audit.entry(head.seq) if head is not None and head.seq <= redis_head[0] else None
    return redis_versus_sink(redis_head, chain, {at.seq: at.hash} if at else {}, head), head
