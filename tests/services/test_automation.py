"""Automated approvals through the services, with fakes at the ports (PagerDuty, Jira, the queue).

What is asserted is what happened: the request's state, its audit entries and their details, the
jobs queued, and the incidents opened, never which method was called."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.automation import OnCallShift
from bot.domain.automation_misses import miss_sentence, unchecked_sentence
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.policy import Ask
from bot.ports import LookupFailed
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.automation import AutomatedApprovals
from bot.services.errors import Refused
from bot.services.grants import GrantService
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import ALICE, BOB, FakeCluster, RecordingJobs, RecordingNotifier, roster_with
from tests.fakes_outside import FakeJira, FakePagerDuty, FakeTickets

REASON = "INC-4411 checkout pods crash-looping"
PRIMARY = {"name": "primary", "pagerduty_oncall": {"schedules": ["P1ABCDE"]}, "max_duration": "30m", "max_per_day": 2}


def automated(**admin: Any) -> FixedRoster:
    keys = {"auto_approve": [PRIMARY], "escalate_after": "10m", "escalate_service": "PSERVICE1", **admin}
    return FixedRoster(roster_with(roles={"admin": keys}))


@pytest.fixture
def pagerduty() -> FakePagerDuty:
    return FakePagerDuty()


@pytest.fixture
def on_call(pagerduty: FakePagerDuty) -> FakePagerDuty:
    return pagerduty


@pytest.fixture
def pager(pagerduty: FakePagerDuty) -> FakePagerDuty:
    return pagerduty


@pytest.fixture
def jira() -> FakeJira:
    found = FakeJira()
    found.add_issue("INC-4411", "Checkout down", status="In Progress")
    found.add_issue("INC-1", "Old outage", status="Done")
    return found


@pytest.fixture
def tickets(jira: FakeJira, pagerduty: FakePagerDuty) -> FakeTickets:
    return FakeTickets(jira, pagerduty)


@pytest.fixture
def roster() -> FixedRoster:
    return automated()


@pytest.fixture
def automation(
    store: RequestStore,
    jobs: RecordingJobs,
    clock: FakeClock,
    on_call: FakePagerDuty,
    tickets: FakeTickets,
    pager: FakePagerDuty,
) -> AutomatedApprovals:
    return AutomatedApprovals(store, jobs, clock, on_call, tickets, pager)


@pytest.fixture
def access(
    store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals
) -> AccessService:
    return AccessService(store, roster, jobs, clock, automation)


def shift(clock: FakeClock, level: int = 1, schedule: str = "P1ABCDE") -> OnCallShift:
    return OnCallShift("PPOLICY1", "Payments escalation", level, schedule, "Payments",
                       clock() - timedelta(hours=1), clock() + timedelta(hours=9))  # fmt: skip


def ask(access: AccessService, duration: timedelta = timedelta(minutes=30), reason: str = REASON,
        role: str = "admin") -> AccessRequest:  # fmt: skip
    return access.submit(Ask(SlackUserId(ALICE), "prod", "payments", role, duration, reason))


def entries(store: RequestStore, request: AccessRequest, event: Event) -> list[Any]:
    return [e for e in store.audit.for_request(request.id) if e.event == event]


# --- rules ----------------------------------------------------------------------------------------


def test_primary_on_call_is_approved_by_system_with_its_evidence(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, on_call: FakePagerDuty, clock: FakeClock
) -> None:
    on_call.put_on_call("alice@example.com", shift(clock))
    request = ask(access)
    assert request.state is State.APPROVED
    assert request.automatic_rule == "primary"
    (approved,) = entries(store, request, Event.APPROVED)
    assert approved.actor == SYSTEM_ACTOR
    assert approved.details["automatic"] is True
    assert approved.details["rule"] == "primary"
    assert approved.details["on_call"]["schedule"] == "P1ABCDE"
    assert approved.details["on_call"]["level"] == 1
    assert approved.details["on_call"]["end"] == "2026-11-27T18:00:00.000000Z"
    assert approved.details["approvals_in_24h"] == 1
    assert jobs.queued("grant", request.id)
    assert not jobs.queued("escalate", request.id), "nothing to escalate: it is decided"
    assert on_call.lookups == 1


def test_level_two_is_left_to_the_approvers_and_the_log_says_why(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, on_call: FakePagerDuty, clock: FakeClock
) -> None:
    on_call.put_on_call("alice@example.com", shift(clock, level=2))
    request = ask(access)
    assert request.state is State.PENDING
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {
        "code": "on_call_too_deep", "level": "2", "max_level": "1", "on_call": "Payments", "rule": "primary"
    }  # fmt: skip
    assert miss_sentence(left.details) == (
        "you are secondary on call for Payments, and rule primary approves only primary on call (level 1 or below)."
    )
    assert not jobs.queued("grant", request.id)
    (escalation,) = jobs.queued("escalate", request.id)
    assert escalation.at == request.created_at + timedelta(minutes=10)


@pytest.mark.parametrize(
    "failure",
    [
        "PagerDuty did not answer within 5 s.",
        "PagerDuty refused the API token (401).",
        "PagerDuty kept answering 429 Too Many Requests.",
        "PagerDuty answered 503.",
    ],
)
def test_a_pagerduty_failure_leaves_it_to_the_approvers_saying_so(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, on_call: FakePagerDuty, clock: FakeClock,
    failure: str,
) -> None:  # fmt: skip
    on_call.put_on_call("alice@example.com", shift(clock))
    on_call.fail_with = LookupFailed(failure)
    request = ask(access)
    assert request.state is State.PENDING
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "on_call_lookup_failed", "error": failure, "lookup_failed": True}
    assert miss_sentence(left.details) == failure
    assert not jobs.queued("grant", request.id)


def test_over_the_rules_max_duration_goes_to_approvers_without_asking_pagerduty(
    access: AccessService, store: RequestStore, on_call: FakePagerDuty, clock: FakeClock
) -> None:
    on_call.put_on_call("alice@example.com", shift(clock))
    request = ask(access, duration=timedelta(minutes=45))
    assert request.state is State.PENDING
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "over_max_duration", "duration": "45m", "max_duration": "30m", "rule": "primary"}
    assert str(miss_sentence(left.details)).startswith(
        "45m is longer than the 30m rule primary approves without a click"
    )
    assert on_call.lookups == 0


def test_the_daily_cap_stops_the_third_automatic_approval(
    access: AccessService, store: RequestStore, on_call: FakePagerDuty, clock: FakeClock
) -> None:
    on_call.put_on_call("alice@example.com", shift(clock))
    first, second = ask(access), ask(access)
    assert first.state is State.APPROVED
    assert second.state is State.APPROVED
    third = ask(access)
    assert third.state is State.PENDING
    (left,) = entries(store, third, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "daily_cap", "approvals": "2", "max_per_day": "2", "rule": "primary"}
    assert miss_sentence(left.details) == (
        "you have had 2 automatic approvals in the last 24 hours, the most rule primary allows (2)."
    )
    clock.advance(hours=24, seconds=1)
    on_call.put_on_call("alice@example.com", shift(clock))
    assert ask(access).state is State.APPROVED, "the window rolls: a day later the cap has room again"


def test_the_cap_is_claimed_atomically_so_a_racing_request_goes_to_approvers(
    access: AccessService, store: RequestStore, on_call: FakePagerDuty, clock: FakeClock
) -> None:
    on_call.put_on_call("alice@example.com", shift(clock))
    ask(access)
    looked_up = on_call.shifts

    def racing(email: str, **kwargs: Any) -> Any:
        # Another process takes the last place while this request waits for PagerDuty.
        store.automatic.claim(ALICE, "BG-OTHER2", clock(), None)
        return looked_up(email, **kwargs)

    on_call.shifts = racing  # type: ignore[method-assign]
    request = ask(access)
    assert request.state is State.PENDING
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "cap_taken", "max_per_day": "2", "rule": "primary"}
    assert miss_sentence(left.details) == "you have reached the 2 automatic approvals rule primary allows in 24 hours."


def test_a_person_without_an_email_is_not_looked_up_and_goes_to_approvers(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals
) -> None:
    roster = FixedRoster(
        roster_with(roles={"admin": {"auto_approve": [PRIMARY]}}, people={ALICE: {"kube_user": "alice"}})
    )
    access = AccessService(store, roster, jobs, clock, automation)
    request = ask(access)
    assert request.state is State.PENDING
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "no_email_for_on_call", "lookup_failed": True}
    assert "no email address for you" in str(miss_sentence(left.details))


def test_without_pagerduty_configured_nothing_is_approved(
    store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, clock: FakeClock
) -> None:
    access = AccessService(store, roster, jobs, clock)  # no outside services at all
    request = ask(access)
    assert request.state is State.PENDING
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "on_call_not_set_up", "lookup_failed": True}
    assert str(miss_sentence(left.details)).startswith("PagerDuty is not set up (BREAKGLASS_PAGERDUTY_TOKEN is unset)")


def test_a_cluster_scoped_role_goes_to_approvers_under_a_rule_that_does_not_opt_in(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals, on_call: FakePagerDuty
) -> None:
    rules = [{"name": "namespaced", "pagerduty_oncall": {"schedules": ["P1ABCDE"]}},
             {"name": "wide", "pagerduty_oncall": {"schedules": ["P9WIDE9"]}, "allow_cluster_scoped": True}]  # fmt: skip
    roster = FixedRoster(roster_with(roles={"cluster-admin": {"auto_approve": rules}},
                                     entitlements=[{"group": "payments-devs", "roles": ["cluster-admin"],
                                                    "clusters": ["prod"]}]))  # fmt: skip
    on_call.put_on_call("alice@example.com", shift(clock))
    access = AccessService(store, roster, jobs, clock, automation)
    request = access.submit(Ask(SlackUserId(ALICE), "prod", None, "cluster-admin", timedelta(minutes=30), REASON))
    assert request.state is State.PENDING
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "cluster_scoped", "role": "cluster-admin", "rule": "namespaced"}
    assert miss_sentence(left.details) == (
        "'cluster-admin' is cluster-wide, and rule namespaced approves only namespaced roles without a click."
    )


# --- tickets --------------------------------------------------------------------------------------


TICKETED = {"jira": {"projects": ["INC"], "statuses": ["Open", "In Progress"]}, "pagerduty_incident": None}


@pytest.mark.parametrize(
    ("reason", "refusal"),
    [
        (
            "checkout pods crash-looping",
            "'admin' needs a ticket: cite a Jira issue of INC (like INC-123) or a PagerDuty incident (PD#1234 or its "
            "link) in the reason, still open, and ask again.",
        ),
        (
            "INC-1 checkout pods crash-looping",
            "INC-1 is Done, not Open or In Progress; cite a ticket that is still open.",
        ),
        (
            "INC-999 checkout pods crash-looping",
            "INC-999 does not exist in Jira; cite a Jira issue of INC (like INC-123) or a PagerDuty incident "
            "(PD#1234 or its link).",
        ),
    ],
)
def test_a_missing_closed_or_unknown_ticket_is_refused_and_nothing_is_stored(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals, reason: str,
    refusal: str,
) -> None:  # fmt: skip
    access = AccessService(store, automated(ticket=TICKETED), jobs, clock, automation)
    with pytest.raises(Refused) as refused:
        ask(access, reason=reason)
    assert refused.value.reason == refusal
    assert store.recent() == []


def test_jira_down_refuses_by_default(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals, jira: FakeJira
) -> None:
    jira.fail_with = LookupFailed("Jira did not answer within 5 s.")
    access = AccessService(store, automated(ticket=TICKETED), jobs, clock, automation)
    with pytest.raises(Refused) as refused:
        ask(access)
    assert refused.value.reason == (
        "The ticket could not be checked (Jira did not answer within 5 s), so the request was not made; "
        "try again in a minute."
    )
    assert store.recent() == []


def test_jira_down_goes_to_approvers_when_the_role_says_so(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals,
    jira: FakeJira, on_call: FakePagerDuty,
) -> None:  # fmt: skip
    jira.fail_with = LookupFailed("Jira did not answer within 5 s.")
    on_call.put_on_call("alice@example.com", shift(clock))
    access = AccessService(store, automated(ticket={**TICKETED, "on_lookup_failure": "approvers"}), jobs, clock,
                           automation)  # fmt: skip
    request = ask(access)
    assert request.state is State.PENDING, "on call, but the ticket could not be checked: no automatic approval"
    (requested,) = entries(store, request, Event.REQUESTED)
    unchecked = {"code": "ticket_lookup_failed", "ticket": "INC-4411", "error": "Jira did not answer within 5 s."}
    assert requested.details["ticket_unchecked"] == unchecked
    assert unchecked_sentence(unchecked) == "Jira did not answer within 5 s."
    (left,) = entries(store, request, Event.LEFT_TO_APPROVERS)
    assert left.details == {**unchecked, "lookup_failed": True}
    assert miss_sentence(left.details) == "Jira did not answer within 5 s."


def test_the_ticket_as_read_is_on_the_request_and_in_the_requested_entry(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals
) -> None:
    access = AccessService(store, automated(ticket=TICKETED), jobs, clock, automation)
    request = ask(access)
    assert request.ticket is not None
    assert (request.ticket.key, request.ticket.status) == ("INC-4411", "In Progress")
    (requested,) = entries(store, request, Event.REQUESTED)
    assert requested.details["ticket"] == {
        "system": "jira",
        "key": "INC-4411",
        "title": "Checkout down",
        "status": "In Progress",
        "url": "https://example.atlassian.net/browse/INC-4411",
        "project": "INC",
    }
    assert store.get(request.id) == request


def test_a_pagerduty_incident_counts_as_a_ticket(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals,
    pagerduty: FakePagerDuty,
) -> None:  # fmt: skip
    incident = pagerduty.add_incident("Checkout 5xx", service_id="PSERVICE1", status="acknowledged")
    access = AccessService(store, automated(ticket={"pagerduty_incident": None}), jobs, clock, automation)
    request = ask(access, reason=f"PD#{incident.number} checkout pods crash-looping")
    assert request.ticket is not None
    assert request.ticket.status == "acknowledged"


def test_a_rule_wanting_a_ticket_approves_with_it_as_evidence(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock, automation: AutomatedApprovals
) -> None:
    rule = {"name": "ticketed", "ticket": {"jira": {"projects": ["INC"], "statuses": ["In Progress"]}}}
    access = AccessService(store, automated(auto_approve=[rule]), jobs, clock, automation)
    request = ask(access)
    assert request.state is State.APPROVED
    (approved,) = entries(store, request, Event.APPROVED)
    assert approved.details["ticket"]["key"] == "INC-4411"
    assert approved.details["ticket"]["status"] == "In Progress"


# --- the grant job checks the rule again ------------------------------------------------------------


def grants_for(store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, clock: FakeClock) -> GrantService:
    return GrantService(store, roster, FakeCluster(clock=clock), jobs, RecordingNotifier(), clock)


def test_an_automatic_approval_is_granted_by_the_grant_job(
    access: AccessService, store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, on_call: FakePagerDuty,
    clock: FakeClock,
) -> None:  # fmt: skip
    on_call.put_on_call("alice@example.com", shift(clock))
    request = ask(access)
    granted = grants_for(store, roster, jobs, clock).grant(request.id)
    assert granted is not None
    assert granted.state is State.ACTIVE


@pytest.mark.parametrize(
    ("tightened", "why"),
    [
        ({"auto_approve": [{**PRIMARY, "max_duration": "15m"}]},
         "rule primary no longer approves it automatically: 30m is longer than the 15m rule primary approves"),
        ({"auto_approve": [{**PRIMARY, "name": "renamed"}]},
         "the rule that approved it automatically (primary) is no longer in the roster; ask again"),
        ({"auto_approve": [{**PRIMARY, "during": {"days": ["sun"]}}]},
         "rule primary no longer approves it automatically: it is fri 09:00 UTC, outside the hours"),
    ],
)  # fmt: skip
def test_the_grant_job_fails_an_automatic_approval_its_rule_no_longer_allows(
    access: AccessService, store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, on_call: FakePagerDuty,
    clock: FakeClock, tightened: dict[str, Any], why: str,
) -> None:  # fmt: skip
    on_call.put_on_call("alice@example.com", shift(clock))
    request = ask(access)
    assert request.state is State.APPROVED
    roster.roster = automated(**tightened).roster
    failed = grants_for(store, roster, jobs, clock).grant(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note is not None
    assert failed.note.startswith(why)
    (entry,) = entries(store, failed, Event.GRANT_FAILED)
    assert "reason" not in entry.details, "a rule's miss is stored as its code and facts, never as a sentence"


def test_the_grant_job_fails_an_automatic_approval_not_counted_under_the_cap(
    access: AccessService, store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, on_call: FakePagerDuty,
    clock: FakeClock,
) -> None:  # fmt: skip
    on_call.put_on_call("alice@example.com", shift(clock))
    request = ask(access)
    store.automatic.release(ALICE, request.id)
    failed = grants_for(store, roster, jobs, clock).grant(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == "its automatic approval is not counted under rule primary's daily cap; ask again"


# --- escalation -------------------------------------------------------------------------------------


def test_an_undecided_request_pages_and_its_decision_resolves_the_incident(
    access: AccessService, automation: AutomatedApprovals, store: RequestStore, jobs: RecordingJobs,
    pager: FakePagerDuty, roster: FixedRoster, clock: FakeClock,
) -> None:  # fmt: skip
    request = ask(access)  # nobody on call: left to approvers
    clock.advance(minutes=10)
    incident = automation.escalate(request.id, roster.roster)
    assert incident is not None
    assert pager.incidents[incident].status == "triggered"
    assert pager.incidents[incident].service_id == "PSERVICE1"
    assert request.id in pager.incidents[incident].title
    (escalated,) = entries(store, request, Event.ESCALATED)
    assert escalated.details == {"service": "PSERVICE1", "incident": incident, "after": "10m"}
    assert automation.escalate(request.id, roster.roster) is None, "paged once"
    access.deny(request.id, SlackUserId(BOB))
    assert jobs.queued("settle_escalation", request.id)
    assert automation.settle(request.id) is True
    assert pager.incidents[incident].status == "resolved"
    (resolved,) = entries(store, request, Event.ESCALATION_RESOLVED)
    assert resolved.details == {"incident": incident, "decided": "denied"}
    assert automation.settle(request.id) is False, "resolved once"


def test_a_request_decided_before_its_escalation_is_due_pages_nobody(
    access: AccessService, automation: AutomatedApprovals, pager: FakePagerDuty, roster: FixedRoster
) -> None:
    request = ask(access)
    access.cancel(request.id, SlackUserId(ALICE))
    assert automation.escalate(request.id, roster.roster) is None
    assert pager.incidents == {}


def test_a_timed_out_request_resolves_its_incident(
    access: AccessService, automation: AutomatedApprovals, jobs: RecordingJobs, pager: FakePagerDuty,
    roster: FixedRoster, clock: FakeClock,
) -> None:  # fmt: skip
    request = ask(access)
    clock.advance(minutes=10)
    incident = automation.escalate(request.id, roster.roster)
    assert incident is not None
    clock.advance(minutes=21)
    assert access.time_out(request.id) is not None
    assert jobs.queued("settle_escalation", request.id)
    automation.settle(request.id)
    assert pager.incidents[incident].status == "resolved"


# --- extensions -------------------------------------------------------------------------------------


def test_an_extension_is_approved_by_the_rule_while_the_whole_grant_stays_within_its_limit(
    access: AccessService, store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, on_call: FakePagerDuty,
    clock: FakeClock,
) -> None:  # fmt: skip
    on_call.put_on_call("alice@example.com", shift(clock))
    grants = grants_for(store, roster, jobs, clock)
    grant = ask(access, duration=timedelta(minutes=20))
    assert grants.grant(grant.id) is not None
    short = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=5), "INC-4411 the rollback needs longer")
    assert short.state is State.APPROVED
    assert short.automatic_rule == "primary"
    assert grants.grant(short.id) is not None
    extended = store.get(grant.id)
    assert extended is not None
    assert extended.expires_at is not None
    assert extended.granted_at is not None
    assert extended.expires_at - extended.granted_at == timedelta(minutes=25)
    # 25m granted + 10m more is past the rule's 30m: the approvers decide, and the log says why.
    long = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=10), "INC-4411 still rolling back")
    assert long.state is State.PENDING
    (left,) = entries(store, long, Event.LEFT_TO_APPROVERS)
    assert left.details == {"code": "over_max_duration", "duration": "35m", "max_duration": "30m", "rule": "primary"}
    assert str(miss_sentence(left.details)).startswith(
        "35m is longer than the 30m rule primary approves without a click"
    )


def test_the_sweep_resolves_an_escalation_whose_resolving_job_was_lost(
    access: AccessService, automation: AutomatedApprovals, store: RequestStore, jobs: RecordingJobs,
    pager: FakePagerDuty, roster: FixedRoster, clock: FakeClock,
) -> None:  # fmt: skip
    request = ask(access)
    clock.advance(minutes=10)
    incident = automation.escalate(request.id, roster.roster)
    assert incident is not None
    assert automation.settle_decided() == [], "still pending: the page stands"
    access.cancel(request.id, SlackUserId(ALICE))
    jobs.lose()  # the process died before the settle job reached the queue
    assert automation.settle_decided() == [request.id]
    assert jobs.queued("settle_escalation", request.id)
    automation.settle(request.id)
    assert pager.incidents[incident].status == "resolved"
    assert automation.settle_decided() == [], "resolved: nothing left for the sweep"
