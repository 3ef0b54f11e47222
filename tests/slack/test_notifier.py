"""SlackNotifier against the Slack Web API double: the root message, its thread, the DMs, the
kubeconfig, and how it behaves when Slack rate-limits or fails half-way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from bot.domain.end_reasons import EndCode, EndReason
from bot.domain.grants import IssuedCredentials
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.policy import Ask
from bot.domain.roster import Roster
from bot.ports import TemporaryError
from bot.roster_source import FixedRoster
from bot.services.grants import GrantService
from bot.services.publishing import Publisher
from bot.slack import blocks
from bot.slack.client import SlackApi, SlackUnavailable
from bot.slack.notifier import MemoryProgress, SlackNotifier
from bot.standins.slack_api import SlackApiDouble, SlackMessage, find_button
from bot.wiring import Core
from tests.conftest import FakeClock
from tests.fakes import ALICE, BOB, CAROL, FakeCluster, roster_with
from tests.slack.conftest import INCIDENTS, Sleeps, make_core


class World:
    """The services over fakeredis, a fake cluster, and the notifier talking to the Slack double."""

    def __init__(self, core: Core, slack: SlackApiDouble, clock: FakeClock, sleeps: Sleeps | None = None) -> None:
        self.core = core
        self.slack = slack
        self.clock = clock
        self.sleeps = sleeps if sleeps is not None else Sleeps()
        self.api = SlackApi.connect(SecretStr(slack.bot_token), slack.api_url, sleep=self.sleeps)
        self.progress = MemoryProgress()
        self.notifier = SlackNotifier(self.api, core.roster, clock, self.progress)
        self.publisher = Publisher(core.store, self.notifier)
        self.cluster = FakeCluster(clock=clock)
        self.grants = GrantService(core.store, core.roster, self.cluster, core.jobs, self.notifier, clock)

    def ask(
        self,
        role: str = "admin",
        namespace: str | None = "payments",
        reason: str = "INC-4411 checkout pods crash-looping",
    ) -> RequestId:
        return self.core.access.submit(Ask(SlackUserId(ALICE), "prod", namespace, role, timedelta(hours=1), reason)).id

    def publish(self, request_id: RequestId) -> int:
        return self.publisher.publish(request_id)

    def root(self, request_id: RequestId) -> SlackMessage:
        request = self.core.store.get(request_id)
        assert request is not None
        assert request.message_ts is not None
        found = self.slack.message(request.channel, request.message_ts)
        assert found is not None
        return found

    def thread(self, request_id: RequestId) -> list[str]:
        root = self.root(request_id)
        return [self.slack.render_text(m) for m in self.slack.thread(root.channel, root.ts)]

    def dms(self, user: str) -> list[str]:
        return [self.slack.render_text(m) for m in self.slack.dm(user)]


@pytest.fixture
def world(core: Core, slack: SlackApiDouble, clock: FakeClock) -> World:
    return World(core, slack, clock)


def test_the_root_is_posted_once_then_updated_in_place(world: World) -> None:
    request_id = world.ask()
    world.publish(request_id)
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.publish(request_id)
    world.core.access.approve(request_id, SlackUserId(CAROL))
    world.publish(request_id)

    roots = world.slack.messages(INCIDENTS)
    assert len(roots) == 1
    root = world.root(request_id)
    assert len(root.edits) == 2
    assert find_button(root.edits[0].blocks, blocks.APPROVE_ACTION, request_id) is not None
    assert find_button(root.blocks, blocks.APPROVE_ACTION) is None  # decided: no buttons
    assert "approved" in world.slack.render_text(root)


def test_every_entry_is_a_reply_in_the_thread_in_order(world: World) -> None:
    request_id = world.ask()
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.core.access.approve(request_id, SlackUserId(CAROL))
    world.grants.grant(request_id)
    world.publish(request_id)
    thread = world.thread(request_id)
    assert [line.split(":")[1] for line in thread] == [
        "inbox_tray",
        "ballot_box_with_check",
        "white_check_mark",
        "unlock",
    ]
    assert "Approved by @bob (1 of 2)" in thread[1]
    assert world.slack.lost_replies() == []


def test_refused_clicks_stay_out_of_the_thread(world: World) -> None:
    request_id = world.ask()
    with pytest.raises(Exception, match="cannot approve or deny your own request"):
        world.core.access.approve(request_id, SlackUserId(ALICE))
    world.core.access.refuse(request_id, SlackUserId("U0STRANGER"), "approve", "not in the roster")
    world.publish(request_id)
    assert len(world.thread(request_id)) == 1  # only "requested"


def test_approvers_are_dmed_a_link_to_a_waiting_request(world: World) -> None:
    request_id = world.ask()
    world.publish(request_id)
    for approver in (BOB, CAROL):
        (dm,) = world.dms(approver)
        assert "@alice asks for admin on prod/payments for 1h" in dm.replace("*", "")
        assert "Open the request" in dm
    assert world.dms(ALICE) == []


def test_the_requester_hears_of_approval_and_the_exact_expiry_in_their_timezone(world: World) -> None:
    request_id = world.ask()
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.core.access.approve(request_id, SlackUserId(CAROL))
    world.publish(request_id)
    world.grants.grant(request_id)
    world.publish(request_id)
    approved, granted = world.dms(ALICE)
    assert "was approved by @bob, @carol" in approved
    # A Slack date token: each reader sees it in their own zone, and it never goes stale.
    assert "until 2026-11-27 10:00 UTC" in granted
    assert "Use it with `kubectl --context prod -n payments`." in granted
    assert "from now" not in granted


def test_a_denied_request_tells_the_requester(world: World) -> None:
    request_id = world.ask()
    world.core.access.deny(request_id, SlackUserId(BOB))
    world.publish(request_id)
    assert "was denied by @bob" in world.dms(ALICE)[0]
    assert find_button(world.root(request_id).blocks, blocks.DENY_ACTION) is None


def test_the_reminder_dm_carries_an_extend_button(world: World) -> None:
    request_id = world.ask(role="view")
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.grants.grant(request_id)
    world.clock.advance(minutes=51)
    world.grants.remind(request_id)
    world.publish(request_id)
    reminder = world.slack.dm(ALICE)[-1]
    assert "<!date^" in reminder.text or any("<!date^" in str(b) for b in reminder.blocks)  # her own zone
    assert find_button(reminder.blocks, blocks.EXTEND_ACTION, request_id) is not None


def test_the_end_of_a_grant_is_dmed_with_a_review_button(world: World) -> None:
    request_id = world.ask(role="view")
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.grants.grant(request_id)
    world.core.access.revoke(request_id, SlackUserId(CAROL))
    world.grants.revoke(request_id)
    world.publish(request_id)
    ended = world.slack.dm(ALICE)[-1]
    assert "was revoked by @carol" in world.slack.render_text(ended)
    assert find_button(ended.blocks, blocks.REVIEW_ACTION, request_id) is not None
    assert any("Binding" in line and "removed" in line for line in world.thread(request_id))


def test_a_grant_breakglass_ends_early_is_dmed_with_its_reason(world: World) -> None:
    request_id = world.ask(role="view")
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.grants.grant(request_id)
    world.grants.revoke(request_id, by_sweep=EndReason(EndCode.BINDING_EXPIRY_UNREADABLE), before_expiry=True)
    world.publish(request_id)
    ended = world.slack.render_text(world.slack.dm(ALICE)[-1])
    assert "has expired (its binding carries no readable expiry)." in ended


def test_an_operators_reason_for_a_revoke_is_dmed_as_typed_and_inert(world: World) -> None:
    request_id = world.ask(role="view")
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.grants.grant(request_id)
    world.core.access.revoke_by_operator(request_id, "root@bastion", "<!channel> leaked token")
    world.publish(request_id)
    dm = world.slack.dm(ALICE)[-1]
    assert "was revoked by breakglass (&lt;!channel&gt; leaked token)." in str(dm.blocks)
    assert "<!channel>" not in str(dm.blocks)


def test_self_service_break_glass_is_announced_loudly_to_every_approver(
    core: Core, slack: SlackApiDouble, clock: FakeClock, fake_redis: object
) -> None:
    roster = roster_with(roles={"view": {"approvals": 0}})
    core = make_core(core.settings, roster, clock, fake_redis)  # type: ignore[arg-type]
    world = World(core, slack, clock)
    request_id = world.ask(role="view")
    world.grants.grant(request_id)
    world.publish(request_id)
    for approver in (BOB, CAROL):
        notices = [dm for dm in world.dms(approver) if "Self-service break-glass used" in dm]
        assert len(notices) == 1
        assert "@alice took view on prod/payments" in notices[0].replace("*", "")
        assert "Once it ends, one of you owes the review" in notices[0]
    assert "A review by an approver is owed" in world.slack.render_text(world.root(request_id))


def test_when_self_service_break_glass_ends_the_approvers_get_the_review_to_write(
    core: Core, slack: SlackApiDouble, clock: FakeClock, fake_redis: object
) -> None:
    roster = roster_with(roles={"view": {"approvals": 0}})
    core = make_core(core.settings, roster, clock, fake_redis)  # type: ignore[arg-type]
    world = World(core, slack, clock)
    request_id = world.ask(role="view")
    world.grants.grant(request_id)
    world.publish(request_id)
    clock.advance(hours=1, seconds=1)
    world.grants.revoke(request_id)
    world.publish(request_id)
    for approver in (BOB, CAROL):
        owed = world.slack.dm(approver)[-1]
        assert "A review is owed." in world.slack.render_text(owed)
        assert "self-service break-glass" in world.slack.render_text(owed)
        assert find_button(owed.blocks, blocks.REVIEW_ACTION, request_id) is not None
    ended = world.slack.dm(ALICE)[-1]
    assert "an approver of the role owes a review" in world.slack.render_text(ended)
    button = find_button(ended.blocks, blocks.REVIEW_ACTION, request_id)
    assert button is not None
    assert button[1]["text"]["text"] == "Add your account"


def test_the_end_of_an_approved_grant_asks_no_approver_for_a_review(world: World) -> None:
    request_id = world.ask(role="view")
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.grants.grant(request_id)
    world.clock.advance(hours=1, seconds=1)
    world.grants.revoke(request_id)
    world.publish(request_id)
    assert not any("A review is owed" in dm for dm in world.dms(BOB) + world.dms(CAROL))


def test_a_failed_grant_is_told_to_the_requester_with_the_error(world: World) -> None:
    request_id = world.ask(role="view")
    world.core.access.approve(request_id, SlackUserId(BOB))
    from bot.ports import ClusterRefused

    world.cluster.fail_next(1, ClusterRefused, operations=["apply_grant"])
    world.grants.grant(request_id)
    world.publish(request_id)
    assert "could not be granted: the cluster refused the binding" in world.dms(ALICE)[-1]
    assert any("The grant failed" in line for line in world.thread(request_id))


def test_the_kubeconfig_is_uploaded_only_to_the_requesters_dm(world: World, clock: FakeClock) -> None:
    request = world.core.store.get(world.ask())
    assert request is not None
    credentials = IssuedCredentials(
        kubeconfig="apiVersion: v1\nkind: Config\n",
        token_expires_at=clock() + timedelta(minutes=10),
        outlives_grant=True,
    )
    world.notifier.deliver_credentials(request, credentials)
    (uploaded,) = world.slack.files()
    assert uploaded.channel == world.slack.dm_channel_id(ALICE)
    assert uploaded.content == b"apiVersion: v1\nkind: Config\n"
    assert "outlives your grant" in (uploaded.initial_comment or "")
    assert world.slack.files(INCIDENTS) == []
    assert all(m.files == () for m in world.slack.messages(INCIDENTS))


def test_a_429_is_waited_out_as_slack_asks_and_nothing_is_posted_twice(world: World) -> None:
    request_id = world.ask()
    world.slack.rate_limit("chat.postMessage", retry_after=3)
    world.publish(request_id)
    assert world.sleeps == [3.0]
    assert len(world.slack.messages(INCIDENTS)) == 1
    assert len(world.thread(request_id)) == 1


def test_a_long_retry_after_becomes_a_temporary_error_with_that_delay(world: World) -> None:
    request_id = world.ask()
    world.slack.rate_limit("chat.postMessage", retry_after=120)
    with pytest.raises(SlackUnavailable) as slow:
        world.publish(request_id)
    assert slow.value.delay == 120
    assert world.sleeps == []


def test_a_failure_half_way_resumes_without_a_second_root_or_reply(world: World) -> None:
    request_id = world.ask()
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.publish(request_id)  # root + 2 replies, approvers DMed
    world.core.access.approve(request_id, SlackUserId(CAROL))
    world.slack.fail("conversations.open", "internal_error")  # the DM to Alice fails after the reply
    with pytest.raises(TemporaryError):
        world.publish(request_id)
    world.publish(request_id)
    assert len(world.slack.messages(INCIDENTS)) == 1
    assert len(world.thread(request_id)) == 3
    assert len([dm for dm in world.dms(ALICE) if "was approved" in dm]) == 1


def test_a_root_post_that_succeeded_before_a_failed_reply_is_not_posted_again(world: World) -> None:
    request_id = world.ask()
    original = world.api.post_message
    calls = {"n": 0}

    def flaky(channel: str, text: str, body: object = None, thread_ts: str | None = None) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise SlackUnavailable("Slack answered internal_error", "internal_error")
        return original(channel, text, body, thread_ts)  # type: ignore[arg-type]

    world.api.post_message = flaky  # type: ignore[method-assign]
    with pytest.raises(SlackUnavailable):
        world.publish(request_id)
    world.publish(request_id)
    assert len(world.slack.messages(INCIDENTS)) == 1
    assert len(world.thread(request_id)) == 1


def test_long_texts_are_truncated_so_slack_never_refuses_them(world: World) -> None:
    request_id = world.ask(role="view", reason="&<>" * 166)
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.grants.grant(request_id)
    world.clock.advance(hours=2)
    world.grants.revoke(request_id)
    world.core.access.write_review(request_id, SlackUserId(ALICE), "<!channel> " * 270)
    world.publish(request_id)
    refused = [c for c in world.slack.calls() if not c.ok]
    assert refused == []
    assert any("Review by @alice" in line for line in world.thread(request_id))


@pytest.mark.parametrize("roster", [roster_with(request_channels=["C0000WARROOM"])])
def test_a_channel_the_bot_left_falls_back_to_the_incident_channel(
    core: Core, slack: SlackApiDouble, clock: FakeClock
) -> None:
    slack.add_channel("C0000WARROOM", "war-room", members=[ALICE], bot_is_member=False)
    world = World(core, slack, clock)
    request_id = core.access.submit(
        Ask(
            SlackUserId(ALICE),
            "prod",
            "payments",
            "admin",
            timedelta(hours=1),
            "INC-4411 checkout pods crash-looping",
            "C0000WARROOM",
        )
    ).id
    world.publish(request_id)
    assert len(slack.messages(INCIDENTS)) == 1
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.publish(request_id)
    assert len(slack.messages(INCIDENTS)) == 1
    assert len(slack.thread(INCIDENTS, slack.messages(INCIDENTS)[0].ts)) == 2


def test_someone_who_cannot_be_dmed_does_not_block_the_thread(world: World) -> None:
    world.slack.add_user(CAROL, name="carol", is_bot=True)  # conversations.open answers cannot_dm_bot
    request_id = world.ask()
    world.publish(request_id)
    assert len(world.dms(BOB)) == 1
    assert len(world.thread(request_id)) == 1


def test_from_settings_builds_a_notifier_against_the_configured_api(
    settings: object, roster: Roster, clock: FakeClock
) -> None:
    notifier = SlackNotifier.from_settings(settings, FixedRoster(roster), clock)  # type: ignore[arg-type]
    assert notifier.slack.web.base_url == settings.slack_api_url  # type: ignore[attr-defined]


def test_an_overdue_review_is_a_dm_with_the_button_and_a_line_in_the_thread(world: World) -> None:
    request_id = world.ask(role="view")
    world.core.access.approve(request_id, SlackUserId(BOB))
    world.grants.grant(request_id)
    world.clock.advance(hours=1, seconds=1)
    world.grants.revoke(request_id)
    world.publish(request_id)
    world.clock.advance(days=1)
    assert world.core.access.remind_overdue_reviews() == [request_id]
    world.publish(request_id)

    overdue = world.slack.dm(ALICE)[-1]
    assert "A review is overdue." in world.slack.render_text(overdue)
    assert find_button(overdue.blocks, blocks.REVIEW_ACTION, request_id) is not None
    assert "The review is overdue; reminded" in world.thread(request_id)[-1]
