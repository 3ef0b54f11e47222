"""``breakglass serve`` (web, worker, scheduler and sweep in one process) as a real process: it takes a
self-service request to a binding, and SIGTERM stops it, and everything it forked, cleanly."""

from __future__ import annotations

import http.client
import os
import signal
import socket
from pathlib import Path

import pytest

from bot.standins.slack_events import SlackSender
from bot.standins.stack import ALICE, INCIDENT_CHANNEL, SIGNING_SECRET, LocalStack, free_port, wait_until
from tests.ops.conftest import Spawned, get, json_lines, port_open

pytestmark = pytest.mark.slow  # real serve processes (gunicorn, an RQ worker and its scheduler)


def test_serve_grants_a_self_service_request_and_stops_cleanly_on_sigterm(stack: LocalStack) -> None:
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:

        def ready() -> bool:
            assert serve.popen.poll() is None, f"serve exited:\n{serve.output}"
            return port_open(port) and get(f"http://127.0.0.1:{port}/readyz")[0] == 200

        wait_until(ready, 90, "serve to be ready")

        slack = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, stack.slack)
        reply = slack.slash_command(ALICE, "prod/payments emergency 5m INC-4411 restart the consumer", channel_id=INCIDENT_CHANNEL)  # fmt: skip
        assert reply.status == 200

        bindings = wait_until(lambda: stack.bindings("prod"), 60, "the binding in prod")
        assert [(b["roleRef"]["name"], b["subjects"][0]["name"]) for b in bindings] == [("edit", "alice@example.com")]
        wait_until(lambda: stack.slack.messages(INCIDENT_CHANNEL), 60, "the request posted in #incidents")

        serve.popen.send_signal(signal.SIGTERM)  # what a platform sends to the process it started
        code = serve.wait(timeout=120)
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


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def _started(serve: Spawned, port: int) -> None:
    def ready() -> bool:
        assert serve.popen.poll() is None, f"serve exited:\n{serve.output}"
        return port_open(port) and get(f"http://127.0.0.1:{port}/readyz")[0] == 200

    wait_until(ready, 90, "serve to be ready")


def test_serve_with_a_token_slack_rejects_runs_its_worker_and_only_the_web_half_waits(stack: LocalStack) -> None:
    # Finding 17: serve checked the token before starting anything, so while Slack refused it (or was
    # unreachable) the worker and its sweep never ran and no binding was revoked.
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port), "SLACK_BOT_TOKEN": "xoxb-0000-not-a-real-token"})
    try:
        stack.wait_for_workers(1, timeout=90)
        wait_until(
            lambda: "SLACK_BOT_TOKEN: Slack refused it (invalid_auth)" in serve.output, 60, "the web half's line"
        )
        wait_until(lambda: serve.output.count("Slack refused it") >= 2, 60, "the web half asking Slack again")
        assert serve.popen.poll() is None, f"serve exited:\n{serve.output}"
        assert not port_open(port), "no web server before Slack accepts the token"
        serve.popen.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=120)
    finally:
        serve.kill_group()
    assert code == 0, serve.output


def test_serve_speaks_http_1_1_keep_alive_and_a_stalled_client_holds_nothing_up(stack: LocalStack) -> None:
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        _started(serve, port)
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for _ in range(2):  # two requests over one connection
                connection.request("GET", "/healthz")
                reply = connection.getresponse()
                assert (reply.status, reply.version) == (200, 11)
                reply.read()
            assert reply.getheader("Server", "").startswith("gunicorn")
            connection.close()
        serve.popen.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=120) == 0, serve.output
    finally:
        serve.kill_group()


def test_serve_stops_with_an_error_when_its_web_server_dies(stack: LocalStack) -> None:
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        _started(serve, port)
        # serve's children: gunicorn's arbiter (whose own child is its worker) and RQ's scheduler.
        (web,) = [pid for pid in _children(serve.popen.pid) if _children(pid)]
        os.kill(web, signal.SIGKILL)  # the arbiter; its worker notices its parent is gone and exits
        code = serve.wait(timeout=120)
    finally:
        serve.kill_group()

    assert code == 1, serve.output
    assert any("the web server exited" in str(line.get("message")) for line in json_lines(serve.output))
    wait_until(lambda: _gone(serve.popen.pid), 60, "every process of serve's group to end")


def test_serve_never_runs_half_when_its_web_server_alone_is_stopped(stack: LocalStack) -> None:
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        _started(serve, port)
        (web,) = [pid for pid in _children(serve.popen.pid) if _children(pid)]
        os.kill(web, signal.SIGTERM)  # a graceful stop of the web server alone: it exits 0
        code = serve.wait(timeout=120)
    finally:
        serve.kill_group()

    assert code == 1, serve.output
    wait_until(lambda: _gone(serve.popen.pid), 60, "every process of serve's group to end")


def _web_child_started(serve: Spawned) -> int:
    """The web server's pid as soon as serve has forked it (long before either half is ready; its
    first child, forked before RQ's scheduler)."""

    def forked() -> list[int]:
        assert serve.popen.poll() is None, f"serve exited:\n{serve.output}"
        return _children(serve.popen.pid)

    return wait_until(forked, 90, "serve to fork its web server")[0]


@pytest.mark.parametrize(
    ("stopped", "status"),
    [
        pytest.param("serve", 0, id="serve-exits-zero"),
        pytest.param("its-web-server-alone", 1, id="web-alone-stops-serve-with-1"),
    ],
)
def test_serve_stopped_while_it_starts_stops_whole(stack: LocalStack, stopped: str, status: int) -> None:
    # Before RQ's worker installs its handlers, a SIGTERM (the platform's, or the one serve sends
    # itself when its web server stops) used to kill serve outright (status -15), leaving RQ's
    # scheduler behind once forked; now it is kept until the worker can take it.
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        web = _web_child_started(serve)
        os.kill(serve.popen.pid if stopped == "serve" else web, signal.SIGTERM)
        code = serve.wait(timeout=120)
    finally:
        serve.kill_group()

    assert code == status, serve.output
    wait_until(lambda: _gone(serve.popen.pid), 60, "every process of serve's group to end")
