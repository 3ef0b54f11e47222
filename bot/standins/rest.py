"""What the HTTPS REST stand-ins (PagerDuty, Jira) share: not part of the product.

A ``RestDouble`` serves HTTPS on loopback with the process's stand-in CA (``bot.standins.tls``),
records every call, and lets a test make the service misbehave the ways real ones do: answer slowly,
answer a status (429 with Retry-After, 500, 503) a number of times before answering properly, or be
down (nothing listens on its port until ``up()``). The subclass answers the API itself in ``answer``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from bot.standins.tls import local_ca


@dataclass(frozen=True)
class Call:
    """One request as the stand-in received it (the Authorization header is left out)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-encoded unless bytes or None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: Any

    def one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def many(self, name: str) -> list[str]:
        """A repeated parameter, sent as ``name[]=a&name[]=b`` (PagerDuty) or ``name=a&name=b``."""
        return [*self.query.get(f"{name}[]", []), *self.query.get(name, [])]


@dataclass(frozen=True)
class _Canned:
    status: int
    retry_after: str | None


class RestDouble:
    """The HTTPS server, the call log and the faults; ``answer`` is the API."""

    name = "rest-double"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._canned: deque[_Canned] = deque()
        self._delay = 0.0
        self.calls: list[Call] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        double: RestDouble = self

        class Handler(_Handler):
            owner = double

        server = _Server((self._host, self._port), Handler)
        server.socket = local_ca().server_context().wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]  # a restart after down() keeps the address
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.drop_connections()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None and not self._port:
            raise RuntimeError(f"the {self.name} is not started")
        return f"https://{self._host}:{self._port}"

    @property
    def ca_file(self) -> str:
        """The CA certificate to trust (``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``) to reach this stand-in."""
        return str(local_ca().ca_file)

    @property
    def trust_environ(self) -> dict[str, str]:
        """The environment a process needs to trust this stand-in (both variables the contract names:
        whichever is set first wins, and a machine may already set either to its own store)."""
        return {"SSL_CERT_FILE": self.ca_file, "REQUESTS_CA_BUNDLE": self.ca_file}

    # -- faults ----------------------------------------------------------------------------------

    def down(self) -> None:
        """Nothing listens on the port (connection refused) until ``up()``."""
        self.stop()

    def up(self) -> None:
        self.start()

    def slow(self, seconds: float) -> None:
        """Wait this long before every answer (0: answer at once)."""
        with self._lock:
            self._delay = seconds

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and a Retry-After, if given)."""
        with self._lock:
            self._canned.extend(_Canned(status, retry_after) for _ in range(times))

    def rate_limit(self, *, times: int = 1, retry_after: str = "1") -> None:
        """Answer the next ``times`` requests 429 Too Many Requests with this Retry-After."""
        self.fail(429, times=times, retry_after=retry_after)

    def heal(self) -> None:
        """No more canned failures or delay."""
        with self._lock:
            self._canned.clear()
            self._delay = 0.0

    def calls_to(self, method: str, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path == path]

    # -- the API ---------------------------------------------------------------------------------

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def canned_error(self, status: int) -> Any:
        """The service's own error body for a canned status."""
        return {"error": {"message": "stand-in failure", "code": status}}

    def _serve(self, request: Request) -> Reply:
        with self._lock:
            self.calls.append(
                Call(
                    request.method,
                    request.path,
                    request.query,
                    request.body,
                    {k: v for k, v in request.headers.items() if k != "authorization"},
                )
            )
            delay = self._delay
            canned = self._canned.popleft() if self._canned else None
        if delay:
            time.sleep(delay)
        if canned is not None:
            headers = {"Retry-After": canned.retry_after} if canned.retry_after is not None else {}
            return Reply(canned.status, self.canned_error(canned.status), headers)
        with self._lock:
            return self.answer(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def drop_connections(self) -> None:
        """Close every open connection: a service that is down answers nothing, not even on a
        keep-alive connection a client opened before (``shutdown`` alone stops only new ones)."""
        with self.connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    owner: RestDouble
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the second waits for the
    # client's delayed ACK (40 ms a response on Linux), which no real service adds.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read ``calls``

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Request(
            method,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        reply = self.owner._serve(request)
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        else:
            payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            if reply.body is not None and not isinstance(reply.body, bytes):
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (a timeout test) and closed the connection: nothing to answer
