"""Why an automatic-approval rule did not approve a request, and why a cited ticket did not count: a
code and its facts, and the one sentence each renders to.

The audit log keeps the code and the facts, never the sentence: the ``left_to_approvers`` entry
(``code`` beside ``lookup_failed``), the ``requested`` entry's ``ticket_unchecked`` (a mapping of its
own), and a grant failure's rule that no longer approves (``miss`` beside the failure's code). So an
entry reads the same to a machine whatever the wording becomes. Entries written before misses had
codes hold the sentence itself (``why``, a ``ticket_unchecked`` string, a failure's ``reason``) and
still read as they did. A refusal shown to the requester at once (a missing or closed ticket) is
rendered from the same codes. Like the grant failures' sentences, these live in the domain because
the places that show them (the services, the Slack adapter, the reports) sit in layers that cannot
import each other; each escapes it where it shows it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

LEVEL_NAMES = {1: "primary", 2: "secondary", 3: "tertiary"}


class MissCode(StrEnum):
    NO_RULES = "no_rules"
    CLUSTER_SCOPED = "cluster_scoped"
    OVER_MAX_DURATION = "over_max_duration"
    OUTSIDE_WINDOW = "outside_window"
    DAILY_CAP = "daily_cap"  # counted before the request was stored
    CAP_TAKEN = "cap_taken"  # the last place under the cap went to another request meanwhile
    NOT_ON_CALL = "not_on_call"
    ON_CALL_TOO_DEEP = "on_call_too_deep"
    NO_TICKET_CITED = "no_ticket_cited"
    TICKET_UNKNOWN = "ticket_unknown"
    TICKET_CLOSED = "ticket_closed"
    # A source that could not be read: never a reason to approve.
    ON_CALL_NOT_ASKED = "on_call_not_asked"
    ON_CALL_NOT_SET_UP = "on_call_not_set_up"
    NO_EMAIL_FOR_ON_CALL = "no_email_for_on_call"
    ON_CALL_LOOKUP_FAILED = "on_call_lookup_failed"
    ON_CALL_UNREADABLE = "on_call_unreadable"
    TICKET_NOT_LOOKED_UP = "ticket_not_looked_up"
    TICKET_SOURCE_NOT_SET_UP = "ticket_source_not_set_up"
    TICKET_LOOKUP_FAILED = "ticket_lookup_failed"
    TICKET_UNREADABLE = "ticket_unreadable"


LOOKUP_FAILURES = frozenset(
    {
        MissCode.ON_CALL_NOT_ASKED,
        MissCode.ON_CALL_NOT_SET_UP,
        MissCode.NO_EMAIL_FOR_ON_CALL,
        MissCode.ON_CALL_LOOKUP_FAILED,
        MissCode.ON_CALL_UNREADABLE,
        MissCode.TICKET_NOT_LOOKED_UP,
        MissCode.TICKET_SOURCE_NOT_SET_UP,
        MissCode.TICKET_LOOKUP_FAILED,
        MissCode.TICKET_UNREADABLE,
    }
)

# Facts a ticket miss records of what the role or rule accepts: ``jira_projects`` (comma-separated)
# when it accepts Jira issues, ``pagerduty_incidents`` ("yes") when it accepts incidents; and ``rule``
# when a rule's ticket missed (rather than the role's, which is refused at once).
_ACCEPTS = ("jira_projects", "pagerduty_incidents")

# The facts each code may record, by their keys in the audit entry's details. ``error`` is the kind of
# an unexpected failure (an exception's name) or, for ``*_lookup_failed``, the adapter's own sentence
# (``LookupFailed``: the source and the cause, never a token or a response body).
FACTS: Mapping[MissCode, tuple[str, ...]] = {
    MissCode.NO_RULES: ("role",),
    MissCode.CLUSTER_SCOPED: ("role", "rule"),
    MissCode.OVER_MAX_DURATION: ("duration", "max_duration", "rule"),
    MissCode.OUTSIDE_WINDOW: ("day", "time", "tz", "window", "rule"),
    MissCode.DAILY_CAP: ("approvals", "max_per_day", "rule"),
    MissCode.CAP_TAKEN: ("max_per_day", "rule"),
    MissCode.NOT_ON_CALL: ("schedules", "rule"),
    MissCode.ON_CALL_TOO_DEEP: ("level", "on_call", "max_level", "rule"),
    MissCode.NO_TICKET_CITED: ("role", "foreign", *_ACCEPTS, "rule"),
    MissCode.TICKET_UNKNOWN: ("ticket", "system", *_ACCEPTS, "rule"),
    MissCode.TICKET_CLOSED: ("ticket", "status", "allowed", "rule"),
    MissCode.ON_CALL_NOT_ASKED: (),
    MissCode.ON_CALL_NOT_SET_UP: (),
    MissCode.NO_EMAIL_FOR_ON_CALL: (),
    MissCode.ON_CALL_LOOKUP_FAILED: ("error",),
    MissCode.ON_CALL_UNREADABLE: ("error",),
    MissCode.TICKET_NOT_LOOKED_UP: ("ticket",),
    MissCode.TICKET_SOURCE_NOT_SET_UP: ("ticket", "system"),
    MissCode.TICKET_LOOKUP_FAILED: ("ticket", "error"),
    MissCode.TICKET_UNREADABLE: ("ticket", "system", "error"),
}


@dataclass(frozen=True)
class Miss:
    code: MissCode
    facts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.facts) - set(FACTS[self.code])
        if unknown:
            raise ValueError(f"{self.code.value} records no {sorted(unknown)}")

    @property
    def lookup_failed(self) -> bool:
        """A source could not be read: the approvers must know the automation could not look."""
        return self.code in LOOKUP_FAILURES

    def for_rule(self, rule: str) -> Miss:
        """A ticket miss as a rule's: that rule needed the ticket."""
        return Miss(self.code, {**self.facts, "rule": rule})

    def details(self, key: str = "code") -> dict[str, str]:
        """What the audit entry records of this miss, beside its other details."""
        return {key: self.code.value, **self.facts}

    @classmethod
    def from_details(cls, details: Mapping[str, object], key: str = "code") -> Miss | None:
        """The miss an entry records under ``key``; None for one written before misses had codes."""
        try:
            code = MissCode(str(details.get(key)))
        except ValueError:
            return None
        return cls(code, {k: str(details[k]) for k in FACTS[code] if k in details and k != key})

    def sentence(self) -> str:
        f = self.facts
        rule = f.get("rule", "?")
        match self.code:
            case MissCode.NO_RULES:
                return f"'{f.get('role')}' has no automatic approval rules."
            case MissCode.CLUSTER_SCOPED:
                return f"'{f.get('role')}' is cluster-wide, and rule {rule} approves only namespaced roles without a click."
            case MissCode.OVER_MAX_DURATION:
                most = f.get("max_duration")
                return (
                    f"{f.get('duration')} is longer than the {most} rule {rule} approves without a click "
                    f"(ask for {most} or less, or wait for an approver)."
                )
            case MissCode.OUTSIDE_WINDOW:
                return (
                    f"it is {f.get('day')} {f.get('time')} {f.get('tz')}, outside the hours rule {rule} "
                    f"covers ({f.get('window')})."
                )
            case MissCode.DAILY_CAP:
                return (
                    f"you have had {f.get('approvals')} automatic approvals in the last 24 hours, "
                    f"the most rule {rule} allows ({f.get('max_per_day')})."
                )
            case MissCode.CAP_TAKEN:
                return (
                    f"you have reached the {f.get('max_per_day')} automatic approvals rule {rule} allows in 24 hours."
                )
            case MissCode.NOT_ON_CALL:
                return f"you are not on call now in {f.get('schedules')}, which rule {rule} needs."
            case MissCode.ON_CALL_TOO_DEEP:
                max_level = _int(f.get("max_level"))
                return (
                    f"you are {level_name(_int(f.get('level')))} on call for {f.get('on_call')}, and rule "
                    f"{rule} approves only {level_name(max_level)} on call (level {max_level} or below)."
                )
            case MissCode.NO_TICKET_CITED | MissCode.TICKET_UNKNOWN | MissCode.TICKET_CLOSED:
                said = self._ticket_sentence()
                return f"rule {rule} needs an open ticket: {said}" if "rule" in f else said
            case MissCode.ON_CALL_NOT_ASKED:
                return "PagerDuty was not asked who is on call."
            case MissCode.ON_CALL_NOT_SET_UP:
                return "PagerDuty is not set up (BREAKGLASS_PAGERDUTY_TOKEN is unset), so on-call was not checked."
            case MissCode.NO_EMAIL_FOR_ON_CALL:
                return (
                    "the roster has no email address for you (people.<id>.email), so PagerDuty could not be asked "
                    "whether you are on call."
                )
            case MissCode.ON_CALL_LOOKUP_FAILED | MissCode.TICKET_LOOKUP_FAILED:
                return f.get("error") or "the lookup failed."
            case MissCode.ON_CALL_UNREADABLE:
                return f"PagerDuty's on-call answer could not be read ({f.get('error')})."
            case MissCode.TICKET_NOT_LOOKED_UP:
                return f"{f.get('ticket')} was not looked up"
            case MissCode.TICKET_SOURCE_NOT_SET_UP:
                system = f.get("system")
                setting = "BREAKGLASS_JIRA_URL" if system == "jira" else "BREAKGLASS_PAGERDUTY_TOKEN"
                return f"{source_name(system)} is not set up ({setting} is unset), so {f.get('ticket')} could not be checked."
            case MissCode.TICKET_UNREADABLE:
                return f"{source_name(f.get('system'))}'s answer about {f.get('ticket')} could not be read ({f.get('error')})."

    def _ticket_sentence(self) -> str:
        f = self.facts
        match self.code:
            case MissCode.NO_TICKET_CITED:
                whose = f"'{f['role']}' needs" if f.get("role") else "This needs"
                also = f" ({f['foreign']} is not in {f.get('jira_projects')})" if f.get("foreign") else ""
                return f"{whose} a ticket{also}: cite {self._accepted()} in the reason, still open, and ask again."
            case MissCode.TICKET_UNKNOWN:
                return f"{f.get('ticket')} does not exist in {source_name(f.get('system'))}; cite {self._accepted()}."
            case _:
                allowed = " or ".join(_listed(f.get("allowed"))) or "open"
                return f"{f.get('ticket')} is {f.get('status')}, not {allowed}; cite a ticket that is still open."

    def _accepted(self) -> str:
        projects = _listed(self.facts["jira_projects"]) if "jira_projects" in self.facts else None
        return describe_tickets(projects, "pagerduty_incidents" in self.facts)


