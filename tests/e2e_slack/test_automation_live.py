"""Automated approvals through the real web and worker processes, against the PagerDuty and Jira
stand-ins over HTTPS (``bot.standins.pagerduty``, ``bot.standins.jira``).

Each test sets who is on call (and which tickets exist) in the stand-ins, types the command as a
person would, and waits for what that person and the approvers would see: the request's state, its
thread, its audit entries, the binding in the cluster double, and the incidents in PagerDuty.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.automation import DAYS
from bot.domain.automation_misses import miss_sentence
from bot.domain.lifecycle import State
from bot.standins import jira as jira_standin
from bot.standins import pagerduty as pagerduty_standin
from bot.standins.jira import JiraDouble
from bot.standins.pagerduty import PagerDutyDouble
from bot.standins.stack import ALICE, DAVE, DEMO_ROSTER, wait_until
from tests.e2e_slack.conftest import DEADLINE, REQUEST_ID, Live, refusal_sentence, running_live

pytestmark = pytest.mark.slow

SCHEDULE = "PSCHED01"
POLICY = "PPOLICY1"
WIDE_SCHEDULE = "PSCHED99"
SERVICE = "PSERVICE1"
PAGER_FROM = "breakglass@example.com"
REASON = "INC-4411 checkout pods crash-looping"
NAMESPACE = "payments"


def _not_now_days() -> list[str]:
    """Days that are neither today nor tomorrow (UTC): a window on them cannot hold while a test runs."""
    today = datetime.now(UTC).weekday()
    return [DAYS[d] for d in range(7) if d not in (today, (today + 1) % 7)]


PRIMARY = {"name": "primary", "pagerduty_oncall": {"schedules": [SCHEDULE]}, "max_duration": "30m", "max_per_day": 20}
JIRA_TICKET = {"jira": {"projects": ["INC"], "statuses": ["Open", "In Progress"]}, "pagerduty_incident": None}
ROLE = {"cluster_role": "admin", "scope": "namespace", "max_duration": "1h", "approvals": 2, "approvers": ["sre"]}
ROSTER: dict[str, Any] = {
    **DEMO_ROSTER,
    "roles": {
        **DEMO_ROSTER["roles"],
        "admin": {**DEMO_ROSTER["roles"]["admin"], "auto_approve": [PRIMARY]},
        "night": {**ROLE, "auto_approve": [{**PRIMARY, "name": "nights", "during": {"days": _not_now_days()}}]},
        "capped": {**ROLE, "auto_approve": [{**PRIMARY, "name": "once", "max_per_day": 1}]},
        "cluster-admin": {
            **DEMO_ROSTER["roles"]["cluster-admin"],
            "auto_approve": [
                {"name": "namespaced", "pagerduty_oncall": {"schedules": [SCHEDULE]}},
                {"name": "wide", "pagerduty_oncall": {"schedules": [WIDE_SCHEDULE]}, "allow_cluster_scoped": True},
            ],
        },
        "ticketed": {**ROLE, "ticket": JIRA_TICKET},
        "lenient": {**ROLE, "ticket": {**JIRA_TICKET, "on_lookup_failure": "approvers"}},
        "paged": {**ROLE, "escalate_after": "3s", "escalate_service": SERVICE},
    },
    "entitlements": [
        {
            **DEMO_ROSTER["entitlements"][0],
            "roles": [*DEMO_ROSTER["entitlements"][0]["roles"], "night", "capped", "ticketed", "lenient", "paged"],
        },
        *DEMO_ROSTER["entitlements"][1:],
        {"group": "payments-devs", "roles": ["cluster-admin"], "clusters": ["prod"]},
    ],
}


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[PagerDutyDouble]:
    double = PagerDutyDouble().start()
    double.add_user(PAGER_FROM, "breakglass")
    double.add_escalation_policy("Payments escalation", id=POLICY)
    double.add_schedule("Payments", id=SCHEDULE)
    double.add_schedule("Platform", id=WIDE_SCHEDULE)
    double.add_service("Breakglass approvals", POLICY, id=SERVICE)
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="module")
def jira() -> Iterator[JiraDouble]:
    double = JiraDouble().start()
    double.add_issue("INC-4411", "Checkout pods crash-looping", status="In Progress")
    double.add_issue("INC-1", "Last month's outage", status="Done")
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="module")
def live(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, pagerduty: PagerDutyDouble, jira: JiraDouble
) -> Iterator[Live]:
    env = {
        **pagerduty.trust_environ,
        "BREAKGLASS_PAGERDUTY_TOKEN": pagerduty_standin.TOKEN,
        "BREAKGLASS_PAGERDUTY_API_URL": pagerduty.base_url,
        "BREAKGLASS_PAGERDUTY_FROM": PAGER_FROM,
        "BREAKGLASS_JIRA_URL": jira.base_url,
        "BREAKGLASS_JIRA_USER": jira_standin.USER,
        "BREAKGLASS_JIRA_TOKEN": jira_standin.TOKEN,
    }
    yield from running_live(redis_url, tmp_path_factory.mktemp("e2e-automation"), ROSTER, extra_env=env)


@pytest.fixture(autouse=True)
def healthy_stand_ins(pagerduty: PagerDutyDouble, jira: JiraDouble) -> Iterator[None]:
    pagerduty.clear_on_call()
    yield
    for double in (pagerduty, jira):
        double.up()
        double.heal()


def on_call(pagerduty: PagerDutyDouble, email: str, level: int = 1, schedule: str = SCHEDULE) -> None:
    now = datetime.now(UTC)
    pagerduty.put_on_call(email, escalation_policy_id=POLICY, level=level, schedule_id=schedule,
                          start=now - timedelta(hours=1), end=now + timedelta(hours=8))  # fmt: skip


def thread_text(live: Live, request_id: str) -> str:
    live.wait_published(request_id)
    return "\n".join(live.seen(m) for m in live.thread(live.root(request_id))).replace("*", "")


def left_to_approvers(live: Live, request_id: str) -> str:
    """The request is pending, its thread says why no rule approved it; that sentence, rendered from
    the code and facts its audit entry keeps (never a sentence)."""
    entry = live.wait_for_event(request_id, Event.LEFT_TO_APPROVERS)
    assert live.request(request_id).state is State.PENDING
    assert not [e for e in live.entries(request_id) if e.event == Event.APPROVED]
    assert "why" not in entry.details
    assert entry.details["code"]
    why = str(miss_sentence(entry.details))
    assert f"Not approved automatically, so the approvers decide: {why}" in thread_text(live, request_id)
    return why


# --- on call ------------------------------------------------------------------------------------------


def test_primary_on_call_is_granted_without_a_click_with_the_evidence_in_the_audit_entry(
    live: Live, pagerduty: PagerDutyDouble
) -> None:
    on_call(pagerduty, "alice@example.com")
    request_id, answer = asked_and_told(live, ALICE, f"prod/{NAMESPACE} admin 30m {REASON}")
    assert "is approved automatically (rule primary) and is being granted" in answer
    granted = live.wait_for_event(request_id, Event.GRANTED)
    assert granted.details["binding"] in [name.split("/")[-1] for name in live.binding_names()]
    (approved,) = [e for e in live.entries(request_id) if e.event == Event.APPROVED]
    assert approved.actor == SYSTEM_ACTOR
    assert approved.details["automatic"] is True
    assert approved.details["rule"] == "primary"
    assert approved.details["on_call"]["schedule"] == SCHEDULE
    assert approved.details["on_call"]["schedule_name"] == "Payments"
    assert approved.details["on_call"]["level"] == 1
    assert approved.details["on_call"]["end"]
    assert live.request(request_id).automatic_rule == "primary"
    live.wait_published(request_id)
    text = thread_text(live, request_id)
    assert "Approved automatically: @alice is primary on call for Payments until" in text
    for approver in ("U0000000BOB", "U00000CAROL"):
        assert [m for m in live.slack.dm(approver) if request_id in live.seen(m) and "Approved automatically" in
                live.seen(m)], f"{approver} was not told"  # fmt: skip


def test_on_call_at_level_two_goes_to_the_approvers(live: Live, pagerduty: PagerDutyDouble) -> None:
    on_call(pagerduty, "alice@example.com", level=2)
    request_id, _ = live.ask(ALICE, f"prod/{NAMESPACE} admin 30m {REASON}")
    why = left_to_approvers(live, request_id)
    assert why == (
        "you are secondary on call for Payments, and rule primary approves only primary on call (level 1 or below)."
    )


def test_outside_the_rules_window_goes_to_the_approvers(live: Live, pagerduty: PagerDutyDouble) -> None:
    on_call(pagerduty, "alice@example.com")
    request_id, _ = live.ask(ALICE, f"prod/{NAMESPACE} night 30m {REASON}")
    assert "outside the hours rule nights covers" in left_to_approvers(live, request_id)


def asked_and_told(live: Live, user: str, text: str) -> tuple[str, str]:
    """A request that is accepted: its id, and the answer its requester saw."""
    answer = live.command(user, text)
    found = REQUEST_ID.search(answer.text)
    assert found, f"no request id in the answer: {answer.text}"
    return found.group(0), live.seen(answer).replace("*", "")


def test_over_the_rules_max_duration_goes_to_the_approvers_telling_the_requester_why(
    live: Live, pagerduty: PagerDutyDouble
) -> None:
    on_call(pagerduty, "alice@example.com")
    request_id, answer = asked_and_told(live, ALICE, f"prod/{NAMESPACE} admin 45m {REASON}")
    why = left_to_approvers(live, request_id)
    assert why.startswith("45m is longer than the 30m rule primary approves")
    assert f"It was not approved automatically: {why}" in answer


def test_past_the_daily_cap_goes_to_the_approvers_saying_why(live: Live, pagerduty: PagerDutyDouble) -> None:
    on_call(pagerduty, "dave@example.com")
    first, _ = live.ask(DAVE, f"prod/{NAMESPACE} capped 10m {REASON}")
    live.wait_for_event(first, Event.GRANTED)
    second, answer = asked_and_told(live, DAVE, f"prod/{NAMESPACE} capped 10m {REASON}")
    why = left_to_approvers(live, second)
    assert why == "you have had 1 automatic approvals in the last 24 hours, the most rule once allows (1)."
    assert f"It was not approved automatically: {why}" in answer


def test_a_cluster_scoped_role_goes_to_the_approvers(live: Live, pagerduty: PagerDutyDouble) -> None:
    on_call(pagerduty, "alice@example.com")
    request_id, _ = live.ask(ALICE, f"prod cluster-admin 15m {REASON}")
    assert left_to_approvers(live, request_id) == (
        "'cluster-admin' is cluster-wide, and rule namespaced approves only namespaced roles without a click."
    )


@pytest.mark.parametrize("fault", ["down", "slow", "429", "401"])
def test_pagerduty_failing_sends_the_request_to_the_approvers_and_the_thread_says_why(
    live: Live, pagerduty: PagerDutyDouble, fault: str
) -> None:
    on_call(pagerduty, "alice@example.com")
    if fault == "down":
        pagerduty.down()
    elif fault == "slow":
        pagerduty.slow(8)  # past the adapter's 5 s per call
    elif fault == "429":
        pagerduty.rate_limit(times=50, retry_after="1")
    else:
        pagerduty.fail(401, times=50)
    request_id, _ = live.ask(ALICE, f"prod/{NAMESPACE} admin 30m {REASON}")
    entry = live.wait_for_event(request_id, Event.LEFT_TO_APPROVERS)
    assert entry.details["lookup_failed"] is True
    why = left_to_approvers(live, request_id)
    assert "PagerDuty" in why
    assert not live.binding_names() or all(request_id.lower() not in name for name in live.binding_names())


# --- tickets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "refusal"),
    [
        (
            "checkout pods crash-looping",
            "'ticketed' needs a ticket: cite a Jira issue of INC (like INC-123) or a PagerDuty incident (PD#1234 "
            "or its link) in the reason, still open, and ask again.",
        ),
        (
            "INC-1 checkout pods crash-looping",
            "INC-1 is Done, not Open or In Progress; cite a ticket that is still open.",
        ),
        ("INC-999 checkout pods crash-looping", "INC-999 does not exist in Jira; cite a Jira issue of INC"),
    ],
)
def test_a_missing_closed_or_unknown_ticket_is_refused_in_one_sentence(live: Live, reason: str, refusal: str) -> None:
    before = live.world()
    answer = live.command(ALICE, f"prod/{NAMESPACE} ticketed 30m {reason}")
    assert refusal_sentence(answer).startswith(refusal)
    assert live.world() == before, "a refused request leaves nothing behind"


def test_jira_down_refuses_the_request(live: Live, jira: JiraDouble) -> None:
    jira.down()
    before = live.world()
    answer = live.command(ALICE, f"prod/{NAMESPACE} ticketed 30m {REASON}")
    sentence = refusal_sentence(answer)
    assert sentence.startswith("The ticket could not be checked (")
    assert sentence.endswith("so the request was not made; try again in a minute.")
    assert live.world() == before


def test_jira_down_goes_to_the_approvers_when_the_role_says_so(live: Live, jira: JiraDouble) -> None:
    jira.down()
    request_id, _ = live.ask(ALICE, f"prod/{NAMESPACE} lenient 30m {REASON}")
    requested = live.wait_for_event(request_id, Event.REQUESTED)
    unchecked = requested.details["ticket_unchecked"]
    assert unchecked["code"] == "ticket_lookup_failed"
    assert unchecked["ticket"] == "INC-4411"
    assert "Jira" in unchecked["error"]
    assert live.request(request_id).state is State.PENDING
    assert live.request(request_id).ticket is None
    assert "The ticket was not checked: Jira" in thread_text(live, request_id)


def test_the_card_and_the_audit_entry_show_the_ticket_as_read(live: Live) -> None:
    request_id, _ = live.ask(ALICE, f"prod/{NAMESPACE} ticketed 30m {REASON}")
    requested = live.wait_for_event(request_id, Event.REQUESTED)
    ticket = requested.details["ticket"]
    assert (ticket["key"], ticket["title"], ticket["status"]) == ("INC-4411", "Checkout pods crash-looping",
                                                                  "In Progress")  # fmt: skip
    assert ticket["url"].endswith("/browse/INC-4411")
    card = live.seen(live.root(request_id))
    assert "INC-4411 Checkout pods crash-looping (In Progress)" in card.replace("*", "")
    assert ticket["url"] in json.dumps(live.root(request_id).blocks)


# --- escalation ------------------------------------------------------------------------------------


def test_an_undecided_request_pages_through_pagerduty_and_its_decision_resolves_the_incident(
    live: Live, pagerduty: PagerDutyDouble
) -> None:
    request_id, _ = live.ask(ALICE, f"prod/{NAMESPACE} paged 30m {REASON}")
    escalated = live.wait_for_event(request_id, Event.ESCALATED)
    incident = str(escalated.details["incident"])
    opened = wait_until(lambda: [i for i in pagerduty.open_incidents(SERVICE) if i.id == incident], DEADLINE,
                        "the incident to be open in PagerDuty")  # fmt: skip
    assert request_id in opened[0].title
    live.command(ALICE, f"cancel {request_id}")
    resolved = live.wait_for_event(request_id, Event.ESCALATION_RESOLVED)
    assert resolved.details == {"incident": incident, "decided": "cancelled"}
    assert not [i for i in pagerduty.open_incidents(SERVICE) if i.id == incident]
    text = thread_text(live, request_id)
    assert "the approvers are paged through PagerDuty" in text
    assert "resolved: the request is cancelled" in text


def test_an_extension_within_the_rules_limit_is_approved_without_a_click(
    live: Live, pagerduty: PagerDutyDouble
) -> None:
    on_call(pagerduty, "alice@example.com")
    grant_id, _ = asked_and_told(live, ALICE, f"prod/{NAMESPACE} admin 20m {REASON}")
    live.wait_for_event(grant_id, Event.GRANTED)
    answer = live.command(ALICE, f"extend {grant_id} 5m INC-4411 the rollback needs longer")
    found = REQUEST_ID.findall(answer.text)
    extension_id = next(rid for rid in found if rid != grant_id)
    assert "approved automatically (rule primary)" in answer.text
    applied = live.wait_for_event(extension_id, Event.GRANTED)
    assert applied.details["extends"] == grant_id
    grant = live.request(grant_id)
    assert grant.expires_at is not None
    assert grant.granted_at is not None
    # The grant's expiry is counted from when its binding was asked for (within a second of in place).
    assert abs(grant.expires_at - grant.granted_at - timedelta(minutes=25)) < timedelta(seconds=1)
