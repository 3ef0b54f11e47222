"""The post-incident review through Bolt over real, signed HTTP against the Slack double: written
once the grant has ended; for self-service break-glass closed only by an approver (the holder may add
their account); offered to approvers in their DM and on the Home tab; every refusal audited, and an id
that is not the person's never confirmed to exist."""

from __future__ import annotations

from typing import Any

from bot.domain.lifecycle import AccessRequest
from bot.slack import blocks
from bot.standins.slack_api import SlackApiDouble, find_button
from tests.fakes import ALICE, BOB, roster_with
from tests.slack.harness import SlackAppHarness, grant

ASK_VIEW = "prod/payments view 1h INC-4411 reading logs of payments"
REVIEW = "Warranted by INC-4411; only read logs, as the recorded actions show."


def form_shows(harness: SlackAppHarness, user: str) -> str:
    """The modal ``user`` has open, as they read it once the submission has been answered."""
    views = harness.slack.open_views(user)
    assert views, f"{user} has no modal open"
    return harness.slack.render_text(views[-1]["blocks"])


def submit_review(harness: SlackAppHarness, user: str, text: str, private_metadata: str | None = None) -> str:
    harness.sender.submit_view(
        user, blocks.REVIEW_CALLBACK, {"review": {"review": text}}, private_metadata=private_metadata
    )
    harness.executor.settle()
    return form_shows(harness, user)


def ended_self_service(harness: SlackAppHarness) -> AccessRequest:
    harness.core.roster.roster = roster_with(roles={"view": {"approvals": 0}})  # type: ignore[attr-defined]
    harness.command(ALICE, ASK_VIEW)
    (request,) = harness.requests()
    service = grant(harness, request.id)
    harness.clock.advance(hours=1, seconds=1)
    service.revoke(request.id)
    return harness.publish(request.id)


def stored(harness: SlackAppHarness, request_id: str) -> AccessRequest:
    found = harness.core.store.get(request_id)
    assert found is not None
    return found


def test_an_approver_writes_the_review_of_self_service_break_glass_from_home(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    request = ended_self_service(harness)
    harness.open_home(BOB)
    home = slack.home_view(BOB)
    assert home is not None
    assert "Reviews owed" in slack.render_text(home["blocks"])
    harness.click_home(BOB, blocks.REVIEW_ACTION, request.id)
    (opened,) = slack.views_opened(user_id=BOB)
    assert opened.view["callback_id"] == blocks.REVIEW_CALLBACK
    assert "This closes the review" in slack.render_text(opened.view["blocks"])
    assert f"the review of {request.id} is recorded" in submit_review(harness, BOB, REVIEW).replace("*", "")
    review = stored(harness, request.id).review
    assert review is not None
    assert (review.by, review.text) == (BOB, REVIEW)
    harness.open_home(BOB)
    home = slack.home_view(BOB)
    assert home is not None
    assert find_button(home["blocks"], blocks.REVIEW_ACTION, request.id) is None


def test_an_approver_writes_the_review_from_the_dm_sent_when_the_grant_ended(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    request = ended_self_service(harness)
    owed = slack.dm(BOB)[-1]
    harness.click(BOB, blocks.REVIEW_ACTION, request.id, owed.ts, slack.dm_channel_id(BOB))
    submit_review(harness, BOB, REVIEW)
    assert not stored(harness, request.id).review_owed


def test_the_holder_of_self_service_adds_an_account_which_does_not_close_the_review(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    request = ended_self_service(harness)
    ended = slack.dm(ALICE)[-1]
    harness.click(ALICE, blocks.REVIEW_ACTION, request.id, ended.ts, slack.dm_channel_id(ALICE))
    (opened,) = slack.views_opened(user_id=ALICE)
    assert "Your account of" in slack.render_text(opened.view["blocks"])
    shown = submit_review(harness, ALICE, "read the payments logs, found the bad deploy")
    assert "an approver of view still owes the review" in shown.replace("`", "")
    after = stored(harness, request.id)
    assert after.review is None
    assert after.holder_account is not None
    assert after.review_owed
    assert [r.id for r in harness.core.access.reviews_owed(BOB)] == [request.id]  # type: ignore[arg-type]


def test_a_review_button_while_the_grant_is_active_is_refused_and_audited(harness: SlackAppHarness) -> None:
    harness.command(ALICE, ASK_VIEW)
    (request,) = harness.requests()
    harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
    grant(harness, request.id)
    harness.open_home(ALICE)
    payload: dict[str, Any] = harness.sender._interaction_base("block_actions", ALICE)
    payload.update(
        container={"type": "view", "view_id": "V0HOME"},
        actions=[{"action_id": "review", "block_id": "review", "type": "button", "value": request.id}],
    )
    harness.sender.send_interaction(payload)  # a button edited outside Slack's client
    harness.executor.settle()
    home = harness.slack.home_view(ALICE)
    assert home is not None
    assert f"{request.id} is still active; a review is written once the grant has ended" in (
        harness.slack.render_text(home["blocks"])
    )
    assert harness.slack.views_opened(user_id=ALICE) == []
    assert [(e.actor, e.request_id, e.details["action"]) for e in harness.refusals()] == [(ALICE, request.id, "review")]


def test_a_review_form_naming_someone_elses_request_does_not_confirm_it_exists(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    dave = "U00000000DAVE"
    harness.core.roster.roster = roster_with(  # type: ignore[attr-defined]
        groups={"payments-devs": [ALICE, dave]}, people={dave: {"kube_user": "dave@example.com"}}
    )
    slack.add_user(dave, name="dave")
    ended = []
    for person in (ALICE, dave):
        harness.command(person, ASK_VIEW)
        request = next(r for r in harness.requests() if r.requester == person)
        harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
        grant(harness, request.id)
        harness.core.access.revoke(request.id, person)  # type: ignore[arg-type]
        ended.append(harness.publish(request.id))
    alices, daves = ended
    dm = slack.dm(dave)[-1]
    harness.click(dave, blocks.REVIEW_ACTION, daves.id, dm.ts, slack.dm_channel_id(dave))
    shown = submit_review(harness, dave, "a review of a grant that is not mine", private_metadata=alices.id)
    assert f"There is no request {alices.id}" in shown
    assert stored(harness, alices.id) == alices
    assert [(e.actor, e.request_id, e.details["action"]) for e in harness.refusals()] == [(dave, alices.id, "review")]
