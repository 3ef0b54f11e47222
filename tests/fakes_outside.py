"""In-memory fakes of the outside-world ports (``OnCallDirectory``, ``TicketDirectory``, ``Pager``),
for service tests that need PagerDuty or Jira without HTTP.

They answer as the real adapters do over their stand-ins — ``tests/integrations/test_fakes_faithful.py``
runs one contract suite against both, so a fake that drifts fails there. ``fail_with`` makes every
lookup raise that ``LookupFailed`` (PagerDuty down, a rejected token, 429 past the retries: to a
caller they are all the same failure, with its own sentence).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.ports import LookupFailed, OnCallShift, Ticket

# The shapes the real adapters accept before any call (anything else is "no such ticket").
_INCIDENT_REF = re.compile(r"^(?:[A-Z0-9]{6,20}|[0-9]{1,12})$")
_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,49}-[0-9]{1,12}$")


@dataclass(frozen=True)
class FakeIncident:
    id: str
    number: int
    title: str
    status: str
    service_id: str
    incident_key: str | None


class FakePagerDuty:
    """Who is on call, incidents, and paging, in memory (``OnCallDirectory``, the PagerDuty half of
    ``TicketDirectory``, ``Pager``)."""

    url = "https://example.pagerduty.com"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shifts: dict[str, list[OnCallShift]] = {}
        self.incidents: dict[str, FakeIncident] = {}
        self._numbers = itertools.count(1)
        self.fail_with: LookupFailed | None = None
        self.lookups = 0

    def put_on_call(self, email: str, shift: OnCallShift) -> None:
        with self._lock:
            self._shifts.setdefault(email.lower(), []).append(shift)

    def add_incident(
        self, title: str, *, service_id: str, status: str = "triggered", incident_key: str | None = None
    ) -> FakeIncident:
        with self._lock:
            number = next(self._numbers)
            incident = FakeIncident(f"Q{number:011d}", number, title, status, service_id, incident_key)
            self.incidents[incident.id] = incident
            return incident

    def open_incidents(self, service_id: str | None = None) -> list[FakeIncident]:
        with self._lock:
            return [i for i in self.incidents.values() if i.status != "resolved" and service_id in (None, i.service_id)]

    def _lookup(self) -> None:
        self.lookups += 1
        if self.fail_with is not None:
            raise self.fail_with

    # -- the ports -------------------------------------------------------------------------------

    def shifts(
        self, email: str, *, schedule_ids: Sequence[str], escalation_policy_ids: Sequence[str], at: datetime
    ) -> Sequence[OnCallShift]:
        if not schedule_ids and not escalation_policy_ids:
            return []
        with self._lock:
            self._lookup()
            found = {
                (s.escalation_policy_id, s.escalation_level, s.schedule_id): s
                for s in self._shifts.get(email.lower(), [])
                if (s.schedule_id in schedule_ids or s.escalation_policy_id in escalation_policy_ids)
                and (s.start is None or s.start <= at)
                and (s.end is None or at < s.end)
            }
        return sorted(found.values(), key=lambda s: (s.escalation_level, s.escalation_policy_id, s.schedule_id or ""))

    def pagerduty_incident(self, ref: str) -> Ticket | None:
        ref = ref.strip().lstrip("#")
        if not _INCIDENT_REF.fullmatch(ref):
            return None
        with self._lock:
            self._lookup()
            incident = next(
                (i for i in self.incidents.values() if ref in (i.id, str(i.number))),
                None,
            )
        if incident is None:
            return None
        return Ticket(
            "pagerduty", str(incident.number), incident.title, incident.status, f"{self.url}/incidents/{incident.id}"
        )

    def open_incident(self, *, service_id: str, title: str, details: str, incident_key: str) -> str:
        with self._lock:
            self._lookup()
            for incident in self.incidents.values():
                if (
                    incident.status != "resolved"
                    and incident.service_id == service_id
                    and incident.incident_key == incident_key
                ):
                    return incident.id
        return self.add_incident(title, service_id=service_id, incident_key=incident_key).id

    def resolve_incident(self, incident_id: str) -> None:
        with self._lock:
            self._lookup()
            incident = self.incidents.get(incident_id)
            if incident is not None:
                self.incidents[incident_id] = replace(incident, status="resolved")


@dataclass(frozen=True)
class FakeIssue:
    key: str
    title: str
    status: str


class FakeJira:
    """Jira issues in memory (the Jira half of ``TicketDirectory``)."""

    url = "https://example.atlassian.net"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.issues: dict[str, FakeIssue] = {}
        self.fail_with: LookupFailed | None = None
        self.lookups = 0

    def add_issue(self, key: str, title: str, *, status: str = "Open") -> None:
        with self._lock:
            self.issues[key] = FakeIssue(key, title, status)

    def jira_issue(self, key: str) -> Ticket | None:
        key = key.strip().upper()
        if not _ISSUE_KEY.fullmatch(key):
            return None
        with self._lock:
            self.lookups += 1
            if self.fail_with is not None:
                raise self.fail_with
            issue = self.issues.get(key)
        if issue is None:
            return None
        return Ticket(
            "jira", issue.key, issue.title, issue.status, f"{self.url}/browse/{issue.key}", issue.key.rsplit("-", 1)[0]
        )


@dataclass(frozen=True)
class FakeTickets:
    """Both halves of ``TicketDirectory``, as ``bot.integrations.connect.Tickets`` joins the adapters."""

    jira: FakeJira
    pagerduty: FakePagerDuty

    def jira_issue(self, key: str) -> Ticket | None:
        return self.jira.jira_issue(key)

    def pagerduty_incident(self, ref: str) -> Ticket | None:
        return self.pagerduty.pagerduty_incident(ref)
