"""Renderers: the request message in every state, a thread reply for every event, DMs, forms and the
Home tab — each checked against Slack's own limits (the double's Block Kit validator)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.domain.audit import Event, next_entry
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import State
from bot.domain.roster import Roster
from bot.slack import blocks, wording
from bot.slack.forms import extension_choices, options_for
from bot.standins.slack_api import block_problems, find_button, render_blocks, view_problems
from tests.conftest import CHAIN_KEY, FakeClock
from tests.fakes import ALICE, BOB, CAROL, roster_with
from tests.slack.conftest import make_request, reviewed

USERS = {ALICE: "alice", BOB: "bob", CAROL: "carol"}


def shown(body: list[dict[str, Any]]) -> str:
    """What a person reads, without mrkdwn's bold and code marks."""
    return render_blocks(body, users=USERS).replace("*", "").replace("`", "")


@pytest.mark.parametrize("state", list(State))
def test_request_message_is_valid_block_kit_in_every_state(state: State, roster: Roster, clock: FakeClock) -> None:
    message = blocks.request_message(make_request(clock, state), roster, clock())
    assert block_problems(message) == []
    text = shown(message)
    assert "@alice asks for admin on prod/payments for 1h." in text
    assert "INC-4411 checkout pods crash-looping" in text
    assert state.label in text


@pytest.mark.parametrize("state", [s for s in State if s is not State.PENDING])
def test_no_buttons_once_decided(state: State, roster: Roster, clock: FakeClock) -> None:
    message = blocks.request_message(make_request(clock, state), roster, clock())
    assert not any(b["type"] == "actions" for b in message)


def test_pending_request_carries_approve_and_deny_with_the_id_as_value(roster: Roster, clock: FakeClock) -> None:
    message = blocks.request_message(make_request(clock), roster, clock())
    approve = find_button(message, "approve", "BG-7K2QXM")
    deny = find_button(message, "deny", "BG-7K2QXM")
    assert approve is not None
    assert deny is not None
    assert "Approvals\n0 of 2" in shown(message)


def test_approvals_show_how_many_and_by_whom(roster: Roster, clock: FakeClock) -> None:
    from bot.domain.lifecycle import Approval

    one = make_request(clock, approvals=(Approval(by=SlackUserId(BOB), at=clock()),))
    text = shown(blocks.request_message(one, roster, clock()))
    assert "1 of 2: @bob" in text
    # Each thing once: who, what and how long in the summary, the tally in Approvals alone.
    assert text.count("@alice") == 1
    assert text.count("prod/payments") == 1
    assert text.count("1 of 2") == 1


@pytest.mark.parametrize(
    "typed",
    [
        "<!channel> help",
        "ping <@U0000000BOB>",
        "see <http://evil.example|the runbook>",
        "<!here|here> & <#C0000INCIDENT>",
    ],
)
def test_pings_and_links_in_the_reason_are_shown_inert(typed: str, roster: Roster, clock: FakeClock) -> None:
    message = blocks.request_message(make_request(clock, reason=f"INC-1 {typed}"), roster, clock())
    reason_block = next(b for b in message if b.get("text", {}).get("text", "").startswith("*Reason*"))
    raw = reason_block["text"]["text"]
    assert "<" not in raw.removeprefix("*Reason*\n")
    assert reason_block["text"]["verbatim"] is True
    assert f"INC-1 {typed}" in shown(message)


def test_a_huge_reason_is_truncated_within_slacks_limit(roster: Roster, clock: FakeClock) -> None:
    message = blocks.request_message(make_request(clock, reason="&" * 5000), roster, clock())
    assert block_problems(message) == []


def test_self_service_message_warns_loudly_and_names_the_approvers(clock: FakeClock) -> None:
    roster = roster_with(roles={"view": {"approvals": 0}})
    request = make_request(clock, State.ACTIVE, role="view", approvals_required=0, approvals=())
    text = shown(blocks.request_message(request, roster, clock()))
    assert "Self-service break-glass" in text
    assert "@bob" in text
    assert "@carol" in text
    assert "Granted at once, without approval." in text
    assert "asks for" not in text  # it is not asked for: it is already granted
    assert "A review by an approver is owed for this break-glass use, once it ends." in text


