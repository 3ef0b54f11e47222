"""The Slack double's HTTP server: ``SlackApiDouble`` serves ``/api/<method>``, upload URLs and response URLs."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from bot.standins.slack.methods import WebApi
from bot.standins.slack.workspace import Answer


class SlackApiDouble(WebApi):
    """A Slack workspace with one app installed, reachable as the Web API at ``api_url``.

    Seed it with ``add_user``/``add_channel``; the app posts through its ``WebClient``; read what a
    person would see with ``messages``/``thread``/``dm``/``ephemerals``/``views_opened``/``home_view``/
    ``files`` and every call with ``calls``. All state sits behind one lock, so the HTTP threads, the
    test and the demo may use it at once.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **workspace: Any) -> None:
        super().__init__(**workspace)
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> SlackApiDouble:
        if self._server is not None:
            return self
        double = self

        class Handler(_Handler):
            owner = double

        server = _Server((self._host, self._port), Handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="slack-api-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SlackApiDouble:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Slack double is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """What to give ``WebClient(base_url=...)`` and ``BREAKGLASS_SLACK_API_URL``; ends with ``/api/``."""
        return f"{self.base_url}/api/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when workers post at once, and the client then waits
    # a full second to retry: a slowness real Slack does not have.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    """Routes ``/api/<method>``, ``/upload/v1/<key>`` and ``/response/<key>`` to the owning double."""

    owner: SlackApiDouble
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes; do not let Nagle hold the second

    def do_POST(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the record (``calls()``) is the log."""

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = parts.path
        if path.startswith("/api/"):
            answer = self.owner._serve_api(path[len("/api/") :], headers, parts.query, body)
        elif path.startswith("/upload/v1/") and self.command == "POST":
            answer = self.owner._serve_upload(path[len("/upload/v1/") :], body)
        elif path.startswith("/response/") and self.command == "POST":
            answer = self.owner._serve_response_url(path[len("/response/") :], body)
        else:
            answer = Answer(404, b"Not Found")
        self._send(answer)

    def _send(self, answer: Answer) -> None:
        if isinstance(answer.body, bytes):
            payload, content_type = answer.body, "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(answer.body).encode(), "application/json; charset=utf-8"
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-slack-req-id", secrets.token_hex(16))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
