"""Automated approvals: the roster's rules, the tickets a reason cites, and the decision, with no I/O.

A role may name the tickets a request must cite (``ticket:``) and rules under which a request is
approved without a click (``auto_approve:``). The services read PagerDuty and Jira through
``bot.ports`` and hand what they read here; ``evaluate`` decides which rule holds, with its evidence, or
says why the request is left to the approvers: a ``Miss``, a code and its facts, which the audit log
keeps and ``bot.domain.automation_misses`` renders to a sentence. Nothing here talks to a network, reads
a clock or knows Slack: the same inputs always give the same answer, which is what lets the grant job
check a rule's limits again before it acts.

Fail-safe by construction: a source that could not be read is an ``Unreadable``, which no rule accepts
as evidence, so a lookup failure can only ever send a request to the humans.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from bot.domain.audit import format_at
from bot.domain.automation_misses import Miss, MissCode, accepts
from bot.domain.durations import format_duration

if TYPE_CHECKING:
    from bot.domain.lifecycle import AccessRequest  # which imports this module's Ticket

TicketSystem = Literal["jira", "pagerduty"]
OnLookupFailure = Literal["refuse", "approvers"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# PagerDuty's incident states that mean "still burning"; the default of ``pagerduty_incident:``.
OPEN_INCIDENT_STATUSES = ("triggered", "acknowledged")
INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
# The daily cap counts automatic approvals in the last 24 hours (a rolling window: midnight is no
# reset an attacker could time).
CAP_WINDOW = timedelta(hours=24)
# A reason citing more tickets than this has the first ones checked; the rest are not looked up.
MAX_CITATIONS = 3


# --- what the outside world said (read by the adapters; ``bot.ports`` re-exports these) -------------


@dataclass(frozen=True)
class OnCallShift:
    """One on-call entry of a person, as PagerDuty's ``GET /oncalls`` lists it."""

    escalation_policy_id: str
    escalation_policy_name: str
    escalation_level: int
    schedule_id: str | None  # None: the person is on the policy directly, not through a schedule
    schedule_name: str | None
    start: datetime | None  # None: always on call (no schedule)
    end: datetime | None


@dataclass(frozen=True)
class Ticket:
    """A ticket as read at the moment it was checked; the audit entry keeps exactly this."""

    system: str  # "jira" | "pagerduty"
    key: str  # INC-4411, or a PagerDuty incident's number or id (Q1ABC…)
    title: str
    status: str  # as the system names it: "In Progress", "acknowledged"
    url: str
    project: str | None = None  # Jira project key; None for PagerDuty


@dataclass(frozen=True)
class Unreadable:
    """A source that could not be read; ``miss`` names it and the cause."""

    miss: Miss


# --- the roster's part ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JiraTickets:
    projects: tuple[str, ...]
    statuses: tuple[str, ...]

    def allows(self, status: str) -> bool:
        return status.casefold() in {s.casefold() for s in self.statuses}


@dataclass(frozen=True)
class IncidentTickets:
    statuses: tuple[str, ...] = OPEN_INCIDENT_STATUSES

    def allows(self, status: str) -> bool:
        return status.casefold() in {s.casefold() for s in self.statuses}


@dataclass(frozen=True)
class TicketPolicy:
    """Which tickets count: Jira issues of some projects and statuses, PagerDuty incidents, or both.

    ``on_lookup_failure`` (role level only): when Jira or PagerDuty cannot be read, ``refuse`` the
    request (the default: the ticket requirement is a control, and an outage must not switch it off)
    or let it through to the ``approvers``, who see that the ticket was not checked."""

    jira: JiraTickets | None = None
    pagerduty_incident: IncidentTickets | None = None
    on_lookup_failure: OnLookupFailure = "refuse"

    def accepts(self) -> dict[str, str]:
        """What it accepts, as a ticket miss records it."""
        return accepts(self.jira.projects if self.jira else None, self.pagerduty_incident is not None)


@dataclass(frozen=True)
class OnCallCondition:
    schedules: tuple[str, ...] = ()
    escalation_policies: tuple[str, ...] = ()
    max_level: int = 1

    def covers(self, shift: OnCallShift) -> bool:
        return (shift.schedule_id is not None and shift.schedule_id in self.schedules) or (
            shift.escalation_policy_id in self.escalation_policies
        )


