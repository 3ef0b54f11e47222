"""Starting the processes: the web app under gunicorn, Socket Mode, and ``serve`` (web and worker).

``serve`` runs the worker in its own process and the same gunicorn as ``web`` (never a development
server) in a child process of its process group. Revocation never depends on the web half: when the
web server dies the worker keeps running and the web server is started again; when serve stops (or
dies) the web server follows.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def run_web(settings: Settings, workers: int = 2, threads: int = 8) -> None:
    """The Procfile's ``web:``: gunicorn on 0.0.0.0:$PORT. In Socket Mode one worker holds the socket
    (opened once it has booted, closed as it exits) and still serves health, metrics and the audit
    webhook; more web processes each hold one, and Slack gives every envelope to one of them."""
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
                "bind": f"{settings.web_host}:{settings.port}",
                "workers": 1 if socket_mode else workers,
                # gthread with a deadline for reading each request: a slow client is dropped instead
                # of holding one of the few threads (bot/slow_clients.py).
                "worker_class": "bot.slow_clients.DeadlineWorker",
                "threads": threads,
                "timeout": 30,
                "graceful_timeout": 20,
                "accesslog": None,
                "logger_class": JsonLogger,
                "post_worker_init": _ready_to_serve(settings),
                "worker_exit": _let_go_of_socket if socket_mode else None,
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


_socket: list[Any] = []  # the gunicorn worker's Socket Mode handler, so that its exit can close it


def _ready_to_serve(settings: Settings) -> Callable[[Any], None]:
    """Run in each gunicorn worker once its app is built, before it serves: in Socket Mode, open the
    socket; then ``freeze_startup_objects``."""

    def post_worker_init(worker: Any) -> None:
        if settings.socket_mode:
            _socket.append(start_socket_mode(settings))
        freeze_startup_objects()

    return post_worker_init


def freeze_startup_objects() -> None:
    """Move everything built so far (imported modules, the app, its clients: some 80,000 objects) out
    of the cyclic garbage collector's sight. They live as long as the process, yet each full collection
    walked them all: on the loaded benchmark machine that took 70-200 ms, during which the worker
    answered nothing, once every few hundred Slack requests, so it set the ack's p99 (``bench_scale
    --only ack``). Frozen, a full collection walks only what requests made since. Reference counting
    still frees a frozen object once it is dropped; only a dropped reference cycle among them is never
    collected, and what a worker builds at start lives as long as the worker."""
    gc.collect()
    gc.freeze()


def _let_go_of_socket(server: Any, worker: Any) -> None:
    """The worker is exiting (SIGTERM, a restart): close the socket, so Slack sends the next envelope to
    a connection that will answer it. Envelopes already being handled are answered first (the client
    waits for its workers), and listeners still working after their ack finish before the process exits."""
    while _socket:
        _socket.pop().close()
    log.info("Socket Mode connection closed")


def start_socket_mode(settings: Settings) -> Any:
    """Connect to Slack over Socket Mode in the background; returns the handler (``close()`` ends it).
    A token Slack refuses raises ``SlackStartupError`` naming SLACK_APP_TOKEN."""
    from bot.app import connect_socket_mode, create_app
    from bot.wiring import build_core

    if settings.slack_app_token is None:
        raise SettingsError("SLACK_APP_TOKEN: is required for Socket Mode")
    handler = connect_socket_mode(create_app(settings, build_core(settings)), settings.slack_app_token)
    log.info("connected to Slack in Socket Mode")
    return handler


SERVE_WEB_THREADS = 8
WEB_STOP_SECONDS = 30  # gunicorn's graceful_timeout (20 s) and then some

# How long serve's web half waits at most between two asks whether Slack accepts the bot token.
SLACK_RETRY_MAX_SECONDS = 60.0
# A web half that ends while serve is not stopping is started again after a pause that doubles each
# time it ends again, up to WEB_RESTART_MAX_SECONDS, and starts over once a web half has served for
# WEB_HEALTHY_SECONDS: a web server that cannot start (its port taken, a bad token) does not spin.
WEB_RESTART_FIRST_SECONDS = 1.0
WEB_RESTART_MAX_SECONDS = 60.0
WEB_HEALTHY_SECONDS = 60.0


def slack_refuses(settings: Settings) -> bool:
    """Ask Slack once whether it accepts the bot token (and, in Socket Mode, the app-level token), as
    ``web`` and serve's web half both must: a bad one is one line on stderr instead of every request,
    or every gunicorn worker, failing."""
    from bot.app import SlackStartupError, verify_app_token, verify_token
    from bot.domain.roster import load_roster_file
    from bot.slack.client import SlackApi

    try:
        slack = SlackApi.connect(settings.slack_bot_token, settings.slack_api_url)
        verify_token(slack, load_roster_file(settings.roster_path))
        if settings.slack_app_token is not None:
            verify_app_token(slack, settings.slack_app_token)
    except SlackStartupError as exc:
        print(exc, file=sys.stderr)
        return True
    return False


def run_all_in_one(settings: Settings) -> int:
    """``breakglass serve``: web, worker, scheduler and sweep for small installations. Returns 0 once a
    stop signal (SIGTERM, SIGINT) has stopped both halves.

    Revocation never depends on Slack or on the web server: this process runs the worker (revokes,
    the sweep) from the start and until it is told to stop, whatever the web half does. The web half
    is a child process running what ``web`` runs (gunicorn, one gthread worker with SERVE_WEB_THREADS
    threads: HTTP/1.1, request read deadlines from ``bot.slow_clients``); it waits for Slack to accept
    the token, and whenever it ends without serve being stopped it is started again, after a pause
    that grows while it keeps ending (``_WebHalf``).

    Why a child process and not a server thread: gunicorn's arbiter must own a process (it forks its
    workers and handles signals in its main thread), and so must RQ's worker (it stops on SIGTERM in
    its main thread). Why a fresh interpreter (``python -m bot.serving``) and not a fork: a restart
    happens while this process has threads (the sweep clock, Redis connections, RQ), and a fork
    taken then could inherit a lock some other thread held. The cost: three processes, not one.
    """
    from bot.wiring import build_core
    from workers.context import build_worker_context
    from workers.main import run_worker

    parent = os.getpid()
    stop = threading.Event()  # serve was told to stop (or its worker ended): the web half is not restarted

    def stop_asked(signum: int, frame: Any) -> None:
        if os.getpid() != parent:
            # A process forked before its own handlers exist (RQ's scheduler, which RQ stops with
            # SIGTERM): the signal does what it would have done without this handler.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop.set()

    # Installed before RQ installs its own: until then a SIGTERM (from the platform) would kill this
    # process outright, leaving RQ's scheduler running alone once it is forked; now it is remembered
    # and RQ's worker stops at once.
    previous = {signum: signal.signal(signum, stop_asked) for signum in (signal.SIGTERM, signal.SIGINT)}

    def as_before_in_a_child() -> None:
        # RQ's scheduler, forked while other threads may hold stdout's lock, starts with the
        # dispositions it would have had: a Python handler cannot run in a child stuck on an
        # inherited lock, and SIGTERM must still end it.
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    os.register_at_fork(after_in_child=as_before_in_a_child)

    def hand_stops_to_rq(rq_worker: Any) -> None:
        """RQ installs its handlers inside ``work()``, after forking its scheduler. Each is wrapped so
        that a stop signal also stops the web half's restarts, and a stop asked for before then is
        handed to the worker as RQ's own handler would (a warm stop before any job), so its loop ends
        at its first turn and its teardown stops the scheduler."""
        install = rq_worker._install_signal_handlers

        def install_then_take_earlier_stop() -> None:
            install()
            for signum in previous:
                handle = signal.getsignal(signum)
                if callable(handle):
                    signal.signal(signum, _also_setting(stop, handle))
            if stop.is_set():
                rq_worker._shutdown_requested_date = datetime.now(UTC)
                rq_worker._stop_requested = True

        rq_worker._install_signal_handlers = install_then_take_earlier_stop

    web = _WebHalf(parent, stop)
    web.start()
    log.info("serving", extra={"port": settings.port, "socket_mode": settings.socket_mode})
    try:
        run_worker(settings, build_worker_context(settings, core=build_core(settings)), on_start=hand_stops_to_rq)
    finally:
        stop.set()
        for signum in previous:
            signal.signal(signum, stop_asked)  # RQ's handlers would raise into this block
        web.stop()
    return 0


def _also_setting(stop: threading.Event, handle: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
    def handler(signum: int, frame: Any) -> Any:
        stop.set()
        return handle(signum, frame)

    return handler


class _WebHalf:
    """serve's web server, in a child process of serve's process group, started again whenever it
    ends while serve is not stopping. ``stop()`` ends it (gunicorn's graceful stop, then SIGKILL)."""

    def __init__(self, parent: int, stop: threading.Event) -> None:
        self._parent = parent
        self._stop = stop
        self._lock = threading.Lock()  # a child is started only while serve is not stopping
        self._child: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._supervise, name="breakglass-web-half", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _supervise(self) -> None:
        pause = WEB_RESTART_FIRST_SECONDS
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                self._child = subprocess.Popen([sys.executable, "-m", "bot.serving", str(self._parent)])  # noqa: S603
            started = time.monotonic()
            code = self._child.wait()
            if self._stop.is_set():
                log.info("the web server stopped")
                return
            if time.monotonic() - started >= WEB_HEALTHY_SECONDS:
                pause = WEB_RESTART_FIRST_SECONDS
            log.error(
                "the web server exited with status %s; the worker keeps running; starting the web server "
                "again in %.0f s",
                code,
                pause,
            )
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, WEB_RESTART_MAX_SECONDS)

    def stop(self) -> None:
        """Called once serve's stop event is set: no child starts after this takes the lock."""
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()  # gunicorn's graceful stop
            try:
                child.wait(WEB_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        self._thread.join(5)


def _web_half(parent: int) -> int:
    """The child serve runs as its web half: wait until Slack accepts the token, then gunicorn as
    ``web`` runs it (one worker), until it stops or serve is gone."""
    from bot.logs import configure
    from bot.settings import load_settings

    try:
        settings = load_settings(process="web")
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure()

    def follow_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        log.warning("serve is gone; stopping its web server")
        os.kill(os.getpid(), signal.SIGTERM)  # gunicorn's graceful stop (before it starts: the default, an exit)

    threading.Thread(target=follow_parent, name="breakglass-parent-watch", daemon=True).start()
    pause = 1.0
    while slack_refuses(settings):
        # Said on stderr by slack_refuses, one line each time; the worker runs meanwhile.
        time.sleep(pause)
        pause = min(pause * 2, SLACK_RETRY_MAX_SECONDS)
    run_web(settings, workers=1, threads=SERVE_WEB_THREADS)  # gunicorn's arbiter ends with sys.exit
    return 0


if __name__ == "__main__":
    sys.exit(_web_half(int(sys.argv[1])))
