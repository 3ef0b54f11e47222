"""The post-incident review of self-service break-glass through the real web and worker processes:
nobody checked it before it was used, so once it has ended an approver must check it. The holder adds
their account from the DM that says it ended; each approver is DMed a **Write review** button; one
approver's review closes it, and the thread and root message say so."""

from __future__ import annotations

import pytest

from bot.domain.audit import Event
from bot.slack import blocks
from bot.standins.slack_api import SlackMessage, find_button
from bot.standins.stack import ALICE, BOB, CAROL, wait_until
from tests.e2e_slack.conftest import DEADLINE, Live

pytestmark = pytest.mark.slow

ASK_BREAK_GLASS = "prod/payments emergency 5s INC-5300 checkout down, restarting the pods"
ACCOUNT = "Restarted the checkout pods; the bad config was rolled back."
REVIEW = "Warranted by INC-5300; the recorded actions are only the pod restarts."


def dm_with_button(live: Live, user: str, request_id: str, needle: str) -> SlackMessage:
    def arrived() -> SlackMessage | None:
        return next(
            (
                m
                for m in reversed(live.slack.dm(user))
                if needle in live.seen(m) and find_button(m.blocks, blocks.REVIEW_ACTION, request_id)
            ),
            None,
        )

    found: SlackMessage = wait_until(arrived, DEADLINE, f"{user}'s DM '{needle}' for {request_id}")
    return found


def write(live: Live, user: str, request_id: str, dm: SlackMessage, text: str) -> None:
    """``user`` presses the DM's review button and submits the form that opens."""
    opened = len(live.slack.views_opened(user_id=user))
    reply = live.sender.click(user, blocks.REVIEW_ACTION, request_id, dm.ts, live.slack.dm_channel_id(user))
    assert reply.status == 200
    wait_until(lambda: len(live.slack.views_opened(user_id=user)) > opened, DEADLINE, f"{user}'s review form")
    answer = live.sender.submit_view(user, blocks.REVIEW_CALLBACK, {"review": {"review": text}})
    assert answer.status == 200


def test_self_service_break_glass_is_closed_by_an_approvers_review_after_the_holders_account(live: Live) -> None:
    request_id, _ = live.ask(ALICE, ASK_BREAK_GLASS)
    live.wait_for_event(request_id, Event.EXPIRED)
    live.wait_published(request_id)

    ended = dm_with_button(live, ALICE, request_id, "an approver of the role owes a review")
    write(live, ALICE, request_id, ended, ACCOUNT)
    wait_until(lambda: live.request(request_id).holder_account is not None, DEADLINE, "the holder's account")
    assert live.request(request_id).review_owed  # the holder's account does not close it

    for approver in (BOB, CAROL):
        dm_with_button(live, approver, request_id, "A review is owed.")
    write(live, BOB, request_id, dm_with_button(live, BOB, request_id, "A review is owed."), REVIEW)
    wait_until(lambda: live.request(request_id).review is not None, DEADLINE, "the approver's review")
    live.wait_published(request_id)

    review = live.request(request_id).review
    assert review is not None
    assert (review.by, review.text) == (BOB, REVIEW)
    root = live.root(request_id)
    assert "Reviewed by @bob." in live.seen(root)
    thread = [live.seen(reply) for reply in live.thread(root)]
    assert any("The holder's account, by @alice (an approver's review is still owed)" in t for t in thread)
    assert any(f"Review by @bob:\n{REVIEW}" in t for t in thread)
    written = [
        (e.actor, bool(e.details.get("holder_account")))
        for e in live.entries(request_id)
        if e.event == Event.REVIEW_WRITTEN
    ]
    assert written == [(ALICE, True), (BOB, False)]
