"""The request card and the requester's reply name who may approve (a handful, then "and N more"),
skipping anyone who left Slack without an error (the admins' Home tab: test_admin_home.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.roster import Roster
from bot.standins.slack_api import SlackApiDouble
from tests.fakes import ALICE, BOB, roster_with
from tests.slack.conftest import INCIDENTS

SRE = [f"U0000SRE{i:02d}" for i in range(8)]


@pytest.fixture
def roster() -> Roster:
    return roster_with(
        groups={"sre": [BOB, *SRE]},
        people={u: {"kube_user": f"{u.lower()}@example.com"} for u in SRE},
    )


@pytest.fixture
def slack(slack: SlackApiDouble) -> SlackApiDouble:
    for user in SRE:
        slack.add_user(user, name=user[-5:].lower())
    slack.add_user(SRE[0], name="left", deleted=True)  # left the company: deactivated in Slack
    slack.add_channel(INCIDENTS, "incidents", members=[ALICE, BOB, *SRE])
    return slack


def _shown(text: str) -> str:
    return text.replace("\n", " ")


def test_the_card_names_a_handful_of_approvers_then_a_count_skipping_who_left(harness: Any) -> None:
    harness.command(ALICE, "prod/payments admin 1h INC-1 checkout is down")
    (request,) = harness.requests()
    published = harness.publish(request)
    root = harness.slack.message(INCIDENTS, published.message_ts or "")
    text = _shown(harness.slack.render_text(root))
    # In id order: BOB first, SRE00 (deactivated) skipped, then the next ones; four more not named.
    assert "*May approve* @bob, @sre01, @sre02, @sre03, @sre04 and 3 more" in text, text
    assert "@left" not in text


def test_the_requesters_reply_names_them_too(harness: Any) -> None:
    harness.command(ALICE, "prod/payments admin 1h INC-1 checkout is down")
    said = _shown(harness.last_said_to(ALICE))
    assert "needs 2 approvals from sre (@bob, @sre01, @sre02, @sre03, @sre04 and 3 more)" in said, said


def test_who_approved_is_no_longer_named_as_one_who_may(harness: Any) -> None:
    harness.command(ALICE, "prod/payments admin 1h INC-1 checkout is down")
    (request,) = harness.requests()
    published = harness.publish(request)
    harness.click(SRE[1], "approve", request.id, published.message_ts, INCIDENTS)
    published = harness.publish(request)
    text = _shown(harness.slack.render_text(harness.slack.message(INCIDENTS, published.message_ts or "")))
    assert "*May approve* @bob, @sre02, @sre03, @sre04, @sre05 and 2 more" in text, text


def test_a_decided_card_names_nobody(harness: Any) -> None:
    harness.command(ALICE, "prod/payments admin 1h INC-1 checkout is down")
    (request,) = harness.requests()
    published = harness.publish(request)
    harness.command(ALICE, f"cancel {request.id}")
    published = harness.publish(request)
    assert published.state.value == "cancelled"
    assert "May approve" not in harness.slack.render_text(harness.slack.message(INCIDENTS, published.message_ts or ""))
