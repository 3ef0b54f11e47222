"""The roster's automated-approval keys: what is accepted, and every problem with its place."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import yaml

from bot.domain.automation import OPEN_INCIDENT_STATUSES
from bot.domain.roster import Roster, RosterError, parse_roster
from tests.conftest import EXAMPLE_ROSTER, ROOT
from tests.fakes import example_roster_data

AUTOMATED_EXAMPLE = ROOT / "deploy" / "roster.automated.example.yaml"
FULL = {
    "ticket": {
        "jira": {"projects": ["INC"], "statuses": ["Open", "In Progress"]},
        "pagerduty_incident": {"statuses": ["triggered", "acknowledged"]},
    },
    "auto_approve": [
        {
            "pagerduty_oncall": {"schedules": ["P1ABCDE"], "max_level": 1},
            "during": {"days": ["sat", "sun"], "hours": "00:00-24:00", "tz": "UTC"},
            "max_duration": "1h",
            "max_per_day": 3,
        }
    ],
    "escalate_after": "10m",
    "escalate_service": "PSERVICE1",
}


def with_admin(**keys: Any) -> str:
    data = example_roster_data()
    data["roles"]["admin"].update(keys)
    return yaml.safe_dump(data, sort_keys=False)


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(RosterError) as raised:
        parse_roster(text)
    return [(p.place, p.message) for p in raised.value.problems]


def test_the_contract_example_is_accepted_with_every_key_read() -> None:
    roster = parse_roster(with_admin(**FULL))
    admin = roster.roles["admin"]
    assert admin.ticket is not None
    assert admin.ticket.jira is not None
    assert admin.ticket.jira.projects == ("INC",)
    assert admin.ticket.on_lookup_failure == "refuse"
    (rule,) = admin.auto_approve
    assert rule.name == "auto_approve[0]"
    assert rule.pagerduty_oncall is not None
    assert rule.pagerduty_oncall.schedules == ("P1ABCDE",)
    assert rule.pagerduty_oncall.max_level == 1
    assert rule.during is not None
    assert rule.during.days == frozenset({5, 6})
    assert rule.max_duration == timedelta(hours=1)
    assert rule.max_per_day == 3
    assert rule.allow_cluster_scoped is False
    assert admin.escalate_after == timedelta(minutes=10)
    assert admin.escalate_service == "PSERVICE1"


def test_defaults_primary_only_open_incidents_and_any_time() -> None:
    roster = parse_roster(
        with_admin(
            ticket={"pagerduty_incident": None},
            auto_approve=[{"name": "oncall", "pagerduty_oncall": {"escalation_policies": ["PPOLICY1"]}}],
        )
    )
    admin = roster.roles["admin"]
    assert admin.ticket is not None
    assert admin.ticket.pagerduty_incident is not None
    assert admin.ticket.pagerduty_incident.statuses == OPEN_INCIDENT_STATUSES
    (rule,) = admin.auto_approve
    assert rule.name == "oncall"
    assert rule.pagerduty_oncall is not None
    assert rule.pagerduty_oncall.max_level == 1
    assert rule.during is None
    assert rule.max_duration is None
    assert rule.max_per_day is None


def test_roles_without_the_keys_have_no_automation() -> None:
    roster = parse_roster(EXAMPLE_ROSTER.read_text(encoding="utf-8"))
    assert all(not r.auto_approve and r.ticket is None and r.escalate_after is None for r in roster.roles.values())
    assert not roster.automation_references().needs_pagerduty
    assert not roster.automation_references().needs_jira


def test_references_name_everything_doctor_must_find() -> None:
    rule_ticket = {"pagerduty_oncall": {"escalation_policies": ["PPOLICY1"]}, "ticket": {"jira": {
        "projects": ["OPS"], "statuses": ["Open"]}}}  # fmt: skip
    roster: Roster = parse_roster(with_admin(**{**FULL, "auto_approve": [*FULL["auto_approve"], rule_ticket]}))
    refs = roster.automation_references()
    assert refs.schedules == {"P1ABCDE"}
    assert refs.escalation_policies == {"PPOLICY1"}
    assert refs.services == {"PSERVICE1"}
    assert refs.jira_projects == {"INC", "OPS"}
    assert refs.pagerduty_incidents
    assert refs.needs_pagerduty
    assert refs.needs_jira


@pytest.mark.parametrize(
    ("keys", "place", "message"),
    [
        (
            {"auto_approve": [{"during": {"days": ["sat"]}}]},
            "roles.admin.auto_approve[0]",
            "needs pagerduty_oncall or ticket: a time window alone would approve anyone entitled",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "max_duration": "2h"}]},
            "roles.admin.auto_approve[0].max_duration",
            "2h is above the role's max_duration (1h), which still applies",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "max_per_day": 0}]},
            "roles.admin.auto_approve[0].max_per_day",
            "must be a whole number from 1 to 100, not 0",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["nope"]}}]},
            "roles.admin.auto_approve[0].pagerduty_oncall.schedules[0]",
            "'nope' is not a PagerDuty id (like P1ABCDE)",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {}}]},
            "roles.admin.auto_approve[0].pagerduty_oncall",
            "names no schedule or escalation policy",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"], "max_level": 0}}]},
            "roles.admin.auto_approve[0].pagerduty_oncall.max_level",
            "must be a whole number from 1 to 10, not 0",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "during": {"hours": "9-17"}}]},
            "roles.admin.auto_approve[0].during.hours",
            "must be written HH:MM-HH:MM (like 18:00-09:00), not '9-17'",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "during": {"hours": "09:00-09:00"}}]},
            "roles.admin.auto_approve[0].during.hours",
            "'09:00-09:00' starts and ends at the same minute; write 00:00-24:00 for all day",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "during": {"tz": "Mars/Olympus"}}]},
            "roles.admin.auto_approve[0].during.tz",
            "'Mars/Olympus' is not an IANA time zone (like UTC or Europe/Paris)",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "during": {"days": ["funday"]}}]},
            "roles.admin.auto_approve[0].during.days[0]",
            "'funday' is not one of mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            {"auto_approve": [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "allow_cluster_scoped": "yes"}]},
            "roles.admin.auto_approve[0].allow_cluster_scoped",
            "must be true or false, not 'yes'",
        ),
        (
            {
                "auto_approve": [
                    {"name": "a", "ticket": {"pagerduty_incident": None}},
                    {"name": "a", "ticket": {"pagerduty_incident": None}},
                ]
            },
            "roles.admin.auto_approve[1].name",
            "another rule of this role is named 'a'",
        ),
        ({"auto_approve": []}, "roles.admin.auto_approve", "names no rule; leave it out instead"),
        (
            {"ticket": {"jira": {"projects": ["inc"], "statuses": ["Open"]}}},
            "roles.admin.ticket.jira.projects[0]",
            "'inc' is not a Jira project key (like INC)",
        ),
        (
            {"ticket": {"jira": {"projects": ["INC"], "statuses": []}}},
            "roles.admin.ticket.jira.statuses",
            "names no status, so no issue could ever count",
        ),
        (
            {"ticket": {"pagerduty_incident": {"statuses": ["open"]}}},
            "roles.admin.ticket.pagerduty_incident.statuses[0]",
            "'open' is not one of triggered, acknowledged, resolved",
        ),
        ({"ticket": {}}, "roles.admin.ticket", "names no kind of ticket: give jira, pagerduty_incident or both"),
        (
            {"ticket": {"pagerduty_incident": None, "on_lookup_failure": "allow"}},
            "roles.admin.ticket.on_lookup_failure",
            "'allow' is not one of refuse, approvers",
        ),
        (
            {"escalate_after": "10m"},
            "roles.admin.escalate_service",
            "is required with escalate_after (the PagerDuty service to page)",
        ),
        (
            {"escalate_service": "PSERVICE1"},
            "roles.admin.escalate_after",
            "is required with escalate_service (how long to wait before paging)",
        ),
        (
            {"escalate_after": "30m", "escalate_service": "PSERVICE1"},
            "roles.admin.escalate_after",
            "30m is not shorter than request_timeout (30m), so the request would lapse before anyone is paged",
        ),
    ],
)
def test_each_problem_is_one_sentence_at_its_place(keys: dict[str, Any], place: str, message: str) -> None:
    assert (place, message) in problems(with_admin(**keys))


def test_a_rule_level_ticket_has_no_on_lookup_failure_of_its_own() -> None:
    rule = {"ticket": {"pagerduty_incident": None, "on_lookup_failure": "approvers"}}
    found = problems(with_admin(auto_approve=[rule]))
    assert any(
        place == "roles.admin.auto_approve[0].ticket.on_lookup_failure" and message.startswith("unknown key")
        for place, message in found
    )


def test_cluster_scoped_role_needs_a_rule_that_opts_in() -> None:
    data = example_roster_data()
    data["roles"]["cluster-admin"]["auto_approve"] = [{"pagerduty_oncall": {"schedules": ["P1ABCDE"]}}]
    assert (
        "roles.cluster-admin.auto_approve",
        "the role is cluster-scoped, so no rule applies unless it says allow_cluster_scoped: true",
    ) in problems(yaml.safe_dump(data))
    data["roles"]["cluster-admin"]["auto_approve"][0]["allow_cluster_scoped"] = True
    roster = parse_roster(yaml.safe_dump(data))
    assert roster.roles["cluster-admin"].auto_approve[0].allow_cluster_scoped


def test_a_self_service_role_takes_no_rules_and_no_escalation() -> None:
    data = example_roster_data()
    data["roles"]["view"].update(approvals=0, auto_approve=FULL["auto_approve"], escalate_after="5m",
                                 escalate_service="PSERVICE1")  # fmt: skip
    found = problems(yaml.safe_dump(data))
    assert ("roles.view.auto_approve", "a self-service role (approvals: 0) is granted at once already") in found
    assert ("roles.view.escalate_after", "a self-service role has no decision to wait for") in found


def test_problems_carry_the_line_of_their_key() -> None:
    text = with_admin(auto_approve=[{"pagerduty_oncall": {"schedules": ["nope"]}}])
    with pytest.raises(RosterError) as raised:
        parse_roster(text)
    (problem,) = [p for p in raised.value.problems if p.place.endswith("schedules[0]")]
    assert problem.line is not None
    assert re.search(r"- nope", text.splitlines()[problem.line - 1])


def test_the_automated_example_roster_passes_the_check() -> None:
    roster = parse_roster(AUTOMATED_EXAMPLE.read_text(encoding="utf-8"))
    assert [r.name for r in roster.roles["admin"].auto_approve] == ["primary-on-call", "weekend-with-ticket"]
    assert roster.roles["cluster-admin"].auto_approve[0].allow_cluster_scoped
