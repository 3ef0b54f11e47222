"""The Socket Mode stand-in answers like Slack's: apps.connections.open checks the app-level token, the
WebSocket handshake and framing follow RFC 6455, a new connection is greeted with hello, envelopes are
acknowledged by envelope_id on the connection they went out on, and disconnect moves a real client on.

Two clients talk to it: a raw one written here (so the wire itself is checked), and slack_sdk's built-in
Socket Mode client under a real Bolt app (so the stand-in is proven against what production runs)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import Ack, App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.standins.slack_api import DEFAULT_APP_TOKEN, SlackApiDouble
from bot.standins.slack_events import NotOnScreen
from bot.standins.slack_socket import (
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    NotConnected,
    SocketDelivery,
    SocketModeSender,
    SocketModeServer,
    accept_key,
    encode_frame,
    read_frame,
)
from bot.standins.stack import wait_until

ALICE = "U000000ALICE"
INCIDENTS = "C0000INCIDENT"


@pytest.fixture
def slack() -> Iterator[SlackApiDouble]:
    with SlackApiDouble() as double:
        double.add_user(ALICE, name="alice")
        double.add_channel(INCIDENTS, "incidents", members=[ALICE])
        yield double


@pytest.fixture
def server(slack: SlackApiDouble) -> Iterator[SocketModeServer]:
    with SocketModeServer(slack) as stand_in:
        yield stand_in


def connections_open(slack: SlackApiDouble, token: str = DEFAULT_APP_TOKEN) -> str:
    web = WebClient(base_url=slack.api_url)
    return str(web.apps_connections_open(app_token=token)["url"])


class RawClient:
    """A minimal WebSocket client: the handshake by hand, masked frames out, frames in."""

    def __init__(self, url: str, *, key: str | None = None, version: str = "13") -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            raw += chunk
        head = raw.decode("latin-1").split("\r\n")
        self.status = int(head[0].split(" ")[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}

    def send(self, message: Any, *, mask: bool = True) -> None:
        self.sock.sendall(encode_frame(OP_TEXT, json.dumps(message).encode(), mask=mask))

    def frame(self) -> tuple[bool, int, bytes]:
        return read_frame(self.sock, expect_mask=False)

    def message(self) -> dict[str, Any]:
        fin, opcode, data = self.frame()
        assert (fin, opcode) == (True, OP_TEXT)
        return dict(json.loads(data))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(slack: SlackApiDouble, server: SocketModeServer) -> Iterator[RawClient]:
    client = RawClient(connections_open(slack))
    assert client.message()["type"] == "hello"
    yield client
    client.close()


# -- apps.connections.open ----------------------------------------------------------------------------


def test_connections_open_hands_an_app_token_a_single_use_websocket_url(
    slack: SlackApiDouble, server: SocketModeServer
) -> None:
    url = connections_open(slack)
    host, port = server.address
    assert url.startswith(f"ws://{host}:{port}/link/?ticket=")
    assert url.endswith(f"&app_id={slack.app_id}")
    assert connections_open(slack) != url
    (call, _) = slack.calls("apps.connections.open")
    assert (call.token_kind, call.ok) == ("app", True)


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("xoxb-fake-breakglass-double", "not_allowed_token_type"),  # the bot token
        ("xapp-1-A0BREAKGLASS-unknown", "invalid_auth"),
    ],
)
def test_connections_open_refuses_what_is_not_the_app_level_token(
    slack: SlackApiDouble, server: SocketModeServer, token: str, error: str
) -> None:
    with pytest.raises(SlackApiError) as refused:
        connections_open(slack, token)
    assert refused.value.response["error"] == error


def test_connections_open_needs_connections_write_and_a_live_token(
    slack: SlackApiDouble, server: SocketModeServer
) -> None:
    slack.set_scopes(["authorizations:read"], app=True)
    with pytest.raises(SlackApiError) as unscoped:
        connections_open(slack)
    assert (unscoped.value.response["error"], unscoped.value.response["needed"]) == (
        "missing_scope",
        "connections:write",
    )
    slack.set_scopes(["connections:write"], app=True)
    slack.revoke(DEFAULT_APP_TOKEN)
    with pytest.raises(SlackApiError) as revoked:
        connections_open(slack)
    assert revoked.value.response["error"] == "token_revoked"


def test_the_app_token_must_come_in_the_header_and_opens_nothing_else(
    slack: SlackApiDouble, server: SocketModeServer
) -> None:
    anonymous = WebClient(base_url=slack.api_url)
    with pytest.raises(SlackApiError) as in_body:
        anonymous.api_call("apps.connections.open", data={"token": DEFAULT_APP_TOKEN})
    assert in_body.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as elsewhere:
        WebClient(token=DEFAULT_APP_TOKEN, base_url=slack.api_url).chat_postMessage(channel=INCIDENTS, text="hi")
    assert elsewhere.value.response["error"] == "not_allowed_token_type"
    assert slack.messages(INCIDENTS) == []


def test_without_socket_mode_switched_on_connections_open_is_denied(slack: SlackApiDouble) -> None:
    with pytest.raises(SlackApiError) as refused:
        connections_open(slack)
    assert refused.value.response["error"] == "access_denied"


# -- the handshake and the wire -------------------------------------------------------------------------


def test_handshake_answers_101_with_the_rfc_6455_accept_key(slack: SlackApiDouble, server: SocketModeServer) -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3
    client = RawClient(connections_open(slack))
    try:
        assert client.status == 101
        assert client.headers["upgrade"].lower() == "websocket"
        assert client.headers["sec-websocket-accept"] == accept_key(client.key)
    finally:
        client.close()


def test_a_ticket_works_once(slack: SlackApiDouble, server: SocketModeServer) -> None:
    url = connections_open(slack)
    first = RawClient(url)
    second = RawClient(url)
    try:
        assert (first.status, second.status) == (101, 401)
        assert server.refused_handshakes() == ["unknown or used ticket"]
        # The 101 reaches the client before the server's thread lists the connection: wait for it.
        assert len(server.wait_for_connections(1, timeout=60)) == 1
        assert len(server.open_connections()) == 1
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("key", "version", "status"),
    [("not-base64-of-16-bytes", "13", 400), (None, "8", 426)],
)
def test_a_malformed_upgrade_is_refused_and_keeps_its_ticket_unspent(
    slack: SlackApiDouble, server: SocketModeServer, key: str | None, version: str, status: int
) -> None:
    url = connections_open(slack)
    bad = RawClient(url, key=key, version=version)
    good = RawClient(url)
    try:
        assert (bad.status, good.status) == (status, 101)
    finally:
        bad.close()
        good.close()


def test_hello_comes_first_and_counts_the_apps_connections(slack: SlackApiDouble, server: SocketModeServer) -> None:
    first = RawClient(connections_open(slack))
    second = RawClient(connections_open(slack))
    try:
        hellos = [first.message(), second.message()]
        assert [h["type"] for h in hellos] == ["hello", "hello"]
        assert [h["num_connections"] for h in hellos] == [1, 2]
        assert hellos[0]["connection_info"] == {"app_id": slack.app_id}
        assert "approximate_connection_time" in hellos[0]["debug_info"]
    finally:
        first.close()
        second.close()


def test_a_ping_is_answered_with_a_pong_carrying_its_payload(raw: RawClient, server: SocketModeServer) -> None:
    raw.sock.sendall(encode_frame(OP_PING, b"session:1796160969.05", mask=True))
    assert raw.frame() == (True, OP_PONG, b"session:1796160969.05")
    assert server.connections()[0].pings == 1


def test_an_unmasked_client_frame_closes_the_connection_with_1002(raw: RawClient, server: SocketModeServer) -> None:
    raw.send({"envelope_id": "x"}, mask=False)
    _fin, opcode, data = raw.frame()
    assert (opcode, struct.unpack("!H", data[:2])[0]) == (OP_CLOSE, 1002)
    info = server.connections()[0]
    assert (info.open, info.close_code, info.closed_by) == (False, 1002, "slack")


def test_a_close_from_the_app_is_echoed(raw: RawClient, server: SocketModeServer) -> None:
    raw.sock.sendall(encode_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye", mask=True))
    _fin, opcode, data = raw.frame()
    assert (opcode, struct.unpack("!H", data[:2])[0]) == (OP_CLOSE, 1000)
    info = server.connections()[0]
    assert (info.open, info.closed_by) == (False, "app")


# -- envelopes and acknowledgements -----------------------------------------------------------------------


class Delivering:
    """``server.deliver`` running in a thread, so the test can play the app meanwhile."""

    def __init__(self, server: SocketModeServer, timeout: float = 10.0) -> None:
        self._out: list[SocketDelivery] = []
        self._thread = threading.Thread(
            target=lambda: self._out.append(
                server.deliver("slash_commands", {"text": "help"}, accepts_response_payload=True, timeout=timeout)
            ),
            daemon=True,
        )
        self._thread.start()

    def result(self) -> SocketDelivery:
        self._thread.join(15)
        return self._out[0]


def test_an_envelope_is_acked_by_its_id_with_a_payload(raw: RawClient, server: SocketModeServer) -> None:
    pending = Delivering(server)
    envelope = raw.message()
    assert set(envelope) == {"envelope_id", "type", "payload", "accepts_response_payload"}
    assert (envelope["type"], envelope["payload"], envelope["accepts_response_payload"]) == (
        "slash_commands",
        {"text": "help"},
        True,
    )
    raw.send({"envelope_id": envelope["envelope_id"], "payload": {"text": "Usage: /breakglass …"}})
    delivery = pending.result()
    assert delivery.acked
    assert delivery.response_payload == {"text": "Usage: /breakglass …"}
    assert server.deliveries() == [delivery]


def test_an_ack_for_another_envelope_acknowledges_nothing(raw: RawClient, server: SocketModeServer) -> None:
    pending = Delivering(server, timeout=0.5)
    envelope = raw.message()
    raw.send({"envelope_id": "3a5b7c9d-not-the-one"})
    raw.send({"envelope_id": envelope["envelope_id"][::-1]})
    assert not pending.result().acked
    assert [m["envelope_id"] for m in server.stray_acks()] == ["3a5b7c9d-not-the-one", envelope["envelope_id"][::-1]]


def test_an_envelope_is_acked_only_once(raw: RawClient, server: SocketModeServer) -> None:
    pending = Delivering(server)
    envelope = raw.message()
    raw.send({"envelope_id": envelope["envelope_id"], "payload": {"text": "first"}})
    first = pending.result()
    raw.send({"envelope_id": envelope["envelope_id"], "payload": {"text": "second"}})
    wait_until(server.stray_acks, 60, "the second ack to be set aside")
    assert first.response_payload == {"text": "first"}
    assert server.deliveries()[0].response_payload == {"text": "first"}


def test_a_fragmented_ack_is_put_back_together(raw: RawClient, server: SocketModeServer) -> None:
    pending = Delivering(server)
    envelope = raw.message()
    text = json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "in three parts"}}).encode()
    parts = [text[:10], text[10:20], text[20:]]
    raw.sock.sendall(encode_frame(OP_TEXT, parts[0], mask=True, fin=False))
    raw.sock.sendall(encode_frame(OP_CONTINUATION, parts[1], mask=True, fin=False))
    raw.sock.sendall(encode_frame(OP_PING, b"between", mask=True))  # control frames may interleave
    raw.sock.sendall(encode_frame(OP_CONTINUATION, parts[2], mask=True))
    assert pending.result().response_payload == {"text": "in three parts"}


def test_an_envelope_nobody_acks_is_reported_unacked_after_the_wait(raw: RawClient, server: SocketModeServer) -> None:
    started = time.monotonic()
    delivery = server.deliver("interactive", {"type": "block_actions"}, accepts_response_payload=False, timeout=0.3)
    assert not delivery.acked
    assert not delivery.within_ack_deadline
    assert time.monotonic() - started >= 0.3  # it waited the whole timeout for the ack


def test_with_no_connection_there_is_nowhere_to_deliver(server: SocketModeServer) -> None:
    with pytest.raises(NotConnected):
        server.deliver("slash_commands", {"text": ""}, accepts_response_payload=True)


def test_disconnect_tells_the_app_why_then_closes_and_sends_it_nothing_more(
    raw: RawClient, server: SocketModeServer
) -> None:
    assert server.disconnect("link_disabled", close_after=0.2) == [1]
    message = raw.message()
    assert (message["type"], message["reason"]) == ("disconnect", "link_disabled")
    with pytest.raises(NotConnected):
        server.deliver("slash_commands", {"text": ""}, accepts_response_payload=True)
    _fin, opcode, _data = raw.frame()
    assert opcode == OP_CLOSE
    assert wait_until(lambda: not server.connections()[0].open, 60, "the connection to close")


# -- with slack_sdk's built-in client and a real Bolt app ---------------------------------------------------


def bolt_app(slack: SlackApiDouble) -> App:
    app = App(
        client=WebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret="unused-in-socket-mode",
        token_verification_enabled=False,
    )

    @app.command("/breakglass")
    def command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        if body["text"] == "form":
            ack()
            client.views_open(
                trigger_id=body["trigger_id"],
                view={
                    "type": "modal",
                    "callback_id": "request",
                    "title": {"type": "plain_text", "text": "Break glass"},
                    "submit": {"type": "plain_text", "text": "Ask"},
                    "blocks": [
                        {
                            "type": "input",
                            "block_id": "reason",
                            "label": {"type": "plain_text", "text": "Reason"},
                            "element": {"type": "plain_text_input", "action_id": "reason"},
                        }
                    ],
                },
            )
        else:
            ack(f"You typed {body['text']!r}")

    @app.view("request")
    def submitted(ack: Ack, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["reason"]["value"]
        if len(reason) < 10:
            ack(response_action="errors", errors={"reason": "The reason is too short."})
        else:
            ack()

    return app


@pytest.fixture
def handler(slack: SlackApiDouble, server: SocketModeServer) -> Iterator[SocketModeHandler]:
    handler = SocketModeHandler(bolt_app(slack), app_token=DEFAULT_APP_TOKEN)
    handler.connect()
    server.wait_for_connections(1)
    yield handler
    # The client's close waits out its 3-second receive timeout unless the socket goes first.
    handler.client.auto_reconnect_enabled = False
    server.close_connections()
    handler.close()


def test_a_slash_command_over_the_socket_is_answered_as_slack_shows_it(
    slack: SlackApiDouble, server: SocketModeServer, handler: SocketModeHandler
) -> None:
    reply = SocketModeSender(server).slash_command(ALICE, "status BG-7K2QXM", channel_id=INCIDENTS)
    assert reply.status == 200
    (shown,) = slack.ephemerals(ALICE)
    assert (shown.text, shown.via) == ("You typed 'status BG-7K2QXM'", "command_reply")
    (delivery,) = server.deliveries()
    assert delivery.type == "slash_commands"
    assert delivery.envelope["payload"]["command"] == "/breakglass"
    assert delivery.envelope["payload"]["user_id"] == ALICE


def test_a_view_submission_answered_with_errors_keeps_the_modal_open(
    slack: SlackApiDouble, server: SocketModeServer, handler: SocketModeHandler
) -> None:
    sender = SocketModeSender(server)
    sender.slash_command(ALICE, "form", channel_id=INCIDENTS)
    wait_until(lambda: slack.open_views(ALICE), 60, "the modal to open")
    refused = sender.submit_view(ALICE, "request", {"reason": {"reason": "short"}})
    assert refused.json() == {"response_action": "errors", "errors": {"reason": "The reason is too short."}}
    assert server.deliveries()[-1].envelope["accepts_response_payload"] is True
    assert slack.open_views(ALICE)
    accepted = sender.submit_view(ALICE, "request", {"reason": {"reason": "INC-4411 checkout pods crash"}})
    assert (accepted.status, accepted.body) == (200, b"")
    assert slack.open_views(ALICE) == []
    with pytest.raises(NotOnScreen):
        sender.submit_view(ALICE, "request", {"reason": {"reason": "once more, with feeling"}})


def test_the_built_in_client_moves_to_a_new_connection_when_told_to_disconnect(
    slack: SlackApiDouble, server: SocketModeServer, handler: SocketModeHandler
) -> None:
    (first,) = server.open_connections()
    server.disconnect("refresh_requested", close_after=0.5)
    (second,) = server.wait_for_connections(1, after=first.id)
    reply = SocketModeSender(server).slash_command(ALICE, "after the refresh", channel_id=INCIDENTS)
    assert reply.status == 200
    assert server.deliveries()[-1].connection_id == second.id
    assert [c.method for c in slack.calls()].count("apps.connections.open") == 2
    assert wait_until(lambda: not server.connections()[0].open, 60, "the old connection to close")


def test_the_socket_sender_has_no_signed_http_to_forge(server: SocketModeServer) -> None:
    sender = SocketModeSender(server)
    with pytest.raises(TypeError):
        sender.send(b"payload=%7B%7D", "application/x-www-form-urlencoded")
    with pytest.raises(TypeError):
        sender.send_form({"command": "/breakglass"}, signed=False)
