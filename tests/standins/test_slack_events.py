"""The Slack sender delivers a person's actions signed and shaped as Slack does, to a real Bolt app too."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.standins.slack_api import SlackApiDouble
from bot.standins.slack_events import (
    ACK_DEADLINE_SECONDS,
    AppReply,
    IncompleteForm,
    NotOnScreen,
    SlackSender,
    slack_signature,
)
from tests.conftest import FakeClock

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALICE = "U000000ALICE"
BOB = "U0000000BOB"
INCIDENTS = "C0000INCIDENT"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.form()["payload"]))


@dataclass
class Receiver:
    """A stand-in app endpoint: keeps every request and answers what the test set."""

    deliveries: list[Delivery] = field(default_factory=list)
    status: int = 200
    answer: bytes = b""

    @property
    def last(self) -> Delivery:
        return self.deliveries[-1]


@contextmanager
def http_server(handle: Callable[[dict[str, str], bytes], tuple[int, dict[str, str], bytes]]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, headers, answer = handle(dict(self.headers.items()), body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackApiDouble]:
    with SlackApiDouble(clock=clock) as double:
        double.add_user(ALICE, name="alice")
        double.add_user(BOB, name="bob")
        double.add_channel(INCIDENTS, "incidents", members=[ALICE, BOB])
        yield double


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def sender(slack: SlackApiDouble, receiver: Receiver) -> Iterator[SlackSender]:
    def handle(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        receiver.deliveries.append(Delivery(headers, body))
        return receiver.status, {"Content-Type": "application/json"}, receiver.answer

    with http_server(handle) as url:
        yield SlackSender(url, SECRET, slack)


def verifies(delivery: Delivery) -> bool:
    return SignatureVerifier(SECRET).is_valid_request(delivery.body, delivery.headers)


def request_message(client: WebClient) -> str:
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Alice asks for admin"}, "block_id": "summary"},
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "action_id": "approve",
                    "value": "BG-7K2QXM",
                    "style": "primary",
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Deny"},
                    "action_id": "deny",
                    "value": "BG-7K2QXM",
                },
            ],
        },
    ]
    return str(client.chat_postMessage(channel=INCIDENTS, text="Access request", blocks=blocks)["ts"])


# -- signing and shapes, seen by a plain receiver -----------------------------------------------------


def test_slash_command_is_form_encoded_with_slacks_fields_and_a_valid_signature(
    slack: SlackApiDouble, sender: SlackSender, receiver: Receiver
) -> None:
    sender.slash_command(ALICE, "prod/payments admin 1h INC-4411", channel_id=INCIDENTS)

    delivery = receiver.last
    assert verifies(delivery)
    assert delivery.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = delivery.form()
    assert {k: form[k] for k in ("team_id", "user_id", "user_name", "channel_id", "command", "text")} == {
        "team_id": slack.team_id,
        "user_id": ALICE,
        "user_name": "alice",
        "channel_id": INCIDENTS,
        "command": "/breakglass",
        "text": "prod/payments admin 1h INC-4411",
    }
    assert form["api_app_id"] == slack.app_id
    assert form["response_url"].startswith(slack.base_url + "/response/")
    assert "enterprise_id" not in form
    assert WebClient(token=slack.bot_token, base_url=slack.api_url).views_open(
        trigger_id=form["trigger_id"],
        view={"type": "modal", "title": {"type": "plain_text", "text": "Break glass"}, "blocks": []},
    )["ok"]


def test_slash_command_from_another_workspace_of_a_grid_carries_both_ids(
    slack: SlackApiDouble, receiver: Receiver
) -> None:
    def handle(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        receiver.deliveries.append(Delivery(headers, body))
        return 200, {}, b""

    with http_server(handle) as url:
        SlackSender(url, SECRET, slack, team_id="T0000000009", enterprise_id="E0000001").slash_command(ALICE, "list")

    form = receiver.last.form()
    assert (form["team_id"], form["enterprise_id"]) == ("T0000000009", "E0000001")


def test_slash_command_without_a_channel_comes_from_the_persons_dm(
    slack: SlackApiDouble, sender: SlackSender, receiver: Receiver
) -> None:
    sender.slash_command(ALICE, "help")
    form = receiver.last.form()
    assert (form["channel_id"], form["channel_name"]) == (slack.dm_channel_id(ALICE), "directmessage")


def test_a_stale_timestamp_is_signed_but_fails_verification(sender: SlackSender, receiver: Receiver) -> None:
    sender.send("a=1", "application/x-www-form-urlencoded", timestamp=int(sender.now()) - 6 * 60)

    assert receiver.last.headers["X-Slack-Signature"].startswith("v0=")
    assert not verifies(receiver.last)


def test_a_forged_signature_fails_verification(sender: SlackSender, receiver: Receiver) -> None:
    sender.send("a=1", "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    assert not verifies(receiver.last)


def test_an_unsigned_request_carries_no_slack_headers(sender: SlackSender, receiver: Receiver) -> None:
    sender.send("a=1", "application/x-www-form-urlencoded", signed=False)

    assert "X-Slack-Signature" not in receiver.last.headers
    assert "X-Slack-Request-Timestamp" not in receiver.last.headers


def test_the_signature_is_slacks_v0_hmac_of_timestamp_and_body() -> None:
    # The worked example of Slack's "Verifying requests from Slack" guide.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_click_delivers_block_actions_with_the_message_as_it_reads_now(
    slack: SlackApiDouble, sender: SlackSender, receiver: Receiver
) -> None:
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    ts = request_message(client)

    sender.click(BOB, "approve", "BG-7K2QXM", message_ts=ts, channel_id=INCIDENTS)

    assert verifies(receiver.last)
    payload = receiver.last.payload()
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": BOB, "username": "bob", "name": "bob", "team_id": slack.team_id}
    assert payload["team"]["id"] == slack.team_id
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": INCIDENTS,
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == ts
    assert payload["message"]["blocks"][1]["block_id"] == "decision"
    [action] = payload["actions"]
    assert (action["action_id"], action["value"], action["block_id"], action["type"]) == (
        "approve",
        "BG-7K2QXM",
        "decision",
        "button",
    )
    assert payload["response_url"].startswith(slack.base_url + "/response/")
    assert payload["trigger_id"]


def test_a_button_no_longer_on_the_message_cannot_be_clicked_unless_the_screen_is_stale(
    slack: SlackApiDouble, sender: SlackSender, receiver: Receiver
) -> None:
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    ts = request_message(client)
    client.chat_update(channel=INCIDENTS, ts=ts, text="Approved", blocks=[])

    with pytest.raises(NotOnScreen):
        sender.click(BOB, "approve", message_ts=ts, channel_id=INCIDENTS)
    sender.click(BOB, "approve", message_ts=ts, channel_id=INCIDENTS, stale=True)
    assert receiver.last.payload()["actions"][0]["value"] == "BG-7K2QXM"


def test_a_button_with_another_value_is_not_on_screen(slack: SlackApiDouble, sender: SlackSender) -> None:
    ts = request_message(WebClient(token=slack.bot_token, base_url=slack.api_url))
    with pytest.raises(NotOnScreen):
        sender.click(BOB, "approve", "BG-OTHER", message_ts=ts, channel_id=INCIDENTS)


def test_open_home_delivers_a_signed_app_home_opened_event(
    slack: SlackApiDouble, sender: SlackSender, receiver: Receiver
) -> None:
    sender.open_home(ALICE, event_id="Ev0000000001", retry_num=1)

    delivery = receiver.last
    assert verifies(delivery)
    assert delivery.headers["X-Slack-Retry-Num"] == "1"
    envelope = json.loads(delivery.body)
    assert (envelope["type"], envelope["team_id"], envelope["event_id"]) == (
        "event_callback",
        slack.team_id,
        "Ev0000000001",
    )
    assert envelope["event_time"] == int(sender.now())
    assert envelope["event"] == {
        "type": "app_home_opened",
        "user": ALICE,
        "channel": slack.dm_channel_id(ALICE),
        "tab": "home",
        "event_ts": envelope["event"]["event_ts"],
    }


def test_a_slash_commands_json_answer_is_shown_to_the_person_only(
    slack: SlackApiDouble, sender: SlackSender, receiver: Receiver
) -> None:
    receiver.answer = json.dumps({"text": "Request BG-7K2QXM sent to #incidents"}).encode()
    sender.slash_command(ALICE, "prod admin 1h fire", channel_id=INCIDENTS)

    [seen] = slack.ephemerals(ALICE)
    assert (seen.text, seen.via, seen.channel) == ("Request BG-7K2QXM sent to #incidents", "command_reply", INCIDENTS)
    assert slack.messages(INCIDENTS) == []


def test_a_failing_slash_command_shows_slacks_failure_notice(
    slack: SlackApiDouble, sender: SlackSender, receiver: Receiver
) -> None:
    receiver.status = 500
    sender.slash_command(ALICE, "list")

    assert [e.text for e in slack.ephemerals(ALICE)] == ['/breakglass failed with the error "http_service_error"']


# -- response URLs -----------------------------------------------------------------------------------


def test_a_response_url_posts_ephemeral_by_default_and_in_channel_when_asked(slack: SlackApiDouble) -> None:
    url = slack.mint_response_url(ALICE, INCIDENTS)

    assert WebhookClient(url).send(text="just for you").status_code == 200
    WebhookClient(url).send(text="for everyone", response_type="in_channel")

    assert [e.text for e in slack.ephemerals(ALICE)] == ["just for you"]
    assert [m.text for m in slack.messages(INCIDENTS)] == ["for everyone"]


def test_a_response_url_takes_five_posts_in_thirty_minutes(slack: SlackApiDouble, clock: FakeClock) -> None:
    busy, late = slack.mint_response_url(ALICE, INCIDENTS), slack.mint_response_url(ALICE, INCIDENTS)
    assert [WebhookClient(busy).send(text=str(n)).status_code for n in range(6)] == [200] * 5 + [404]
    assert json.loads(WebhookClient(busy).send(text="again").body)["error"] == "used_url"

    clock.advance(minutes=31)
    answer = WebhookClient(late).send(text="late")
    assert (answer.status_code, json.loads(answer.body)["error"]) == (404, "expired_url")


def test_a_response_url_refuses_blocks_over_slacks_limits(slack: SlackApiDouble) -> None:
    answer = WebhookClient(slack.mint_response_url(ALICE, INCIDENTS)).send(
        text="t", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    )
    assert (answer.status_code, json.loads(answer.body)["error"]) == (400, "invalid_blocks")


# -- against a real Bolt app ------------------------------------------------------------------------


@contextmanager
def bolt_app(slack: SlackApiDouble, register: Callable[[App], None]) -> Iterator[str]:
    app = App(
        signing_secret=SECRET,
        client=WebClient(token=slack.bot_token, base_url=slack.api_url),
        process_before_response=True,  # listeners finish before the answer, so tests read a settled record
    )
    register(app)

    def handle(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        response = app.dispatch(BoltRequest(body=body.decode(), headers={k.lower(): v for k, v in headers.items()}))
        return response.status, response.first_headers(), response.body.encode()

    with http_server(handle) as url:
        yield url


MODAL = {
    "type": "modal",
    "callback_id": "request",
    "title": {"type": "plain_text", "text": "Break glass"},
    "submit": {"type": "plain_text", "text": "Request"},
    "private_metadata": "C0000INCIDENT",
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        },
        {
            "type": "input",
            "block_id": "role",
            "label": {"type": "plain_text", "text": "Role"},
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": [
                    {"text": {"type": "plain_text", "text": "view"}, "value": "view"},
                    {"text": {"type": "plain_text", "text": "admin"}, "value": "admin"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "note",
            "optional": True,
            "label": {"type": "plain_text", "text": "Note"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        },
    ],
}


def test_bolt_verifies_the_senders_signature_and_refuses_a_forgery(slack: SlackApiDouble) -> None:
    def register(app: App) -> None:
        @app.command("/breakglass")
        def command(ack: Any) -> None:
            ack("ok")

    with bolt_app(slack, register) as url:
        sender = SlackSender(url, SECRET, slack)
        assert sender.slash_command(ALICE, "help").status == 200
        forged = sender.send("command=%2Fbreakglass", "application/x-www-form-urlencoded", signature="v0=00")
        stale = sender.send("command=%2Fbreakglass", "application/x-www-form-urlencoded", timestamp=1)

    assert (forged.status, stale.status) == (401, 401)
    assert [e.text for e in slack.ephemerals(ALICE)] == ["ok"]


def test_bolt_respond_to_a_slash_command_reaches_the_person(slack: SlackApiDouble) -> None:
    def register(app: App) -> None:
        @app.command("/breakglass")
        def command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
            ack()
            # Unescaped, <cluster> would read as a link to "cluster", as in Slack: the app escapes it.
            respond(f"Usage for <@{command['user_id']}>: /breakglass &lt;cluster&gt; &lt;role&gt; …")

    with bolt_app(slack, register) as url:
        reply = SlackSender(url, SECRET, slack).slash_command(ALICE, "help", channel_id=INCIDENTS)

    assert reply.status == 200
    [seen] = slack.ephemerals(ALICE, channel=INCIDENTS)
    assert seen.via == "response_url"
    assert slack.render_text(seen) == "Usage for @alice: /breakglass <cluster> <role> …"


def test_bolt_opens_a_modal_from_a_click_and_the_submission_closes_it(slack: SlackApiDouble) -> None:
    submitted: list[dict[str, Any]] = []

    def register(app: App) -> None:
        @app.action("approve")
        def approve(ack: Any, body: dict[str, Any], client: WebClient) -> None:
            ack()
            client.views_open(trigger_id=body["trigger_id"], view=MODAL)

        @app.view("request")
        def request(ack: Any, view: dict[str, Any]) -> None:
            submitted.append(view)
            ack()

    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    ts = request_message(client)
    with bolt_app(slack, register) as url:
        sender = SlackSender(url, SECRET, slack)
        sender.click(BOB, "approve", message_ts=ts, channel_id=INCIDENTS)
        assert [v["callback_id"] for v in slack.open_views(BOB)] == ["request"]
        sender.submit_view(BOB, "request", {"reason": {"value": "INC-4411 crash loop"}, "role": {"value": "admin"}})

    [view] = submitted
    values = view["state"]["values"]
    assert values["reason"]["value"] == {"type": "plain_text_input", "value": "INC-4411 crash loop"}
    assert values["role"]["value"]["selected_option"]["value"] == "admin"
    assert values["note"]["value"] == {"type": "plain_text_input", "value": None}
    assert view["private_metadata"] == "C0000INCIDENT"
    assert slack.open_views(BOB) == []
    assert slack.views_opened()[0].is_open is False


def test_a_submission_answered_with_errors_keeps_the_modal_open(slack: SlackApiDouble) -> None:
    def register(app: App) -> None:
        @app.view("request")
        def request(ack: Any) -> None:
            ack(response_action="errors", errors={"reason": "Give an incident number"})

    WebClient(token=slack.bot_token, base_url=slack.api_url).views_open(
        trigger_id=slack.mint_trigger_id(ALICE), view=MODAL
    )
    with bolt_app(slack, register) as url:
        reply = SlackSender(url, SECRET, slack).submit_view(
            ALICE, "request", {"reason": {"value": "oops"}, "role": {"value": "view"}}
        )

    assert reply.json() == {"response_action": "errors", "errors": {"reason": "Give an incident number"}}
    assert [v["callback_id"] for v in slack.open_views(ALICE)] == ["request"]


def test_a_required_input_left_empty_cannot_be_submitted(slack: SlackApiDouble, sender: SlackSender) -> None:
    WebClient(token=slack.bot_token, base_url=slack.api_url).views_open(
        trigger_id=slack.mint_trigger_id(ALICE), view=MODAL
    )
    with pytest.raises(IncompleteForm):
        sender.submit_view(ALICE, "request", {"reason": {"value": "fire"}})
    with pytest.raises(NotOnScreen):
        sender.submit_view(ALICE, "request", {"reason": {"value": "x"}, "role": {"value": "root"}})
    with pytest.raises(NotOnScreen):
        sender.submit_view(BOB, "request", {})


def test_bolt_respond_replace_original_updates_the_clicked_message(slack: SlackApiDouble) -> None:
    def register(app: App) -> None:
        @app.action("deny")
        def deny(ack: Any, respond: Any) -> None:
            ack()
            respond(text="Denied by bob", replace_original=True)

    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    ts = request_message(client)
    with bolt_app(slack, register) as url:
        SlackSender(url, SECRET, slack).click(BOB, "deny", message_ts=ts, channel_id=INCIDENTS)

    [message] = slack.messages(INCIDENTS)
    assert (message.text, message.blocks, message.edited) == ("Denied by bob", (), True)


def test_bolt_publishes_the_home_tab_when_it_is_opened_and_its_buttons_can_be_clicked(
    slack: SlackApiDouble,
) -> None:
    clicks: list[str] = []

    def register(app: App) -> None:
        @app.event("app_home_opened")
        def home(event: dict[str, Any], client: WebClient) -> None:
            client.views_publish(
                user_id=event["user"],
                view={
                    "type": "home",
                    "blocks": [
                        {
                            "type": "actions",
                            "elements": [
                                {
                                    "type": "button",
                                    "text": {"type": "plain_text", "text": "Revoke"},
                                    "action_id": "revoke",
                                    "value": "BG-7K2QXM",
                                }
                            ],
                        }
                    ],
                },
            )

        @app.action("revoke")
        def revoke(ack: Any, action: dict[str, Any]) -> None:
            ack()
            clicks.append(action["value"])

    with bolt_app(slack, register) as url:
        sender = SlackSender(url, SECRET, slack)
        assert sender.open_home(ALICE).status == 200
        sender.click_home(ALICE, "revoke")

    assert slack.render_text(slack.home_view(ALICE)) == "[Revoke]"
    assert clicks == ["BG-7K2QXM"]


def test_a_button_in_an_ephemeral_is_clicked_in_place_and_delete_original_removes_it(slack: SlackApiDouble) -> None:
    def register(app: App) -> None:
        @app.action("cancel")
        def cancel(ack: Any, respond: Any, body: dict[str, Any]) -> None:
            ack()
            assert body["container"]["is_ephemeral"] is True
            respond(delete_original=True)

    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    confirm = [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "action_id": "cancel",
                    "value": "BG-7K2QXM",
                }
            ],
        }
    ]
    ts = client.chat_postEphemeral(channel=INCIDENTS, user=ALICE, text="Cancel BG-7K2QXM?", blocks=confirm)[
        "message_ts"
    ]
    with bolt_app(slack, register) as url:
        reply = SlackSender(url, SECRET, slack).click(ALICE, "cancel", "BG-7K2QXM", ts, INCIDENTS)

    assert reply.status == 200
    assert slack.ephemerals(ALICE) == []


def test_an_answer_counts_as_in_time_up_to_slacks_three_seconds() -> None:
    def answered_after(seconds: float) -> AppReply:
        return AppReply(200, {}, b"", seconds)

    assert ACK_DEADLINE_SECONDS == 3.0
    assert answered_after(3.0).within_ack_deadline
    assert not answered_after(3.01).within_ack_deadline
