"""Slack's Socket Mode endpoint on this machine, for the tests and ``breakglass demo``.

In Socket Mode the app calls ``apps.connections.open`` with its app-level token (``xapp-…``, scope
``connections:write``) and opens a WebSocket to the URL it is handed; Slack then delivers slash
commands, interactivity and events over that socket instead of POSTing them to a Request URL. Each
delivery is an envelope ``{"envelope_id", "type": "slash_commands" | "interactive" | "events_api",
"payload", "accepts_response_payload"}``; the app acknowledges it by sending back
``{"envelope_id": …}``, with a ``"payload"`` (a slash command's reply, a modal's ``response_action``)
when the envelope accepts one. Slack greets each new connection with ``{"type": "hello", …}`` and asks
the app to move on with ``{"type": "disconnect", "reason": …}`` before it closes a connection.

``SocketModeServer`` is that endpoint: a small RFC 6455 server on the standard library (handshake with
``Sec-WebSocket-Accept``, text frames, masked client frames, fragmentation, ping/pong, close). It hands
out single-use ``ws://127.0.0.1:PORT/link/?ticket=…&app_id=…`` URLs through the ``SlackApiDouble`` it
is attached to (which checks the app-level token as Slack does), says hello, delivers each envelope to
one open connection (round robin, as Slack spreads them over an app's connections, and never to one it
has told to disconnect), matches acknowledgements to envelopes by ``envelope_id`` and keeps the record
(``deliveries``, ``connections``).
``SocketModeSender`` delivers a person's actions over it with the same methods as
``bot.standins.slack_events.SlackSender``, so the same test helpers drive either transport.

Not modelled: TLS (``wss://``), per-message compression, Slack's retries of unacknowledged
``events_api`` envelopes, the ``warning`` disconnect Slack sends ten seconds before it refreshes a
connection (``disconnect`` sends any reason the test names, when the test says), and Slack's answer to
a used or unknown ticket, which it does not document (here: HTTP 401 and no upgrade).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.standins.slack_api import JsonDict, SlackApiDouble
from bot.standins.slack_events import ACK_DEADLINE_SECONDS, AppReply, SlackSender

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
MAX_HANDSHAKE_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG = 1000, 1001, 1002, 1009

# Which envelopes let the app answer with a payload, as Slack marks them.
_ACCEPTS_PAYLOAD = {"view_submission", "block_suggestion"}


class NotConnected(LookupError):
    """No app holds an open Socket Mode connection, so Slack has nowhere to deliver."""


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()  # noqa: S324


def encode_frame(opcode: int, payload: bytes, *, mask: bool = False, fin: bool = True) -> bytes:
    """One frame. A server never masks; a client must (``mask=True``)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    length = len(payload)
    if length <= 125:
        head += bytes([bit | length])
    elif length <= 0xFFFF:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = secrets.token_bytes(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    chunks, left = [], count
    while left:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, *, expect_mask: bool) -> tuple[bool, int, bytes]:
    """``(fin, opcode, payload)`` of the next frame, unmasked. A client frame without a mask, or a
    server frame with one, is a protocol error (RFC 6455 section 5.1)."""
    first, second = _read_exactly(sock, 2)
    if first & 0x70:
        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension")
    fin, opcode = bool(first & 0x80), first & 0x0F
    masked, length = bool(second & 0x80), second & 0x7F
    if masked != expect_mask:
        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "client frames must be masked" if expect_mask else "masked")
    if length == 126:
        (length,) = struct.unpack("!H", _read_exactly(sock, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exactly(sock, 8))
    if opcode >= 0x8 and (length > 125 or not fin):
        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "control frames are short and unfragmented")
    if length > MAX_MESSAGE_BYTES:
        raise _ProtocolError(CLOSE_TOO_BIG, "message too big")
    key = _read_exactly(sock, 4) if masked else b""
    data = _read_exactly(sock, length)
    if masked:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return fin, opcode, data


