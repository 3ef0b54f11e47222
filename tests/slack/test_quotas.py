"""Quotas and the indexes behind "waiting for me" and "reviews owed", through signed Slack requests."""

from __future__ import annotations

from bot.domain.ids import new_request_id
from bot.domain.lifecycle import State
from bot.slack import blocks
from bot.store import Change
from tests.fakes import ALICE, BOB, CAROL
from tests.slack.harness import SlackAppHarness, grant

ASK = "prod/payments view 1h INC-4411 checkout pods crash-looping"


def test_one_person_may_keep_only_a_few_requests_pending(harness: SlackAppHarness) -> None:
    limit = harness.core.roster().max_pending_requests
    for _ in range(limit):
        harness.command(ALICE, ASK)
    harness.command(ALICE, ASK)
    assert f"You already have {limit} requests waiting for approval; cancel one" in harness.last_said_to(ALICE)
    assert len(harness.requests()) == limit
    harness.command(ALICE, f"cancel {harness.requests()[0].id}")
    harness.command(ALICE, ASK)
    assert len([r for r in harness.requests() if r.state is State.PENDING]) == limit


def test_a_grant_may_have_only_a_few_extensions_waiting(harness: SlackAppHarness) -> None:
    harness.command(ALICE, ASK)
    (request,) = harness.requests()
    harness.click(BOB, blocks.APPROVE_ACTION, request.id, harness.publish(request).message_ts or "", request.channel)
    grant(harness, request.id)
    limit = harness.core.roster().max_pending_extensions
    for i in range(limit + 1):
        harness.command(ALICE, f"extend {request.id} 30m INC-4411 still rolling back, try {i}")
    assert f"{request.id} already has {limit} extension(s) waiting for approval" in harness.last_said_to(ALICE)
    assert len([r for r in harness.requests() if r.extends == request.id]) == limit


def test_a_request_waiting_for_me_stays_in_my_list_behind_hundreds_of_newer_ones(harness: SlackAppHarness) -> None:
    store = harness.core.store
    harness.command(ALICE, ASK)
    (old,) = harness.requests()
    for _ in range(510):  # decided ones, newer than the pending request
        harness.clock.advance(seconds=1)
        newer = {"id": new_request_id(), "requester": CAROL, "state": State.DENIED, "created_at": harness.clock()}
        store.create(old.model_copy(update=newer), [])
    harness.command(BOB, "list")
    assert old.id in harness.last_said_to(BOB)


def test_a_review_owed_stays_owed_behind_hundreds_of_newer_requests(harness: SlackAppHarness) -> None:
    store = harness.core.store
    harness.command(ALICE, "prod/payments view 1h INC-4411 checkout pods crash-looping")
    (request,) = harness.requests()
    ended = request.model_copy(
        update={"state": State.EXPIRED, "approvals_required": 0, "granted_at": harness.clock(),
                "ended_at": harness.clock()}
    )  # fmt: skip
    store.apply(request.id, lambda current: Change(ended, []))
    for _ in range(510):
        harness.clock.advance(seconds=1)
        newer = {"id": new_request_id(), "requester": CAROL, "state": State.DENIED, "created_at": harness.clock()}
        store.create(request.model_copy(update=newer), [])
    assert [r.id for r in harness.core.access.reviews_owed(BOB)] == [request.id]