def accepts(jira_projects: tuple[str, ...] | None, pagerduty_incidents: bool) -> dict[str, str]:
    """The facts a ticket miss records of what is accepted (see ``describe_tickets``)."""
    facts: dict[str, str] = {}
    if jira_projects is not None:
        facts["jira_projects"] = ", ".join(jira_projects)
    if pagerduty_incidents:
        facts["pagerduty_incidents"] = "yes"
    return facts


def describe_tickets(jira_projects: list[str] | tuple[str, ...] | None, pagerduty_incidents: bool) -> str:
    """What a ticket policy accepts, for the sentence that asks for one."""
    kinds = []
    if jira_projects is not None:
        example = f"{jira_projects[0]}-123" if jira_projects else "KEY-123"
        kinds.append(f"a Jira issue of {', '.join(jira_projects)} (like {example})")
    if pagerduty_incidents:
        kinds.append("a PagerDuty incident (PD#1234 or its link)")
    return " or ".join(kinds)


def level_name(level: int | None) -> str:
    return LEVEL_NAMES.get(level, f"level {level}") if level is not None else "level ?"


def source_name(system: str | None) -> str:
    return "Jira" if system == "jira" else "PagerDuty"


def miss_sentence(details: Mapping[str, object]) -> str | None:
    """Why, for a ``left_to_approvers`` entry's details: its code's sentence; else the ``why`` an entry
    written before codes holds, as it was written; None when it says none."""
    miss = Miss.from_details(details)
    if miss is not None:
        return miss.sentence()
    why = details.get("why")
    return str(why) if why else None


def unchecked_sentence(unchecked: object) -> str:
    """Why a role's ticket was not checked, for a ``requested`` entry's ``ticket_unchecked``: a miss's
    details, or (written before misses had codes) the sentence itself."""
    if isinstance(unchecked, Mapping):
        miss = Miss.from_details(unchecked)
        if miss is not None:
            return miss.sentence()
    return str(unchecked)


def said_as_before(details: Mapping[str, object]) -> dict[str, object]:
    """The details as an entry written before codes held them: the code and its facts replaced, in
    the code's place, by its sentence under ``why``. For listings that show every detail."""
    miss = Miss.from_details(details)
    if miss is None:
        return dict(details)
    shown: dict[str, object] = {}
    for key, value in details.items():
        if key == "code":
            shown["why"] = miss.sentence()
        elif key not in miss.facts:
            shown[key] = value
    return shown


def _listed(joined: str | None) -> list[str]:
    return [part.strip() for part in (joined or "").split(",") if part.strip()]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
