"""The pure decision of automated approvals: which rule holds and with what evidence, or why none does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.automation import (
    Approved,
    AutoRule,
    Citation,
    Facts,
    IncidentTickets,
    JiraTickets,
    LeftToApprovers,
    OnCallCondition,
    OnCallShift,
    Ticket,
    TicketPolicy,
    Window,
    check_tickets,
    cited,
    evaluate,
    needs_on_call,
    on_call_lookup_failed,
    ticket_lookup_failed,
)
from bot.domain.automation_misses import MissCode

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # a Saturday, 03:00 UTC
JIRA = TicketPolicy(jira=JiraTickets(("INC",), ("Open", "In Progress")))
BOTH = TicketPolicy(jira=JiraTickets(("INC",), ("Open", "In Progress")), pagerduty_incident=IncidentTickets())
PRIMARY = AutoRule(name="primary", pagerduty_oncall=OnCallCondition(schedules=("P1ABCDE",)))


def shift(
    level: int = 1, *, schedule: str | None = "P1ABCDE", policy: str = "PPOLICY1", hours: float = 15
) -> OnCallShift:
    return OnCallShift(
        escalation_policy_id=policy,
        escalation_policy_name="Payments escalation",
        escalation_level=level,
        schedule_id=schedule,
        schedule_name="Payments" if schedule else None,
        start=NOW - timedelta(hours=1),
        end=NOW + timedelta(hours=hours),
    )


def said(outcome: object) -> str:
    """Why the outcome left the request to the approvers, in the sentence the thread shows."""
    assert isinstance(outcome, LeftToApprovers)
    return outcome.miss.sentence()


def facts(**changes: object) -> Facts:
    base: dict[str, object] = {
        "role": "admin",
        "cluster_scoped": False,
        "duration": timedelta(minutes=30),
        "reason": "INC-4411 checkout pods crash-looping",
        "now": NOW,
        "approvals_in_window": 0,
        "shifts": [shift()],
    }
    base.update(changes)
    return Facts(**base)  # type: ignore[arg-type]


# --- on call ------------------------------------------------------------------------------------


def test_primary_on_call_is_approved_with_the_shift_as_evidence() -> None:
    outcome = evaluate([PRIMARY], facts())
    assert isinstance(outcome, Approved)
    assert outcome.rule.name == "primary"
    assert outcome.evidence["on_call"] == {
        "escalation_policy": "PPOLICY1",
        "escalation_policy_name": "Payments escalation",
        "level": 1,
        "start": "2026-11-28T02:00:00.000000Z",
        "end": "2026-11-28T18:00:00.000000Z",
        "schedule": "P1ABCDE",
        "schedule_name": "Payments",
    }
    assert outcome.evidence["approvals_in_24h"] == 1


def test_level_two_is_left_to_approvers_when_the_rule_takes_primary_only() -> None:
    outcome = evaluate([PRIMARY], facts(shifts=[shift(level=2)]))
    assert said(outcome) == (
        "you are secondary on call for Payments, and rule primary approves only primary on call (level 1 or below)."
    )


def test_level_two_is_approved_when_the_rule_reaches_it() -> None:
    rule = AutoRule(name="deep", pagerduty_oncall=OnCallCondition(schedules=("P1ABCDE",), max_level=2))
    assert isinstance(evaluate([rule], facts(shifts=[shift(level=2)])), Approved)


def test_an_escalation_policy_rule_counts_a_shift_held_directly_on_the_policy() -> None:
    rule = AutoRule(name="policy", pagerduty_oncall=OnCallCondition(escalation_policies=("PPOLICY1",)))
    outcome = evaluate([rule], facts(shifts=[shift(schedule=None)]))
    assert isinstance(outcome, Approved)
    assert "schedule" not in outcome.evidence["on_call"]


def test_a_shift_of_another_schedule_does_not_count() -> None:
    outcome = evaluate([PRIMARY], facts(shifts=[shift(schedule="POTHER1", policy="POTHER2")]))
    assert said(outcome) == "you are not on call now in P1ABCDE, which rule primary needs."
    assert isinstance(outcome, LeftToApprovers)
    assert outcome.miss.code is MissCode.NOT_ON_CALL
    assert outcome.details() == {"code": "not_on_call", "schedules": "P1ABCDE", "rule": "primary"}


def test_a_shift_that_has_ended_or_not_started_does_not_count() -> None:
    ended = OnCallShift("PPOLICY1", "Payments", 1, "P1ABCDE", "Payments", NOW - timedelta(hours=9), NOW)
    later = OnCallShift("PPOLICY1", "Payments", 1, "P1ABCDE", "Payments", NOW + timedelta(minutes=1), None)
    assert isinstance(evaluate([PRIMARY], facts(shifts=[ended, later])), LeftToApprovers)


@pytest.mark.parametrize(
    "failure",
    ["PagerDuty did not answer within 5 s.", "PagerDuty refused the API token (401).", "PagerDuty said 429 too often."],
)
def test_a_pagerduty_lookup_failure_is_never_an_approval(failure: str) -> None:
    outcome = evaluate([PRIMARY], facts(shifts=on_call_lookup_failed(failure)))
    assert said(outcome) == failure
    assert isinstance(outcome, LeftToApprovers)
    assert outcome.details() == {"code": "on_call_lookup_failed", "error": failure, "lookup_failed": True}


def test_a_lookup_failure_is_named_before_another_rules_miss() -> None:
    short = AutoRule(name="short", pagerduty_oncall=OnCallCondition(schedules=("P1ABCDE",)),
                     max_duration=timedelta(minutes=5))  # fmt: skip
    outcome = evaluate([short, PRIMARY], facts(shifts=on_call_lookup_failed("PagerDuty is down (503).")))
    assert said(outcome) == "PagerDuty is down (503)."
    assert isinstance(outcome, LeftToApprovers)
    assert outcome.lookup_failed


# --- limits -------------------------------------------------------------------------------------


def test_over_the_rules_max_duration_is_left_to_approvers_saying_why() -> None:
    rule = AutoRule(name="short", pagerduty_oncall=PRIMARY.pagerduty_oncall, max_duration=timedelta(minutes=15))
    outcome = evaluate([rule], facts())
    assert said(outcome) == (
        "30m is longer than the 15m rule short approves without a click (ask for 15m or less, or wait for an approver)."
    )


def test_the_daily_cap_counts_earlier_automatic_approvals() -> None:
    rule = AutoRule(name="capped", pagerduty_oncall=PRIMARY.pagerduty_oncall, max_per_day=3)
    assert isinstance(evaluate([rule], facts(approvals_in_window=2)), Approved)
    assert said(evaluate([rule], facts(approvals_in_window=3))) == (
        "you have had 3 automatic approvals in the last 24 hours, the most rule capped allows (3)."
    )


def test_cluster_scoped_roles_need_the_rules_opt_in() -> None:
    assert said(evaluate([PRIMARY], facts(role="cluster-admin", cluster_scoped=True))) == (
        "'cluster-admin' is cluster-wide, and rule primary approves only namespaced roles without a click."
    )
    opted = AutoRule(name="wide", pagerduty_oncall=PRIMARY.pagerduty_oncall, allow_cluster_scoped=True)
    assert isinstance(evaluate([opted], facts(cluster_scoped=True)), Approved)


def test_limits_are_checked_before_pagerduty_is_needed() -> None:
    rule = AutoRule(name="short", pagerduty_oncall=PRIMARY.pagerduty_oncall, max_duration=timedelta(minutes=5))
    assert needs_on_call([rule], facts()) == []
    assert needs_on_call([PRIMARY], facts()) == [PRIMARY]


# --- windows ------------------------------------------------------------------------------------


def test_outside_the_window_is_left_to_approvers_with_the_local_time() -> None:
    weekdays = Window(frozenset(range(5)), 9 * 60, 17 * 60, "Europe/Paris")
    rule = AutoRule(name="office", pagerduty_oncall=PRIMARY.pagerduty_oncall, during=weekdays)
    assert said(evaluate([rule], facts())) == (
        "it is sat 04:00 Europe/Paris, outside the hours rule office covers (mon, tue, wed, thu, fri 09:00-17:00 "
        "Europe/Paris)."
    )


def test_a_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    nights = Window(frozenset({4}), 18 * 60, 9 * 60, "UTC")  # Friday 18:00 to Saturday 09:00
    assert nights.contains(NOW)  # Saturday 03:00
    assert not nights.contains(NOW + timedelta(hours=6))  # Saturday 09:00
    assert not nights.contains(NOW + timedelta(days=1))  # Sunday 03:00: Saturday is not listed


@given(st.integers(min_value=0, max_value=7 * 24 * 60 - 1))
def test_all_day_every_day_contains_every_minute(minute: int) -> None:
    always = Window(frozenset(range(7)), 0, 24 * 60, "America/New_York")
    assert always.contains(NOW + timedelta(minutes=minute))


@given(
    st.integers(min_value=0, max_value=24 * 60 - 1),
    st.integers(min_value=1, max_value=24 * 60),
    st.integers(min_value=0, max_value=7 * 24 * 60 - 1),
)
def test_a_window_and_its_complement_split_every_minute(start: int, end: int, minute: int) -> None:
    if start == end or (start, end) == (0, 24 * 60):
        return  # an empty window, or the whole day, whose complement no window can express
    every = frozenset(range(7))
    window = Window(every, start, end)
    complement = Window(every, end % (24 * 60), start if start else 24 * 60)
    at = NOW + timedelta(minutes=minute)
    assert window.contains(at) != complement.contains(at)


# --- tickets ------------------------------------------------------------------------------------


def ticket(status: str = "In Progress", key: str = "INC-4411") -> Ticket:
    return Ticket("jira", key, "Checkout down", status, f"https://jira.example.com/browse/{key}", "INC")


def test_citations_are_keys_of_allowed_projects_and_pagerduty_references_in_order() -> None:
    reason = "see https://acme.pagerduty.com/incidents/Q1ABCDEF2GH, OPS-9, then INC-4411 and PD#1234 (INC-4411)"
    assert cited(reason, BOTH) == [
        Citation("pagerduty", "Q1ABCDEF2GH"),
        Citation("jira", "INC-4411"),
        Citation("pagerduty", "1234"),
    ]
    assert cited(reason, JIRA) == [Citation("jira", "INC-4411")]


@given(st.text(max_size=200))
def test_every_citation_is_found_in_the_reason_and_at_most_three(reason: str) -> None:
    found = cited(reason, BOTH)
    assert len(found) <= 3
    for citation in found:
        assert citation.ref in reason


def test_no_ticket_cited_is_refused_saying_what_to_cite() -> None:
    check = check_tickets(BOTH, "OPS-9 pods crash-looping", {}, "admin")
    assert check.refusal is not None
    assert check.refusal.sentence() == (
        "'admin' needs a ticket (OPS-9 is not in INC): cite a Jira issue of INC (like INC-123) or a PagerDuty "
        "incident (PD#1234 or its link) in the reason, still open, and ask again."
    )


def test_an_unknown_ticket_is_refused() -> None:
    check = check_tickets(JIRA, "INC-4411 broken", {Citation("jira", "INC-4411"): None})
    assert check.refusal is not None
    assert check.refusal.sentence() == "INC-4411 does not exist in Jira; cite a Jira issue of INC (like INC-123)."


def test_a_closed_ticket_is_refused_with_its_status() -> None:
    check = check_tickets(JIRA, "INC-4411 broken", {Citation("jira", "INC-4411"): ticket("Done")})
    assert check.refusal is not None
    assert check.refusal.sentence() == "INC-4411 is Done, not Open or In Progress; cite a ticket that is still open."


def test_statuses_match_whatever_their_case() -> None:
    check = check_tickets(JIRA, "INC-4411 broken", {Citation("jira", "INC-4411"): ticket("in progress")})
    assert check.ok


def test_the_first_open_ticket_cited_counts() -> None:
    reads = {Citation("jira", "INC-1"): ticket("Done", "INC-1"), Citation("jira", "INC-2"): ticket(key="INC-2")}
    check = check_tickets(JIRA, "INC-1 then INC-2", reads)
    assert check.ticket == ticket(key="INC-2")


def test_a_ticket_that_cannot_be_read_is_unchecked_not_refused() -> None:
    inc = Citation("jira", "INC-4411")
    check = check_tickets(JIRA, "INC-4411 broken", {inc: ticket_lookup_failed(inc, "Jira is down (503).")})
    assert check.unchecked is not None
    assert check.unchecked.sentence() == "Jira is down (503)."
    assert check.refusal is None


def test_a_rule_that_wants_a_ticket_holds_only_with_one_open() -> None:
    rule = AutoRule(name="ticketed", ticket=JIRA)
    reads = {Citation("jira", "INC-4411"): ticket()}
    approved = evaluate([rule], facts(shifts=None, tickets=reads))
    assert isinstance(approved, Approved)
    assert approved.evidence["ticket"]["key"] == "INC-4411"
    assert approved.evidence["ticket"]["status"] == "In Progress"
    closed = evaluate([rule], facts(shifts=None, tickets={Citation("jira", "INC-4411"): ticket("Done")}))
    assert said(closed) == (
        "rule ticketed needs an open ticket: INC-4411 is Done, not Open or In Progress; cite a ticket that is still open."
    )
    inc = Citation("jira", "INC-4411")
    down = evaluate([rule], facts(shifts=None, tickets={inc: ticket_lookup_failed(inc, "Jira is down.")}))
    assert said(down) == "Jira is down."
    assert isinstance(down, LeftToApprovers)
    assert down.lookup_failed


def test_no_rules_leave_it_to_approvers() -> None:
    assert said(evaluate([], facts())) == "'admin' has no automatic approval rules."
