"""Starting the processes: the web app under gunicorn, Socket Mode, and ``serve`` (all in one)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.settings import Settings

log = logging.getLogger(__name__)


def run_web(settings: Settings, workers: int = 2, threads: int = 8) -> None:
    """The Procfile's ``web:``: gunicorn on 0.0.0.0:$PORT. In Socket Mode one worker holds the socket
    (two would each receive every event) and still serves health, metrics and the audit webhook."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    from bot.logs import JsonFormatter

    socket_mode = settings.socket_mode

    class JsonLogger(Logger):
        """gunicorn's own lines (start, worker boot and exit, timeouts) as JSON, like every other line."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())

    class Web(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"0.0.0.0:{settings.port}",
                "workers": 1 if socket_mode else workers,
                "worker_class": "gthread",
                "threads": threads,
                "timeout": 30,
                "graceful_timeout": 20,
                "accesslog": None,
                "logger_class": JsonLogger,
                "post_worker_init": _start_socket_mode if socket_mode else None,
            }
            # gunicorn 27's runtime control socket is a management interface we do not use; off,
            # it is one less thing listening, and several web processes on one host do not collide.
            if "control_socket_disable" in self.cfg.settings:
                options["control_socket_disable"] = True
            for key, value in options.items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Callable[..., Any]:
            from bot.web import create_wsgi_app

            return create_wsgi_app(settings)

    Web().run()


def _start_socket_mode(worker: Any) -> None:
    from bot.settings import load_settings

    start_socket_mode(load_settings())


def start_socket_mode(settings: Settings) -> Any:
    """Connect to Slack over Socket Mode in the background; returns the handler."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.slack.app import create_app
    from bot.wiring import build_core

    assert settings.slack_app_token is not None
    handler = SocketModeHandler(create_app(settings, build_core(settings)), settings.slack_app_token.get_secret_value())
    handler.connect()
    log.info("connected to Slack in Socket Mode")
    return handler


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def serve_in_thread(app: Callable[..., Any], host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """A threaded WSGI server in the background, for ``serve`` and the demo (not the Procfile's web)."""
    server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="breakglass-web", daemon=True)
    thread.start()
    return server, thread


def run_all_in_one(settings: Settings) -> None:
    """``breakglass serve``: web, worker, scheduler and sweep in one process, for small installations."""
    from bot.web import create_wsgi_app
    from bot.wiring import build_core
    from workers.context import build_worker_context
    from workers.main import run_worker

    core = build_core(settings)
    if settings.socket_mode:
        start_socket_mode(settings)
    server, _ = serve_in_thread(create_wsgi_app(settings, core), "0.0.0.0", settings.port)  # noqa: S104
    log.info("serving", extra={"port": settings.port, "socket_mode": settings.socket_mode})
    try:
        run_worker(settings, build_worker_context(settings, core=core))
    finally:
        server.shutdown()
