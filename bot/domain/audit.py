"""The audit trail's entries and its hash chain: building, hashing and verifying, with no storage.

Each entry's ``hash`` is an HMAC-SHA256, under a key derived from ``BREAKGLASS_SIGNING_KEY``, of
the canonical JSON of every other field, ``prev_hash`` included, so changing, removing or reordering
any entry breaks every hash after it. The key never enters Redis: whoever can write Redis can still
delete or garble entries (verify then names the first bad one), but cannot write a history that
verifies. Every entry is also written to standard output for the log pipeline to keep.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bot.domain.keys import Signer, sign

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"
# The canonical JSON, built once: ``json.dumps`` with these options makes this same encoder afresh on
# every call, which ``audit verify`` would pay once per entry. ``encode`` gives the same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Event(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    GRANTED = "granted"
    GRANT_FAILED = "grant_failed"
    REMINDER_SENT = "reminder_sent"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENDED = "extended"
    REVOKED = "revoked"
    BINDING_DELETED = "binding_deleted"  # the moment access really ended in the cluster
    EXPIRED = "expired"
    REVIEW_WRITTEN = "review_written"
    ACTIONS_RECORDED = "actions_recorded"  # stays in the log; the thread gets digests and a summary
    ACTIONS_DIGEST = "actions_digest"  # the changes since the last digest, at most one every few minutes
    REVIEW_REMINDED = "review_reminded"  # a review overdue: whoever owes it was reminded (once a day)
    ACTIONS_SUMMARY = "actions_summary"  # at the end of a grant: what was done, and sessions still open
    IDENTITY_VERIFIED = "identity_verified"  # a fresh multi-factor login at the provider backs the next entry
    REFUSED = "refused"  # an attempt that changed nothing: wrong approver, own request, stranger…
    SWEEP_DELETED = "sweep_deleted"  # the reconcile sweep removed a binding Redis did not account for
    SWEEP_RESCHEDULED = "sweep_rescheduled"  # the sweep queued again a revoke job that was missing
    SWEEP_GRANT_REQUEUED = "sweep_grant_requeued"  # ... a grant job lost before its binding was made
    SWEEP_REVOKED_OVERDUE = "sweep_revoked_overdue"  # ... ended an active grant its revoke had not ended
    SWEEP_SERVICE_ACCOUNT_DELETED = "sweep_service_account_deleted"  # ... removed a grant's orphaned SA
    SWEEP_RECOVERED = "sweep_recovered"  # ... kept a binding Redis lost, on its warrant, until its expiry
    LEFT_TO_APPROVERS = "left_to_approvers"  # no automatic approval rule held: why (a code and its facts)
    ESCALATED = "escalated"  # undecided after escalate_after: a PagerDuty incident pages the approvers
    ESCALATION_RESOLVED = "escalation_resolved"  # ... and is resolved once the request is decided
    JOB_FAILED = "job_failed"  # a permanent failure of a job: a person must look
    JOB_GAVE_UP = "job_gave_up"  # a job's last retry failed too (a long outage): a person must know


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    request_id: str | None
    event: str
    actor: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "request_id": self.request_id,
            "event": self.event,
            "actor": self.actor,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def to_json(self) -> str:
        return _CANONICAL.encode(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(
            seq=int(data["seq"]),
            at=str(data["at"]),
            request_id=data.get("request_id"),
            event=str(data["event"]),
            actor=str(data["actor"]),
            details=dict(data.get("details") or {}),
            prev_hash=str(data["prev_hash"]),
            hash=str(data["hash"]),
        )


def entry_hash(
    key: bytes,
    seq: int,
    at: str,
    request_id: str | None,
    event: str,
    actor: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The entry's HMAC under the chain key (``SigningKey.derive(Purpose.AUDIT_CHAIN)``)."""
    return sign(key, _canonical_text(seq, at, request_id, event, actor, details, prev_hash))


def _signed_text(entry: AuditEntry) -> bytes:
    return _canonical_text(
        entry.seq, entry.at, entry.request_id, entry.event, entry.actor, entry.details, entry.prev_hash
    )