def entry(event: Event, actor: str = "system", **details: Any) -> Any:
    return next_entry(
        key=CHAIN_KEY,
        seq=7,
        prev_hash="0" * 64,
        at=FakeClock()(),
        request_id="BG-7K2QXM",
        event=event,
        actor=actor,
        details=details,
    )


EVENTS: list[tuple[Any, str]] = [
    (entry(Event.REQUESTED, ALICE), "Requested by @alice: admin on prod/payments for 1h."),
    # Why automation left it to the approvers: a code and its facts in the entry, its sentence in the
    # thread; an entry written before codes (the sentence under "why") reads as it was written.
    (
        entry(Event.LEFT_TO_APPROVERS, code="daily_cap", approvals="3", max_per_day="3", rule="once"),
        "Not approved automatically, so the approvers decide: you have had 3 automatic approvals in the last 24 "
        "hours, the most rule once allows (3).",
    ),
    (
        entry(Event.LEFT_TO_APPROVERS, why="PagerDuty answered 503.", lookup_failed=True),
        "Not approved automatically, so the approvers decide: PagerDuty answered 503.",
    ),
    (
        entry(Event.LEFT_TO_APPROVERS, code="on_call_not_set_up", lookup_failed=True),
        "Not approved automatically, so the approvers decide: PagerDuty is not set up "
        "(BREAKGLASS_PAGERDUTY_TOKEN is unset), so on-call was not checked.",
    ),
    (
        entry(
            Event.REQUESTED,
            ALICE,
            ticket_unchecked={"code": "ticket_lookup_failed", "ticket": "INC-1", "error": "Jira answered 503."},
        ),
        "Requested by @alice: admin on prod/payments for 1h. The ticket was not checked: Jira answered 503.",
    ),
    (
        entry(Event.REQUESTED, ALICE, ticket_unchecked="Jira did not answer within 5 s."),
        "Requested by @alice: admin on prod/payments for 1h. The ticket was not checked: Jira did not answer "
        "within 5 s.",
    ),
    (entry(Event.APPROVED, BOB, count=1, required=2), "Approved by @bob (1 of 2); 1 more needed."),
    (entry(Event.APPROVED, CAROL, count=2, required=2), "Approved by @carol (2 of 2); granting now."),
    (entry(Event.APPROVED, self_service=True), "approved at once, without an approver"),
    (entry(Event.DENIED, BOB), "Denied by @bob."),
    (entry(Event.CANCELLED, ALICE), "Cancelled by @alice."),
    (entry(Event.TIMED_OUT, after="30m"), "nobody decided within 30m"),
    (
        entry(
            Event.GRANTED,
            binding="breakglass-bg-7k2qxm",
            subject="alice@example.com",
            expires_at="2026-11-27T10:00:00Z",
        ),
        "Granted: breakglass-bg-7k2qxm binds alice@example.com; ends 2026-11-27 10:00 UTC.",
    ),
    (
        entry(Event.GRANTED, binding="b", subject="s", expires_at="2026-11-27T10:00:00Z", token_outlives_grant=True),
        "ServiceAccount is deleted at the end",
    ),
    (entry(Event.GRANT_FAILED, error="forbidden <!channel>"), "The grant failed: forbidden <!channel>."),
    (
        entry(Event.GRANT_FAILED, code="cluster_refused_binding", error="forbidden <!channel>"),
        "The grant failed: the cluster refused the binding: forbidden <!channel>.",
    ),
    (
        entry(Event.REMINDER_SENT, expires_at="2026-11-27T10:00:00Z"),
        "Reminder sent to @alice: access ends 2026-11-27 10:00 UTC.",
    ),
    (
        entry(Event.EXTENSION_REQUESTED, ALICE, extension="BG-AAAAAA", by="30m", reason="still <!here>"),
        "@alice asks to extend by 30m as BG-AAAAAA: still <!here>",
    ),
    (
        entry(Event.EXTENDED, extension="BG-AAAAAA", expires_at="2026-11-27T10:30:00Z"),
        "Extended by BG-AAAAAA: now ends 2026-11-27 10:30 UTC.",
    ),
    (entry(Event.REVOKED, BOB, early=True), "Revoked early by @bob."),
    (entry(Event.EXPIRED, expires_at="2026-11-27T10:00:00Z"), "Expired 2026-11-27 10:00 UTC."),
    (
        entry(Event.BINDING_DELETED, binding="breakglass-bg-7k2qxm", late_by_seconds=0.2),
        "Binding breakglass-bg-7k2qxm removed on time.",
    ),
    (entry(Event.BINDING_DELETED, binding="b", late_by_seconds=12.5), "12.5s after the expiry"),
    (
        entry(Event.REVIEW_WRITTEN, ALICE, review="restarted <@U00000CAROL>'s pods"),
        "Review by @alice:\nrestarted <@U00000CAROL>'s pods",
    ),
    (
        entry(
            Event.ACTIONS_DIGEST,
            cluster="prod",
            count=1,
            changes=[{"verb": "delete", "resource": "pods", "name": "web-1", "namespace": "payments", "code": 200}],
            more=0,
        ),
        "1 change(s) on prod since the last digest:\n• delete pods/web-1 in payments → 200",
    ),
    (
        entry(Event.SWEEP_DELETED, binding="breakglass-bg-7k2qxm", why="its request is expired"),
        "The reconcile sweep removed breakglass-bg-7k2qxm: its request is expired.",
    ),
    (
        entry(Event.JOB_FAILED, job="grant", error="cluster refused"),
        "The grant job failed: cluster refused. A person must look.",
    ),
    (
        entry(Event.JOB_GAVE_UP, job="revoke", attempts=13, error="cluster prod: HTTP 503"),
        "The revoke job gave up after 13 attempts: cluster prod: HTTP 503. The reconcile sweep keeps trying",
    ),
    (
        entry(Event.REVOKED, "system", why="its binding is no longer in prod: it was removed outside breakglass"),
        "Revoked early by breakglass: its binding is no longer in prod: it was removed outside breakglass.",
    ),
    # Breakglass's own reasons: a code and its facts in the entry, its sentence in the thread (an entry
    # written before codes, with the sentence under "why", reads the same: the entries above).
    (
        entry(Event.REVOKED, "system", code="binding_removed_outside", cluster="prod"),
        "Revoked early by breakglass: its binding is no longer in prod: it was removed outside breakglass.",
    ),
    (
        entry(
            Event.REVOKED,
            "system",
            code="idle",
            idle_timeout="10m",
            cluster="prod",
            last_action_at="2026-11-27T08:50:00Z",
        ),
        "Revoked early by breakglass: idle for 10m: no action recorded on prod since 2026-11-27T08:50:00Z.",
    ),
    (
        entry(Event.REVOKED, "system", early=True, operator="root@bastion", via="breakglass revoke", why="<!here> x"),
        "Revoked early by operator root@bastion from the command line: <!here> x.",
    ),
    (
        entry(Event.SWEEP_DELETED, binding="breakglass-bg-7k2qxm", code="request_ended", state="expired"),
        "The reconcile sweep removed breakglass-bg-7k2qxm: its request is expired.",
    ),
    (
        entry(Event.SWEEP_DELETED, binding="breakglass-bg-7k2qxm", code="unwarranted"),
        "The reconcile sweep removed breakglass-bg-7k2qxm: its warrant is missing or does not verify (edited, "
        "relabelled or not made by breakglass).",
    ),
    (
        entry(Event.SWEEP_REVOKED_OVERDUE, cluster="prod", why="its expiry has passed and its revoke had not run"),
        "The reconcile sweep is ending this grant: its expiry has passed and its revoke had not run.",
    ),
    (
        entry(Event.SWEEP_REVOKED_OVERDUE, cluster="prod", code="revoke_overdue"),
        "The reconcile sweep is ending this grant: its expiry has passed and its revoke had not run.",
    ),
    (
        entry(
            Event.SWEEP_REVOKED_OVERDUE,
            cluster="prod",
            code="binding_expiry_passed",
            binding_expires_at="2026-11-27T08:59:00Z",
        ),
        "The reconcile sweep is ending this grant: its binding's expiry 2026-11-27T08:59:00Z has passed.",
    ),
    (
        entry(Event.SWEEP_REVOKED_OVERDUE, cluster="prod"),
        "The reconcile sweep is ending this grant: its time is up.",
    ),
    (
        entry(
            Event.SWEEP_SERVICE_ACCOUNT_DELETED,
            cluster="prod",
            service_account="breakglass-system/breakglass-bg-7k2qxm",
            why="its request is unknown to Redis",
        ),
        "The reconcile sweep removed the ServiceAccount breakglass-system/breakglass-bg-7k2qxm: its request is "
        "unknown to Redis.",
    ),
    (
        entry(
            Event.SWEEP_SERVICE_ACCOUNT_DELETED,
            cluster="prod",
            service_account="breakglass-system/breakglass-bg-7k2qxm",
            code="cluster_left_roster",
        ),
        "The reconcile sweep removed the ServiceAccount breakglass-system/breakglass-bg-7k2qxm: its cluster is no "
        "longer in the roster.",
    ),
    (
        entry(Event.BINDING_DELETED, binding="breakglass-bg-7k2qxm", late_by_seconds=0.2, why="its expiry has passed"),
        "Binding breakglass-bg-7k2qxm removed on time (its expiry has passed).",
    ),
    (
        entry(Event.BINDING_DELETED, binding="breakglass-bg-7k2qxm", after_revoke_seconds=0.5, code="unwarranted"),
        "Binding breakglass-bg-7k2qxm removed, 0.5s after the revoke (its warrant is missing or does not verify",
    ),
    (
        entry(Event.JOB_GAVE_UP, job="grant", attempts=13, error="timed out"),
        "once the approval is older than the request timeout the grant is refused instead",
    ),
]


