"""Starting and stopping a stand-in's HTTP(S) server on a thread of its own: not part of the product.

The OIDC provider and Okta stand-ins answer with their own handlers (Okta sends ``Link`` twice, which
``bot.standins.rest``'s one-value headers cannot); HTTPS uses the process's stand-in CA (``bot.standins.tls``).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bot.standins.tls import LocalCa


def serve(
    handler: type[BaseHTTPRequestHandler], host: str, port: int, name: str, tls: LocalCa | None = None
) -> ThreadingHTTPServer:
    """A server answering with ``handler`` on ``host:port`` (0: any free port), over HTTPS with ``tls``."""
    server = ThreadingHTTPServer((host, port), handler)
    if tls is not None:
        server.socket = tls.server_context().wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True).start()
    return server


def shut(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