@dataclass(frozen=True)
class Window:
    """Days and hours in a time zone. ``end <= start`` spans midnight: the window opens on a listed
    day and closes on the next one (``18:00-09:00`` on mon..fri covers Tuesday 03:00)."""

    days: frozenset[int]  # 0 = Monday
    start: int  # minutes after midnight
    end: int  # minutes after midnight, 1440 for 24:00
    tz: str = "UTC"

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)

    def describe(self) -> str:
        every = self.days == frozenset(range(7))
        days = "every day" if every else ", ".join(DAYS[d] for d in sorted(self.days))
        return f"{days} {_hhmm(self.start)}-{_hhmm(self.end)} {self.tz}"


@dataclass(frozen=True)
class AutoRule:
    """One ``auto_approve:`` entry: conditions that must all hold, and the limits of what it approves."""

    name: str
    pagerduty_oncall: OnCallCondition | None = None
    during: Window | None = None
    ticket: TicketPolicy | None = None
    max_duration: timedelta | None = None  # None: the role's
    max_per_day: int | None = None  # automatic approvals per person in any 24 hours
    # Cluster-wide roles reach every namespace: a rule approves them only when it says so.
    allow_cluster_scoped: bool = False


# --- tickets cited in a reason ------------------------------------------------------------------

_JIRA_KEY = re.compile(r"(?<![A-Za-z0-9_-])([A-Z][A-Z0-9_]{0,9})-([1-9][0-9]{0,8})(?![A-Za-z0-9])")
_PD_NUMBER = re.compile(r"(?<![A-Za-z0-9])PD#([1-9][0-9]{0,8})(?![0-9])", re.IGNORECASE)
_PD_LINK = re.compile(r"https?://[a-z0-9-]+\.pagerduty\.com/incidents/([A-Z0-9]{6,20})(?![A-Za-z0-9])")


@dataclass(frozen=True)
class Citation:
    system: TicketSystem
    ref: str  # INC-4411; a PagerDuty incident's number or id

    @property
    def shown(self) -> str:
        if self.system == "pagerduty":
            return f"PD#{self.ref}" if self.ref.isdigit() else f"PagerDuty incident {self.ref}"
        return self.ref

    @property
    def source(self) -> str:
        return "Jira" if self.system == "jira" else "PagerDuty"


# --- sources that could not be read (the services' reads end here) ---------------------------------

ON_CALL_NOT_SET_UP = Unreadable(Miss(MissCode.ON_CALL_NOT_SET_UP))
NO_EMAIL_FOR_ON_CALL = Unreadable(Miss(MissCode.NO_EMAIL_FOR_ON_CALL))


def source_not_set_up(citation: Citation) -> Unreadable:
    return Unreadable(Miss(MissCode.TICKET_SOURCE_NOT_SET_UP, {"ticket": citation.shown, "system": citation.system}))


def answer_unreadable(citation: Citation, error: str) -> Unreadable:
    """``error``: the kind of failure (an exception's name), never its text."""
    facts = {"ticket": citation.shown, "system": citation.system, "error": error}
    return Unreadable(Miss(MissCode.TICKET_UNREADABLE, facts))


def ticket_lookup_failed(citation: Citation, error: str) -> Unreadable:
    """``error``: the adapter's sentence (``LookupFailed``), naming the source and the cause."""
    return Unreadable(Miss(MissCode.TICKET_LOOKUP_FAILED, {"ticket": citation.shown, "error": error}))


def on_call_unreadable(error: str) -> Unreadable:
    """``error``: the kind of failure (an exception's name), never its text."""
    return Unreadable(Miss(MissCode.ON_CALL_UNREADABLE, {"error": error}))


def on_call_lookup_failed(error: str) -> Unreadable:
    """``error``: the adapter's sentence (``LookupFailed``), naming the source and the cause."""
    return Unreadable(Miss(MissCode.ON_CALL_LOOKUP_FAILED, {"error": error}))


