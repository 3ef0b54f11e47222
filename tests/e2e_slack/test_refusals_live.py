"""Every refusal holds through the real web process: the person is told why, in one ephemeral
sentence, and nothing changes — no request in Redis, no binding, no state change, nothing new in the
incident channel. Refused clicks by people who may not decide are kept in the audit log as
``refused`` and never shown in the channel.

Requests that a test needs are made fresh by that test, so the tests share one stack but not state.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.domain.audit import Event
from bot.domain.ids import new_request_id
from bot.domain.lifecycle import State
from bot.slack import blocks, wording
from bot.standins.slack_api import Ephemeral, SlackMessage
from bot.standins.slack_events import VERIFICATION_TOKEN, AppReply, NotOnScreen, SlackSender, slack_signature
from bot.standins.stack import ALICE, BOB, CAROL, DAVE, GUEST, INCIDENT_CHANNEL, MALLORY, SIGNING_SECRET, wait_until
from tests.e2e_slack.conftest import DEADLINE, Live, refusal_sentence

pytestmark = pytest.mark.slow

REASON = "INC-5100 payments api returning 502s"
ASK_ADMIN = f"prod/payments admin 30m {REASON}"


def unused_request_id(live: Live) -> str:
    while True:
        candidate = new_request_id()
        if live.store.get(candidate) is None:
            return candidate


def thread_audit_numbers(live: Live, root: SlackMessage) -> list[int]:
    """The audit entry each thread reply stands for (each reply ends with ``audit #N``)."""
    numbers = []
    for reply in live.thread(root):
        context = reply.blocks[-1]["elements"][0]["text"]
        numbers.append(int(context.rsplit("audit #", 1)[1]))
    return numbers


# --- requests Slack did not sign (or signed too long ago) ----------------------------------------


def slash_command_body(live: Live, user: str, text: str) -> str:
    """The form Slack posts for ``/breakglass text``, with a live response URL of the double's."""
    slack = live.slack
    return urlencode(
        {
            "token": VERIFICATION_TOKEN,
            "team_id": slack.team_id,
            "team_domain": slack.team_domain,
            "channel_id": INCIDENT_CHANNEL,
            "channel_name": slack.channel_name(INCIDENT_CHANNEL),
            "user_id": user,
            "user_name": slack.user_name(user),
            "command": "/breakglass",
            "text": text,
            "api_app_id": slack.app_id,
            "is_enterprise_install": "false",
            "response_url": slack.mint_response_url(user, INCIDENT_CHANNEL),
            "trigger_id": slack.mint_trigger_id(user),
        }
    )


FORM = "application/x-www-form-urlencoded"


def forged(live: Live, body: str) -> AppReply:
    """Signed with a secret that is not the app's: anyone on the internet can do this."""
    stamp = str(int(time.time()))
    return live.sender.send(
        body, FORM, timestamp=stamp, signature=slack_signature("not-the-secret", stamp, body.encode())
    )


def tampered(live: Live, body: str) -> AppReply:
    """A real signature, but over a different body (a request captured and altered on the way)."""
    stamp = str(int(time.time()))
    original = slash_command_body(live, ALICE, "list")
    return live.sender.send(
        body, FORM, timestamp=stamp, signature=slack_signature(SIGNING_SECRET, stamp, original.encode())
    )


def unsigned(live: Live, body: str) -> AppReply:
    return live.sender.send(body, FORM, signed=False)


def stale(live: Live, body: str) -> AppReply:
    """Correctly signed, six minutes ago: a replay of a captured request."""
    return live.sender.send(body, FORM, timestamp=int(time.time()) - 6 * 60)


@pytest.mark.parametrize("deliver", [forged, tampered, unsigned, stale], ids=lambda f: f.__name__)
def test_a_slash_command_without_a_valid_fresh_signature_gets_401_and_changes_nothing(
    live: Live, deliver: Callable[[Live, str], AppReply]
) -> None:
    before, head = live.world(), live.head()
    seen_before = len(live.slack.ephemerals(ALICE))
    body = slash_command_body(live, ALICE, f"prod/payments admin 30m {REASON} ({deliver.__name__})")

    reply = deliver(live, body)

    assert reply.status == 401
    # A signed command sent afterwards is answered: the web process has handled the bad one by then.
    answer = live.command(ALICE, "list")
    assert live.world() == before
    assert live.head() == head  # not even an audit entry: the app never saw who it claimed to be
    assert live.slack.ephemerals(ALICE)[seen_before:] == [answer]  # the bad request's response URL was never used


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param(lambda live: SlackSender(live.sender.events_url, "not-the-secret", live.slack), id="forged"),
        pytest.param(
            lambda live: SlackSender(
                live.sender.events_url, SIGNING_SECRET, live.slack, clock=lambda: time.time() - 6 * 60
            ),
            id="stale",
        ),
    ],
)
def test_an_approve_click_without_a_valid_fresh_signature_gets_401_and_approves_nothing(
    live: Live, sender: Callable[[Live], SlackSender]
) -> None:
    request_id, root = live.ask(ALICE, ASK_ADMIN)
    before, head = live.world(), live.head()

    reply = sender(live).click(BOB, "approve", request_id, root.ts, INCIDENT_CHANNEL)

    assert reply.status == 401
    live.command(BOB, f"status {request_id}")  # answered, so the click has been handled by now
    assert live.world() == before
    assert live.head() == head
    assert live.request(request_id).approvals == ()


