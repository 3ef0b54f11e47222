"""The roster's automated-approval keys on a role: ``ticket:``, ``auto_approve:``, ``escalate_after:``
and ``escalate_service:``, checked as strictly as the rest of the roster (every problem, with its place).

Checked statically: names have the shape of PagerDuty ids and Jira project keys, durations and windows
are in order, and a rule can never approve more than its role allows. Whether each schedule, policy,
service and project exists is ``breakglass doctor``'s question, which needs the network; this module
has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.automation import (
    DAYS,
    INCIDENT_STATUSES,
    OPEN_INCIDENT_STATUSES,
    AutoRule,
    IncidentTickets,
    JiraTickets,
    OnCallCondition,
    TicketPolicy,
    Window,
)
from bot.domain.durations import format_duration

AUTOMATION_KEYS = frozenset({"ticket", "auto_approve", "escalate_after", "escalate_service"})
_RULE_KEYS = {
    "name", "pagerduty_oncall", "during", "ticket", "max_duration", "max_per_day", "allow_cluster_scoped",
}  # fmt: skip
_PAGERDUTY_ID = re.compile(r"[A-Z0-9]{6,20}")
_JIRA_PROJECT = re.compile(r"[A-Z][A-Z0-9_]{0,9}")
_HOURS = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MAX_LEVEL_LIMIT = 10
MAX_PER_DAY_LIMIT = 100


class Checks(Protocol):
    """The roster checker's helpers (``bot.domain.roster._Checker``)."""

    def problem(self, place: str, message: str) -> None: ...

    def mapping(self, value: Any, place: str, allowed: set[str], required: set[str]) -> dict[str, Any]: ...

    def string(self, value: Any, place: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None: ...

    def duration(self, value: Any, place: str) -> timedelta | None: ...

    def string_list(self, value: Any, place: str) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class RoleAutomation:
    ticket: TicketPolicy | None = None
    auto_approve: tuple[AutoRule, ...] = ()
    escalate_after: timedelta | None = None
    escalate_service: str | None = None


def parse_role_automation(
    check: Checks,
    spec: dict[str, Any],
    place: str,
    *,
    scope: Any,
    max_duration: timedelta | None,
    approvals: Any,
) -> RoleAutomation:
    """The automation keys of one role's ``spec`` (already checked for unknown keys)."""
    ticket = _ticket_policy(check, spec["ticket"], f"{place}.ticket", role_level=True) if "ticket" in spec else None
    rules = _rules(check, spec["auto_approve"], f"{place}.auto_approve", max_duration) if "auto_approve" in spec else ()
    self_service = isinstance(approvals, int) and not isinstance(approvals, bool) and approvals == 0
    if rules and self_service:
        check.problem(f"{place}.auto_approve", "a self-service role (approvals: 0) is granted at once already")
    if rules and scope == "cluster" and not any(r.allow_cluster_scoped for r in rules):
        check.problem(
            f"{place}.auto_approve",
            "the role is cluster-scoped, so no rule applies unless it says allow_cluster_scoped: true",
        )
    after = check.duration(spec["escalate_after"], f"{place}.escalate_after") if "escalate_after" in spec else None
    service = (
        check.string(spec["escalate_service"], f"{place}.escalate_service", _PAGERDUTY_ID, "a PagerDuty service id")
        if "escalate_service" in spec
        else None
    )
    if "escalate_after" in spec and "escalate_service" not in spec:
        check.problem(f"{place}.escalate_service", "is required with escalate_after (the PagerDuty service to page)")
    if "escalate_service" in spec and "escalate_after" not in spec:
        check.problem(f"{place}.escalate_after", "is required with escalate_service (how long to wait before paging)")
    if ("escalate_after" in spec or "escalate_service" in spec) and self_service:
        check.problem(f"{place}.escalate_after", "a self-service role has no decision to wait for")
    return RoleAutomation(ticket, rules, after, service)


def check_escalation_timing(check: Checks, role: str, after: timedelta | None, request_timeout: timedelta) -> None:
    """An escalation after the request has lapsed would page people for nothing."""
    if after is not None and after >= request_timeout:
        check.problem(
            f"roles.{role}.escalate_after",
            f"{format_duration(after)} is not shorter than request_timeout ({format_duration(request_timeout)}), "
            "so the request would lapse before anyone is paged",
        )


def _ticket_policy(check: Checks, value: Any, place: str, *, role_level: bool) -> TicketPolicy | None:
    allowed = {"jira", "pagerduty_incident"} | ({"on_lookup_failure"} if role_level else set())
    spec = check.mapping(value, place, allowed, set())
    jira = _jira(check, spec["jira"], f"{place}.jira") if "jira" in spec else None
    incident = (
        _incident(check, spec["pagerduty_incident"], f"{place}.pagerduty_incident")
        if "pagerduty_incident" in spec
        else None
    )
    if isinstance(value, dict) and "jira" not in spec and "pagerduty_incident" not in spec:
        check.problem(place, "names no kind of ticket: give jira, pagerduty_incident or both")
    failure = spec.get("on_lookup_failure", "refuse")
    if failure not in ("refuse", "approvers"):
        check.problem(f"{place}.on_lookup_failure", f"'{failure}' is not one of refuse, approvers")
        failure = "refuse"
    if jira is None and incident is None:
        return None
    return TicketPolicy(jira, incident, failure)


def _jira(check: Checks, value: Any, place: str) -> JiraTickets | None:
    spec = check.mapping(value, place, {"projects", "statuses"}, {"projects", "statuses"})
    projects = []
    for item_place, project in check.string_list(spec.get("projects", []), f"{place}.projects"):
        if _JIRA_PROJECT.fullmatch(project) is None:
            check.problem(item_place, f"'{project}' is not a Jira project key (like INC)")
        projects.append(project)
    statuses = [status for _, status in check.string_list(spec.get("statuses", []), f"{place}.statuses")]
    if "projects" in spec and isinstance(spec["projects"], list) and not spec["projects"]:
        check.problem(f"{place}.projects", "names no project")
    if "statuses" in spec and isinstance(spec["statuses"], list) and not spec["statuses"]:
        check.problem(f"{place}.statuses", "names no status, so no issue could ever count")
    if not projects or not statuses:
        return None
    return JiraTickets(tuple(projects), tuple(statuses))


def _incident(check: Checks, value: Any, place: str) -> IncidentTickets | None:
    spec = check.mapping(value if value is not None else {}, place, {"statuses"}, set())
    if "statuses" not in spec:
        return IncidentTickets(OPEN_INCIDENT_STATUSES)
    statuses = []
    for item_place, status in check.string_list(spec["statuses"], f"{place}.statuses"):
        if status not in INCIDENT_STATUSES:
            check.problem(item_place, f"'{status}' is not one of {', '.join(INCIDENT_STATUSES)}")
        statuses.append(status)
    if isinstance(spec["statuses"], list) and not spec["statuses"]:
        check.problem(f"{place}.statuses", "names no status, so no incident could ever count")
    return IncidentTickets(tuple(statuses)) if statuses else None


def _rules(check: Checks, value: Any, place: str, role_max: timedelta | None) -> tuple[AutoRule, ...]:
    if not isinstance(value, list):
        check.problem(place, "must be a list of rules")
        return ()
    if not value:
        check.problem(place, "names no rule; leave it out instead")
    rules: list[AutoRule] = []
    names: set[str] = set()
    for i, body in enumerate(value):
        rule = _rule(check, body, f"{place}[{i}]", i, role_max)
        if rule is None:
            continue
        if rule.name in names:
            check.problem(f"{place}[{i}].name", f"another rule of this role is named '{rule.name}'")
            continue
        names.add(rule.name)
        rules.append(rule)
    return tuple(rules)


def _rule(check: Checks, body: Any, place: str, index: int, role_max: timedelta | None) -> AutoRule | None:
    spec = check.mapping(body, place, _RULE_KEYS, set())
    if not isinstance(body, dict):
        return None
    broken = False
    name = f"auto_approve[{index}]"
    if "name" in spec:
        given = check.string(spec["name"], f"{place}.name", _RULE_NAME, "a rule name (letters, digits, _ . -)")
        name = given or name
        broken |= given is None
    oncall = (
        _oncall(check, spec["pagerduty_oncall"], f"{place}.pagerduty_oncall") if "pagerduty_oncall" in spec else None
    )
    during = _window(check, spec["during"], f"{place}.during") if "during" in spec else None
    ticket = _ticket_policy(check, spec["ticket"], f"{place}.ticket", role_level=False) if "ticket" in spec else None
    broken |= any(key in spec and parsed is None for key, parsed in (
        ("pagerduty_oncall", oncall), ("during", during), ("ticket", ticket)))  # fmt: skip
    if "pagerduty_oncall" not in spec and "ticket" not in spec:
        # A window alone would approve everyone entitled, at those hours, on their word alone.
        check.problem(place, "needs pagerduty_oncall or ticket: a time window alone would approve anyone entitled")
        broken = True
    max_duration = check.duration(spec["max_duration"], f"{place}.max_duration") if "max_duration" in spec else None
    if "max_duration" in spec and max_duration is None:
        broken = True
    if max_duration is not None and role_max is not None and max_duration > role_max:
        check.problem(
            f"{place}.max_duration",
            f"{format_duration(max_duration)} is above the role's max_duration ({format_duration(role_max)}), "
            "which still applies",
        )
    per_day = spec.get("max_per_day")
    if "max_per_day" in spec and (
        not isinstance(per_day, int) or isinstance(per_day, bool) or not 1 <= per_day <= MAX_PER_DAY_LIMIT
    ):
        check.problem(f"{place}.max_per_day", f"must be a whole number from 1 to {MAX_PER_DAY_LIMIT}, not {per_day!r}")
        broken = True
    cluster_scoped = spec.get("allow_cluster_scoped", False)
    if not isinstance(cluster_scoped, bool):
        check.problem(f"{place}.allow_cluster_scoped", f"must be true or false, not {cluster_scoped!r}")
        broken = True
    if broken:
        return None
    return AutoRule(
        name=name,
        pagerduty_oncall=oncall,
        during=during,
        ticket=ticket,
        max_duration=max_duration,
        max_per_day=per_day if isinstance(per_day, int) else None,
        allow_cluster_scoped=cluster_scoped is True,
    )


def _oncall(check: Checks, value: Any, place: str) -> OnCallCondition | None:
    spec = check.mapping(value, place, {"schedules", "escalation_policies", "max_level"}, set())
    ids: dict[str, list[str]] = {}
    for key in ("schedules", "escalation_policies"):
        ids[key] = []
        for item_place, item in check.string_list(spec[key], f"{place}.{key}") if key in spec else []:
            if _PAGERDUTY_ID.fullmatch(item) is None:
                check.problem(item_place, f"'{item}' is not a PagerDuty id (like P1ABCDE)")
            ids[key].append(item)
    if isinstance(value, dict) and not ids["schedules"] and not ids["escalation_policies"]:
        check.problem(place, "names no schedule or escalation policy")
        return None
    level = spec.get("max_level", 1)
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= MAX_LEVEL_LIMIT:
        check.problem(f"{place}.max_level", f"must be a whole number from 1 to {MAX_LEVEL_LIMIT}, not {level!r}")
        return None
    if not isinstance(value, dict):
        return None
    return OnCallCondition(tuple(ids["schedules"]), tuple(ids["escalation_policies"]), level)


def _window(check: Checks, value: Any, place: str) -> Window | None:
    spec = check.mapping(value, place, {"days", "hours", "tz"}, set())
    if not isinstance(value, dict):
        return None
    ok = True
    days: set[int] = set()
    for item_place, day in check.string_list(spec["days"], f"{place}.days") if "days" in spec else []:
        if day.lower() not in DAYS:
            check.problem(item_place, f"'{day}' is not one of {', '.join(DAYS)}")
            ok = False
            continue
        days.add(DAYS.index(day.lower()))
    if "days" in spec and isinstance(spec["days"], list) and not spec["days"]:
        check.problem(f"{place}.days", "names no day, so the rule could never hold")
        ok = False
    start, end = 0, 24 * 60
    hours = spec.get("hours", "00:00-24:00")
    match = _HOURS.fullmatch(hours) if isinstance(hours, str) else None
    if match is None:
        check.problem(f"{place}.hours", f"must be written HH:MM-HH:MM (like 18:00-09:00), not {hours!r}")
        ok = False
    else:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
            check.problem(f"{place}.hours", f"'{hours}' is not a time of day (00:00 to 24:00)")
            ok = False
        elif start == end:
            check.problem(
                f"{place}.hours", f"'{hours}' starts and ends at the same minute; write 00:00-24:00 for all day"
            )
            ok = False
    tz = spec.get("tz", "UTC")
    if not isinstance(tz, str) or not _known_zone(tz):
        check.problem(f"{place}.tz", f"{tz!r} is not an IANA time zone (like UTC or Europe/Paris)")
        ok = False
    if not ok:
        return None
    return Window(frozenset(days) if "days" in spec else frozenset(range(7)), start, end, str(tz))


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _Automated(Protocol):
    @property
    def ticket(self) -> TicketPolicy | None: ...

    @property
    def auto_approve(self) -> tuple[AutoRule, ...]: ...

    @property
    def escalate_service(self) -> str | None: ...


@dataclass(frozen=True)
class References:
    """Every outside name the roster's automation uses, for ``doctor`` to check exists."""

    schedules: frozenset[str] = frozenset()
    escalation_policies: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    jira_projects: frozenset[str] = frozenset()
    pagerduty_incidents: bool = False  # a ticket policy accepts PagerDuty incidents

    @property
    def needs_pagerduty(self) -> bool:
        return bool(self.schedules or self.escalation_policies or self.services or self.pagerduty_incidents)

    @property
    def needs_jira(self) -> bool:
        return bool(self.jira_projects)


def references(roles: Iterable[_Automated]) -> References:
    schedules: set[str] = set()
    policies: set[str] = set()
    services: set[str] = set()
    projects: set[str] = set()
    incidents = False
    for role in roles:
        tickets = [role.ticket, *(rule.ticket for rule in role.auto_approve)]
        for ticket in tickets:
            if ticket is None:
                continue
            if ticket.jira is not None:
                projects.update(ticket.jira.projects)
            incidents |= ticket.pagerduty_incident is not None
        for rule in role.auto_approve:
            if rule.pagerduty_oncall is not None:
                schedules.update(rule.pagerduty_oncall.schedules)
                policies.update(rule.pagerduty_oncall.escalation_policies)
        if role.escalate_service:
            services.add(role.escalate_service)
    return References(frozenset(schedules), frozenset(policies), frozenset(services), frozenset(projects), incidents)
