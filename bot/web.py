"""The web process's WSGI application: Slack events, the Kubernetes audit webhook, health, metrics.

This is the internet-facing edge, so every request passes the same gate before any route parses it:
a body larger than the route allows (1 MiB for Slack, 16 MiB for the audit webhook) is refused with
413 before a byte of it is read (chunked bodies are read no further than the limit); the body is read
within the slow-client deadline (``bot.slow_clients``); and a Slack request whose signature or
timestamp does not verify gets 401 here, so neither Bolt nor a listener ever parses a body an
outsider wrote. ``/slack/events`` is then Bolt's (it verifies again). ``/oidc/start/…`` and ``/oidc/callback`` are the
step-up's (``bot.listeners.stepup``), served when ``BREAKGLASS_PUBLIC_URL`` is set. The other routes are small
enough not to need a web framework. Nothing here talks to Slack or Kubernetes at import;
``create_wsgi_app`` builds it all.
"""

from __future__ import annotations

import hmac
import html
import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

import redis
from slack_sdk.signature import SignatureVerifier

from bot.domain.grants import format_instant
from bot.domain.roster import RosterError
from bot.domain.webhook import cluster_webhook_token
from bot.kube_audit_events import read_event_list
from bot.listeners.stepup import Page, StepUpDesk
from bot.metrics import REFUSED_BATCHES, label_value
from bot.services.kube_actions import ActionRecorder, InvalidEventList
from bot.settings import Settings, load_settings
from bot.slack.client import SlackApi
from bot.slack.identity import IdentityGate
from bot.slow_clients import done_reading
from bot.store.audit_sink import SinkProgressStore
from bot.store.stepup import StepUpStore
from bot.wiring import Core, build_core

log = logging.getLogger(__name__)

MAX_SLACK_BODY = 1024 * 1024  # Slack's largest payloads (a full view submission) are a few dozen KiB
MAX_AUDIT_BODY = 16 * 1024 * 1024  # the apiserver's default batch stays far below this
_READ_CHUNK = 64 * 1024

WsgiApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