@dataclass(frozen=True)
class ConnectionInfo:
    """One Socket Mode connection as the record shows it."""

    id: int
    app_id: str
    opened_at: float
    open: bool
    draining: bool  # told to disconnect: Slack sends it nothing new
    close_code: int | None
    closed_by: str | None  # "app" (it sent a close frame or dropped the TCP connection) or "slack"
    pings: int
    messages: tuple[JsonDict, ...]  # what Slack sent on it: hello, envelopes, disconnect


@dataclass(frozen=True)
class SocketDelivery:
    """One envelope Slack delivered and what came back for it."""

    envelope: JsonDict
    connection_id: int
    acked: bool
    ack: JsonDict | None  # the app's whole acknowledgement, ``{"envelope_id", "payload"?}``
    elapsed: float  # seconds from sending the envelope to receiving its acknowledgement

    @property
    def envelope_id(self) -> str:
        return str(self.envelope["envelope_id"])

    @property
    def type(self) -> str:
        return str(self.envelope["type"])

    @property
    def response_payload(self) -> JsonDict | None:
        """The ack's payload, when the envelope accepts one (Slack ignores it otherwise)."""
        if self.ack is None or not self.envelope.get("accepts_response_payload"):
            return None
        payload = self.ack.get("payload")
        return payload if isinstance(payload, dict) else None

    @property
    def within_ack_deadline(self) -> bool:
        return self.acked and self.elapsed <= ACK_DEADLINE_SECONDS


@dataclass
class _Pending:
    envelope: JsonDict
    connection_id: int
    sent_at: float
    done: threading.Event = field(default_factory=threading.Event)
    ack: JsonDict | None = None
    acked_at: float | None = None

    def result(self) -> SocketDelivery:
        acked = self.ack is not None and self.acked_at is not None
        elapsed = (self.acked_at if self.acked_at is not None else time.monotonic()) - self.sent_at
        return SocketDelivery(self.envelope, self.connection_id, acked, self.ack, elapsed)


class _Connection:
    """One accepted WebSocket: a reader thread, a send lock, and what was said on it."""

    def __init__(self, server: SocketModeServer, number: int, sock: socket.socket, app_id: str) -> None:
        self.server = server
        self.id = number
        self.sock = sock
        self.app_id = app_id
        self.opened_at = time.time()
        self.open = True
        self.draining = False
        self.close_code: int | None = None
        self.closed_by: str | None = None
        self.pings = 0
        self.messages: list[JsonDict] = []
        self._send_lock = threading.Lock()

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(self.id, self.app_id, self.opened_at, self.open, self.draining, self.close_code,
                              self.closed_by, self.pings, tuple(self.messages))  # fmt: skip

    def send_json(self, message: JsonDict) -> None:
        self.messages.append(message)
        self._send(encode_frame(OP_TEXT, json.dumps(message).encode()))

    def _send(self, frame: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(frame)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "", *, by: str = "slack") -> None:
        """Send a close frame (once) and end the connection; the reader sees the socket go."""
        if not self.open:
            return
        self.open, self.close_code, self.closed_by = False, code, by
        with contextlib.suppress(OSError):
            self._send(encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120]))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def run(self) -> None:
        """Read frames until the connection ends: pong every ping, answer a close, hand text on."""
        fragments: list[bytes] = []
        try:
            while self.open:
                fin, opcode, data = read_frame(self.sock, expect_mask=True)
                if opcode == OP_PING:
                    self.pings += 1
                    self._send(encode_frame(OP_PONG, data))
                elif opcode == OP_PONG:
                    continue
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    self.close(CLOSE_NORMAL if code == 1005 else code, by="app")
                elif opcode == OP_BINARY:
                    raise _ProtocolError(1003, "Socket Mode speaks JSON text frames")
                elif opcode in (OP_TEXT, OP_CONTINUATION):
                    if (opcode == OP_TEXT) == bool(fragments):
                        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "bad fragmentation")
                    fragments.append(data)
                    if sum(map(len, fragments)) > MAX_MESSAGE_BYTES:
                        raise _ProtocolError(CLOSE_TOO_BIG, "message too big")
                    if fin:
                        text, fragments = b"".join(fragments), []
                        self.server._received(self, text)
                else:
                    raise _ProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        except _ProtocolError as error:
            self.close(error.code, error.reason)
        except OSError:
            # The app dropped the TCP connection without a close frame (a killed process does).
            if self.open:
                self.open, self.close_code, self.closed_by = False, 1006, "app"
                with contextlib.suppress(OSError):
                    self.sock.close()


