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

from bot.domain.keys import sign

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"


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
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

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
    body = {
        "seq": seq,
        "at": at,
        "request_id": request_id,
        "event": event,
        "actor": actor,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sign(key, canonical.encode("utf-8"))


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
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry in entries:
        if entry.seq != expected_seq:
            return Verdict(False, checked, expected_seq, f"entry {expected_seq} is missing (found {entry.seq} next)")
        if entry.prev_hash != prev_hash:
            return Verdict(False, checked, entry.seq, f"entry {entry.seq} does not follow entry {entry.seq - 1}")
        recomputed = entry_hash(
            key, entry.seq, entry.at, entry.request_id, entry.event, entry.actor, entry.details, entry.prev_hash
        )
        if not hmac.compare_digest(recomputed, entry.hash):
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
