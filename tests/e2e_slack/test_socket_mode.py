"""Socket Mode through the real processes: ``breakglass web`` (as the Procfile runs it) with
``SLACK_APP_TOKEN`` set and no signing secret, a worker, real Redis, the Kubernetes double, the Slack
Web API double and Slack's Socket Mode endpoint (``bot.standins.slack_socket``).

People act over the socket exactly as over signed HTTP (``SocketModeSender`` shares ``SlackSender``'s
methods), so the same ``Live`` helpers drive the story: Alice's request is acknowledged and
posted with Approve and Deny, Bob's and Carol's approvals over the socket make the binding, a refused
modal gets its errors back in the acknowledgement, a refreshed connection keeps working, SIGTERM ends
a web process cleanly, and a token Slack refuses stops ``web`` at start with one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.slack import blocks
from bot.standins.slack_api import SlackMessage
from bot.standins.slack_socket import SocketModeServer
from bot.standins.stack import ALICE, BOB, CAROL, INCIDENT_CHANNEL, free_port, wait_until
from tests.e2e_slack.conftest import DEADLINE, Live, running_live

pytestmark = pytest.mark.slow

ASK = "prod/payments admin 1h INC-4411 checkout pods crash-looping"


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from running_live(redis_url, tmp_path_factory.mktemp("e2e-socket-stack"), socket_mode=True)


def socket(live: Live) -> SocketModeServer:
    assert live.stack.socket is not None
    return live.stack.socket


def buttons(message: SlackMessage) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


@dataclass(frozen=True)
class Asked:
    request_id: str
    root: SlackMessage


@pytest.fixture(scope="module")
def asked(live: Live) -> Asked:
    request_id, root = live.ask(ALICE, ASK)
    return Asked(request_id, root)


def test_the_web_process_serves_slack_over_the_socket_not_over_http(live: Live) -> None:
    assert "SLACK_SIGNING_SECRET" not in live.stack.env()
    (connection,) = socket(live).open_connections()
    assert next(m for m in connection.messages if m["type"] == "hello")
    url = f"{live.stack.web_url(live.web)}/slack/events"
    request = urllib.request.Request(url, data=b"{}", method="POST")  # noqa: S310 - the local web process
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310
    assert answered.value.code == 404
    opened = live.slack.calls("apps.connections.open")
    # One check of the token as `web` starts (so a bad one is one line), one for the worker's socket.
    assert [(c.token_kind, c.ok) for c in opened] == [("app", True), ("app", True)]


def test_a_request_over_the_socket_is_acked_and_posted_with_approve_and_deny(live: Live, asked: Asked) -> None:
    command = next(d for d in socket(live).deliveries() if d.type == "slash_commands")
    assert command.envelope["payload"]["text"] == ASK
    assert command.acked
    assert asked.root.text.startswith(f"{asked.request_id}:")
    assert buttons(asked.root) == [("approve", asked.request_id), ("deny", asked.request_id)]


def test_two_approvals_over_the_socket_put_the_binding_in_place(live: Live, asked: Asked) -> None:
    live.click(BOB, blocks.APPROVE_ACTION, asked.request_id, live.root(asked.request_id))
    live.click(CAROL, blocks.APPROVE_ACTION, asked.request_id, live.root(asked.request_id))
    name = f"breakglass-{asked.request_id.lower()}"
    binding = wait_until(
        lambda: next((b for b in live.stack.bindings("prod") if b["metadata"]["name"] == name), None),
        DEADLINE,
        "the RoleBinding",
    )
    assert binding["metadata"]["namespace"] == "payments"
    assert binding["subjects"][0]["name"] == "alice@example.com"
    live.wait_published(asked.request_id)
    assert buttons(live.root(asked.request_id)) == []
    clicks = [d for d in socket(live).deliveries() if d.type == "interactive"]
    assert [d.envelope["payload"]["user"]["id"] for d in clicks] == [BOB, CAROL]


def test_every_envelope_is_acked_by_its_id(live: Live, asked: Asked) -> None:
    """Each one, however loaded the machine (the double waits 10 s for an ack; that an ack never
    waits for slow work is tested as an order in tests/slack/test_listener_interactions.py)."""
    live.command(ALICE, "help")
    deliveries = socket(live).deliveries()
    assert len(deliveries) >= 2
    unacked = [(d.type, d.envelope_id) for d in deliveries if not d.acked]
    assert unacked == []


def test_a_modal_refused_over_the_socket_gets_its_errors_in_the_ack_and_stays_open(live: Live) -> None:
    live.sender.slash_command(ALICE, "", channel_id=INCIDENT_CHANNEL)
    wait_until(lambda: live.slack.open_views(ALICE), DEADLINE, "the request form to open")
    answers = {"cluster": "prod", "namespace": "payments", "role": "admin", "duration": "1h",
               "reason": "too short", "channel": INCIDENT_CHANNEL}  # fmt: skip
    reply = live.sender.submit_view(ALICE, blocks.REQUEST_CALLBACK, {k: {k: v} for k, v in answers.items()})
    assert reply.status == 200
    answer = reply.json()
    assert answer["response_action"] == "errors"
    assert "The reason is too short" in answer["errors"]["reason"]
    assert socket(live).deliveries()[-1].envelope["accepts_response_payload"] is True
    assert live.slack.open_views(ALICE)


def test_after_slack_refreshes_the_connection_requests_still_arrive(live: Live) -> None:
    (old,) = socket(live).open_connections()
    socket(live).disconnect("refresh_requested", close_after=0.5)
    (new,) = socket(live).wait_for_connections(1, DEADLINE, after=old.id)
    wait_until(lambda: len(socket(live).open_connections()) == 1, DEADLINE, "the old connection to close")
    answer = live.command(ALICE, "help")
    assert "/breakglass" in answer.text
    assert socket(live).deliveries()[-1].connection_id == new.id


def test_sigterm_ends_a_socket_mode_web_process_cleanly(live: Live) -> None:
    before = {c.id for c in socket(live).open_connections()}
    second = live.stack.start_web()
    (held,) = [c for c in socket(live).open_connections() if c.id not in before]
    try:
        os.killpg(second.popen.pid, signal.SIGTERM)
        assert second.popen.wait(timeout=15) == 0
        log = second.output()
    finally:
        second.stop()
        live.stack.processes.remove(second)
    closed = next(c for c in socket(live).connections() if c.id == held.id)
    assert (closed.open, closed.closed_by) == (False, "app")
    assert "Socket Mode connection closed" in log
    assert '"level": "error"' not in log
    # The first web process still holds its socket and answers.
    assert "/breakglass" in live.command(ALICE, "help").text


@pytest.mark.parametrize(
    ("command", "app_token", "line"),
    [
        ("web", "xapp-1-A0BREAKGLASS-0-revoked", "SLACK_APP_TOKEN: Slack refused it (invalid_auth)"),
        # Not serve: its worker runs whatever Slack says, and only its web half waits for Slack
        # (tests/ops/test_serve.py).
        ("web", "xoxb-a-bot-token-by-mistake", "SLACK_APP_TOKEN: must be an app-level token starting with xapp-"),
    ],
)
def test_a_bad_app_token_stops_the_process_at_start_with_one_line_naming_it(
    live: Live, command: str, app_token: str, line: str
) -> None:
    env = {**live.stack.env(), "SLACK_APP_TOKEN": app_token, "PORT": str(free_port())}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", command], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == line
    assert app_token not in done.stdout + done.stderr
