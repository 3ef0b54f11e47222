"""The audit log's durable copy, as objects in an S3 bucket: their names, their contents, and the check
that the copy alone proves the history (``breakglass audit verify --sink``). No I/O here.

Layout under the sink's prefix (``s3://bucket/prefix``)::

    prefix/head.json                                   the newest entry copied: chain, seq, hash
    prefix/<chain>/000000000001-000000001000.jsonl     entries 1..1000 of a chain, one JSON line each
    prefix/<chain>/previous.json                       for a chain after the first: where the one before ended

A *chain* is one unbroken run of the Redis log, named after its first entry (when it was written, and
its hash). Redis losing its data (a FLUSHDB, a new Redis) starts a new chain at entry 1; the old one
stays in the sink, and the new chain's ``previous.json`` records where it ended. Every object is written
once under Object Lock in compliance mode; overwriting one makes a new version (its hashes no longer
verify) and deleting one only hides it (a gap in the sequence): either is named by the check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.audit import GENESIS_HASH, AuditEntry, entry_verifies

HEAD_NAME = "head.json"
PREVIOUS_NAME = "previous.json"
_BATCH = re.compile(r"^(\d{12})-(\d{12})\.jsonl$")
_CHAIN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{16}$")


@dataclass(frozen=True)
class SinkHead:
    """The newest entry the sink holds: which chain, its ``seq`` and ``hash``."""

    chain: str
    seq: int
    hash: str

    def to_json(self) -> str:
        return json.dumps({"chain": self.chain, "seq": self.seq, "hash": self.hash}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> SinkHead:
        """Raises ValueError when ``raw`` is not a head record."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        chain, seq, hash_ = data.get("chain"), data.get("seq"), data.get("hash")
        if (
            not isinstance(chain, str)
            or not isinstance(seq, int)
            or isinstance(seq, bool)
            or not isinstance(hash_, str)
        ):
            raise ValueError("a field is missing or of the wrong type")
        return cls(chain, seq, hash_)


def chain_name(first: AuditEntry) -> str:
    """A chain's name: the instant its entry 1 was written (so names sort in time) and that entry's hash."""
    at = datetime.fromisoformat(first.at.replace("Z", "+00:00"))
    return f"{at:%Y%m%dT%H%M%S%f}Z-{first.hash[:16]}"


def is_chain_name(name: str) -> bool:
    return bool(_CHAIN.match(name))


def join(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix.strip("/"), *parts) if p)


def batch_name(first_seq: int, last_seq: int) -> str:
    return f"{first_seq:012d}-{last_seq:012d}.jsonl"


def parse_batch_name(name: str) -> tuple[int, int] | None:
    match = _BATCH.match(name)
    return (int(match[1]), int(match[2])) if match else None


def batch_body(entries: Sequence[AuditEntry]) -> bytes:
    return "".join(entry.to_json() + "\n" for entry in entries).encode("utf-8")


class UnreadableBatch(ValueError):
    pass


def parse_batch(body: bytes) -> list[AuditEntry]:
    """The entries of one batch object; UnreadableBatch when a line is not an entry."""
    entries = []
    for number, line in enumerate(body.decode("utf-8", "replace").splitlines(), start=1):
        try:
            data = json.loads(line)
            entries.append(AuditEntry.from_dict(data))
        except (ValueError, KeyError, TypeError):
            raise UnreadableBatch(f"line {number} is not an audit entry") from None
    return entries


# --- the check ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One batch object as listed: its key and the range its name claims."""

    key: str
    first: int
    last: int


@dataclass
class ChainCopy:
    """What the sink holds of one chain: its batches in order (bodies read on demand by the caller)
    and, for every chain after the first, where the chain before it ended."""

    name: str
    batches: list[tuple[Batch, bytes | None]]  # None: the object could not be read
    previous: SinkHead | None = None


@dataclass
class SinkVerdict:
    ok: bool
    checked: int = 0
    problem: str = ""
    chains: list[tuple[str, int]] = field(default_factory=list)  # (chain, entries) of each chain checked
    restarts: list[str] = field(default_factory=list)  # one sentence per time Redis began a new chain