def _canonical_text(
    seq: int, at: str, request_id: str | None, event: str, actor: str, details: Mapping[str, Any], prev_hash: str
) -> bytes:
    """The canonical JSON of every field but ``hash``: what the entry's HMAC is over."""
    body = {
        "seq": seq,
        "at": at,
        "request_id": request_id,
        "event": event,
        "actor": actor,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    return _CANONICAL.encode(body).encode("utf-8")


def entry_verifies(entry: AuditEntry, key: bytes) -> bool:
    """Whether ``entry``'s hash is the HMAC of its other fields under ``key`` (compared in constant time)."""
    return hmac.compare_digest(sign(key, _signed_text(entry)), entry.hash)


def next_entry(
    *,
    key: bytes,
    seq: int,
    prev_hash: str,
    at: datetime,
    request_id: str | None,
    event: str,
    actor: str,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    stamp = format_at(at)
    body = dict(details or {})
    return AuditEntry(
        seq=seq,
        at=stamp,
        request_id=request_id,
        event=str(event),
        actor=actor,
        details=body,
        prev_hash=prev_hash,
        hash=entry_hash(key, seq, stamp, request_id, str(event), actor, body, prev_hash),
    )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_seq: int | None = None
    problem: str = ""


def verify_chain(entries: Iterable[AuditEntry], key: bytes, head: tuple[int, str] | None = None) -> Verdict:
    """Walk the chain from the start, checking each hash under ``key``. ``head`` is the (seq, hash) the store says is last, if any,
    so that deleting the newest entries is caught too."""
    return verify_stored_chain(((entry, None) for entry in entries), key, head)


def verify_stored_chain(
    entries: Iterable[tuple[AuditEntry, bytes | None]], key: bytes, head: tuple[int, str] | None = None
) -> Verdict:
    """``verify_chain`` for entries read from the log, each with the text its hash is over as cut out
    of the JSON it was stored as (``signed_text_in``), or None to encode that text afresh. The verdict
    is the same either way: a cut text that does not verify is encoded afresh and checked again."""
    signer = Signer(key)
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry, cut in entries:
        if entry.seq != expected_seq:
            return Verdict(False, checked, expected_seq, f"entry {expected_seq} is missing (found {entry.seq} next)")
        if entry.prev_hash != prev_hash:
            return Verdict(False, checked, entry.seq, f"entry {entry.seq} does not follow entry {entry.seq - 1}")
        if not (cut is not None and hmac.compare_digest(signer.sign(cut), entry.hash)) and not hmac.compare_digest(
            signer.sign(_signed_text(entry)), entry.hash
        ):
            return Verdict(
                False,
                checked,
                entry.seq,
                f"entry {entry.seq} was altered or written without this signing key (its hash does not match)",
            )
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq != expected_seq - 1 or (head_seq and head_hash != prev_hash):
            return Verdict(
                False,
                checked,
                expected_seq,
                f"entries after {expected_seq - 1} are missing (the head is at {head_seq})",
            )
    return Verdict(True, checked)


def signed_text_in(stored: str, entry: AuditEntry) -> bytes | None:
    """The text ``entry``'s hash is over, cut out of ``stored``, the exact JSON the entry was just
    parsed from; None when ``stored`` does not end the way ``to_json`` ends an entry.

    ``audit verify`` checks every entry of the log, and encoding each one afresh costs it more than
    reading and parsing it. ``to_json`` writes the signed text with ``"hash":"<hash>",`` inserted
    before the last three fields, so removing it gives the signed text back. This is sound only for
    an entry read from ``stored`` (so that its fields are what ``stored`` says), and only because the
    hash is then checked on the result: the cut text is built from ``stored``'s beginning and a tail
    made of the entry's own prev_hash, request_id and seq. If its HMAC verifies, it is a text this key
    signed, so the canonical JSON of some entry; the tail of that JSON is the same text as ours (its
    request_id's opening quote follows a colon, so it cannot lie inside our JSON-encoded request_id,
    nor ours inside its; prev_hash is 64 characters in both), so the cut was made at a field boundary
    at the top level, and the entry parsed from ``stored`` is the entry that was signed. A cut text
    that does not verify proves nothing: the caller encodes the entry afresh (``verify_stored_chain``).
    """
    request_id = "null" if entry.request_id is None else _CANONICAL.encode(entry.request_id)
    hash_field = f'"hash":"{entry.hash}",'
    tail = f'"prev_hash":"{entry.prev_hash}","request_id":{request_id},"seq":{entry.seq}}}'
    if not stored.endswith(tail) or not stored.endswith(hash_field, 0, len(stored) - len(tail)):
        return None
    return (stored[: len(stored) - len(tail) - len(hash_field)] + tail).encode("utf-8")
