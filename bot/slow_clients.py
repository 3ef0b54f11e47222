"""The web server's defence against slow clients: every request is read within a deadline, or dropped.

gunicorn's gthread worker gives each request a thread of a fixed pool, and that thread blocks while it
reads the request's headers and then (in the app) its body. A client that sends its headers and one
byte of a promised body, and then nothing, holds that thread for as long as it keeps the connection
open; a handful of them stop the worker answering anything, ``/healthz`` included. gunicorn 27 only
bounds the wait for a connection's *first* byte.

``DeadlineWorker`` adds the missing bound: from the moment a worker thread takes a request, the client
has ``REQUEST_READ_SECONDS`` to deliver the headers and the whole body. The app says when it has read
the request (``done_reading``); a request still being read at its deadline has its connection shut
down, which ends the blocked read at once (gunicorn treats it as a client that went away). Slack needs
an answer within 3 s anyway, and the API server's audit webhook posts from inside the cluster network,
so a client slower than this is not one we serve.

What this does not do: bound the time the app itself takes after reading (gunicorn's ``timeout`` and
the listeners' own limits do), or buffer requests in front of the server (a proxy would; see
deploy/README.md for the one we recommend in front of the web process).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import MutableMapping
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)

REQUEST_READ_SECONDS = 10.0
PICKUP_GRACE_SECONDS = 1.0
_WATCH_INTERVAL = 0.1

_reading: dict[int, tuple[socket.socket, float]] = {}  # id(socket) -> (socket, deadline)
_lock = threading.Lock()


def done_reading(environ: MutableMapping[str, Any]) -> None:
    """The app has read the whole request (headers, and the body if it wants one): the deadline no
    longer applies to this connection's request. Harmless outside ``DeadlineWorker``."""
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        with _lock:
            _reading.pop(id(sock), None)


def _watch() -> None:
    while True:
        time.sleep(_WATCH_INTERVAL)
        now = time.monotonic()
        with _lock:
            late = [key for key, (_, deadline) in _reading.items() if deadline <= now]
            dropped = [_reading.pop(key)[0] for key in late]
        for sock in dropped:
            # shutdown, not close: the thread blocked in recv() wakes with end-of-stream and gunicorn
            # closes the socket itself as for any client that went away.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            log.warning("a client did not send its request within %.0f s; connection dropped", REQUEST_READ_SECONDS)


class DeadlineWorker(ThreadWorker):
    """gthread, with a deadline for reading each request (see the module docstring).

    The deadline runs from the moment the request is queued for a thread, not from when a thread
    takes it: otherwise slow clients queued behind slow clients would each get a fresh deadline and
    a request queued behind them all would wait for every one in turn. A request whose turn comes
    after its deadline still gets ``PICKUP_GRACE_SECONDS``, enough to read one already sent."""

    def run(self) -> None:
        threading.Thread(target=_watch, name="breakglass-read-deadline", daemon=True).start()
        super().run()

    def enqueue_req(self, conn: Any) -> None:
        conn.breakglass_deadline = time.monotonic() + REQUEST_READ_SECONDS
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        sock = conn.sock
        queued = getattr(conn, "breakglass_deadline", None)
        deadline = max(queued or 0.0, time.monotonic() + PICKUP_GRACE_SECONDS)
        with _lock:
            _reading[id(sock)] = (sock, deadline)
        try:
            return super().handle(conn)
        finally:
            with _lock:
                _reading.pop(id(sock), None)
