"""The audit log as a Redis stream plus a head record, appended inside the caller's transaction.

Entries are chained by HMAC under the chain key (``SigningKey.derive(Purpose.AUDIT_CHAIN)``), which
is held by the processes and never written to Redis. A log opened without the key (``key=None``)
can be read and exported, but neither appended to nor verified."""

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

from bot.domain.audit import GENESIS_HASH, AuditEntry, Verdict, next_entry, signed_text_in, verify_stored_chain
from bot.store.keys import Keys


@dataclass(frozen=True)
class Draft:
    """An audit entry before the chain gives it a sequence number and hashes."""

    event: str
    actor: str
    request_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class AuditLogBroken(RuntimeError):
    """The head record and the stream disagree, so an append would fork the chain or fail half-way.

    Redis does not roll back EXEC when one command in it fails: an XADD refused there (its id not
    above the stream's last) would let the request change beside it land with no audit entry. So
    the disagreement is caught before MULTI and nothing at all is written; a person must look
    (``breakglass audit verify`` names the problem)."""


class ChainKeyMissing(RuntimeError):
    """The log was opened without the chain key, so it can be read but not appended to or verified."""


class UnreadableEntry(ValueError):
    """A stream entry that is not an audit entry (not JSON, a field missing or of the wrong type)."""

    def __init__(self, seq: int | None, stream_id: str, reason: str) -> None:
        self.seq = seq
        self.stream_id = stream_id
        self.reason = reason
        where = f"entry {seq}" if seq is not None else f"stream entry {stream_id}"
        super().__init__(f"{where} cannot be read ({reason})")


# Every field of the contract's entry; one that lacks any of them was not written by this log.
_FIELDS: dict[str, tuple[type, ...]] = {
    "seq": (int,),
    "at": (str,),
    "request_id": (str, type(None)),
    "event": (str,),
    "actor": (str,),
    "details": (dict,),
    "prev_hash": (str,),
    "hash": (str,),
}


_MISSING = object()  # of no type in _FIELDS


def _stream_seq(stream_id: object) -> int | None:
    head, _, _ = str(stream_id).partition("-")
    return int(head) if head.isdigit() else None


def parse_stream_entry(stream_id: str, fields: Mapping[str, Any]) -> AuditEntry:
    """The audit entry stored under ``stream_id``, or UnreadableEntry naming what is wrong.

    ``audit verify`` calls this for every entry of the log, so the checks are written for speed: a
    value from ``json.loads`` is of exactly one of its built-in types, so ``type(value) in types`` is
    the same test as ``isinstance`` that also refuses ``True`` for an int."""
    if "entry" not in fields:
        raise UnreadableEntry(_stream_seq(stream_id), stream_id, "it has no 'entry' field")
    try:
        data = json.loads(fields["entry"])
    except ValueError:
        raise UnreadableEntry(_stream_seq(stream_id), stream_id, "it is not JSON") from None
    if type(data) is not dict:
        raise UnreadableEntry(_stream_seq(stream_id), stream_id, "it is not a JSON object")
    for name, types in _FIELDS.items():
        if type(data.get(name, _MISSING)) not in types:
            problem = "is missing" if name not in data else "has the wrong type"
            raise UnreadableEntry(_stream_seq(stream_id), stream_id, f"field '{name}' {problem}")
    try:
        datetime.fromisoformat(data["at"].replace("Z", "+00:00"))
    except ValueError:
        raise UnreadableEntry(_stream_seq(stream_id), stream_id, "field 'at' is not an RFC 3339 instant") from None
    # Every field is of its type already (checked above), so no conversion or copy is needed.
    return AuditEntry(
        seq=data["seq"],
        at=data["at"],
        request_id=data["request_id"],
        event=data["event"],
        actor=data["actor"],
        details=data["details"],
        prev_hash=data["prev_hash"],
        hash=data["hash"],
    )


