"""Automated approvals at submission: the ticket check, then the role's rules, read through the ports.

``screen`` runs before a request is stored: it refuses a request whose reason cites no acceptable
ticket (one sentence), and reads what the rules need (PagerDuty's on-call, cited tickets) for
``bot.domain.automation.evaluate`` to decide. Every read that fails becomes an ``Unreadable``: no rule
accepts one, so a lookup failure can only send the request to the approvers (or, for a role's ticket
with ``on_lookup_failure: refuse``, refuse it). Lookups are skipped for rules whose limits already
fail, so a request over every rule's limits costs PagerDuty nothing.

Escalation (``escalate`` and ``settle``, run by worker jobs) pages the approvers through PagerDuty
when a request stays undecided, and resolves the incident once it is decided.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain import automation
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.automation import (
    Approved,
    AutoRule,
    Citation,
    Facts,
    LeftToApprovers,
    Outcome,
    Ticket,
    TicketRead,
    Unreadable,
)
from bot.domain.automation_misses import Miss
from bot.domain.durations import format_duration
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Role, Roster
from bot.ports import (
    JobQueue,
    LookupFailed,
    OnCallDirectory,
    OnCallShift,
    Pager,
    PermanentError,
    Refused,
    TicketDirectory,
)
from bot.store import Draft, RequestStore

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Screening:
    """What was learnt about an ask before it is stored.

    ``ticket``: the cited ticket that counts; ``ticket_unchecked``: why the role's ticket could not be
    checked (the role lets such requests through to the approvers); ``outcome``: the rules' decision,
    None when the role has none."""

    ticket: Ticket | None = None
    ticket_unchecked: Miss | None = None
    outcome: Outcome | None = None


NOTHING = Screening()


class AutomatedApprovals:
    def __init__(
        self,
        store: RequestStore,
        jobs: JobQueue,
        now: Callable[[], datetime],
        on_call: OnCallDirectory | None = None,
        tickets: TicketDirectory | None = None,
        pager: Pager | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.now = now
        self.on_call = on_call
        self.tickets = tickets
        self.pager = pager

    # --- at submission ------------------------------------------------------------------------

    def screen(
        self, roster: Roster, requester: SlackUserId, role_name: str, duration: timedelta, reason: str
    ) -> Screening:
        """Refused when the role's ticket requirement is not met; otherwise what the rules decided."""
        role = roster.roles[role_name]
        if role.ticket is None and not role.auto_approve:
            return NOTHING
        reads: dict[Citation, TicketRead] = {}
        ticket: Ticket | None = None
        unchecked: Miss | None = None
        if role.ticket is not None:
            reads.update(self._read_tickets(automation.cited(reason, role.ticket)))
            check = automation.check_tickets(role.ticket, reason, reads, role.name)
            if check.refusal is not None:
                raise Refused(check.refusal.sentence())
            if check.unchecked is not None:
                if role.ticket.on_lookup_failure == "refuse":
                    raise Refused(automation.unchecked_refusal(check.unchecked))
                unchecked = check.unchecked
            ticket = check.ticket
        if not role.auto_approve:
            return Screening(ticket, unchecked)
        if unchecked is not None:
            # The ticket requirement itself could not be checked: no rule may approve on top of that.
            return Screening(ticket, unchecked, LeftToApprovers(unchecked))
        return Screening(ticket, None, self._decide(roster, role, requester, duration, reason, reads))

    def screen_extension(
        self, roster: Roster, requester: SlackUserId, role_name: str, total: timedelta, reason: str
    ) -> Screening:
        """The rules for an extension, judged on the grant's whole length once extended (``total``), so
        extension after extension never adds up past a rule's ``max_duration``. No ticket is asked for:
        the grant's own request cited it."""
        role = roster.roles[role_name]
        if not role.auto_approve:
            return NOTHING
        return Screening(None, None, self._decide(roster, role, requester, total, reason, {}))

    def _decide(
        self,
        roster: Roster,
        role: Role,
        requester: SlackUserId,
        duration: timedelta,
        reason: str,
        reads: Mapping[Citation, TicketRead],
    ) -> Outcome:
        now = self.now()
        facts = Facts(
            role=role.name,
            cluster_scoped=role.scope == "cluster",
            duration=duration,
            reason=reason,
            now=now,
            approvals_in_window=self.store.automatic.count(requester, now),
            tickets=reads,
        )
        facts = self._read_for_rules(roster, role, requester, facts)
        return automation.evaluate(role.auto_approve, facts)

    def _read_for_rules(self, roster: Roster, role: Role, requester: SlackUserId, facts: Facts) -> Facts:
        live = [r for r in role.auto_approve if automation.limits_hold(r, facts) is None]
        reads = dict(facts.tickets)
        for rule in live:
            if rule.ticket is not None:
                wanted = [c for c in automation.cited(facts.reason, rule.ticket) if c not in reads]
                reads.update(self._read_tickets(wanted))
        facts = replace(facts, tickets=reads)
        needing = automation.needs_on_call(live, facts)
        if needing:
            facts = replace(facts, shifts=self._read_shifts(roster, requester, needing, facts.now))
        return facts

    def _read_tickets(self, citations: Sequence[Citation]) -> dict[Citation, TicketRead]:
        reads: dict[Citation, TicketRead] = {}
        for citation in citations:
            reads[citation] = self._read_ticket(citation)
        return reads

    def _read_ticket(self, citation: Citation) -> TicketRead:
        if self.tickets is None:
            return automation.source_not_set_up(citation)
        try:
            if citation.system == "jira":
                return self.tickets.jira_issue(citation.ref)
            return self.tickets.pagerduty_incident(citation.ref)
        except LookupFailed as exc:
            return automation.ticket_lookup_failed(citation, str(exc))
        except Exception as exc:
            log.exception("reading %s failed unexpectedly", citation.shown)
            return automation.answer_unreadable(citation, type(exc).__name__)

    def _read_shifts(
        self, roster: Roster, requester: SlackUserId, rules: Sequence[AutoRule], at: datetime
    ) -> Sequence[OnCallShift] | Unreadable:
        if self.on_call is None:
            return automation.ON_CALL_NOT_SET_UP
        email = email_of(roster, requester)
        if email is None:
            return automation.NO_EMAIL_FOR_ON_CALL
        schedules = sorted({s for r in rules if r.pagerduty_oncall for s in r.pagerduty_oncall.schedules})
        policies = sorted({p for r in rules if r.pagerduty_oncall for p in r.pagerduty_oncall.escalation_policies})
        try:
            return self.on_call.shifts(email, schedule_ids=schedules, escalation_policy_ids=policies, at=at)
        except LookupFailed as exc:
            return automation.on_call_lookup_failed(str(exc))
        except Exception as exc:
            log.exception("reading PagerDuty's on-call failed unexpectedly")
            return automation.on_call_unreadable(type(exc).__name__)

    # --- the daily cap, at approval and at grant -----------------------------------------------

    def claim(self, request: AccessRequest, rule: AutoRule) -> bool:
        return self.store.automatic.claim(request.requester, request.id, self.now(), rule.max_per_day)

    def release(self, request: AccessRequest) -> None:
        self.store.automatic.release(request.requester, request.id)

    # --- escalation ---------------------------------------------------------------------------

    def escalate(self, request_id: RequestId, roster: Roster) -> str | None:
        """Page the approvers when ``request_id`` is still undecided: open a PagerDuty incident on the
        role's ``escalate_service`` (keyed by the request, so a retry finds the same one) and record it.
        Returns the incident id, or None when there was nothing to page for. LookupFailed (a
        TemporaryError) propagates, so the job retries."""
        request = self.store.get(request_id)
        if request is None or request.state is not State.PENDING:
            return None
        role = roster.roles.get(request.role)
        if role is None or role.escalate_service is None:
            return None
        if self._escalation(request_id) is not None:
            return None  # paged already (the job ran twice)
        if self.pager is None:
            raise _NotSetUp("PagerDuty is not set up (BREAKGLASS_PAGERDUTY_TOKEN is unset), so nobody could be paged")
        waited = format_duration(self.now() - request.created_at)
        incident = self.pager.open_incident(
            service_id=role.escalate_service,
            title=automation.escalation_title(request, waited),
            details=automation.escalation_details(request, waited),
            incident_key=f"breakglass-{request.id}",
        )
        details = {"service": role.escalate_service, "incident": incident, "after": waited}
        self.store.escalations.add(request.id)
        self.store.audit.append(Draft(Event.ESCALATED, SYSTEM_ACTOR, request.id, details))
        self.jobs.publish(request.id)
        # Decided while the incident was being opened: settle it now rather than page for nothing.
        self.settle(request_id)
        return incident

    def settle(self, request_id: RequestId) -> bool:
        """Resolve the request's escalation incident once the request is decided. True when resolved
        now; LookupFailed propagates so the job retries."""
        request = self.store.get(request_id)
        if request is None:
            self.store.escalations.remove(request_id)  # Redis lost it: nothing left to read the incident from
            return False
        if request.state is State.PENDING:
            return False
        incident = self._escalation(request_id)
        if incident is None:
            self.store.escalations.remove(request_id)
            return False
        if self.pager is None:
            raise _NotSetUp("PagerDuty is not set up (BREAKGLASS_PAGERDUTY_TOKEN is unset), so it cannot be resolved")
        self.pager.resolve_incident(incident)
        details = {"incident": incident, "decided": request.state.label}
        self.store.audit.append(Draft(Event.ESCALATION_RESOLVED, SYSTEM_ACTOR, request.id, details))
        self.store.escalations.remove(request_id)
        self.jobs.publish(request.id)
        return True

    def settle_decided(self) -> list[RequestId]:
        """Queue the resolution of every open escalation whose request is no longer pending (the
        sweep's call): a resolving job lost with a killed process must not leave someone paged."""
        decided = []
        for request_id in self.store.escalations.open():
            request = self.store.get(request_id)
            if request is None or request.state is not State.PENDING:
                self.jobs.settle_escalation(request_id)
                decided.append(request_id)
        return decided

    def _escalation(self, request_id: RequestId) -> str | None:
        """The incident open for the request: escalated, and not resolved since."""
        incident: str | None = None
        for entry in self.store.audit.for_request(request_id):
            if entry.event == Event.ESCALATED:
                incident = str(entry.details.get("incident") or "") or None
            elif entry.event == Event.ESCALATION_RESOLVED:
                incident = None
        return incident


class _NotSetUp(PermanentError):
    pass


def email_of(roster: Roster, person: SlackUserId) -> str | None:
    """The address PagerDuty knows the person by: ``people.<id>.email``, else a kube_user that is one.
    Never the Slack profile's: the roster, reviewed like code, says who is whom."""
    found = roster.people.get(person)
    if found is None:
        return None
    if found.email:
        return found.email
    return found.kube_user if _EMAIL.fullmatch(found.kube_user) else None


def requested_details(screening: Screening) -> dict[str, object]:
    """What the ``requested`` entry keeps of the ticket check."""
    if screening.ticket is not None:
        return {"ticket": automation.ticket_details(screening.ticket)}
    if screening.ticket_unchecked is not None:
        return {"ticket_unchecked": screening.ticket_unchecked.details()}
    return {}


def approved_details(outcome: Approved, waited: float) -> Mapping[str, object]:
    return {"automatic": True, **outcome.evidence, "waited_seconds": waited}
