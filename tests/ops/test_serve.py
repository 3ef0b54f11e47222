"""``breakglass serve`` (web, worker, scheduler and sweep in one process) as a real process: it takes a
self-service request to a binding, and SIGTERM stops it, and everything it forked, cleanly."""

from __future__ import annotations

import os
import signal

from bot.standins.slack_events import SlackSender
from bot.standins.stack import ALICE, INCIDENT_CHANNEL, SIGNING_SECRET, LocalStack, free_port, wait_until
from tests.ops.conftest import Spawned, get, json_lines, port_open


def test_serve_grants_a_self_service_request_and_stops_cleanly_on_sigterm(stack: LocalStack) -> None:
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:

        def ready() -> bool:
            assert serve.popen.poll() is None, f"serve exited:\n{serve.output}"
            return port_open(port) and get(f"http://127.0.0.1:{port}/readyz")[0] == 200

        wait_until(ready, 30, "serve to be ready")

        slack = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, stack.slack)
        reply = slack.slash_command(ALICE, "prod/payments breakglass 5m INC-4411 restart the consumer", channel_id=INCIDENT_CHANNEL)  # fmt: skip
        assert reply.status == 200

        bindings = wait_until(lambda: stack.bindings("prod"), 20, "the binding in prod")
        assert [(b["roleRef"]["name"], b["subjects"][0]["name"]) for b in bindings] == [("edit", "alice@example.com")]
        wait_until(lambda: stack.slack.messages(INCIDENT_CHANNEL), 20, "the request posted in #incidents")

        serve.popen.send_signal(signal.SIGTERM)  # what a platform sends to the process it started
        code = serve.wait(timeout=30)
    finally:
        serve.kill_group()

    assert code == 0, serve.output
    assert not port_open(port)
    try:
        os.killpg(serve.popen.pid, 0)
        left = True
    except ProcessLookupError:
        left = False
    assert not left, "a process of serve's group (RQ's scheduler?) outlived it"
    lines = json_lines(serve.output)
    assert any(line.get("event") == "granted" for line in lines)
