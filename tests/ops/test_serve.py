"""``breakglass serve`` (web, worker, scheduler and sweep in one process) as a real process: it takes a
self-service request to a binding; its worker runs whatever its web half does (a web server that dies is
started again); SIGTERM stops it, and everything it started, cleanly. Every wait polls with a deadline
meant for a loaded machine; nothing here depends on how fast anything happens."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
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
    """Every child of ``pid``, whichever of its threads started it (/proc lists them per thread)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


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


def _web_half(serve: Spawned) -> int | None:
    """The pid of serve's web half (``python -m bot.serving``, gunicorn's arbiter once it has set its
    process title), if one runs."""
    for pid in _children(serve.popen.pid):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"bot.serving" in command or b"gunicorn" in command:
                return pid
    return None


def _serving_again(serve: Spawned, port: int, dead: int) -> int:
    """Wait (generously: the machine is often loaded) for a web half other than ``dead`` to answer."""

    def answered() -> int | None:
        assert serve.popen.poll() is None, f"serve exited:\n{serve.output}"
        web = _web_half(serve)
        if web is None or web == dead or not port_open(port):
            return None
        return web if get(f"http://127.0.0.1:{port}/readyz")[0] == 200 else None

    return int(wait_until(answered, 180, "a new web server to answer", interval=0.5))


def _restarts_logged(serve: Spawned) -> list[str]:
    return [
        str(line["message"])
        for line in json_lines(serve.output)
        if "the worker keeps running; starting the web server again" in str(line.get("message"))
    ]


def _stop(serve: Spawned) -> None:
    serve.popen.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=120) == 0, serve.output
    wait_until(lambda: _gone(serve.popen.pid), 60, "every process of serve's group to end")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped-alone"])
def test_serve_starts_its_web_server_again_when_it_dies_and_the_worker_never_stops(
    stack: LocalStack, signum: signal.Signals
) -> None:
    # Finding 17: a web half that died (or was stopped on its own) stopped the worker with it, so a
    # crash of the Slack-facing half ended revocation too. Now the worker keeps running and the web
    # half is started again.
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        _started(serve, port)
        web = _web_half(serve)
        assert web is not None
        os.kill(web, signum)  # the arbiter; its worker notices its parent is gone and exits
        again = _serving_again(serve, port, dead=web)
        assert again != web
        assert _restarts_logged(serve), serve.output

        # The worker is the one serve started, and takes work through the new web server.
        slack = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, stack.slack)
        reply = slack.slash_command(ALICE, "prod/payments emergency 5m INC-4411 restart the consumer", channel_id=INCIDENT_CHANNEL)  # fmt: skip
        assert reply.status == 200
        wait_until(lambda: stack.bindings("prod"), 120, "the binding in prod")
        _stop(serve)
    finally:
        serve.kill_group()


def test_serve_grants_and_revokes_while_its_web_server_cannot_start(stack: LocalStack) -> None:
    # Revocation never depends on the web process: with the web port taken, the web half fails again
    # and again (with a growing pause), and the worker meanwhile makes and removes bindings.
    port = free_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", port))
    taken.listen()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        stack.wait_for_workers(1, timeout=120)
        wait_until(lambda: len(_restarts_logged(serve)) >= 2, 180, "the web half to fail twice", interval=0.5)
        pauses = [float(message.rsplit(" in ", 1)[1].removesuffix(" s")) for message in _restarts_logged(serve)]
        assert pauses[:2] == [1.0, 2.0], pauses

        env = stack.env()
        grant = Spawned(["grant", "prod/payments", "emergency", "5m", "--for", ALICE, "--reason", "INC-4411 web is down", "--operator", "oncall", "--wait", "120"], env)  # fmt: skip
        assert grant.wait(timeout=180) == 0, grant.output
        assert len(stack.bindings("prod")) == 1
        request_id = re.search(r"BG-[0-9A-Z]{6}", grant.output).group(0)  # type: ignore[union-attr]
        revoke = Spawned(["revoke", request_id, "--reason", "done", "--operator", "oncall"], env)
        assert revoke.wait(timeout=120) == 0, revoke.output
        wait_until(lambda: not stack.bindings("prod"), 120, "the worker to remove the binding")
        assert serve.popen.poll() is None, serve.output

        taken.close()
        _serving_again(serve, port, dead=-1)
        _stop(serve)
    finally:
        taken.close()
        serve.kill_group()


def test_serve_stopped_while_it_starts_stops_whole(stack: LocalStack) -> None:
    # Before RQ's worker installs its handlers, a SIGTERM used to kill serve outright (status -15),
    # leaving RQ's scheduler behind once forked; now it is kept until the worker can take it.
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        wait_until(lambda: _web_half(serve), 90, "serve to start its web half")
        serve.popen.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=120)
    finally:
        serve.kill_group()

    assert code == 0, serve.output
    wait_until(lambda: _gone(serve.popen.pid), 60, "every process of serve's group to end")
    assert not _restarts_logged(serve), "a web half stopped by serve's own stop is not started again"


def test_serve_whose_web_half_is_stopped_while_it_starts_runs_on_and_starts_it_again(stack: LocalStack) -> None:
    port = free_port()
    serve = Spawned(["serve"], stack.env() | {"PORT": str(port)})
    try:
        web = wait_until(lambda: _web_half(serve), 90, "serve to start its web half")
        os.kill(web, signal.SIGTERM)  # before gunicorn (or even the Slack check) is under way
        _serving_again(serve, port, dead=web)
        stack.wait_for_workers(1, timeout=120)
        _stop(serve)
    finally:
        serve.kill_group()