def unchecked_refusal(unchecked: Miss) -> str:
    """A role's ticket could not be checked and the role says ``on_lookup_failure: refuse``: shown at
    once, never stored."""
    said = unchecked.sentence().rstrip(".")
    return f"The ticket could not be checked ({said}), so the request was not made; try again in a minute."


def cited(reason: str, policy: TicketPolicy) -> list[Citation]:
    """The tickets ``reason`` cites that ``policy`` could accept, in the order written, at most
    MAX_CITATIONS. A Jira key of a project the policy does not list is not a citation."""
    found: list[tuple[int, Citation]] = []
    if policy.jira is not None:
        projects = set(policy.jira.projects)
        for match in _JIRA_KEY.finditer(reason):
            if match.group(1) in projects:
                found.append((match.start(), Citation("jira", match.group(0))))
    if policy.pagerduty_incident is not None:
        for match in _PD_NUMBER.finditer(reason):
            found.append((match.start(), Citation("pagerduty", match.group(1))))
        for match in _PD_LINK.finditer(reason):
            found.append((match.start(), Citation("pagerduty", match.group(1))))
    ordered: list[Citation] = []
    for _, citation in sorted(found, key=lambda pair: pair[0]):
        if citation not in ordered:
            ordered.append(citation)
    return ordered[:MAX_CITATIONS]


def foreign_jira_keys(reason: str, policy: TicketPolicy) -> list[str]:
    """Jira-looking keys of projects the policy does not accept (to say why they do not count)."""
    projects = set(policy.jira.projects) if policy.jira is not None else set()
    return [m.group(0) for m in _JIRA_KEY.finditer(reason) if m.group(1) not in projects]


TicketRead = Ticket | None | Unreadable  # None: there is no such ticket


@dataclass(frozen=True)
class TicketCheck:
    """What the cited tickets came to: ``ticket`` (one that counts), or ``refusal`` (the requester
    must fix the reason), or ``unchecked`` (a lookup failed: the source and the cause)."""

    ticket: Ticket | None = None
    refusal: Miss | None = None
    unchecked: Miss | None = None

    @property
    def ok(self) -> bool:
        return self.ticket is not None


def check_tickets(
    policy: TicketPolicy, reason: str, reads: Mapping[Citation, TicketRead], role: str = ""
) -> TicketCheck:
    """Whether ``reason`` cites a ticket ``policy`` accepts, given what each citation read as.

    The first cited ticket that exists and is in an allowed state counts. Otherwise the answer is
    about the first one cited: unknown, closed, or not checkable; with none cited, what to cite."""
    citations = cited(reason, policy)
    if not citations:
        foreign = foreign_jira_keys(reason, policy)
        facts = {"role": role, **policy.accepts()}
        if foreign and policy.jira is not None:
            facts["foreign"] = foreign[0]
        return TicketCheck(refusal=Miss(MissCode.NO_TICKET_CITED, facts))
    problems: list[TicketCheck] = []
    for citation in citations:
        read = reads.get(citation, Unreadable(Miss(MissCode.TICKET_NOT_LOOKED_UP, {"ticket": citation.shown})))
        if isinstance(read, Unreadable):
            problems.append(TicketCheck(unchecked=read.miss))
        elif read is None:
            facts = {"ticket": citation.shown, "system": citation.system, **policy.accepts()}
            problems.append(TicketCheck(refusal=Miss(MissCode.TICKET_UNKNOWN, facts)))
        elif not _status_allowed(policy, read):
            facts = {"ticket": citation.shown, "status": read.status, "allowed": _allowed_statuses(policy, read)}
            problems.append(TicketCheck(refusal=Miss(MissCode.TICKET_CLOSED, facts)))
        else:
            return TicketCheck(ticket=read)
    return problems[0]


def _status_allowed(policy: TicketPolicy, ticket: Ticket) -> bool:
    if ticket.system == "jira":
        return policy.jira is not None and policy.jira.allows(ticket.status)
    return policy.pagerduty_incident is not None and policy.pagerduty_incident.allows(ticket.status)


def _allowed_statuses(policy: TicketPolicy, ticket: Ticket) -> str:
    """The statuses that count, comma-separated, as a ``ticket_closed`` miss records them."""
    statuses = (
        policy.jira.statuses
        if ticket.system == "jira" and policy.jira is not None
        else (policy.pagerduty_incident.statuses if policy.pagerduty_incident is not None else ())
    )
    return ", ".join(statuses)