class SocketModeServer:
    """Slack's Socket Mode endpoint for the app of ``slack`` (a started ``SlackApiDouble``).

    ``start()`` listens and attaches to ``slack``, whose ``apps.connections.open`` then hands out this
    server's URLs. ``deliver`` sends one envelope and waits for its acknowledgement; ``disconnect``
    sends Slack's ``disconnect`` message and closes the connections a moment later.
    """

    def __init__(self, slack: SlackApiDouble, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.slack = slack
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._tickets: dict[str, str] = {}
        self._connections: list[_Connection] = []
        self._pending: dict[str, _Pending] = {}
        self._deliveries: list[_Pending] = []
        self._stray: list[JsonDict] = []
        self._refused: list[str] = []
        self._numbers = itertools.count(1)
        self._turn = itertools.count()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> SocketModeServer:
        if self._listener is not None:
            return self
        listener = socket.create_server((self._host, self._port), backlog=64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), name="slack-socket", daemon=True)
        self._thread.start()
        self.slack.attach_socket_mode(self.open_url)
        return self

    def stop(self) -> None:
        self.slack.attach_socket_mode(None)
        listener, self._listener = self._listener, None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if listener is not None:
            listener.close()
        for connection in self._open():
            connection.close(CLOSE_GOING_AWAY, "server shutting down")

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("the Socket Mode stand-in is not started")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def open_url(self, app_id: str) -> str:
        """A new single-use WebSocket URL for ``app_id`` (what ``apps.connections.open`` answers)."""
        host, port = self.address
        ticket = secrets.token_urlsafe(18)
        with self._lock:
            self._tickets[ticket] = app_id
        return f"ws://{host}:{port}/link/?ticket={ticket}&app_id={app_id}"

    # -- what Slack does -------------------------------------------------------------------------------

    def deliver(
        self,
        kind: str,
        payload: JsonDict,
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 10.0,
    ) -> SocketDelivery:
        """Send one ``kind`` envelope (``slash_commands``, ``interactive``, ``events_api``) to an open
        connection and wait up to ``timeout`` seconds for its acknowledgement."""
        envelope: JsonDict = {
            "envelope_id": str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        with self._lock:
            candidates = [c for c in self._open() if not c.draining]
            if not candidates:
                raise NotConnected("no open Socket Mode connection: is the app running in Socket Mode?")
            connection = candidates[next(self._turn) % len(candidates)]
            pending = _Pending(envelope, connection.id, time.monotonic())
            self._pending[envelope["envelope_id"]] = pending
            self._deliveries.append(pending)
        # A connection that goes as we send will never ack; the wait below then times out, as with Slack.
        with contextlib.suppress(OSError):
            connection.send_json(envelope)
        pending.done.wait(timeout)
        with self._lock:
            self._pending.pop(envelope["envelope_id"], None)
            return pending.result()

    def disconnect(self, reason: str = "refresh_requested", *, close_after: float = 1.0) -> list[int]:
        """Tell every open connection to reconnect (``{"type": "disconnect", "reason": …}``), then close
        them ``close_after`` seconds later, as Slack does when it refreshes or disables a link."""
        connections = self._open()
        for connection in connections:
            connection.draining = True
            with contextlib.suppress(OSError):
                connection.send_json({"type": "disconnect", "reason": reason,
                                      "debug_info": {"host": f"applink-stand-in-{connection.id}"}})  # fmt: skip
        closer = threading.Timer(close_after, self._close_all, args=(connections,))
        closer.daemon = True
        closer.start()
        return [c.id for c in connections]

    def close_connections(self, code: int = CLOSE_GOING_AWAY) -> list[int]:
        """Close every open connection at once, without a ``disconnect`` first (Slack restarting)."""
        connections = self._open()
        self._close_all(connections, code)
        return [c.id for c in connections]

    # -- the record ------------------------------------------------------------------------------------

    def connections(self) -> list[ConnectionInfo]:
        with self._lock:
            return [c.info() for c in self._connections]

    def open_connections(self) -> list[ConnectionInfo]:
        return [c for c in self.connections() if c.open]

    def deliveries(self) -> list[SocketDelivery]:
        with self._lock:
            return [p.result() for p in self._deliveries if p.envelope["envelope_id"] not in self._pending]

    def stray_acks(self) -> list[JsonDict]:
        """Messages from the app that acknowledged no envelope Slack was waiting for."""
        with self._lock:
            return list(self._stray)

    def refused_handshakes(self) -> list[str]:
        """Why each refused upgrade was refused (a used ticket, a missing key, …)."""
        with self._lock:
            return list(self._refused)

    def wait_for_connections(self, count: int = 1, timeout: float = 10.0, *, after: int = 0) -> list[ConnectionInfo]:
        """Until ``count`` connections numbered above ``after`` are open; returns them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c.info() for c in self._connections if c.open and c.id > after]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {count} Socket Mode connection(s)")
                self._changed.wait(left)

    # -- the wire --------------------------------------------------------------------------------------

    def _open(self) -> list[_Connection]:
        with self._lock:
            return [c for c in self._connections if c.open]

    def _close_all(self, connections: list[_Connection], code: int = CLOSE_NORMAL) -> None:
        for connection in connections:
            connection.close(code, "disconnected")
        with self._changed:
            self._changed.notify_all()

    def _accept_loop(self, listener: socket.socket) -> None:
        # A short accept timeout: closing a listening socket does not wake a thread blocked in accept().
        listener.settimeout(0.05)
        while self._listener is listener:
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # stopped
            sock.settimeout(None)
            threading.Thread(target=self._serve, args=(sock,), name="slack-socket-conn", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            app_id = self._handshake(sock)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                sock.close()
            return
        if app_id is None:
            return
        with self._changed:
            connection = _Connection(self, next(self._numbers), sock, app_id)
            self._connections.append(connection)
            open_count = len(self._open())
        try:
            connection.send_json({
                "type": "hello",
                "num_connections": open_count,
                "debug_info": {"host": f"applink-stand-in-{connection.id}", "build_number": 1,
                               "approximate_connection_time": 18060},
                "connection_info": {"app_id": app_id},
            })  # fmt: skip
        except OSError:
            connection.open = False
        with self._changed:
            self._changed.notify_all()
        connection.run()
        with self._changed:
            self._changed.notify_all()

    def _handshake(self, sock: socket.socket) -> str | None:
        """Read the upgrade request; answer 101 and return the ticket's app id, or refuse and return None."""
        sock.settimeout(5)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(4096)
            if not chunk or len(raw) > MAX_HANDSHAKE_BYTES:
                raise ValueError("no complete upgrade request")
            raw += chunk
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        request_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts = request_line.split(" ")
        problem, status = None, 400
        target = urlsplit(parts[1]) if len(parts) == 3 else None
        key = headers.get("sec-websocket-key", "")
        if target is None or parts[0] != "GET" or not parts[2].startswith("HTTP/1.1"):
            problem = "not an HTTP/1.1 GET"
        elif (
            headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower()
        ):
            problem = "no Upgrade: websocket"
        elif headers.get("sec-websocket-version") != "13":
            problem, status = "Sec-WebSocket-Version is not 13", 426
        elif not _is_websocket_key(key):
            problem = "Sec-WebSocket-Key is not 16 bytes in base64"
        elif target.path.rstrip("/") != "/link":
            problem, status = f"no such path {target.path}", 404
        app_id = None
        if problem is None and target is not None:
            ticket = (parse_qs(target.query).get("ticket") or [""])[0]
            with self._lock:
                app_id = self._tickets.pop(ticket, None)  # single use
            if app_id is None:
                problem, status = "unknown or used ticket", 401
        if problem is not None or app_id is None:
            with self._lock:
                self._refused.append(problem or "refused")
            body = (problem or "refused").encode()
            reason = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 426: "Upgrade Required"}[status]
            extra = "Sec-WebSocket-Version: 13\r\n" if status == 426 else ""
            sock.sendall(f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)  # fmt: skip
            sock.close()
            return None
        sock.sendall(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
        )
        sock.settimeout(None)
        return app_id

    def _received(self, connection: _Connection, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        with self._lock:
            pending = self._pending.get(envelope_id) if isinstance(envelope_id, str) else None
            if pending is None or pending.done.is_set() or pending.connection_id != connection.id:
                # Slack takes an ack only once, and only on the connection the envelope went out on.
                self._stray.append(message if isinstance(message, dict) else {"raw": raw.decode("utf-8", "replace")})
                return
            assert isinstance(message, dict)
            pending.ack, pending.acked_at = message, time.monotonic()
            pending.done.set()


def _is_websocket_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False


@dataclass(frozen=True)
class SocketReply(AppReply):
    """An ``AppReply`` read off the socket: status 200 with the ack's payload as the body once the
    envelope is acknowledged, 504 when no acknowledgement came in time."""

    envelope_id: str
    delivery: SocketDelivery


class SocketModeSender(SlackSender):
    """``SlackSender``'s person-level methods (``slash_command``, ``click``, ``click_home``,
    ``submit_view``, ``open_home``) delivered over Socket Mode instead of signed HTTP.

    What Slack does with the answer is applied to the double exactly as for HTTP (a command's reply
    shown, a modal kept open on ``response_action: errors``). There is no signature to forge over a
    socket (it was authenticated by the app-level token when it opened), so ``send`` refuses."""

    def __init__(self, server: SocketModeServer, slack: SlackApiDouble | None = None, **kwargs: Any) -> None:
        host, port = server.address
        super().__init__(f"ws://{host}:{port}/link/", "", slack or server.slack, **kwargs)
        self.server = server

    def send(self, body: bytes | str, content_type: str, **kwargs: Any) -> AppReply:
        raise TypeError("Socket Mode carries envelopes, not signed HTTP: use deliver() or a person's action")

    def url_verification(self, challenge: str) -> AppReply:
        raise TypeError("Socket Mode has no Request URL to verify")

    def deliver(self, kind: str, payload: JsonDict, *, accepts_response_payload: bool, **kwargs: Any) -> SocketReply:
        delivery = self.server.deliver(
            kind, payload, accepts_response_payload=accepts_response_payload, timeout=self.timeout, **kwargs
        )
        answer = delivery.response_payload
        body = json.dumps(answer).encode() if answer else b""
        headers = {"content-type": "application/json"} if answer else {}
        status = 200 if delivery.acked else 504
        return SocketReply(status, headers, body, delivery.elapsed, delivery.envelope_id, delivery)

    def send_form(self, fields: Mapping[str, str], **kwargs: Any) -> AppReply:
        """A slash command: the same fields as Slack's form post, as a JSON object."""
        _no_http_options(kwargs)
        return self.deliver("slash_commands", dict(fields), accepts_response_payload=True)

    def send_interaction(self, payload: JsonDict, **kwargs: Any) -> AppReply:
        _no_http_options(kwargs)
        kind = str(payload.get("type"))
        return self.deliver("interactive", payload, accepts_response_payload=kind in _ACCEPTS_PAYLOAD)

    def send_event(
        self, event: JsonDict, *, event_id: str | None = None, retry_num: int | None = None, **kwargs: Any
    ) -> AppReply:
        _no_http_options(kwargs)
        envelope = self.event_callback(event, event_id=event_id)
        return self.deliver(
            "events_api",
            envelope,
            accepts_response_payload=False,
            retry_attempt=retry_num,
            retry_reason="timeout" if retry_num else None,
        )


def _no_http_options(kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"Socket Mode has no {sorted(kwargs)}: those are HTTP delivery options")


def iter_messages(info: ConnectionInfo, kind: str) -> Iterator[JsonDict]:
    """What Slack sent on a connection, of one ``type`` (``hello``, ``disconnect``, an envelope type)."""
    return (m for m in info.messages if m.get("type") == kind)
