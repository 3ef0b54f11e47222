"""The Bolt app from ``create_app`` served over real HTTP, with Slack's side played by the double.

Requests are signed as Slack signs them (``SlackSender``); the app calls the Slack Web API double;
tests read what people would see there. Listeners run after their ack in a pool the harness can
wait on (``settle``), so assertions never race the listener and nothing sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pydantic import SecretStr
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import create_app
from bot.domain.audit import AuditEntry
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest
from bot.services.grants import GrantService
from bot.services.publishing import Publisher
from bot.settings import Settings
from bot.slack.client import SlackApi
from bot.slack.identity import IdentityGate
from bot.slack.notifier import MemoryProgress, SlackNotifier
from bot.standins.slack_api import SlackApiDouble
from bot.standins.slack_events import AppReply, SlackSender
from bot.wiring import Core
from tests.conftest import FakeClock
from tests.fakes import FakeCluster
from tests.slack.conftest import ADMIN_TOKEN, SIGNING_SECRET, no_sleep


class SettlingExecutor(ThreadPoolExecutor):
    """The listener pool, remembering what it was given so a test can wait for it all to finish."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="listener")
        self._pending: list[Future[Any]] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._pending.append(future)
        return future

    def settle(self, timeout: float = 60.0) -> None:  # a deadline for a loaded machine, not a speed
        while True:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return
            done, not_done = wait(pending, timeout=timeout)
            assert not not_done, "a listener did not finish"
            for future in done:
                future.result()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class SlackAppHarness:
    def __init__(self, settings: Settings, core: Core, slack: SlackApiDouble, clock: FakeClock) -> None:
        self.core = core
        self.slack = slack
        self.clock = clock
        self.api = SlackApi.connect(settings.slack_bot_token, settings.slack_api_url, sleep=no_sleep)
        self.admin = SlackApi.connect(SecretStr(ADMIN_TOKEN), settings.slack_api_url, sleep=no_sleep)
        self.gate = IdentityGate(self.api, core.roster, clock, admin=self.admin)
        self.executor = SettlingExecutor()
        self.app = create_app(settings, core, identity=self.gate, slack=self.api, listener_executor=self.executor)
        self.server = make_server(
            "127.0.0.1", 0, SlackRequestHandler(self.app), server_class=_Server, handler_class=_Quiet
        )
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        port = self.server.server_address[1]
        self.events_url = f"http://127.0.0.1:{port}/slack/events"
        self.sender = SlackSender(self.events_url, SIGNING_SECRET, slack)
        self.notifier = SlackNotifier(self.api, core.roster, clock, MemoryProgress())
        self.publisher = Publisher(core.store, self.notifier)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.executor.shutdown(wait=True)

    # --- what people do -------------------------------------------------------------------------

    def command(self, user: str, text: str = "", channel: str | None = None) -> AppReply:
        reply = self.sender.slash_command(user, text, channel_id=channel)
        self.executor.settle()
        return reply

    def click(self, user: str, action_id: str, value: str, message_ts: str, channel: str) -> AppReply:
        reply = self.sender.click(user, action_id, value, message_ts, channel)
        self.executor.settle()
        return reply

    def click_home(self, user: str, action_id: str, value: str) -> AppReply:
        reply = self.sender.click_home(user, action_id, value)
        self.executor.settle()
        return reply

    def submit(self, user: str, callback_id: str, values: dict[str, dict[str, Any]]) -> AppReply:
        reply = self.sender.submit_view(user, callback_id, values)
        self.executor.settle()
        return reply

    def open_home(self, user: str) -> AppReply:
        reply = self.sender.open_home(user)
        self.executor.settle()
        return reply

    def publish(self, request: AccessRequest | str) -> AccessRequest:
        request_id = request if isinstance(request, str) else request.id
        self.publisher.publish(request_id)  # type: ignore[arg-type]
        found = self.core.store.get(request_id)
        assert found is not None
        return found

    # --- what they see --------------------------------------------------------------------------

    def said_to(self, user: str) -> list[str]:
        """Every ephemeral answer ``user`` got, as text, oldest first."""
        return [self.slack.render_text(e) for e in self.slack.ephemerals(user_id=user)]

    def last_said_to(self, user: str) -> str:
        said = self.said_to(user)
        assert said, f"{user} was told nothing"
        return said[-1]

    def requests(self) -> list[AccessRequest]:
        return self.core.store.recent()

    def audit(self) -> list[AuditEntry]:
        return list(self.core.audit.entries())

    def refusals(self) -> list[AuditEntry]:
        return [e for e in self.audit() if e.event == "refused"]


def grant(harness: SlackAppHarness, request_id: RequestId) -> GrantService:
    """Make an approved request's grant as the worker would, on a FakeCluster; returns the service
    so a test can go on to remind or revoke with it."""
    service = GrantService(
        harness.core.store,
        harness.core.roster,
        FakeCluster(clock=harness.clock),
        harness.core.jobs,
        harness.notifier,
        harness.clock,
    )
    service.grant(request_id)
    return service