def ticket_details(ticket: Ticket) -> dict[str, Any]:
    """The ticket as the audit entry keeps it: as read at the moment it was checked."""
    details: dict[str, Any] = {
        "system": ticket.system,
        "key": ticket.key,
        "title": ticket.title,
        "status": ticket.status,
        "url": ticket.url,
    }
    if ticket.project:
        details["project"] = ticket.project
    return details


# --- the decision --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Everything ``evaluate`` looks at, read before it is called."""

    role: str
    cluster_scoped: bool
    duration: timedelta
    reason: str
    now: datetime
    approvals_in_window: int  # the person's automatic approvals in the last CAP_WINDOW
    shifts: Sequence[OnCallShift] | Unreadable | None = None  # None: not read
    tickets: Mapping[Citation, TicketRead] = field(default_factory=dict)


@dataclass(frozen=True)
class Approved:
    """A rule holds: ``rule`` names it, ``evidence`` is what the audit entry keeps."""

    rule: AutoRule
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class LeftToApprovers:
    """No rule holds; ``miss`` says why, for the requester and the thread."""

    miss: Miss

    @property
    def lookup_failed(self) -> bool:
        """Because a source could not be read (never a reason to approve)."""
        return self.miss.lookup_failed

    def details(self) -> dict[str, object]:
        """What the ``left_to_approvers`` audit entry records."""
        details: dict[str, object] = dict(self.miss.details())
        if self.lookup_failed:
            details["lookup_failed"] = True
        return details


Outcome = Approved | LeftToApprovers


def evaluate(rules: Sequence[AutoRule], facts: Facts) -> Outcome:
    """The first rule that holds, with its evidence; else why none does. A lookup failure is named
    first (the approvers must know the automation could not look), then the first rule's miss."""
    misses: list[Miss] = []
    for rule in rules:
        result = _check(rule, facts)
        if isinstance(result, Approved):
            return result
        misses.append(result)
    if not misses:
        return LeftToApprovers(Miss(MissCode.NO_RULES, {"role": facts.role}))
    failed = next((m for m in misses if m.lookup_failed), None)
    return LeftToApprovers(failed or misses[0])


def capped(rule: AutoRule) -> LeftToApprovers:
    """The rule would approve, but its daily cap is taken: left to the approvers, saying why."""
    return LeftToApprovers(Miss(MissCode.CAP_TAKEN, {"max_per_day": str(rule.max_per_day), "rule": rule.name}))


def needs_on_call(rules: Sequence[AutoRule], facts: Facts) -> list[AutoRule]:
    """The rules whose limits and static conditions hold, and that still need PagerDuty's on-call:
    the only ones worth a lookup (a request over every rule's limits costs PagerDuty nothing)."""
    return [r for r in rules if r.pagerduty_oncall is not None and _limits(r, facts) is None]


def limits_hold(rule: AutoRule, facts: Facts) -> Miss | None:
    """None when ``rule``'s limits (scope, duration, window, daily cap) allow ``facts``; else why not."""
    return _limits(rule, facts)


def _limits(rule: AutoRule, facts: Facts) -> Miss | None:
    if facts.cluster_scoped and not rule.allow_cluster_scoped:
        return Miss(MissCode.CLUSTER_SCOPED, {"role": facts.role, "rule": rule.name})
    if rule.max_duration is not None and facts.duration > rule.max_duration:
        durations = {"duration": format_duration(facts.duration), "max_duration": format_duration(rule.max_duration)}
        return Miss(MissCode.OVER_MAX_DURATION, {**durations, "rule": rule.name})
    if rule.during is not None and not rule.during.contains(facts.now):
        local = facts.now.astimezone(ZoneInfo(rule.during.tz))
        when = {"day": DAYS[local.weekday()], "time": f"{local:%H:%M}", "tz": rule.during.tz}
        return Miss(MissCode.OUTSIDE_WINDOW, {**when, "window": rule.during.describe(), "rule": rule.name})
    if rule.max_per_day is not None and facts.approvals_in_window >= rule.max_per_day:
        counts = {"approvals": str(facts.approvals_in_window), "max_per_day": str(rule.max_per_day)}
        return Miss(MissCode.DAILY_CAP, {**counts, "rule": rule.name})
    return None


