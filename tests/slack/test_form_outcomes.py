"""What a form shows when the work after its ack fails unexpectedly, when a choice in it comes from
someone the identity gate refuses, and when the review form is delivered twice. Bolt over real,
signed HTTP against the Slack double."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from bot.domain.lifecycle import AccessRequest
from bot.slack import blocks
from bot.standins.slack_api import SlackApiDouble
from tests.fakes import ALICE, BOB
from tests.slack.harness import SlackAppHarness, grant
from tests.slack.test_listener_interactions import form_shows, request_form
from tests.slack.test_listener_reviews import REVIEW, ended_self_service

EXTENSION = {"duration": {"duration": "30m"}, "reason": {"reason": "INC-4411 still mitigating"}}


def redis_down(*args: object, **kwargs: object) -> Any:
    raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


def held_grant(harness: SlackAppHarness) -> AccessRequest:
    harness.command(ALICE, "prod/payments view 1h INC-4411 reading logs of payments")
    (request,) = harness.requests()
    harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
    grant(harness, request.id)
    return harness.publish(request.id)


def open_request_form(harness: SlackAppHarness) -> str:
    harness.command(ALICE)
    return blocks.REQUEST_CALLBACK


def open_extension_form(harness: SlackAppHarness) -> str:
    request = held_grant(harness)
    harness.open_home(ALICE)
    harness.click_home(ALICE, blocks.EXTEND_ACTION, request.id)
    return blocks.EXTEND_CALLBACK


def open_review_form(harness: SlackAppHarness) -> str:
    request = ended_self_service(harness)
    harness.open_home(BOB)
    harness.click_home(BOB, blocks.REVIEW_ACTION, request.id)
    return blocks.REVIEW_CALLBACK


@pytest.mark.parametrize(
    ("open_form", "user", "failing", "answers"),
    [
        (open_request_form, ALICE, "submit", request_form()),
        (open_extension_form, ALICE, "extend", EXTENSION),
        (open_review_form, BOB, "write_review", {"review": {"review": REVIEW}}),
    ],
    ids=["request", "extension", "review"],
)
def test_an_unexpected_failure_after_the_ack_replaces_submitting_with_the_logged_reference(
    harness: SlackAppHarness,
    caplog: pytest.LogCaptureFixture,
    open_form: Callable[[SlackAppHarness], str],
    user: str,
    failing: str,
    answers: dict[str, dict[str, Any]],
) -> None:
    callback = open_form(harness)
    setattr(harness.core.access, failing, redis_down)
    answer = harness.submit(user, callback, answers).json()
    assert answer["response_action"] == "update"  # "Submitting…" in the ack
    shown = form_shows(harness, user)
    assert "Submitting" not in shown
    assert "Something went wrong on our side; nothing more was done. Reference:" in shown
    reference = shown.rsplit(" ", 1)[-1].strip("`.")
    failures = [r for r in caplog.records if r.getMessage() == "a Slack listener failed"]
    assert [getattr(r, "reference", None) for r in failures] == [reference]  # logged once, same reference


def test_a_choice_in_the_request_form_from_someone_who_became_a_guest_is_refused_on_the_form(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    harness.command(ALICE)
    slack.add_user(ALICE, name="alice", is_restricted=True)
    harness.clock.advance(seconds=61)  # past the identity cache
    harness.sender.choose(ALICE, blocks.REQUEST_CALLBACK, "cluster", "prod")
    harness.executor.settle()
    shown = form_shows(harness)
    assert "Guest accounts cannot use breakglass" in shown
    assert "payments" not in shown  # the form offers nothing more
    assert [(e.actor, e.details["action"]) for e in harness.refusals()] == [(ALICE, "request")]


def test_the_same_review_form_delivered_twice_repeats_that_the_review_was_saved(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    open_review_form(harness)
    (request,) = [r for r in harness.requests() if r.review_owed]
    # The first answer is lost and the form cannot be updated: Bob presses Submit again on the same view.
    slack.fail("views.update", "internal_error", times=10)
    harness.sender.submit_view(BOB, blocks.REVIEW_CALLBACK, {"review": {"review": REVIEW}}, answer_lost=True)
    harness.executor.settle()
    slack.clear_faults()
    harness.submit(BOB, blocks.REVIEW_CALLBACK, {"review": {"review": REVIEW}})
    shown = form_shows(harness, BOB).replace("*", "")
    assert f"the review of {request.id} is recorded" in shown
    assert "already has a review" not in shown
    assert [e.event for e in harness.audit() if e.request_id == request.id].count("review_written") == 1
    assert harness.refusals() == []