@pytest.mark.parametrize(("audit_entry", "says"), EVENTS, ids=[f"{e.event}-{i}" for i, (e, _) in enumerate(EVENTS)])
def test_every_event_is_a_thread_reply_with_its_time(audit_entry: Any, says: str, clock: FakeClock) -> None:
    reply = blocks.thread_reply(audit_entry, make_request(clock))
    assert reply is not None
    text, body = reply
    assert block_problems(body) == []
    rendered = shown(body)
    assert says in rendered
    assert "2026-11-27 09:00 UTC · audit #7" in rendered  # the entry's own time
    assert "BG-7K2QXM" in text


def test_refused_attempts_are_not_posted_to_the_channel(clock: FakeClock) -> None:
    refused = entry(Event.REFUSED, "U0STRANGER", action="approve", reason="not an approver")
    assert blocks.thread_reply(refused, make_request(clock)) is None


def test_help_lists_every_command_and_what_the_person_may_ask_and_the_form_states_the_mfa(roster: Roster) -> None:
    text = shown(blocks.help_message(roster, ALICE)[1])
    for usage, _ in wording.COMMANDS:
        assert usage in text
    raw = render_blocks(blocks.help_message(roster, ALICE)[1])
    assert "`view` on `prod` (namespaces `payments`, `payments-*`), up to 4h, 1 approval(s)" in raw
    assert "mfa:" not in text  # said once, where it matters: on the form that asks
    form = shown(blocks.request_modal(options_for(roster, SlackUserId(ALICE)), roster)["blocks"])
    assert "operator asserts that this workspace enforces two-factor" in form
    strict = roster_with(mfa="has_2fa")
    assert "mfa: has_2fa" in shown(blocks.request_modal(options_for(strict, SlackUserId(ALICE)), strict)["blocks"])


