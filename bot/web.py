"""The web process's WSGI application: Slack events, the Kubernetes audit webhook, health, metrics.

``/slack/events`` is Bolt's: it verifies every request's signature and timestamp (401 and nothing
changes otherwise) before any listener runs. The other routes are small enough not to need a web
framework. Nothing here talks to Slack or Kubernetes at import; ``create_wsgi_app`` builds it all.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import redis

from bot.domain.roster import Roster, RosterError
from bot.services.actions import ActionRecorder, InvalidEventList
from bot.settings import Settings, load_settings
from bot.wiring import Core, build_core

log = logging.getLogger(__name__)

MAX_AUDIT_BODY = 16 * 1024 * 1024  # the apiserver's default batch stays far below this

WsgiApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


class BreakglassWeb:
    def __init__(self, settings: Settings, core: Core, slack: WsgiApp | None) -> None:
        self.settings = settings
        self.core = core
        self.slack = slack
        self.metrics = core.metrics
        self.actions = ActionRecorder(core.store, core.roster, core.now, settings.token_namespace, core.jobs)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/slack/events" and self.slack is not None:
            return self.slack(environ, start_response)
        if path == "/healthz" and method == "GET":
            return _reply(start_response, 200, {"status": "alive"})
        if path == "/readyz" and method == "GET":
            return self._ready(start_response)
        if path == "/metrics" and method == "GET":
            return self._metrics(environ, start_response)
        if path.startswith("/k8s/audit/") and method == "POST":
            return self._kube_audit(environ, start_response, path.removeprefix("/k8s/audit/"))
        return _reply(start_response, 404, {"error": "not found"})

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            body, content_type = self.metrics.exposition(environ.get("HTTP_ACCEPT"))
        except redis.RedisError as exc:
            # Every metric lives in Redis (so all replicas show one set of numbers); this process keeps
            # none of its own to fall back on. A 503 with the reason lets Prometheus mark the scrape
            # failed (`up` 0) instead of recording an empty or partial exposition.
            reason = f"metrics unavailable: redis: {type(exc).__name__}\n".encode()
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(reason)))],
            )
            return [reason]
        start_response(
            "200 OK",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _ready(self, start_response: StartResponse) -> Iterable[bytes]:
        problems = []
        try:
            self.core.redis.ping()
        except redis.RedisError as exc:
            problems.append(f"redis: {type(exc).__name__}")
        try:
            roster: Roster = self.core.roster()
            if not roster.people:
                problems.append("roster: empty")
        except RosterError as exc:
            problems.append(f"roster: {exc.problems[0]}")
        if problems:
            return _reply(start_response, 503, {"status": "not ready", "problems": problems})
        return _reply(start_response, 200, {"status": "ready"})

    def _kube_audit(self, environ: WSGIEnvironment, start_response: StartResponse, cluster: str) -> Iterable[bytes]:
        expected = self.settings.audit_webhook_token
        if expected is None:
            return _reply(
                start_response, 404, {"error": "the audit webhook is off (BREAKGLASS_AUDIT_WEBHOOK_TOKEN unset)"}
            )
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected.get_secret_value()}".encode()):
            return _reply(start_response, 401, {"error": "a valid bearer token is required"})
        if cluster not in self.core.roster().clusters:
            return _reply(start_response, 404, {"error": f"unknown cluster '{cluster[:64]}'"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_AUDIT_BODY:
            return _reply(start_response, 413 if length > MAX_AUDIT_BODY else 400, {"error": "bad body length"})
        try:
            body = json.loads(environ["wsgi.input"].read(length))
            recorded = self.actions.record(cluster, body)
        except (ValueError, InvalidEventList) as exc:
            return _reply(start_response, 400, {"error": str(exc)[:200]})
        return _reply(start_response, 200, {"recorded": recorded})


def _reply(start_response: StartResponse, status: int, body: dict[str, Any]) -> Iterable[bytes]:
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large"}.get(
        status, "Service Unavailable"
    )
    payload = json.dumps(body).encode()
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def create_wsgi_app(settings: Settings | None = None, core: Core | None = None) -> BreakglassWeb:
    """The web process's app. In Socket Mode Slack's events arrive over the socket instead, so
    ``/slack/events`` is not served."""
    settings = settings or load_settings()
    core = core or build_core(settings)
    slack: WsgiApp | None = None
    if not settings.socket_mode:
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        from bot.app import create_app

        slack = SlackRequestHandler(create_app(settings, core))
    return BreakglassWeb(settings, core, slack)
