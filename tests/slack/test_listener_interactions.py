"""Buttons, forms and the Home tab through Bolt over real, signed HTTP against the Slack double."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Roster
from bot.slack import blocks
from bot.standins.slack_api import SlackApiDouble, find_button
from tests.fakes import ALICE, BOB, CAROL, roster_with
from tests.slack.conftest import INCIDENTS
from tests.slack.harness import SlackAppHarness, grant

ASK = "prod/payments admin 1h INC-4411 checkout pods crash-looping"


def posted_request(harness: SlackAppHarness, text: str = ASK) -> AccessRequest:
    harness.command(ALICE, text)
    (request,) = harness.requests()
    return harness.publish(request)


def state_of(harness: SlackAppHarness, request_id: str) -> State:
    found = harness.core.store.get(request_id)
    assert found is not None
    return found.state


def click_on_root(harness: SlackAppHarness, user: str, action: str, request: AccessRequest) -> None:
    assert request.message_ts is not None
    harness.click(user, action, request.id, request.message_ts, request.channel)


class TestApproveAndDeny:
    def test_two_approvers_approve_and_the_buttons_go(self, harness: SlackAppHarness) -> None:
        request = posted_request(harness)
        click_on_root(harness, BOB, blocks.APPROVE_ACTION, request)
        assert f"You approved {request.id} (1 of 2); 1 more needed." in harness.last_said_to(BOB).replace("*", "")
        click_on_root(harness, CAROL, blocks.APPROVE_ACTION, request)
        assert "it is being granted" in harness.last_said_to(CAROL)
        assert state_of(harness, request.id) is State.APPROVED
        assert [c.kind for c in harness.core.jobs.calls if c.kind == "grant"] == ["grant"]  # type: ignore[attr-defined]
        root = harness.slack.message(INCIDENTS, harness.publish(request).message_ts or "")
        assert root is not None
        assert find_button(root.blocks, blocks.APPROVE_ACTION) is None

    def test_the_requester_cannot_approve_their_own_request(self, harness: SlackAppHarness) -> None:
        request = posted_request(harness)
        click_on_root(harness, ALICE, blocks.APPROVE_ACTION, request)
        assert "You cannot approve or deny your own request; another approver must." in harness.last_said_to(ALICE)
        assert state_of(harness, request.id) is State.PENDING
        assert [(e.actor, e.details["action"]) for e in harness.refusals()] == [(ALICE, "approve")]

    def test_a_stranger_clicking_is_refused_and_audited(self, harness: SlackAppHarness, slack: SlackApiDouble) -> None:
        slack.add_user("U0STRANGER", name="mallory")
        slack.set_channel_members(INCIDENTS, [ALICE, BOB, CAROL, "U0STRANGER"])
        request = posted_request(harness)
        click_on_root(harness, "U0STRANGER", blocks.APPROVE_ACTION, request)
        assert "You are not in the breakglass roster" in harness.last_said_to("U0STRANGER")
        assert state_of(harness, request.id) is State.PENDING
        (refused,) = harness.refusals()
        # Not filed under the request: an identity refusal takes nothing the stranger sent on trust.
        assert (refused.actor, refused.request_id, refused.details["action"]) == ("U0STRANGER", None, "approve")

    def test_a_second_click_by_the_same_approver_counts_once(self, harness: SlackAppHarness) -> None:
        request = posted_request(harness)
        click_on_root(harness, BOB, blocks.APPROVE_ACTION, request)
        click_on_root(harness, BOB, blocks.APPROVE_ACTION, request)
        assert f"You have already approved {request.id}" in harness.last_said_to(BOB)
        stored = harness.core.store.get(request.id)
        assert stored is not None
        assert stored.approved_by == (BOB,)

    def test_deny_ends_the_request_and_a_stale_approve_after_it_is_refused(self, harness: SlackAppHarness) -> None:
        request = posted_request(harness)
        click_on_root(harness, BOB, blocks.DENY_ACTION, request)
        assert state_of(harness, request.id) is State.PENDING  # the form for a reason comes first
        harness.submit(BOB, blocks.DENY_CALLBACK, {})  # the reason is optional
        shown = harness.slack.render_text(harness.slack.views_opened(user_id=BOB)[-1].view)
        assert f"You denied {request.id}." in shown.replace("*", "")
        harness.publish(request.id)
        assert request.message_ts is not None
        harness.sender.click(CAROL, blocks.APPROVE_ACTION, request.id, request.message_ts, INCIDENTS, stale=True)
        harness.executor.settle()
        assert f"{request.id} is already denied; there is nothing left to decide." in harness.last_said_to(CAROL)
        assert state_of(harness, request.id) is State.DENIED

    def test_a_button_value_that_names_no_request_is_refused(self, harness: SlackAppHarness) -> None:
        request = posted_request(harness)
        payload: dict[str, Any] = harness.sender._interaction_base("block_actions", BOB)
        payload.update(
            container={"type": "message", "message_ts": request.message_ts, "channel_id": INCIDENTS},
            channel={"id": INCIDENTS},
            response_url=harness.slack.mint_response_url(BOB, INCIDENTS, message_ts=request.message_ts),
            actions=[{"action_id": "approve", "block_id": "decision", "type": "button", "value": "<!channel>"}],
        )
        harness.sender.send_interaction(payload)
        harness.executor.settle()
        assert "That button names no request" in harness.last_said_to(BOB)
        assert state_of(harness, request.id) is State.PENDING
        assert [(e.actor, e.request_id, e.details["action"]) for e in harness.refusals()] == [(BOB, None, "approve")]

    def test_a_button_naming_a_request_that_does_not_exist_is_refused_and_audited(
        self, harness: SlackAppHarness
    ) -> None:
        request = posted_request(harness)
        payload: dict[str, Any] = harness.sender._interaction_base("block_actions", BOB)
        payload.update(
            container={"type": "message", "message_ts": request.message_ts, "channel_id": INCIDENTS},
            channel={"id": INCIDENTS},
            response_url=harness.slack.mint_response_url(BOB, INCIDENTS, message_ts=request.message_ts),
            actions=[{"action_id": "deny", "block_id": "decision", "type": "button", "value": "BG-222222"}],
        )
        harness.sender.send_interaction(payload)  # a button edited outside Slack's client
        harness.executor.settle()
        assert "There is no request BG-222222" in harness.last_said_to(BOB)
        assert [(e.actor, e.request_id, e.details["action"], e.details["unknown_id"]) for e in harness.refusals()] == [
            (BOB, None, "deny", "BG-222222")
        ]

    def test_approving_after_the_deadline_times_the_request_out_and_the_thread_says_so(
        self, harness: SlackAppHarness
    ) -> None:
        request = posted_request(harness)
        harness.clock.advance(minutes=30)  # request_timeout; no sweep has run
        click_on_root(harness, BOB, blocks.APPROVE_ACTION, request)
        assert (
            f"{request.id} lapsed undecided after 30m; it can no longer be approved, so the requester must ask again."
            in harness.last_said_to(BOB)
        )
        assert state_of(harness, request.id) is State.TIMED_OUT
        assert [(e.actor, e.details["action"]) for e in harness.refusals()] == [(BOB, "approve")]
        assert [c.kind for c in harness.core.jobs.calls if c.kind == "grant"] == []  # type: ignore[attr-defined]
        published = harness.publish(request.id)
        root = harness.slack.message(INCIDENTS, published.message_ts or "")
        assert root is not None
        assert find_button(root.blocks, blocks.APPROVE_ACTION) is None
        thread = [harness.slack.render_text(m) for m in harness.slack.thread(INCIDENTS, root.ts)]
        assert any("Timed out: nobody decided within 30m." in t for t in thread)

    def test_approving_an_active_grant_is_refused_and_audited(self, harness: SlackAppHarness) -> None:
        harness.command(ALICE, "prod/payments view 1h INC-4411 reading logs of payments")
        (request,) = harness.requests()
        request = harness.publish(request)
        click_on_root(harness, BOB, blocks.APPROVE_ACTION, request)
        grant(harness, request.id)
        assert request.message_ts is not None
        harness.sender.click(CAROL, blocks.APPROVE_ACTION, request.id, request.message_ts, INCIDENTS, stale=True)
        harness.executor.settle()
        assert f"{request.id} is already active; there is nothing left to decide." in harness.last_said_to(CAROL)
        assert state_of(harness, request.id) is State.ACTIVE
        assert [(e.actor, e.request_id, e.details["action"]) for e in harness.refusals()] == [
            (CAROL, request.id, "approve")
        ]


def form_shows(harness: SlackAppHarness, user: str = ALICE) -> str:
    """The modal ``user`` has open, as they read it now."""
    (view,) = harness.slack.open_views(user)
    return harness.slack.render_text(view["blocks"])


def request_form(**overrides: Any) -> dict[str, dict[str, Any]]:
    answers: dict[str, Any] = {
        "cluster": "prod",
        "namespace": "payments",
        "role": "admin",
        "duration": "1h",
        "reason": "INC-4411 checkout pods crash-looping",
        "channel": INCIDENTS,
    }
    answers.update(overrides)
    return {block: {block: value} for block, value in answers.items() if value is not None}


class TestRequestForm:
    @pytest.fixture
    def roster(self) -> Roster:
        return roster_with(request_channels=["C0000WARROOM", "C0000SHARED", "C0000PRIVATE"])

    def test_the_form_opens_with_only_what_the_person_may_ask(self, harness: SlackAppHarness) -> None:
        harness.command(ALICE)
        (opened,) = harness.slack.views_opened(user_id=ALICE)
        assert opened.view["callback_id"] == blocks.REQUEST_CALLBACK
        roles = next(b for b in opened.view["blocks"] if b.get("block_id") == "role")
        assert [o["value"] for o in roles["element"]["options"]] == ["admin", "view"]

    def test_a_submitted_form_becomes_a_request_in_the_chosen_channel(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        slack.add_channel("C0000WARROOM", "war-room", members=[ALICE, BOB, CAROL])
        harness.command(ALICE)
        reply = harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form(channel="C0000WARROOM"))
        answer = reply.json()
        assert answer["response_action"] == "update"
        assert "Submitting" in answer["view"]["title"]["text"]
        (request,) = harness.requests()
        assert (request.channel, request.role, request.duration) == ("C0000WARROOM", "admin", timedelta(hours=1))
        assert request.id in form_shows(harness)

    @pytest.mark.parametrize(
        ("overrides", "block", "says"),
        [
            ({"role": {"selected_option": {"value": "cluster-admin"}}}, "role", "Choose one of the roles offered."),
            (
                {"namespace": {"selected_option": {"value": "kube-system"}}},
                "namespace",
                "Choose one of the namespaces offered.",
            ),
            (
                {"namespace": None, "namespace_other": "kube-system"},
                "namespace_other",
                "not entitled to 'admin' on prod/kube-system",
            ),
            ({"duration": {"selected_option": {"value": "8h"}}}, "duration", "Choose one of the durations offered."),
            ({"duration": "4h"}, "duration", "'admin' may be granted for at most 1h; ask for 1h or less."),
            ({"reason": "too short"}, "reason", "The reason is too short"),
        ],
    )
    def test_values_edited_outside_the_form_are_refused_and_nothing_is_stored(
        self, harness: SlackAppHarness, overrides: dict[str, Any], block: str, says: str
    ) -> None:
        harness.command(ALICE)
        reply = harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form(**overrides))
        answer = reply.json()
        assert answer["response_action"] == "errors"
        assert says in answer["errors"][block]
        assert harness.requests() == []
        assert harness.slack.open_views(ALICE)  # the form stays open for a fix

    def test_a_channel_breakglass_is_not_in_is_refused_on_its_field(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        slack.add_channel("C0000PRIVATE", "secret", members=[ALICE], is_private=True, bot_is_member=False)
        harness.command(ALICE)
        harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form(channel="C0000PRIVATE"))
        (view,) = slack.open_views(ALICE)
        assert view["callback_id"] == blocks.REQUEST_CALLBACK  # the form again, to choose another channel
        shown = slack.render_text(view["blocks"])
        assert "Nothing was sent yet: breakglass cannot see that channel; invite it" in shown
        reason = next(b for b in view["blocks"] if b.get("block_id") == "reason")
        assert reason["element"]["initial_value"] == "INC-4411 checkout pods crash-looping"  # kept as typed
        assert harness.requests() == []

    def test_a_channel_the_roster_does_not_list_is_refused_on_its_field(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        # A private channel of the requester's own, with the bot invited: the request, its approvals
        # and its actions would be kept from the incident channel.
        slack.add_channel("C0000MYOWN", "alice-private", members=[ALICE], is_private=True)
        harness.command(ALICE)
        harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form(channel="C0000MYOWN"))
        (view,) = slack.open_views(ALICE)
        assert "Requests are posted only in the incident channel or a channel the roster lists" in (
            slack.render_text(view["blocks"])
        )
        assert harness.requests() == []

    def test_a_slack_connect_channel_is_refused_even_when_the_roster_lists_it(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        slack.add_channel("C0000SHARED", "vendor-shared", members=[ALICE, BOB], is_ext_shared=True)
        harness.command(ALICE)
        harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form(channel="C0000SHARED"))
        (view,) = slack.open_views(ALICE)
        assert "shared with another organisation (Slack Connect)" in slack.render_text(view["blocks"])
        assert harness.requests() == []

    def test_a_stranger_gets_no_form(self, harness: SlackAppHarness, slack: SlackApiDouble) -> None:
        slack.add_user("U0STRANGER", name="mallory")
        harness.command("U0STRANGER")
        assert harness.slack.views_opened(user_id="U0STRANGER") == []
        assert "not in the breakglass roster" in harness.last_said_to("U0STRANGER")

    def test_someone_who_became_a_guest_since_the_form_opened_is_refused_on_submit(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        harness.command(ALICE)
        slack.add_user(ALICE, name="alice", is_restricted=True)
        harness.clock.advance(seconds=61)  # past the identity cache
        answer = harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form()).json()
        assert answer["response_action"] == "update"
        assert "Guest accounts cannot use breakglass" in form_shows(harness)
        assert harness.requests() == []

    def test_choosing_a_cluster_and_a_role_renders_the_form_again_with_only_that_roles_durations(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        def options(view: dict[str, Any], block_id: str) -> list[str]:
            found = next(b for b in view["blocks"] if b.get("block_id") == block_id)
            return [o["value"] for o in found["element"]["options"]]

        harness.command(ALICE)
        (form,) = slack.open_views(ALICE)
        assert "4h" in options(form, "duration")  # view's maximum, while no role is chosen
        harness.sender.choose(ALICE, blocks.REQUEST_CALLBACK, "cluster", "prod")
        harness.executor.settle()
        harness.sender.choose(ALICE, blocks.REQUEST_CALLBACK, "role", "admin")
        harness.executor.settle()
        (again,) = slack.open_views(ALICE)
        assert again["id"] == form["id"]
        assert options(again, "duration")[-1] == "1h"  # admin's maximum
        chosen = {b["block_id"]: b["element"].get("initial_option", {}).get("value") for b in again["blocks"]
                  if b.get("type") == "input" and b["element"]["type"] == "static_select"}  # fmt: skip
        assert (chosen["cluster"], chosen["role"]) == ("prod", "admin")
        harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form(duration="45m"))
        (request,) = harness.requests()
        assert request.duration == timedelta(minutes=45)

    def test_the_ack_comes_before_any_slow_slack_call(self, harness: SlackAppHarness, slack: SlackApiDouble) -> None:
        harness.command(ALICE)
        harness.clock.advance(seconds=61)  # past the identity cache: users.info is asked again
        # Every users.info and conversations.info call waits unanswered until released: an ack that
        # waited for one could not come at all (before the fix it waited for both, past Slack's
        # deadline). An order, not a speed: it holds on a machine of any load.
        held = [slack.hold("users.info"), slack.hold("conversations.info")]
        reply = harness.sender.submit_view(ALICE, blocks.REQUEST_CALLBACK, request_form())
        assert [h.answered for h in held] == [0, 0], "the ack came only after a Slack call was answered"
        assert reply.json()["response_action"] == "update"
        assert harness.requests() == []  # nothing decided yet: identity comes after the ack
        slack.clear_faults()  # releases them: the work after the ack goes on
        harness.executor.settle()
        assert held[0].arrived >= 1, "users.info was asked, after the ack"
        (request,) = harness.requests()
        assert request.id in form_shows(harness)

    def test_field_errors_are_answered_in_the_ack_without_a_slack_call(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        harness.command(ALICE)
        calls_before = len(slack.calls())
        reply = harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form(reason="too short"))
        assert reply.json()["response_action"] == "errors"
        assert slack.calls()[calls_before:] == []

    def test_the_same_form_delivered_twice_makes_one_request(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        harness.command(ALICE)
        (form,) = slack.open_views(ALICE)
        # The first answer is lost (past the deadline) and the form cannot be updated, so it stays
        # open and Alice presses Submit again: Slack delivers the same view a second time.
        slack.fail("views.update", "internal_error", times=10)
        harness.sender.submit_view(ALICE, blocks.REQUEST_CALLBACK, request_form(), answer_lost=True)
        harness.executor.settle()
        slack.clear_faults()
        assert [v["id"] for v in slack.open_views(ALICE)] == [form["id"]]
        harness.submit(ALICE, blocks.REQUEST_CALLBACK, request_form())
        (request,) = harness.requests()
        assert request.id in form_shows(harness)
        assert [e.event for e in harness.audit() if e.request_id == request.id] == ["requested"]


class TestHome:
    def test_an_approver_sees_what_waits_for_them_and_approves_from_home(self, harness: SlackAppHarness) -> None:
        request = posted_request(harness)
        harness.open_home(BOB)
        home = harness.slack.home_view(BOB)
        assert home is not None
        assert find_button(home["blocks"], blocks.APPROVE_ACTION, request.id) is not None
        harness.click_home(BOB, blocks.APPROVE_ACTION, request.id)
        home = harness.slack.home_view(BOB)
        assert home is not None
        text = harness.slack.render_text(home["blocks"]).replace("*", "")
        assert f"You approved {request.id} (1 of 2)" in text
        assert find_button(home["blocks"], blocks.APPROVE_ACTION, request.id) is None  # no longer waiting for Bob

    def test_the_holder_revokes_an_active_grant_from_home(self, harness: SlackAppHarness) -> None:
        harness.command(ALICE, "prod/payments view 2h INC-4411 reading logs of payments")
        (request,) = harness.requests()
        harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
        grant(harness, request.id)
        harness.clock.advance(minutes=30)
        harness.open_home(ALICE)
        home = harness.slack.home_view(ALICE)
        assert home is not None
        assert (
            f"{request.id} · view on prod/payments for 2h · :unlock: active · 1h30m left"
            in harness.slack.render_text(home["blocks"]).replace("*", "")
        )
        harness.click_home(ALICE, blocks.REVOKE_ACTION, request.id)
        assert state_of(harness, request.id) is State.REVOKED

    def test_the_requester_cancels_a_pending_request_from_home(self, harness: SlackAppHarness) -> None:
        request = posted_request(harness)
        harness.open_home(ALICE)
        harness.click_home(ALICE, blocks.CANCEL_ACTION, request.id)
        assert state_of(harness, request.id) is State.CANCELLED
        home = harness.slack.home_view(ALICE)
        assert home is not None
        assert "is cancelled" in harness.slack.render_text(home["blocks"])

    def test_a_stranger_sees_a_refusal_and_it_is_audited(self, harness: SlackAppHarness, slack: SlackApiDouble) -> None:
        slack.add_user("U0STRANGER", name="mallory")
        harness.open_home("U0STRANGER")
        home = slack.home_view("U0STRANGER")
        assert home is not None
        assert "not in the breakglass roster" in slack.render_text(home["blocks"])
        assert [e.details["action"] for e in harness.refusals()] == ["home"]


class TestExtendAndReview:
    def test_extend_from_the_reminder_dm_asks_for_more_time(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        harness.command(ALICE, "prod/payments view 1h INC-4411 reading logs of payments")
        (request,) = harness.requests()
        harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
        service = grant(harness, request.id)
        harness.clock.advance(minutes=51)
        service.remind(request.id)
        harness.publish(request.id)
        reminder = slack.dm(ALICE)[-1]
        harness.click(ALICE, blocks.EXTEND_ACTION, request.id, reminder.ts, slack.dm_channel_id(ALICE))
        (opened,) = slack.views_opened(user_id=ALICE)
        assert opened.view["callback_id"] == blocks.EXTEND_CALLBACK
        durations = next(b for b in opened.view["blocks"] if b.get("block_id") == "duration")
        assert durations["element"]["options"][-1]["value"] == "3h"  # view's 4h maximum minus the 1h held
        answer = harness.submit(
            ALICE,
            blocks.EXTEND_CALLBACK,
            {"duration": {"duration": "30m"}, "reason": {"reason": "INC-4411 still mitigating"}},
        ).json()
        assert answer["response_action"] == "update"
        extension = next(r for r in harness.requests() if r.extends == request.id)
        assert extension.duration == timedelta(minutes=30)

    def reminded(self, harness: SlackAppHarness, slack: SlackApiDouble) -> tuple[AccessRequest, str]:
        """ALICE's granted request and the ts of the reminder DM with its Extend button."""
        harness.command(ALICE, "prod/payments view 1h INC-4411 reading logs of payments")
        (request,) = harness.requests()
        harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
        service = grant(harness, request.id)
        harness.clock.advance(minutes=51)
        service.remind(request.id)
        harness.publish(request.id)
        return request, slack.dm(ALICE)[-1].ts

    def open_extension_form(self, harness: SlackAppHarness, slack: SlackApiDouble) -> AccessRequest:
        request, reminder = self.reminded(harness, slack)
        harness.click(ALICE, blocks.EXTEND_ACTION, request.id, reminder, slack.dm_channel_id(ALICE))
        return request

    def test_the_extension_form_acks_before_asking_slack_who_submitted_it(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        request = self.open_extension_form(harness, slack)
        harness.clock.advance(seconds=61)  # past the identity cache
        held = slack.hold("users.info")  # unanswered until released: an ack that waited could not come
        reply = harness.sender.submit_view(
            ALICE,
            blocks.EXTEND_CALLBACK,
            {"duration": {"duration": "30m"}, "reason": {"reason": "INC-4411 still mitigating"}},
        )
        assert reply.status == 200
        assert held.answered == 0, "the ack came only after users.info was answered"
        slack.clear_faults()
        harness.executor.settle()
        assert held.arrived >= 1, "users.info was asked, after the ack"
        (extension,) = [r for r in harness.requests() if r.extends == request.id]
        assert extension.id in form_shows(harness)

    def test_the_same_extension_form_delivered_twice_asks_once(
        self, harness: SlackAppHarness, slack: SlackApiDouble
    ) -> None:
        request = self.open_extension_form(harness, slack)
        answers = {"duration": {"duration": "30m"}, "reason": {"reason": "INC-4411 still mitigating"}}
        slack.fail("views.update", "internal_error", times=10)
        harness.sender.submit_view(ALICE, blocks.EXTEND_CALLBACK, answers, answer_lost=True)
        harness.executor.settle()
        slack.clear_faults()
        harness.submit(ALICE, blocks.EXTEND_CALLBACK, answers)
        (extension,) = [r for r in harness.requests() if r.extends == request.id]
        assert extension.id in form_shows(harness)
        asked = [e for e in harness.audit() if e.request_id == request.id and e.event == "extension_requested"]
        assert len(asked) == 1

    def test_a_review_is_written_from_the_ended_dm(self, harness: SlackAppHarness, slack: SlackApiDouble) -> None:
        harness.command(ALICE, "prod/payments view 1h INC-4411 reading logs of payments")
        (request,) = harness.requests()
        harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
        service = grant(harness, request.id)
        harness.clock.advance(hours=1, seconds=1)
        service.revoke(request.id)
        harness.publish(request.id)
        ended = slack.dm(ALICE)[-1]
        harness.click(ALICE, blocks.REVIEW_ACTION, request.id, ended.ts, slack.dm_channel_id(ALICE))
        answer = harness.submit(
            ALICE, blocks.REVIEW_CALLBACK, {"review": {"review": "read payments logs, found the bad deploy <!here>"}}
        ).json()
        assert answer["response_action"] == "update"
        stored = harness.core.store.get(request.id)
        assert stored is not None
        assert stored.review is not None
        assert stored.review.text == "read payments logs, found the bad deploy <!here>"

    def test_a_refused_extend_button_is_audited(self, harness: SlackAppHarness, slack: SlackApiDouble) -> None:
        request, reminder = self.reminded(harness, slack)
        harness.core.access.revoke(request.id, BOB)  # type: ignore[arg-type]
        harness.click(ALICE, blocks.EXTEND_ACTION, request.id, reminder, slack.dm_channel_id(ALICE))
        assert f"{request.id} is revoked, not an active grant" in harness.last_said_to(ALICE)
        assert slack.views_opened(user_id=ALICE) == []
        assert [(e.actor, e.request_id, e.details["action"]) for e in harness.refusals()] == [
            (ALICE, request.id, "extend")
        ]

    def test_someone_elses_grant_cannot_be_extended(self, harness: SlackAppHarness) -> None:
        harness.command(ALICE, "prod/payments view 1h INC-4411 reading logs of payments")
        (request,) = harness.requests()
        harness.core.access.approve(request.id, BOB)  # type: ignore[arg-type]
        grant(harness, request.id)
        harness.command(BOB, f"extend {request.id} 30m I would like more of it")
        assert f"Only the holder of {request.id} may ask to extend it." in harness.last_said_to(BOB)
        assert [r.id for r in harness.requests()] == [request.id]


def test_the_home_tab_request_access_button_opens_the_request_form(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    harness.open_home(ALICE)
    home = slack.home_view(ALICE)
    assert home is not None
    assert find_button(home["blocks"], blocks.REQUEST_ACCESS_ACTION) is not None
    before = len(slack.views_opened(user_id=ALICE))
    reply = harness.click_home(ALICE, blocks.REQUEST_ACCESS_ACTION, "form")
    assert reply.status == 200
    opened = slack.views_opened(user_id=ALICE)[before:]
    assert [view.view["callback_id"] for view in opened] == [blocks.REQUEST_CALLBACK]


def test_deny_and_revoke_ask_for_confirmation_first(harness: SlackAppHarness, slack: SlackApiDouble) -> None:
    request = posted_request(harness)
    root = slack.message(INCIDENTS, request.message_ts or "")
    assert root is not None
    deny = find_button(root.blocks, blocks.DENY_ACTION, request.id)
    assert deny is not None
    assert deny[1]["confirm"]["confirm"]["text"] == "Deny"
    approve = find_button(root.blocks, blocks.APPROVE_ACTION, request.id)
    assert approve is not None
    assert "confirm" not in approve[1]
    active = request.model_copy(update={"state": State.ACTIVE, "expires_at": harness.clock() + timedelta(hours=1)})
    home = blocks.home_view(ALICE, [active], [], harness.clock())
    revoke = find_button(home["blocks"], blocks.REVOKE_ACTION, request.id)
    assert revoke is not None
    assert revoke[1]["confirm"]["confirm"]["text"] == "Revoke"


def test_a_denial_reason_goes_to_the_thread_and_the_requester(harness: SlackAppHarness, slack: SlackApiDouble) -> None:
    request = posted_request(harness)
    click_on_root(harness, BOB, blocks.DENY_ACTION, request)
    harness.submit(BOB, blocks.DENY_CALLBACK, {blocks.DENY_REASON_INPUT: {blocks.DENY_REASON_INPUT: "use view"}})
    assert state_of(harness, request.id) is State.DENIED
    published = harness.publish(request.id)
    thread = [slack.render_text(m) for m in slack.thread(INCIDENTS, published.message_ts or "")]
    assert any("Denied by @bob: use view" in line for line in thread), thread
    assert "was denied by @bob: use view" in slack.render_text(slack.dm(ALICE)[-1])


def test_a_non_approver_pressing_deny_is_refused_without_a_form(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    request = posted_request(harness)
    before = len(slack.views_opened(user_id=ALICE))
    click_on_root(harness, ALICE, blocks.DENY_ACTION, request)
    assert "You cannot approve or deny your own request" in harness.last_said_to(ALICE)
    assert len(slack.views_opened(user_id=ALICE)) == before