def test_request_modal_is_a_valid_modal_offering_only_entitlements(roster: Roster) -> None:
    view = blocks.request_modal(options_for(roster, SlackUserId(ALICE)), roster)
    assert view_problems(view, expected_type="modal") == []
    assert view["callback_id"] == blocks.REQUEST_CALLBACK
    role = next(b for b in view["blocks"] if b.get("block_id") == "role")
    assert [o["value"] for o in role["element"]["options"]] == ["admin", "view"]
    channel = next(b for b in view["blocks"] if b.get("block_id") == "channel")
    assert channel["element"]["initial_conversation"] == "C0000INCIDENT"


def test_extension_and_review_modals_are_valid_and_carry_only_the_id(roster: Roster, clock: FakeClock) -> None:
    grant = make_request(clock, State.ACTIVE, role="view", duration=timedelta(hours=1))
    extension = blocks.extension_modal(grant, extension_choices(timedelta(hours=3)), clock())
    review = blocks.review_modal(grant, 20, 3000)
    for view in (extension, review):
        assert view_problems(view, expected_type="modal") == []
        assert view["private_metadata"] == "BG-7K2QXM"


def test_reminder_dm_has_an_extend_button_only_when_there_is_room(clock: FakeClock) -> None:
    grant = make_request(clock, State.ACTIVE)
    _, body = blocks.reminder_dm(grant, "ends soon", can_extend=True)
    assert find_button(body, blocks.EXTEND_ACTION, "BG-7K2QXM") is not None
    _, body = blocks.reminder_dm(grant, "ends soon", can_extend=False)
    assert find_button(body, blocks.EXTEND_ACTION) is None