def verify_copy(chains: Sequence[ChainCopy], head: SinkHead | None, key: bytes) -> SinkVerdict:
    """Check the sink's copy alone: every chain complete from entry 1 and every hash good under ``key``,
    each chain after the first recorded as following the one before where it ended, and the head record
    naming the last entry of the last chain (so objects hidden at the end are caught too)."""
    verdict = SinkVerdict(ok=True)
    last: SinkHead | None = None
    for index, chain in enumerate(chains):
        problem, count, end = _verify_chain(chain, key)
        if problem:
            return SinkVerdict(False, verdict.checked + count, f"chain {chain.name}: {problem}", verdict.chains)
        verdict.checked += count
        verdict.chains.append((chain.name, count))
        if index > 0:
            if chain.previous is None:
                return _broken(verdict, f"chain {chain.name} does not record where the chain before it ended")
            if last is None or chain.previous != last:
                return _broken(
                    verdict,
                    f"chain {chain.name} follows {chain.previous.chain} at entry {chain.previous.seq}, but the sink "
                    f"holds {last.chain if last else 'nothing'} up to entry {last.seq if last else 0}: "
                    "entries of the earlier chain are missing",
                )
            verdict.restarts.append(
                f"the log began again (chain {chain.name}) after entry {chain.previous.seq} of {chain.previous.chain}"
            )
        last = end
    if head is None:
        if chains:
            return _broken(verdict, f"the head record ({HEAD_NAME}) is missing")
        return verdict
    if last is None or head != last:
        held = f"entry {last.seq} of {last.chain}" if last else "no entries"
        return _broken(
            verdict,
            f"the head record names entry {head.seq} of {head.chain}, but the sink's objects end at {held}: "
            "objects were deleted or hidden",
        )
    return verdict


def _broken(verdict: SinkVerdict, problem: str) -> SinkVerdict:
    return SinkVerdict(False, verdict.checked, problem, verdict.chains, verdict.restarts)


def _verify_chain(chain: ChainCopy, key: bytes) -> tuple[str, int, SinkHead | None]:
    """(problem or "", entries verified, the chain's last entry as a head).

    Two workers may both have copied a range while the lock passed between them (one stalled past
    its lease): objects that overlap are accepted when the entries they share are the same ones."""
    prev_hash, expected, checked = GENESIS_HASH, 1, 0
    seen: dict[int, str] = {}
    for batch, body in chain.batches:
        if batch.first > expected:
            return f"entries {expected}–{batch.first - 1} are missing (an object was deleted or hidden)", checked, None
        if body is None:
            return f"object {batch.key} could not be read", checked, None
        try:
            entries = parse_batch(body)
        except UnreadableBatch as exc:
            return f"object {batch.key}: {exc}", checked, None
        if (
            not entries
            or entries[0].seq != batch.first
            or entries[-1].seq != batch.last
            or len(entries) != batch.last - batch.first + 1
        ):
            return f"object {batch.key} does not hold the entries its name says", checked, None
        for entry in entries:
            if entry.seq < expected:
                if seen.get(entry.seq) != entry.hash:
                    return f"object {batch.key} disagrees with another about entry {entry.seq}", checked, None
                continue
            if entry.seq != expected or entry.prev_hash != prev_hash:
                return f"entry {entry.seq} does not follow entry {expected - 1}", checked, None
            if not entry_verifies(entry, key):
                return (
                    f"entry {entry.seq} was altered or written without this signing key (its hash does not match)",
                    checked,
                    None,
                )
            seen[entry.seq] = entry.hash
            prev_hash, expected, checked = entry.hash, expected + 1, checked + 1
    if checked == 0:
        return "it holds no entries", 0, None
    return "", checked, SinkHead(chain.name, expected - 1, prev_hash)


def redis_versus_sink(
    redis_head: tuple[int, str], redis_chain: str | None, redis_hash_at: Mapping[int, str], sink: SinkHead | None
) -> str:
    """Empty when Redis's log agrees with the sink's head; else one sentence saying how it does not.
    ``redis_hash_at`` maps the sink head's seq to Redis's hash of that entry, if Redis has it."""
    if sink is None:
        return ""
    seq, _ = redis_head
    if redis_chain is None or seq == 0:
        return (
            f"Redis holds no audit log but the sink holds entries up to {sink.seq} of chain {sink.chain}: "
            "Redis lost its data (breakglass audit verify --sink checks the copy)"
        )
    if redis_chain != sink.chain:
        if redis_chain.partition("-")[0] < sink.chain.partition("-")[0]:  # names begin with the chain's start
            return f"Redis holds chain {redis_chain}, older than the sink's newest ({sink.chain}): Redis was restored from an old copy"
        return ""  # Redis began a new chain the sink has not copied yet; the shipper records it
    if seq < sink.seq:
        return (
            f"Redis's audit log ends at entry {seq} but the sink holds entries up to {sink.seq}: "
            "entries were removed from Redis (breakglass audit verify --sink checks the copy)"
        )
    if redis_hash_at.get(sink.seq) != sink.hash:
        return f"Redis's entry {sink.seq} differs from the sink's copy: Redis's log was rewritten"
    return ""
