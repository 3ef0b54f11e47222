"""What people see of automated approvals: the thread's plain words, the card's ticket, the DMs,
rendered by the real notifier against the Slack Web API double."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.automation import OnCallShift
from bot.ports import LookupFailed
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.automation import AutomatedApprovals
from bot.slack import blocks
from bot.standins.slack_api import SlackApiDouble, block_problems
from bot.wiring import Core
from tests.conftest import FakeClock
from tests.fakes import BOB, CAROL, roster_with
from tests.fakes_outside import FakeJira, FakePagerDuty, FakeTickets
from tests.slack.conftest import make_core
from tests.slack.test_notifier import World

RULE = {"name": "primary", "pagerduty_oncall": {"schedules": ["P1ABCDE"]}}
TICKET = {"jira": {"projects": ["INC"], "statuses": ["Open", "In Progress"]}}


def automated_world(
    core: Core, slack: SlackApiDouble, clock: FakeClock, fake_redis: object
) -> tuple[World, FakePagerDuty]:
    roster = roster_with(roles={"admin": {"auto_approve": [RULE], "ticket": TICKET}})
    core = make_core(core.settings, roster, clock, fake_redis)  # type: ignore[arg-type]
    on_call, jira = FakePagerDuty(), FakeJira()
    jira.add_issue("INC-4411", "Checkout <down> & out", status="In Progress")
    automation = AutomatedApprovals(core.store, core.jobs, clock, on_call, FakeTickets(jira, on_call), on_call)
    core.automation = automation
    core.access = AccessService(core.store, FixedRoster(roster), core.jobs, clock, automation)
    return World(core, slack, clock), on_call


def test_an_automatic_approval_is_said_in_plain_words_and_told_to_every_approver(
    core: Core, slack: SlackApiDouble, clock: FakeClock, fake_redis: object
) -> None:
    world, on_call = automated_world(core, slack, clock, fake_redis)
    on_call.put_on_call("alice@example.com", OnCallShift("PPOLICY1", "Payments escalation", 1, "P1ABCDE", "Payments",
                                                 clock() - timedelta(hours=1), clock() + timedelta(hours=9)))  # fmt: skip
    request_id = world.ask()
    world.grants.grant(request_id)
    world.publish(request_id)
    thread = "\n".join(world.thread(request_id)).replace("*", "")
    assert "Approved automatically: @alice is primary on call for Payments until 18:00 UTC (rule primary)" in thread
    assert "Ticket: INC-4411 Checkout <down> & out (In Progress)." in thread
    root = world.root(request_id)
    stored = world.core.store.get(request_id)
    assert stored is not None
    assert block_problems(blocks.request_message(stored, world.core.roster(), clock())) == []
    card = world.slack.render_text(root).replace("*", "")
    assert "automatic (rule primary)" in card
    assert "INC-4411 Checkout <down> & out (In Progress)" in card
    assert "https://example.atlassian.net/browse/INC-4411" in str(root.blocks)
    for approver in (BOB, CAROL):
        dms = world.dms(approver)
        assert [dm for dm in dms if "Approved automatically." in dm], dms
        assert not [dm for dm in dms if "needs 2 approvals" in dm], "nobody is asked to approve a decided request"


def test_a_request_left_to_approvers_says_why_in_the_thread(
    core: Core, slack: SlackApiDouble, clock: FakeClock, fake_redis: object
) -> None:
    world, on_call = automated_world(core, slack, clock, fake_redis)
    on_call.fail_with = LookupFailed("PagerDuty did not answer within 5 s.")
    request_id = world.ask()
    world.publish(request_id)
    thread = "\n".join(world.thread(request_id)).replace("*", "")
    assert "Not approved automatically, so the approvers decide: PagerDuty did not answer within 5 s." in thread
    assert [dm for dm in world.dms(BOB) if "needs 2 approvals" in dm]