# --- people who may not ask -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "team", "why"),
    [
        pytest.param(MALLORY, None, wording.NOT_IN_ROSTER, id="not-in-roster"),
        pytest.param(GUEST, None, wording.GUEST, id="slack-guest"),
        pytest.param(ALICE, "T0OTHER", wording.WRONG_WORKSPACE, id="another-workspace"),
    ],
)
def test_someone_breakglass_does_not_serve_cannot_ask(live: Live, user: str, team: str | None, why: str) -> None:
    before, head = live.world(), live.head()
    sender = live.sender_for_team(team) if team else None

    answer = live.command(user, f"prod/payments admin 30m {REASON}", sender=sender)

    assert refusal_sentence(answer) == why
    assert live.world() == before
    refused = live.entries_after(head)
    assert [(e.event, e.actor, e.details.get("action")) for e in refused] == [(Event.REFUSED, user, "request")]


# --- asking for what the roster does not allow ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why", "audited"),
    [
        pytest.param(f"prod/payments admin 0s {REASON}", "'0s' is not a positive duration.", False, id="zero"),
        pytest.param(f"prod/payments admin -5m {REASON}", "'-5m' is not a duration;", False, id="negative"),
        pytest.param(f"prod/payments admin 99999h {REASON}", "'99999h'", False, id="absurd"),
        pytest.param(f"prod/payments admin 1x {REASON}", "'1x' is not a duration;", False, id="no-unit"),
        pytest.param(
            f"prod/payments admin 2h {REASON}",
            "'admin' may be granted for at most 1h; ask for 1h or less.",
            True,
            id="over-max",
        ),
        pytest.param(
            f"prod/payments admin 1m {REASON}",
            "'admin' is granted for at least 5m; ask for 5m or more.",
            True,
            id="under-min",
        ),
        pytest.param(f"prod/payments root 30m {REASON}", "There is no role 'root';", True, id="unknown-role"),
        pytest.param(
            f"prod/checkout admin 30m {REASON}",
            "You are not entitled to 'admin' on prod/checkout;",
            True,
            id="namespace-not-entitled",
        ),
        pytest.param(
            f"prod cluster-admin 30m {REASON}",
            "You are not entitled to 'cluster-admin' on prod;",
            True,
            id="role-not-entitled",
        ),
        pytest.param(
            f"prod/Pay_ments admin 30m {REASON}",
            "'Pay_ments' is not a valid Kubernetes namespace name.",
            True,
            id="invalid-namespace",
        ),
        pytest.param("prod/payments admin 30m too short", "The reason is too short", True, id="short-reason"),
    ],
)
def test_a_request_outside_the_roster_is_refused_with_its_reason(
    live: Live, text: str, why: str, audited: bool
) -> None:
    before, head = live.world(), live.head()

    answer = live.command(ALICE, text)

    assert why in refusal_sentence(answer)
    assert live.world() == before  # no request, no binding, nothing in the channel
    new = live.entries_after(head)
    assert all(e.event == Event.REFUSED and e.actor == ALICE and e.request_id is None for e in new)
    assert len(new) == (1 if audited else 0)


