"""One contract suite for the outside-world ports, run against the in-memory fakes
(``tests/fakes_outside.py``) and against the real adapters over their HTTPS stand-ins. A fake that
answers differently from the adapter fails here, so service tests built on the fakes stay honest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
from pydantic import SecretStr

from bot.integrations.connect import Tickets
from bot.integrations.http import Patience
from bot.integrations.jira import Jira
from bot.integrations.pagerduty import PagerDuty
from bot.ports import LookupFailed, OnCallDirectory, OnCallShift, Pager, TicketDirectory
from bot.standins import jira as jira_standin
from bot.standins import pagerduty as pagerduty_standin
from tests.fakes_outside import FakeJira, FakePagerDuty, FakeTickets

AT = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
ALICE = "alice@example.com"
SERVICE = "PSERVICE1"


class Seed(Protocol):
    """Puts the same facts into a fake or a stand-in."""

    def put_on_call(self, email: str, shift: OnCallShift) -> None: ...

    def add_incident(self, title: str, status: str) -> tuple[str, int]: ...

    def add_issue(self, key: str, title: str, status: str) -> None: ...

    def break_lookups(self) -> None: ...

    def open_incidents(self) -> int: ...


@dataclass
class World:
    on_call: OnCallDirectory
    tickets: TicketDirectory
    pager: Pager
    seed: Seed

    def put_on_call(
        self, email: str, *, policy: str, level: int, schedule: str | None, start: datetime | None, end: datetime | None
    ) -> None:
        schedule_name = None if schedule is None else f"Schedule {schedule}"
        self.seed.put_on_call(
            email, OnCallShift(policy, f"Policy {policy}", level, schedule, schedule_name, start, end)
        )


class _SameSeeding:
    """The fakes and the stand-ins are seeded with the same calls; only on-call and failure differ."""

    pagerduty: Any
    jira: Any

    def add_incident(self, title: str, status: str) -> tuple[str, int]:
        incident = self.pagerduty.add_incident(title, service_id=SERVICE, status=status)
        return incident.id, incident.number

    def add_issue(self, key: str, title: str, status: str) -> None:
        self.jira.add_issue(key, title, status=status)

    def open_incidents(self) -> int:
        return len(self.pagerduty.open_incidents(SERVICE))


@dataclass
class FakeSeed(_SameSeeding):
    pagerduty: FakePagerDuty
    jira: FakeJira

    def put_on_call(self, email: str, shift: OnCallShift) -> None:
        self.pagerduty.put_on_call(email, shift)

    def break_lookups(self) -> None:
        self.pagerduty.fail_with = LookupFailed("PagerDuty rejected breakglass's credentials (401 Unauthorized).")
        self.jira.fail_with = LookupFailed("Jira rejected breakglass's credentials (401 Unauthorized).")


@dataclass
class StandInSeed(_SameSeeding):
    pagerduty: pagerduty_standin.PagerDutyDouble
    jira: jira_standin.JiraDouble

    def put_on_call(self, email: str, shift: OnCallShift) -> None:
        # The stand-in names schedules and policies "Schedule <id>"/"Policy <id>", as World does.
        self.pagerduty.put_on_call(
            email,
            escalation_policy_id=shift.escalation_policy_id,
            level=shift.escalation_level,
            schedule_id=shift.schedule_id,
            start=shift.start,
            end=shift.end,
        )

    def break_lookups(self) -> None:
        self.pagerduty.token = "rotated"
        self.jira.token = "rotated"


@pytest.fixture(params=["fake", "adapter over stand-in"])
def world(request: pytest.FixtureRequest, sleeps: list[float]) -> Iterator[World]:
    if request.param == "fake":
        fake_pagerduty, fake_jira = FakePagerDuty(), FakeJira()
        yield World(
            fake_pagerduty, FakeTickets(fake_jira, fake_pagerduty), fake_pagerduty, FakeSeed(fake_pagerduty, fake_jira)
        )
        return
    with pagerduty_standin.PagerDutyDouble() as pd, jira_standin.JiraDouble() as jira:
        pd.add_user("breakglass-bot@example.com")
        pd.add_service("Breakglass approvals", "PPOLICY1", id=SERVICE)
        patience = Patience(timeout=5.0, sleep=sleeps.append)
        adapter = PagerDuty(
            SecretStr(pagerduty_standin.TOKEN),
            api_url=pd.base_url,
            from_email="breakglass-bot@example.com",
            patience=patience,
        )
        jira_adapter = Jira(jira.base_url, SecretStr(jira_standin.TOKEN), user=jira_standin.USER, patience=patience)
        yield World(adapter, Tickets(jira_adapter, adapter), adapter, StandInSeed(pd, jira))
        adapter.close()
        jira_adapter.close()


def shift_facts(shifts: object) -> list[tuple[object, ...]]:
    assert isinstance(shifts, list | tuple)
    return [(s.escalation_policy_id, s.escalation_level, s.schedule_id, s.start, s.end) for s in shifts]


# --- on-call ----------------------------------------------------------------------------------------


def test_primary_on_a_named_schedule(world: World) -> None:
    world.put_on_call(
        ALICE,
        policy="PPOLICY1",
        level=1,
        schedule="PSCHED01",
        start=AT - timedelta(hours=2),
        end=AT + timedelta(hours=6),
    )
    shifts = world.on_call.shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)
    assert shift_facts(shifts) == [("PPOLICY1", 1, "PSCHED01", AT - timedelta(hours=2), AT + timedelta(hours=6))]
    assert (shifts[0].schedule_name, shifts[0].escalation_policy_name) == ("Schedule PSCHED01", "Policy PPOLICY1")


def test_levels_and_direct_policy_entries_are_all_listed_in_level_order(world: World) -> None:
    world.put_on_call(ALICE, policy="PPOLICY1", level=2, schedule=None, start=None, end=None)
    world.put_on_call(ALICE, policy="PPOLICY1", level=1, schedule="PSCHED01", start=AT, end=AT + timedelta(hours=1))
    shifts = world.on_call.shifts(ALICE, schedule_ids=[], escalation_policy_ids=["PPOLICY1"], at=AT)
    assert shift_facts(shifts) == [
        ("PPOLICY1", 1, "PSCHED01", AT, AT + timedelta(hours=1)),
        ("PPOLICY1", 2, None, None, None),
    ]


def test_a_shift_ending_at_the_moment_is_over(world: World) -> None:
    world.put_on_call(ALICE, policy="PPOLICY1", level=1, schedule="PSCHED01", start=AT - timedelta(hours=8), end=AT)
    assert world.on_call.shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT) == []


def test_a_shift_starting_after_the_moment_is_not_yet(world: World) -> None:
    world.put_on_call(
        ALICE,
        policy="PPOLICY1",
        level=1,
        schedule="PSCHED01",
        start=AT + timedelta(minutes=1),
        end=AT + timedelta(hours=8),
    )
    assert world.on_call.shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT) == []


def test_other_schedules_unknown_people_and_empty_filters_have_no_shifts(world: World) -> None:
    world.put_on_call(ALICE, policy="PPOLICY1", level=1, schedule="PSCHED01", start=None, end=None)
    assert world.on_call.shifts(ALICE, schedule_ids=["PSCHED99"], escalation_policy_ids=[], at=AT) == []
    assert world.on_call.shifts("bob@example.com", schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT) == []
    assert world.on_call.shifts(ALICE, schedule_ids=[], escalation_policy_ids=[], at=AT) == []


def test_email_case_does_not_matter(world: World) -> None:
    world.put_on_call(ALICE, policy="PPOLICY1", level=1, schedule="PSCHED01", start=None, end=None)
    assert (
        len(world.on_call.shifts("Alice@Example.com", schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)) == 1
    )


# --- tickets ----------------------------------------------------------------------------------------


def test_an_incident_by_number_or_id_with_its_status(world: World) -> None:
    incident_id, number = world.seed.add_incident("Payments down", "acknowledged")
    by_number = world.tickets.pagerduty_incident(str(number))
    assert by_number == world.tickets.pagerduty_incident(incident_id)
    assert by_number == world.tickets.pagerduty_incident(f"#{number}")
    assert by_number is not None
    assert (by_number.system, by_number.key, by_number.title, by_number.status, by_number.project) == (
        "pagerduty",
        str(number),
        "Payments down",
        "acknowledged",
        None,
    )
    assert by_number.url.startswith("https://")
    assert by_number.url.endswith(f"/incidents/{incident_id}")


def test_unknown_or_malformed_incidents_are_none(world: World) -> None:
    for ref in ("999999", "QNOSUCH00001", "../abilities", ""):
        assert world.tickets.pagerduty_incident(ref) is None


def test_a_jira_issue_with_its_status_and_project(world: World) -> None:
    world.seed.add_issue("INC-4411", "Payments down", "In Progress")
    ticket = world.tickets.jira_issue("inc-4411")
    assert ticket is not None
    assert (ticket.system, ticket.key, ticket.title, ticket.status, ticket.project) == (
        "jira",
        "INC-4411",
        "Payments down",
        "In Progress",
        "INC",
    )
    assert ticket.url.startswith("https://")
    assert ticket.url.endswith("/browse/INC-4411")


def test_unknown_or_malformed_issues_are_none(world: World) -> None:
    for key in ("INC-1", "INC", "../myself", ""):
        assert world.tickets.jira_issue(key) is None


# --- paging -----------------------------------------------------------------------------------------


def test_one_key_one_open_incident_until_resolved(world: World) -> None:
    first = world.pager.open_incident(service_id=SERVICE, title="Request waits", details="", incident_key="req-1")
    assert (
        world.pager.open_incident(service_id=SERVICE, title="Request waits", details="", incident_key="req-1") == first
    )
    assert world.seed.open_incidents() == 1
    world.pager.resolve_incident(first)
    world.pager.resolve_incident(first)
    assert world.seed.open_incidents() == 0
    again = world.pager.open_incident(service_id=SERVICE, title="Request waits", details="", incident_key="req-1")
    assert again != first
    assert world.seed.open_incidents() == 1


# --- failure ----------------------------------------------------------------------------------------


def test_every_lookup_fails_as_lookup_failed(world: World) -> None:
    world.put_on_call(ALICE, policy="PPOLICY1", level=1, schedule="PSCHED01", start=None, end=None)
    world.seed.add_issue("INC-1", "one", "Open")
    incident_id, number = world.seed.add_incident("t", "triggered")
    world.seed.break_lookups()
    lookups = [
        lambda: world.on_call.shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT),
        lambda: world.tickets.jira_issue("INC-1"),
        lambda: world.tickets.pagerduty_incident(str(number)),
        lambda: world.pager.open_incident(service_id=SERVICE, title="t", details="", incident_key="k"),
        lambda: world.pager.resolve_incident(incident_id),
    ]
    for lookup in lookups:
        with pytest.raises(LookupFailed, match=r"^(PagerDuty|Jira) .*\.$"):
            lookup()