def test_home_view_stays_within_100_blocks_however_much_there_is(roster: Roster, clock: FakeClock) -> None:
    active = [make_request(clock, State.ACTIVE, id=RequestId(f"BG-2222{c}{d}")) for c in "ABCDEFGH" for d in "23"]
    pending = [make_request(clock, id=RequestId(f"BG-3333{c}{d}")) for c in "ABCDEFGH" for d in "23"]
    waiting = [
        make_request(clock, id=RequestId(f"BG-4444{c}{d}"), requester=SlackUserId(CAROL))
        for c in "ABCDEFGH"
        for d in "23"
    ]
    view = blocks.home_view(BOB, active + pending, waiting, clock(), notice="done")
    assert view_problems(view, expected_type="home") == []
    assert len(view["blocks"]) <= 100
    assert find_button(view["blocks"], blocks.REVOKE_ACTION, "BG-2222A2") is not None
    assert find_button(view["blocks"], blocks.APPROVE_ACTION, "BG-4444A2") is not None


def test_home_lists_reviews_owed_for_approvers_and_the_holders_account(roster: Roster, clock: FakeClock) -> None:
    ended = make_request(clock, State.EXPIRED, role="view", approvals_required=0, approvals=())
    as_approver = blocks.home_view(BOB, [], [], clock(), owed=[ended])
    text = shown(as_approver["blocks"])
    assert "Reviews owed" in text
    assert "Self-service break-glass by @alice: your review is owed." in text
    review = find_button(as_approver["blocks"], blocks.REVIEW_ACTION, ended.id)
    assert review is not None
    assert review[1]["text"]["text"] == "Write review"
    as_holder = blocks.home_view(ALICE, [ended], [], clock(), owed=[ended])
    holder_button = find_button(as_holder["blocks"], blocks.REVIEW_ACTION, ended.id)
    assert holder_button is not None
    assert holder_button[1]["text"]["text"] == "Add your account"
    assert "An approver owes the review" in shown(as_holder["blocks"])
    assert "Reviews owed" not in shown(blocks.home_view(BOB, [], [], clock())["blocks"])


def test_reviewed_request_says_so(roster: Roster, clock: FakeClock) -> None:
    request = reviewed(make_request(clock, State.EXPIRED, approvals_required=0), clock)
    assert "Reviewed by @alice" in shown(blocks.request_message(request, roster, clock()))


def test_dm_times_are_exact_in_the_readers_timezone(clock: FakeClock) -> None:
    at = clock() + timedelta(hours=1)  # 10:00 UTC on 27 Nov 2026
    assert wording.in_zone(at, "Europe/Berlin") == "11:00 CET on Fri 27 Nov (10:00 UTC)"
    assert wording.in_zone(at, "America/New_York") == "05:00 EST on Fri 27 Nov (10:00 UTC)"
    assert wording.in_zone(at, None) == "10:00 UTC on Fri 27 Nov"
    assert wording.in_zone(at, "Not/AZone") == "10:00 UTC on Fri 27 Nov"