class BreakglassWeb:
    def __init__(
        self, settings: Settings, core: Core, slack: WsgiApp | None, step_up: StepUpDesk | None = None
    ) -> None:
        self.settings = settings
        self.core = core
        self.slack = slack
        self.step_up = step_up
        self.metrics = core.metrics
        self.actions = ActionRecorder(core.store, core.roster, core.now, settings.token_namespace, core.jobs)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if method != "POST":
            done_reading(environ)  # no body is read on these routes
        if path == "/slack/events" and self.slack is not None:
            return self._slack(environ, start_response)
        if path == "/healthz" and method == "GET":
            return _reply(start_response, 200, {"status": "alive"})
        if path == "/readyz" and method == "GET":
            return self._ready(start_response)
        if path == "/metrics" and method == "GET":
            return self._metrics(environ, start_response)
        if path.startswith("/oidc/start/") and method == "GET" and self.step_up is not None:
            return _page(start_response, self.step_up.start(path.removeprefix("/oidc/start/")))
        if path == "/oidc/callback" and method == "GET" and self.step_up is not None:
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=20).items()}
            return _page(start_response, self.step_up.callback(query))
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
        # Terse on purpose: the endpoint answers anyone who reaches the web process, so it says which
        # dependency is not ready and nothing about why (no roster problems, no error text); the logs
        # and `breakglass doctor` say why.
        problems = []
        try:
            self.core.redis.ping()
        except redis.RedisError:
            problems.append("redis")
        try:
            if not self.core.roster().people:
                problems.append("roster")
        except RosterError:
            log.warning("not ready: the roster does not load (run `breakglass roster check`)")
            problems.append("roster")
        if problems:
            return _reply(start_response, 503, {"status": "not ready", "problems": problems})
        answer: dict[str, Any] = {"status": "ready"}
        if self.settings.audit_sink:
            # Detail, not readiness: this process serves Slack and the webhook whatever the sink does,
            # and the entries wait in Redis. The state and counts only; why is in doctor and the logs.
            answer["audit_sink"] = self._sink_detail()
        return _reply(start_response, 200, answer)

    def _sink_detail(self) -> dict[str, Any]:
        try:
            progress = SinkProgressStore(self.core.redis, self.settings.key_prefix).read()
        except redis.RedisError:
            return {"state": "unknown"}
        if progress is None:
            return {"state": "not started"}
        detail: dict[str, Any] = {"state": "failing" if progress.failing else "ok", "behind": progress.behind}
        if progress.failing_since is not None:
            detail["failing_since"] = format_instant(progress.failing_since)
        if progress.copied_at is not None:
            detail["copied_at"] = format_instant(progress.copied_at)
        return detail

    def _slack(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.slack is not None
        body = _read_body(environ, MAX_SLACK_BODY)
        if isinstance(body, int):
            return _reply(start_response, body, {"error": _BODY_ERRORS[body]})
        if not self._signed_by_slack(environ, body):
            return _reply(start_response, 401, {"error": "invalid request signature"})
        return self.slack(_with_body(environ, body), start_response)

    def _signed_by_slack(self, environ: WSGIEnvironment, body: bytes) -> bool:
        secret = self.settings.slack_signing_secret
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        if secret is None or not timestamp or not signature or not timestamp.isdigit():
            return False
        try:
            return SignatureVerifier(secret.get_secret_value()).is_valid(body, timestamp, signature)
        except ValueError:  # a body that is not UTF-8 cannot have been signed by Slack
            return False

    def _kube_audit(self, environ: WSGIEnvironment, start_response: StartResponse, cluster: str) -> Iterable[bytes]:
        secret = self.settings.audit_webhook_token
        if secret is None:
            done_reading(environ)
            return _reply(
                start_response, 404, {"error": "the audit webhook is off (BREAKGLASS_AUDIT_WEBHOOK_TOKEN unset)"}
            )
        given = environ.get("HTTP_AUTHORIZATION", "")
        expected = f"Bearer {cluster_webhook_token(secret.get_secret_value(), cluster)}"
        if not hmac.compare_digest(given.encode(errors="replace"), expected.encode(errors="replace")):
            done_reading(environ)
            return _reply(start_response, 401, {"error": "a valid bearer token for this cluster is required"})
        if cluster not in self.core.roster().clusters:
            done_reading(environ)
            return _reply(start_response, 404, {"error": f"unknown cluster '{cluster[:64]}'"})
        body = _read_body(environ, MAX_AUDIT_BODY)
        if isinstance(body, int):
            # The API server does not retry a refused batch: its events are lost. Counted, so an alert
            # (deploy/README.md) can say so; see there for --audit-webhook-truncate-enabled.
            self.metrics.inc(REFUSED_BATCHES, f'cluster="{label_value(cluster)}",status="{body}"')
            return _reply(start_response, body, {"error": _BODY_ERRORS[body]})
        try:
            recorded = self.actions.record(cluster, read_event_list(body.decode()))
        except (ValueError, InvalidEventList) as exc:
            self.metrics.inc(REFUSED_BATCHES, f'cluster="{label_value(cluster)}",status="400"')
            return _reply(start_response, 400, {"error": str(exc)[:200]})
        return _reply(start_response, 200, {"recorded": recorded})


_BODY_ERRORS = {
    400: "the request body is incomplete or its length is malformed",
    413: "the request body is too large",
}


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes | int:
    """The request body, read no further than ``limit`` bytes; or the status to refuse it with.

    A declared Content-Length over the limit is refused before anything is read; a chunked body
    (no Content-Length) is read until the limit is passed and then refused, so no request makes
    this process hold more than ``limit`` bytes of it."""
    declared = environ.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if declared and not chunked:
        if not declared.isdigit():
            done_reading(environ)
            return 400
        if int(declared) > limit:
            done_reading(environ)
            return 413
    wanted = int(declared) if declared and not chunked else limit + 1
    stream = environ["wsgi.input"]
    parts: list[bytes] = []
    received = 0
    while received < wanted:
        part = stream.read(min(_READ_CHUNK, wanted - received))
        if not part:
            break
        parts.append(part)
        received += len(part)
    done_reading(environ)
    if received > limit:
        return 413
    if declared and not chunked and received < int(declared):
        return 400  # the client went away, or was cut off by the read deadline
    return b"".join(parts)


def _with_body(environ: WSGIEnvironment, body: bytes) -> WSGIEnvironment:
    """The same request, its body already read: Bolt reads it again from memory."""
    replaced = dict(environ)
    replaced["wsgi.input"] = io.BytesIO(body)
    replaced["CONTENT_LENGTH"] = str(len(body))
    replaced.pop("HTTP_TRANSFER_ENCODING", None)
    return replaced


def _reply(start_response: StartResponse, status: int, body: dict[str, Any]) -> Iterable[bytes]:
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Content Too Large"}.get(
        status, "Service Unavailable"
    )
    payload = json.dumps(body).encode()
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _page(start_response: StartResponse, page: Page) -> Iterable[bytes]:
    """A step-up page: a redirect, or one line of text for the person in the browser."""
    reasons = {200: "OK", 302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
    headers = [
        # Never cached, never shown in a frame, and no Referer carrying a code or state onwards.
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    ]
    if page.location is not None:
        start_response(f"{page.status} {reasons.get(page.status, 'Found')}", [*headers, ("Location", page.location)])
        return [b""]
    body = (
        "<!doctype html><html><head><meta charset=utf-8><title>breakglass</title></head>"
        f"<body><p>{html.escape(page.text)}</p></body></html>"
    ).encode()
    start_response(
        f"{page.status} {reasons.get(page.status, 'Bad Gateway')}",
        [*headers, ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def create_wsgi_app(settings: Settings | None = None, core: Core | None = None) -> BreakglassWeb:
    """The web process's app. In Socket Mode Slack's events arrive over the socket instead, so
    ``/slack/events`` is not served."""
    settings = settings or load_settings()
    core = core or build_core(settings)
    slack: WsgiApp | None = None
    api = SlackApi.connect(settings.slack_bot_token, settings.slack_api_url)
    identity = IdentityGate(api, core.roster, core.now)
    if not settings.socket_mode:
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        from bot.app import create_app

        slack = SlackRequestHandler(create_app(settings, core, slack=api))
    step_up = None
    if settings.public_url is not None:
        store = StepUpStore(core.redis, settings.key_prefix)
        step_up = StepUpDesk(settings, store, core.access, identity, core.roster, core.now)
    return BreakglassWeb(settings, core, slack, step_up)