def test_a_request_for_a_cluster_not_in_the_roster_gets_the_help_saying_so(live: Live) -> None:
    before, head = live.world(), live.head()

    answer = live.command(ALICE, f"mars/payments admin 30m {REASON}")

    lead, *rest = live.slack.render_text(answer).splitlines()
    assert (
        lead == "`mars` is neither a breakglass command nor a cluster (clusters: `prod`, `staging`); here is what I do:"
    )
    assert "/breakglass status <id>" in "\n".join(rest)
    assert answer.via in ("response_url", "command_reply")
    assert live.world() == before
    assert live.entries_after(head) == []


# --- what the requester typed is shown, never acted on ----------------------------------------------


def test_mentions_and_links_in_the_reason_are_accepted_but_inert_in_the_channel(live: Live) -> None:
    # As Slack delivers them: @channel, @bob and a link as Slack's tokens, a typed "<!here>" escaped.
    typed = "INC-5200 <!channel> wake up <@U0000000BOB|bob> see <https://evil.example/login> &lt;!here&gt;"
    request_id, root = live.ask(ALICE, f"prod/payments admin 30m {typed}")

    stored = live.request(request_id)
    assert stored.state is State.PENDING
    assert stored.reason == "INC-5200 <!channel> wake up <@U0000000BOB|bob> see <https://evil.example/login> <!here>"
    shown = [live.slack.message(INCIDENT_CHANNEL, root.ts), *live.thread(root), *live.slack.dm(BOB)]
    shown += live.slack.dm(CAROL)
    raw = json.dumps([(m.text, m.blocks) for m in shown if m is not None])
    raw += json.dumps([(e.text, e.blocks) for e in live.slack.ephemerals(ALICE)])
    # The card and the reply name Bob as one who may approve (<@U0000000BOB>); the typed mention,
    # with its |bob, must never be live.
    for live_token in ("<!channel>", "<!here>", "<@U0000000BOB|", "<https://evil"):
        assert live_token not in raw
    assert "&lt;!channel&gt;" in raw
    assert "&lt;https://evil.example/login&gt;" in raw
    # A person reads the reason exactly as typed, in a text Slack does not auto-link.
    assert "<!channel> wake up <@U0000000BOB|bob> see <https://evil.example/login> <!here>" in live.seen(root)
    reason_block = next(b for b in root.blocks if b.get("text", {}).get("text", "").startswith("*Reason*"))
    assert reason_block["text"]["verbatim"] is True


# --- ids that are not there, or not yours -------------------------------------------------------------


@pytest.mark.parametrize("verb", ["status", "cancel", "revoke"])
def test_a_nonexistent_request_id_is_refused(live: Live, verb: str) -> None:
    missing = unused_request_id(live)
    before = live.world()

    answer = live.command(ALICE, f"{verb} {missing}")

    assert refusal_sentence(answer) == f"There is no request {missing}; /breakglass list shows yours."
    assert live.world() == before


def test_someone_elses_request_is_not_shown_to_a_non_approver_and_the_probe_is_audited(live: Live) -> None:
    request_id, _ = live.ask(ALICE, ASK_ADMIN)
    before, head = live.world(), live.head()

    answer = live.command(DAVE, f"status {request_id}")

    # Dave is told no more than he would be of an id that does not exist.
    assert refusal_sentence(answer) == f"There is no request {request_id}; /breakglass list shows yours."
    assert REASON not in answer.text
    assert live.world() == before
    new = live.entries_after(head)
    assert [(e.event, e.actor, e.request_id, e.details.get("action")) for e in new] == [
        (Event.REFUSED, DAVE, request_id, "status")
    ]


def test_someone_elses_request_cannot_be_cancelled_and_the_attempt_is_audited(live: Live) -> None:
    request_id, _ = live.ask(ALICE, ASK_ADMIN)
    before, head = live.world(), live.head()

    answer = live.command(DAVE, f"cancel {request_id}")

    # Dave may not see it, so he is answered as for an id that does not exist.
    assert refusal_sentence(answer) == f"There is no request {request_id}; /breakglass list shows yours."
    assert live.world() == before
    assert live.request(request_id).state is State.PENDING
    new = live.entries_after(head)
    assert [(e.event, e.actor, e.request_id, e.details.get("action")) for e in new] == [
        (Event.REFUSED, DAVE, request_id, "cancel")
    ]