def _check(rule: AutoRule, facts: Facts) -> Approved | Miss:
    miss = _limits(rule, facts)
    if miss is not None:
        return miss
    evidence: dict[str, Any] = {"rule": rule.name}
    if rule.during is not None:
        evidence["window"] = rule.during.describe()
    if rule.max_duration is not None:
        evidence["max_duration"] = format_duration(rule.max_duration)
    if rule.max_per_day is not None:
        evidence["max_per_day"] = rule.max_per_day
    evidence["approvals_in_24h"] = facts.approvals_in_window + 1
    if rule.ticket is not None:
        check = check_tickets(rule.ticket, facts.reason, facts.tickets, facts.role)
        if check.unchecked is not None:
            return check.unchecked
        if check.ticket is None:
            assert check.refusal is not None
            return check.refusal.for_rule(rule.name)
        evidence["ticket"] = ticket_details(check.ticket)
    if rule.pagerduty_oncall is not None:
        on_call = _on_call(rule, rule.pagerduty_oncall, facts)
        if isinstance(on_call, Miss):
            return on_call
        evidence["on_call"] = on_call
    return Approved(rule, evidence)


def _on_call(rule: AutoRule, condition: OnCallCondition, facts: Facts) -> dict[str, Any] | Miss:
    if facts.shifts is None:
        return Miss(MissCode.ON_CALL_NOT_ASKED)
    if isinstance(facts.shifts, Unreadable):
        return facts.shifts.miss
    now = facts.now
    current = [
        s
        for s in facts.shifts
        if condition.covers(s) and (s.start is None or s.start <= now) and (s.end is None or now < s.end)
    ]
    within = [s for s in current if 1 <= s.escalation_level <= condition.max_level]
    if within:
        # The lowest level wins; at the same level, the shift that lasts longest says the most.
        best = min(within, key=lambda s: s.escalation_level)
        same = [s for s in within if s.escalation_level == best.escalation_level]
        best = max(same, key=lambda s: s.end or datetime.max.replace(tzinfo=now.tzinfo))
        return shift_details(best)
    if current:
        deepest = min(current, key=lambda s: s.escalation_level)
        levels = {"level": str(deepest.escalation_level), "max_level": str(condition.max_level)}
        return Miss(MissCode.ON_CALL_TOO_DEEP, {**levels, "on_call": on_call_name(deepest), "rule": rule.name})
    named = ", ".join((*condition.schedules, *condition.escalation_policies))
    return Miss(MissCode.NOT_ON_CALL, {"schedules": named, "rule": rule.name})


def shift_details(shift: OnCallShift) -> dict[str, Any]:
    details: dict[str, Any] = {
        "escalation_policy": shift.escalation_policy_id,
        "escalation_policy_name": shift.escalation_policy_name,
        "level": shift.escalation_level,
        "start": format_at(shift.start) if shift.start else None,
        "end": format_at(shift.end) if shift.end else None,
    }
    if shift.schedule_id is not None:
        details["schedule"] = shift.schedule_id
        details["schedule_name"] = shift.schedule_name
    return details


def on_call_name(shift: OnCallShift) -> str:
    return shift.schedule_name or shift.escalation_policy_name or shift.schedule_id or shift.escalation_policy_id


def rule_named(rules: Sequence[AutoRule], name: str) -> AutoRule | None:
    return next((r for r in rules if r.name == name), None)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- escalation: the incident that pages the approvers -------------------------------------------


def escalation_title(request: AccessRequest, waited: str) -> str:
    return f"breakglass {request.id}: {request.role} on {request.target} waits for approval ({waited})"


def escalation_details(request: AccessRequest, waited: str) -> str:
    """The incident's body, for the paged approver: who asks, what, how long ago, and where to decide."""
    return (
        f"{request.requester} asked for {request.role} on {request.target} for "
        f"{format_duration(request.duration)} {waited} ago and nobody has decided. Approve or deny it in "
        f"Slack (/breakglass status {request.id}). Reason: {request.reason}"
    )