def test_the_ended_dm_offers_a_review_only_of_a_grant_that_was_made(clock: FakeClock) -> None:
    # Revoked while still approved: never granted, so a review would be refused as "never granted".
    never_granted = make_request(clock, State.REVOKED, granted_at=None, expires_at=None)
    granted = make_request(clock, State.REVOKED)
    _, never_blocks = blocks.ended_dm(never_granted, "revoked")
    _, granted_blocks = blocks.ended_dm(granted, "revoked")
    assert find_button(never_blocks, blocks.REVIEW_ACTION, never_granted.id) is None
    assert find_button(granted_blocks, blocks.REVIEW_ACTION, granted.id) is not None


def test_the_review_form_starts_from_what_was_recorded_and_asks_for_follow_ups(clock: FakeClock) -> None:
    grant = make_request(clock, State.EXPIRED, role="view", duration=timedelta(hours=1))
    summary = {
        "count": 26,
        "change_count": 25,
        "by_verb_and_resource": [["delete", "pods", 25], ["get", "pods", 1]],
        "changes": [{"verb": "delete", "resource": "pods", "namespace": "payments", "name": "web-1"}],
        "open_sessions": [{"verb": "exec", "resource": "pods", "name": "web-2"}],
    }
    review = blocks.review_modal(grant, 20, 3000, actions=summary)
    assert view_problems(review, expected_type="modal") == []
    inputs = {b["block_id"]: b for b in review["blocks"] if b["type"] == "input"}
    text = inputs["review"]["element"]["initial_value"]
    assert text.startswith("Recorded by breakglass: 26 action(s), 25 of them changes (delete pods ×25, get pods ×1).")
    assert "- delete pods payments/web-1" in text
    assert "1 session(s) possibly still open when access ended." in text
    assert inputs["follow_ups"]["optional"] is True
    assert "initial_value" not in blocks.review_modal(grant, 20, 3000)["blocks"][1]["element"]


LONG_NAME = "x" * 2950


@pytest.mark.parametrize(
    ("event", "listing", "more"),
    [(Event.ACTIONS_DIGEST, "changes", "more"), (Event.ACTIONS_SUMMARY, "changes", "more_changes")],
)
def test_one_long_action_name_leaves_room_for_the_others_and_the_count(
    event: Event, listing: str, more: str, clock: FakeClock
) -> None:
    changes = [{"verb": "patch", "resource": "deployments", "name": LONG_NAME, "namespace": "payments", "code": 200}]
    changes += [{"verb": "delete", "resource": "pods", "name": f"web-{i}", "namespace": "payments"} for i in range(9)]
    long_entry = entry(event, cluster="prod", count=40, change_count=40, **{listing: changes, more: 30})
    reply = blocks.thread_reply(long_entry, make_request(clock))
    assert reply is not None
    assert block_problems(reply[1]) == []
    rendered = shown(reply[1])
    assert "pods/web-8" in rendered  # the actions after the long one are shown
    assert "… and 30 more" in rendered  # and the count of those not listed
    assert "x" * 200 not in rendered  # the long name is cut


def test_actions_that_do_not_fit_are_counted_not_cut_off(clock: FakeClock) -> None:
    wide = {"verb": "get", "resource": "r" * 119, "name": "n" * 119, "namespace": "ns" * 59}
    reply = blocks.thread_reply(
        entry(Event.ACTIONS_DIGEST, cluster="prod", count=10, changes=[wide] * 10, more=0), make_request(clock)
    )
    assert reply is not None
    assert block_problems(reply[1]) == []
    rendered = shown(reply[1])
    listed = rendered.count("• ")
    assert 0 < listed < 10
    assert f"… and {10 - listed} more" in rendered


def test_many_long_open_sessions_leave_the_summary_within_slacks_limit(clock: FakeClock) -> None:
    session = {"verb": "create", "resource": "pods/exec", "name": "p" * 2000, "namespace": "payments"}
    summary = entry(Event.ACTIONS_SUMMARY, cluster="prod", count=20, change_count=0, open_sessions=[session] * 20)
    reply = blocks.thread_reply(summary, make_request(clock))
    assert reply is not None
    assert block_problems(reply[1]) == []
    assert "more possibly open" in shown(reply[1])