class AuditLog:
    def __init__(
        self,
        client: redis.Redis,
        now: Callable[[], datetime],
        prefix: str = "breakglass",
        out: TextIO | None = None,
        *,
        key: bytes | None,
    ) -> None:
        self.redis = client
        self._key = key
        self.now = now
        self.stream_key = Keys(prefix).audit
        self.head_key = Keys(prefix).audit_head
        self._out = out
        # Called with every batch of entries once it is committed (metrics are derived here).
        self.observers: list[Callable[[list[AuditEntry]], None]] = []

    def by_request_key(self, request_id: str) -> str:
        return f"{self.stream_key}:request:{request_id}"

    # --- inside a transaction -------------------------------------------------------------

    @property
    def watch_keys(self) -> tuple[str, str]:
        """What a transaction appending to the log must WATCH before ``read_head``."""
        return self.head_key, self.stream_key

    def check_writable(self) -> None:
        """Raise AuditLogBroken now if an append would be refused. For work that acts outside Redis
        before it records what it did (a grant creates its binding first): better not to act at all
        than to hand out access the log cannot show."""
        with self.redis.pipeline() as pipe:
            pipe.watch(*self.watch_keys)  # immediate mode, as read_head expects
            self.read_head(pipe)

    def read_head(self, pipe: Pipeline) -> tuple[int, str]:
        """Call while ``watch_keys`` are WATCHed and before ``pipe.multi()``. Raises AuditLogBroken
        (writing nothing) when the stream holds entries the head does not account for.

        A head behind the stream's last entry (deleted, or set back) would make the queued XADD
        fail inside EXEC after the request change beside it had been applied. A head *ahead* of the
        stream (its newest entries deleted) is not refused: appending after it keeps the chain
        consistent with the head, verify still names the entries that are gone, and refusing would
        stop every transition, expiries and revocations included, until a person repairs Redis."""
        # One script reads both at one instant (and in the one round trip the head alone took).
        top_id, raw_seq, raw_hash, exists = pipe.eval(_READ_HEAD, 2, self.stream_key, self.head_key)
        top = (_stream_seq(top_id) or 0) if top_id else 0
        head = _parse_head({"seq": raw_seq, "hash": raw_hash}) if exists else None
        if exists and head is None:
            raise AuditLogBroken(f"the audit head {self.head_key} is unreadable; nothing was written")
        seq = head[0] if head else 0
        if top > seq:
            state = f"is at entry {seq}" if head else "is missing"
            raise AuditLogBroken(
                f"the audit head {self.head_key} {state} but the stream holds entries up to {top}; "
                "nothing was written (run breakglass audit verify)"
            )
        return head or (0, GENESIS_HASH)

    def queue_appends(self, pipe: Pipeline, head: tuple[int, str], drafts: list[Draft]) -> list[AuditEntry]:
        """Queue XADDs for ``drafts`` after ``pipe.multi()``; the caller executes."""
        key = self._chain_key()
        seq, prev_hash = head
        entries = []
        at = self.now()
        for draft in drafts:
            seq += 1
            entry = next_entry(
                key=key,
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

    def _chain_key(self) -> bytes:
        if self._key is None:
            raise ChainKeyMissing("the audit log was opened without BREAKGLASS_SIGNING_KEY: it can only be read")
        return self._key

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
                    pipe.watch(*self.watch_keys)
                    head = self.read_head(pipe)
                    pipe.multi()
                    entries = self.queue_appends(pipe, head, list(drafts))
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.published(entries)
        return entries

    def entries(
        self,
        since: datetime | None = None,
        request_id: str | None = None,
        unreadable: Callable[[UnreadableEntry], None] | None = None,
    ) -> Iterator[AuditEntry]:
        """Entries in order. An entry that cannot be read raises UnreadableEntry, or, given
        ``unreadable``, is passed to it and skipped (an export prints all the evidence it can)."""
        for entry in self._all(unreadable):
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
            for stream_id, fields in rows:
                entries.append(parse_stream_entry(stream_id, fields))
        return entries

    def entry(self, seq: int) -> AuditEntry | None:
        """Entry ``seq``, or None when the stream does not hold it. UnreadableEntry if it is garbled."""
        rows: list[Any] = self.redis.xrange(self.stream_key, min=f"{seq}-0", max=f"{seq}-0") or []
        return parse_stream_entry(str(rows[0][0]), rows[0][1]) if rows else None

    def entries_after(self, seq: int, count: int) -> list[AuditEntry]:
        """Up to ``count`` entries after entry ``seq``, in order (the stream's ids are the seqs)."""
        rows: list[Any] = self.redis.xrange(self.stream_key, min=f"({seq}-0", max="+", count=count) or []
        return [parse_stream_entry(str(stream_id), fields) for stream_id, fields in rows]

    def head(self) -> tuple[int, str]:
        return _parse_head(self.redis.hgetall(self.head_key)) or (0, GENESIS_HASH)

    def verify(self) -> Verdict:
        """The chain from entry 1 to the head, then the head against the stream.

        The head is read first, so only the entries up to it are checked: one appended while the
        stream is being read is not part of this check, and must not look like a lost tail. Entries
        past that head are either such appends (every append moves the head in the same EXEC, so a
        second read of the head covers them) or the sign of a head deleted or set back."""
        self._chain_key()
        raw = self.redis.hgetall(self.head_key)
        head = _parse_head(raw)
        if raw and head is None:
            return Verdict(False, 0, None, f"the head record {self.head_key} is unreadable")
        last = self.redis.xrevrange(self.stream_key, count=1)
        top = (_stream_seq(last[0][0]) or 0) if last else 0
        if top > (head[0] if head else 0):
            head = _parse_head(self.redis.hgetall(self.head_key))
        if head is None and top == 0:
            return Verdict(True, 0)
        if head is None or head[0] < top:
            # Walk what is there first: an altered entry is the first bad one, before the head.
            verdict = self._walk(top, head=None)
            if not verdict.ok:
                return verdict
            state = f"is at entry {head[0]}" if head else "is missing"
            return Verdict(
                False,
                verdict.checked,
                head[0] + 1 if head else None,
                f"the head record {self.head_key} {state} but the stream holds entries up to {top}",
            )
        return self._walk(head[0], head=head)

    def _walk(self, limit: int, head: tuple[int, str] | None) -> Verdict:
        read = 0

        def counted() -> Iterator[tuple[AuditEntry, bytes | None]]:
            nonlocal read
            for entry, stored in islice(self._stored(), limit):
                read += 1
                # Cut here, while the entry is exactly what ``stored`` says (see signed_text_in).
                yield entry, signed_text_in(stored, entry) if isinstance(stored, str) else None

        try:
            return verify_stored_chain(counted(), self._chain_key(), head=head)
        except UnreadableEntry as exc:
            # verify_chain pulls an entry only after every earlier one passed, so ``read`` were good.
            return Verdict(False, read, exc.seq, str(exc))

    def _all(self, unreadable: Callable[[UnreadableEntry], None] | None = None) -> Iterator[AuditEntry]:
        for entry, _ in self._stored(unreadable):
            yield entry

    def _stored(self, unreadable: Callable[[UnreadableEntry], None] | None = None) -> Iterator[tuple[AuditEntry, Any]]:
        """Every entry in order, with the JSON it was stored as."""
        start = "-"
        while True:
            batch: list[Any] = self.redis.xrange(self.stream_key, min=start, max="+", count=_PAGE) or []
            if not batch:
                return
            for stream_id, fields in batch:
                try:
                    yield parse_stream_entry(stream_id, fields), fields["entry"]
                except UnreadableEntry as exc:
                    if unreadable is None:
                        raise
                    unreadable(exc)
            start = "(" + str(batch[-1][0])  # exclusive: continue after the last one read


_PAGE = 1000  # entries per XRANGE

# The stream's last id and the head's fields, read together: [last id | nil, seq | nil, hash | nil, head exists].
_READ_HEAD = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local top = false
if last[1] then top = last[1][1] end
return {top, redis.call('HGET', KEYS[2], 'seq'), redis.call('HGET', KEYS[2], 'hash'), redis.call('EXISTS', KEYS[2])}
"""


def _parse_head(raw: Mapping[Any, Any]) -> tuple[int, str] | None:
    """(seq, hash) of the head record; None when it is absent or unreadable."""
    try:
        return int(raw["seq"]), str(raw["hash"])
    except (KeyError, ValueError, TypeError):
        return None