# --- clicks by people who may not decide ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "action", "why"),
    [
        pytest.param(ALICE, "approve", "You cannot approve or deny your own request; another approver must.", id="own"),
        pytest.param(
            DAVE, "approve", "Only members of sre may approve or deny 'admin' requests.", id="not-an-approver"
        ),
        pytest.param(
            DAVE, "deny", "Only members of sre may approve or deny 'admin' requests.", id="not-an-approver-deny"
        ),
        pytest.param(MALLORY, "approve", wording.NOT_IN_ROSTER, id="not-in-roster"),
    ],
)
def test_an_ineligible_click_is_refused_audited_and_kept_out_of_the_channel(
    live: Live, user: str, action: str, why: str
) -> None:
    request_id, root = live.ask(ALICE, ASK_ADMIN)
    before, head = live.world(), live.head()

    answer = live.click(user, action, request_id, root)

    assert refusal_sentence(answer) == why
    assert live.world() == before
    assert live.request(request_id).state is State.PENDING
    assert live.request(request_id).approvals == ()
    refused = live.entries_after(head)
    # An identity refusal (someone not in the roster) is filed under no request: nothing an
    # unverified person sends is taken on trust, not even which request they named.
    filed_under = None if user == MALLORY else request_id
    assert [(e.event, e.actor, e.request_id, e.details.get("action")) for e in refused] == [
        (Event.REFUSED, user, filed_under, action)
    ]
    # The next real event is published; the refused attempt before it is not.
    live.click(BOB, "approve", request_id, live.root(request_id))
    live.wait_published(request_id)
    shown = [e.seq for e in live.entries(request_id) if e.event != Event.REFUSED]
    assert thread_audit_numbers(live, root) == shown
    assert [live.seen(r).splitlines()[0] for r in live.thread(root)] == [
        ":inbox_tray: Requested by @alice: *admin* on *prod/payments* for *30m*.",
        ":ballot_box_with_check: Approved by @bob (1 of 2); 1 more needed.",
    ]
    assert why not in json.dumps([m.blocks for m in live.slack.messages(INCIDENT_CHANNEL)])


# --- approving twice, at once, or too late ------------------------------------------------------------


def test_the_same_approver_clicking_approve_twice_counts_once(live: Live) -> None:
    request_id, root = live.ask(ALICE, ASK_ADMIN)
    first = live.click(BOB, "approve", request_id, root)
    live.wait_published(request_id)
    assert "(1 of 2); 1 more needed" in first.text
    before, head = live.world(), live.head()

    second = live.click(BOB, "approve", request_id, live.root(request_id))

    assert refusal_sentence(second) == f"You have already approved {request_id}; another approver must add theirs."
    assert live.world() == before
    assert [(e.event, e.actor, e.details.get("action")) for e in live.entries_after(head)] == [
        (Event.REFUSED, BOB, "approve")
    ]  # every refused attempt is kept, even an approver's own second click
    assert live.request(request_id).approved_by == (BOB,)
    assert [e.actor for e in live.entries(request_id) if e.event == Event.APPROVED] == [BOB]


@pytest.mark.parametrize("attempt", range(5))
def test_two_approvers_clicking_at_the_same_instant_give_one_approval_transition_and_one_grant(
    live: Live, attempt: int
) -> None:
    request_id, root = live.ask(ALICE, ASK_ADMIN)
    bindings_before = live.binding_names()
    start = threading.Barrier(2)
    answers: dict[str, Ephemeral] = {}
    failures: list[BaseException] = []

    def approve(user: str) -> None:
        try:
            start.wait(timeout=10)
            answers[user] = live.click(user, "approve", request_id, root)
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)

    clickers = [threading.Thread(target=approve, args=(user,)) for user in (BOB, CAROL)]
    for clicker in clickers:
        clicker.start()
    for clicker in clickers:
        clicker.join(timeout=30)
    assert not failures, failures

    live.wait_for_event(request_id, Event.GRANTED)
    live.wait_published(request_id)
    entries = live.entries(request_id)
    approvals = [e for e in entries if e.event == Event.APPROVED]
    assert sorted(e.actor for e in approvals) == [BOB, CAROL]
    assert sorted(e.details["count"] for e in approvals) == [1, 2]
    assert len([e for e in approvals if "waited_seconds" in e.details]) == 1  # one PENDING → APPROVED
    assert len([e for e in entries if e.event == Event.GRANTED]) == 1
    assert live.request(request_id).state is State.ACTIVE
    assert set(live.binding_names()) - set(bindings_before) == {f"prod:payments/breakglass-{request_id.lower()}"}
    texts = [a.text for a in answers.values()]
    assert sum("(1 of 2); 1 more needed" in t for t in texts) == 1
    assert sum("(2 of 2); it is being granted" in t for t in texts) == 1
    assert sum("granting now" in live.seen(r) for r in live.thread(root)) == 1


