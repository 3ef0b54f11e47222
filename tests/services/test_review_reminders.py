"""Overdue reviews: whoever owes one is reminded once a day until it is written."""

from __future__ import annotations

import dataclasses

from bot.domain import policy
from bot.domain.audit import Event
from bot.domain.ids import SlackUserId
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.reconcile import Reconciler
from bot.slack.wording import event_text
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import ALICE, BOB, CAROL
from tests.services.conftest import Flows


def reminders(store: RequestStore, request_id: str) -> list[dict[str, object]]:
    return [dict(e.details) for e in store.audit.for_request(request_id) if e.event == Event.REVIEW_REMINDED]


def test_an_overdue_review_is_reminded_to_the_holder_once_a_day_until_written(
    access: AccessService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))
    assert access.remind_overdue_reviews() == []  # not due yet

    clock.advance(seconds=policy.REVIEW_DUE.total_seconds())
    assert access.remind_overdue_reviews() == [grant.id]
    assert access.remind_overdue_reviews() == []  # once a day
    assert reminders(store, grant.id) == [{"owed_by": [ALICE], "ended_days_ago": 1}]
    entry = store.audit.for_request(grant.id)[-1]
    assert event_text(entry, store.get(grant.id)) == ":hourglass: The review is overdue; reminded <@U000000ALICE>."  # type: ignore[arg-type]

    store.redis.delete(f"breakglass:claimed:review-reminded:{grant.id}")  # what a day does to the claim
    clock.advance(days=1)
    access.write_review(grant.id, SlackUserId(ALICE), "Restarted the checkout pods; all good since.")
    assert access.remind_overdue_reviews() == []


def test_an_overdue_self_service_review_is_owed_by_its_approvers_and_the_holders_account(
    access: AccessService,
    reconciler: Reconciler,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
    roster: FixedRoster,
) -> None:
    view = dataclasses.replace(roster.roster.roles["view"], approvals=0)
    roster.roster = dataclasses.replace(roster.roster, roles={**roster.roster.roles, "view": view})
    grant = flows.granted(role="view")
    assert grant.self_service
    access.revoke(grant.id, SlackUserId(ALICE))
    clock.advance(days=2)
    reconciler.sweep()  # the sweep is what reminds
    [sent] = reminders(store, grant.id)
    owed = sent["owed_by"]
    assert isinstance(owed, list)
    assert owed[0] == ALICE
    assert sent["ended_days_ago"] == 2
    assert {BOB, CAROL} >= set(owed[1:])
