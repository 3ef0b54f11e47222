"""One request's history, folded from its audit entries in order.

The audit log is the evidence, so the report is built from it alone and not from the request record
in Redis: what the report says, the chain proves. Entries of kinds this module does not know (a newer
process wrote them) still appear in the timeline, under their own name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain import automation_misses
from bot.domain.audit import SYSTEM_ACTOR, AuditEntry, Event
from bot.domain.durations import format_duration, parse_duration
from bot.domain.end_reasons import said_as_before
from bot.domain.grant_failures import failure_sentence
from bot.domain.kube_actions import MUTATING_VERBS

_ENDINGS = {Event.REVOKED.value: "revoked", Event.EXPIRED.value: "expired"}
_CLOSED = {
    Event.DENIED.value: "denied",
    Event.CANCELLED.value: "cancelled",
    Event.TIMED_OUT.value: "timed out",
    Event.GRANT_FAILED.value: "failed",
}


def parse_at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Step:
    """One line of a timeline: when, what, who, and what it says."""

    at: datetime
    event: str
    actor: str
    says: str


@dataclass(frozen=True)
class ApprovalRecord:
    at: datetime
    by: str
    automatic: bool  # by the system: self-service or an auto-approval rule
    self_service: bool
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class Action:
    at: str
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    code: int | None

    @property
    def mutating(self) -> bool:
        return self.verb in MUTATING_VERBS

    @property
    def target(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource} {where}{self.name}" if self.name else f"{self.resource} {where}".rstrip(" /")


@dataclass
class RequestHistory:
    """What the audit log says of one request. Mutable only while it is being folded."""

    id: str
    requester: str = ""
    cluster: str = ""
    namespace: str | None = None
    role: str = ""
    duration_asked: timedelta | None = None
    reason: str = ""
    approvals_required: int | None = None
    extends: str | None = None
    requested_at: datetime | None = None
    approvals: list[ApprovalRecord] = field(default_factory=list)
    approved_at: datetime | None = None  # when enough approvals were in
    granted_at: datetime | None = None
    expires_at: str | None = None
    ended_at: datetime | None = None
    ending: str | None = None  # revoked | expired | denied | cancelled | timed out | failed
    ended_by: str | None = None
    access_removed_at: datetime | None = None
    extensions: list[str] = field(default_factory=list)
    reminders: int = 0
    refusals: int = 0
    review: tuple[str, datetime, str] | None = None  # (by, at, text) of the review that closes it
    holder_account: tuple[str, datetime, str] | None = None
    follow_ups: str = ""  # from the review that closes it
    actions: list[Action] = field(default_factory=list)
    actions_count: int = 0  # as the cluster reported them: more than ``actions`` when some were cut
    dropped: int = 0  # past the per-grant limit: counted, not kept
    open_sessions: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[Step] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"{self.cluster}/{self.namespace}" if self.namespace else f"{self.cluster} (cluster-wide)"

    @property
    def self_service(self) -> bool:
        return self.approvals_required == 0

    @property
    def automatic(self) -> bool:
        """Approved by a rule rather than a person (self-service is counted apart)."""
        return not self.self_service and any(a.automatic for a in self.approvals)

    @property
    def was_granted(self) -> bool:
        return self.granted_at is not None

    def used(self, now: datetime) -> timedelta | None:
        """How long access was held: from the binding in place to its end (or now, while held)."""
        if self.granted_at is None:
            return None
        end = self.access_removed_at or self.ended_at or now
        return max(end - self.granted_at, timedelta(0))

    @property
    def approval_latency(self) -> timedelta | None:
        if self.requested_at is None or self.approved_at is None:
            return None
        return max(self.approved_at - self.requested_at, timedelta(0))

    @property
    def state(self) -> str:
        if self.ending:
            return self.ending
        if self.granted_at is not None:
            return "active"
        if self.approved_at is not None:
            return "approved"
        return "pending"

    @property
    def review_owed(self) -> bool:
        return self.was_granted and self.extends is None and self.review is None and self.ended_at is not None

    def mutating_actions(self) -> list[Action]:
        return [a for a in self.actions if a.mutating]

    def actions_by_verb_and_resource(self) -> Counter[tuple[str, str]]:
        return Counter((a.verb, a.resource) for a in self.actions)

    def fold(self, entry: AuditEntry) -> None:
        at = parse_at(entry.at)
        details = entry.details
        self.seqs.append(entry.seq)
        event = entry.event
        says = ""
        if event in (Event.REQUESTED.value, Event.EXTENSION_REQUESTED.value) and not self.requester:
            self.requester = entry.actor
            self.cluster = str(details.get("cluster") or "")
            self.namespace = details.get("namespace")
            self.role = str(details.get("role") or "")
            self.reason = str(details.get("reason") or "")
            self.duration_asked = _duration(details.get("duration"))
            required = details.get("approvals_required")
            self.approvals_required = int(required) if isinstance(required, int) else None
            self.extends = details.get("extends")
            self.requested_at = at
            says = f"{self.role} on {self.target} for {details.get('duration', '?')}: {self.reason}"
        elif event == Event.EXTENSION_REQUESTED.value:
            says = f"extension {details.get('extension', '?')} asked for {details.get('by', '?')}: {details.get('reason', '')}"
        elif event == Event.APPROVED.value:
            automatic = entry.actor == SYSTEM_ACTOR
            self_service = bool(details.get("self_service"))
            evidence = {k: v for k, v in details.items() if k not in ("count", "required")}
            self.approvals.append(ApprovalRecord(at, entry.actor, automatic, self_service, evidence))
            count, required = details.get("count"), details.get("required")
            if automatic or not isinstance(count, int) or not isinstance(required, int) or count >= required:
                self.approved_at = self.approved_at or at
            if self_service:
                says = "self-service: approved at once, review required"
            elif automatic:
                says = "approved automatically" + (f" ({_pairs(evidence)})" if evidence else "")
            else:
                says = f"approval {count} of {required}" if count is not None else "approved"
        elif event == Event.GRANTED.value:
            if details.get("extends"):
                says = f"extension of {details['extends']} granted, until {details.get('expires_at', '?')}"
            else:
                self.granted_at = self.granted_at or at
                self.expires_at = details.get("expires_at") or self.expires_at
                says = (
                    f"{details.get('binding', 'binding')} ({details.get('cluster_role', '?')}) for "
                    f"{details.get('subject', '?')}, until {details.get('expires_at', '?')}"
                )
        elif event == Event.EXTENDED.value:
            self.extensions.append(str(details.get("extension", "")))
            self.expires_at = details.get("expires_at") or self.expires_at
            says = f"by {details.get('extension', '?')}, now until {details.get('expires_at', '?')}"
        elif event == Event.REMINDER_SENT.value:
            self.reminders += 1
            says = f"ends at {details.get('expires_at', '?')}"
        elif event in _ENDINGS or event in _CLOSED:
            if self.ending is None:
                self.ending = _ENDINGS.get(event) or _CLOSED[event]
                self.ended_at = at
                self.ended_by = entry.actor
            if event == Event.GRANT_FAILED.value:
                says = failure_sentence(details)
            else:
                says = _pairs({k: v for k, v in said_as_before(details).items() if k in ("why", "error", "after")})
            if details.get("early"):
                says = "before its expiry" + (f"; {says}" if says else "")
        elif event == Event.BINDING_DELETED.value:
            self.access_removed_at = self.access_removed_at or at
            says = f"{details.get('binding', 'binding')} removed from {details.get('cluster', '?')}"
        elif event == Event.REVIEW_WRITTEN.value:
            text = str(details.get("review", ""))
            if details.get("holder_account"):
                self.holder_account = (entry.actor, at, text)
                says = "the holder's own account"
            else:
                self.review = (entry.actor, at, text)
                self.follow_ups = str(details.get("follow_ups") or "")
                says = "review written" + (", with follow-ups" if self.follow_ups else "")
        elif event == Event.ACTIONS_RECORDED.value:
            recorded = [_action(a) for a in details.get("actions") or [] if isinstance(a, Mapping)]
            self.actions.extend(recorded)
            count = details.get("count")
            self.actions_count += count if isinstance(count, int) else len(recorded)
            says = f"{count if isinstance(count, int) else len(recorded)} on {details.get('cluster', '?')}"
        elif event == Event.ACTIONS_DIGEST.value:
            says = f"{details.get('count', '?')} changes told in the thread"
        elif event == Event.ACTIONS_SUMMARY.value:
            dropped = details.get("dropped")
            self.dropped = dropped if isinstance(dropped, int) else 0
            sessions = details.get("open_sessions")
            self.open_sessions = [s for s in sessions if isinstance(s, dict)] if isinstance(sessions, list) else []
            says = f"{details.get('count', '?')} actions, {details.get('change_count', '?')} changes"
            if self.open_sessions:
                says += f"; {len(self.open_sessions)} sessions possibly still open"
        elif event == Event.LEFT_TO_APPROVERS.value:
            # A coded entry reads exactly as one written before codes (why: sentence).
            says = _pairs(automation_misses.said_as_before(details))
        elif event == Event.REFUSED.value:
            self.refusals += 1
            says = f"{details.get('action', '?')}: {details.get('reason', '')}"
        else:
            says = _pairs(said_as_before(details))
        self.timeline.append(Step(at, event, entry.actor, says))


def history_of(request_id: str, entries: Iterable[AuditEntry]) -> RequestHistory:
    history = RequestHistory(id=request_id)
    for entry in entries:
        if entry.request_id == request_id:
            history.fold(entry)
    return history


def histories(entries: Iterable[AuditEntry]) -> dict[str, RequestHistory]:
    """Every request's history in the order each was first seen; entries with no request are left out."""
    found: dict[str, RequestHistory] = {}
    for entry in entries:
        if entry.request_id is None:
            continue
        history = found.get(entry.request_id)
        if history is None:
            history = found[entry.request_id] = RequestHistory(id=entry.request_id)
        history.fold(entry)
    return found


def _duration(text: object) -> timedelta | None:
    try:
        return parse_duration(str(text)) if text else None
    except ValueError:
        return None


def _action(raw: Mapping[str, Any]) -> Action:
    code = raw.get("code")
    return Action(
        at=str(raw.get("at") or ""),
        verb=str(raw.get("verb") or ""),
        resource=str(raw.get("resource") or ""),
        namespace=raw.get("namespace") if isinstance(raw.get("namespace"), str) else None,
        name=raw.get("name") if isinstance(raw.get("name"), str) else None,
        code=code if isinstance(code, int) else None,
    )


def _pairs(details: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in details.items() if v not in (None, "", [], {}))


def human_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    return format_duration(value) if value >= timedelta(seconds=1) else "0s"