def deny_by_bob(live: Live, request_id: str, root: SlackMessage) -> Any:
    """Bob presses Deny, and submits the form for a reason that opens; what the form then says."""
    opened = len(live.slack.views_opened(user_id=BOB))
    live.sender.click(BOB, "deny", request_id, root.ts, INCIDENT_CHANNEL)
    wait_until(lambda: len(live.slack.views_opened(user_id=BOB)) > opened or None, DEADLINE, "the deny form")
    live.sender.submit_view(BOB, blocks.DENY_CALLBACK, {blocks.DENY_REASON_INPUT: {blocks.DENY_REASON_INPUT: "no"}})

    def outcome() -> str | None:
        text = live.slack.render_text(live.slack.views_opened(user_id=BOB)[-1].view).replace("*", "")
        return None if "in a moment" in text else text

    return SimpleNamespace(text=wait_until(outcome, DEADLINE, "the deny form's outcome"))


def cancel_by_alice(live: Live, request_id: str, root: SlackMessage) -> Ephemeral:
    return live.command(ALICE, f"cancel {request_id}")


@pytest.mark.parametrize(
    ("decide", "confirmation", "approver", "state"),
    [(deny_by_bob, "You denied", CAROL, State.DENIED), (cancel_by_alice, "is cancelled", BOB, State.CANCELLED)],
    ids=["denied", "cancelled"],
)
def test_approving_a_request_already_decided_is_refused_and_changes_nothing(
    live: Live,
    decide: Callable[[Live, str, SlackMessage], Any],
    confirmation: str,
    approver: str,
    state: State,
) -> None:
    request_id, root = live.ask(ALICE, ASK_ADMIN)
    assert confirmation in decide(live, request_id, root).text
    live.wait_published(request_id)
    decided_root = live.root(request_id)
    with pytest.raises(NotOnScreen):  # the buttons are gone for anyone whose screen has caught up
        live.sender.click(approver, "approve", request_id, decided_root.ts, INCIDENT_CHANNEL)
    before, head = live.world(), live.head()

    answer = live.click(approver, "approve", request_id, decided_root, stale=True)  # a screen not yet updated

    assert refusal_sentence(answer) == f"{request_id} is already {state.label}; there is nothing left to decide."
    assert live.world() == before
    assert [(e.event, e.actor, e.request_id) for e in live.entries_after(head)] == [
        (Event.REFUSED, approver, request_id)
    ]  # kept in the audit log as a refused attempt, never shown in the channel
    assert live.request(request_id).state is state
    assert f"breakglass-{request_id.lower()}" not in " ".join(live.binding_names())


def test_approving_a_request_already_granted_is_refused_and_changes_nothing(live: Live) -> None:
    request_id, root = live.ask(ALICE, f"prod/payments view 30m {REASON}")  # one approval
    assert "being granted" in live.click(BOB, "approve", request_id, root).text
    live.wait_for_event(request_id, Event.GRANTED)
    live.wait_published(request_id)
    assert live.request(request_id).state is State.ACTIVE
    granted_root = live.root(request_id)
    with pytest.raises(NotOnScreen):  # the buttons went when it was approved
        live.sender.click(CAROL, "approve", request_id, granted_root.ts, INCIDENT_CHANNEL)
    before, head = live.world(), live.head()

    answer = live.click(CAROL, "approve", request_id, granted_root, stale=True)  # a screen not yet updated

    assert refusal_sentence(answer) == f"{request_id} is already active; there is nothing left to decide."
    assert live.world() == before  # the same one binding, the same thread
    assert [(e.event, e.actor, e.request_id) for e in live.entries_after(head)] == [(Event.REFUSED, CAROL, request_id)]
    assert [e.actor for e in live.entries(request_id) if e.event == Event.APPROVED] == [BOB]
