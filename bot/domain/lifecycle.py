"""A request's life as an explicit state machine, and the request record itself.

    pending ──► approved ──► active ──► expired | revoked
       │            └──► failed | revoked      (grant could not be made / withdrawn before it landed)
       └──► denied | cancelled | timed_out

Every change of state goes through ``transition``; anything else raises ``IllegalTransition``.
Records are immutable: a change returns a new record, and the store writes it together with its
audit entry in one atomic step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.automation import Ticket
from bot.domain.ids import RequestId, SlackUserId


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DENIED = "denied"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


TERMINAL = frozenset({State.EXPIRED, State.REVOKED, State.DENIED, State.CANCELLED, State.TIMED_OUT, State.FAILED})

LEGAL: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.APPROVED, State.DENIED, State.CANCELLED, State.TIMED_OUT}),
    State.APPROVED: frozenset({State.ACTIVE, State.FAILED, State.REVOKED}),
    State.ACTIVE: frozenset({State.EXPIRED, State.REVOKED}),
    **{state: frozenset() for state in TERMINAL},
}


class IllegalTransition(ValueError):
    def __init__(self, request_id: str, current: State, target: State) -> None:
        super().__init__(f"{request_id} is {current.label}; it cannot become {target.label}")
        self.current = current
        self.target = target


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: SlackUserId
    at: datetime


class Review(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: SlackUserId
    at: datetime
    text: str
    follow_ups: str = ""  # what must still be done (tickets, fixes) after this use of access


class AccessRequest(BaseModel):
    """One ask for access, from request to its end. ``extends`` marks an extension of another grant."""

    model_config = ConfigDict(frozen=True)

    id: RequestId
    requester: SlackUserId
    cluster: str
    namespace: str | None
    role: str
    duration: timedelta
    reason: str
    channel: str
    state: State = State.PENDING
    created_at: datetime
    updated_at: datetime
    approvals: tuple[Approval, ...] = ()
    approvals_required: int = 1
    decided_by: SlackUserId | None = None  # who denied / cancelled / revoked
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    extends: RequestId | None = None
    extensions: tuple[RequestId, ...] = ()  # applied extensions of this grant, in order
    message_ts: str | None = None  # the root message in ``channel``
    review: Review | None = None  # the review that closes the obligation (see policy.may_review)
    holder_account: Review | None = None  # self-service: the holder's own account, for the reviewer
    note: str | None = None  # why it failed / was revoked by the system
    ticket: Ticket | None = None  # the ticket its reason cites, as read when it was asked for
    automatic_rule: str | None = None  # the auto_approve rule that approved it, when no person did
    version: int = Field(default=0, ge=0)

    @property
    def self_service(self) -> bool:
        return self.approvals_required == 0

    @property
    def approved_by(self) -> tuple[SlackUserId, ...]:
        return tuple(a.by for a in self.approvals)

    @property
    def target(self) -> str:
        return f"{self.cluster}/{self.namespace}" if self.namespace else f"{self.cluster} (cluster-wide)"

    @property
    def review_owed(self) -> bool:
        return self.granted_at is not None and self.review is None

    def time_left(self, now: datetime) -> timedelta:
        if self.expires_at is None or self.state is not State.ACTIVE:
            return timedelta(0)
        return max(self.expires_at - now, timedelta(0))

    def changed(self, now: datetime, **fields: object) -> AccessRequest:
        return self.model_copy(update={**fields, "updated_at": now, "version": self.version + 1})


def transition(request: AccessRequest, target: State, now: datetime, **fields: object) -> AccessRequest:
    """The same request in state ``target``, or IllegalTransition."""
    if target not in LEGAL[request.state]:
        raise IllegalTransition(request.id, request.state, target)
    if target in TERMINAL:
        fields.setdefault("ended_at", now)
    return request.changed(now, state=target, **fields)


def activate(request: AccessRequest, granted_at: datetime, expires_at: datetime) -> AccessRequest:
    return transition(request, State.ACTIVE, granted_at, granted_at=granted_at, expires_at=expires_at)


def expiry_for(request: AccessRequest, granted_at: datetime) -> datetime:
    """A grant's duration counts from the moment its binding is in place."""
    return granted_at + request.duration


def extend_expiry(grant: AccessRequest, by: timedelta) -> datetime:
    assert grant.expires_at is not None
    return grant.expires_at + by


__all__ = [
    "LEGAL",
    "TERMINAL",
    "AccessRequest",
    "Approval",
    "IllegalTransition",
    "Review",
    "State",
    "activate",
    "expiry_for",
    "extend_expiry",
    "transition",
]
