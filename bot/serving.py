"""Starting the processes: the web app under gunicorn, Socket Mode, and ``serve`` (web and worker).

``serve`` runs the same gunicorn as ``web`` (never a development server) in a child process of its
own process group, and the worker in the parent. It must not leave either half running alone: when
the web server dies the worker stops, and when serve stops (or dies) the web server follows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
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
                "post_worker_init": _hold_socket(settings) if socket_mode else None,
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


def _hold_socket(settings: Settings) -> Callable[[Any], None]:
    def post_worker_init(worker: Any) -> None:
        _socket.append(start_socket_mode(settings))

    return post_worker_init


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


def run_all_in_one(settings: Settings, slack_refuses: Callable[[], bool] | None = None) -> int:
    """``breakglass serve``: web, worker, scheduler and sweep for small installations. Returns the exit
    status: 0 after a stop signal, 1 when the web server died under it.

    Why a child process and not a server thread: gunicorn's arbiter must own a process (it forks its
    workers and handles signals in its main thread), and so must RQ's worker (it stops on SIGTERM in
    its main thread); a stdlib server in a thread would mean HTTP/1.0, no request timeouts and a
    thread per connection. So the child runs exactly what ``web`` runs (one gthread worker with
    SERVE_WEB_THREADS threads: bounded; HTTP/1.1, idle keep-alive connections closed after 2 s; a
    client that sends nothing holds no thread, and one that stalls mid-request holds one for at most
    ``bot.slow_clients.REQUEST_READ_SECONDS`` before its connection is dropped), and this process
    runs the worker. The cost: two processes (and gunicorn's worker a third) instead of one.

    Revocation never depends on Slack: the worker (revokes, the sweep) starts at once, whatever
    Slack says; only the web half waits, asking ``slack_refuses`` again with a growing pause until
    Slack accepts the token, while the worker runs.
    """
    from bot.wiring import build_core
    from workers.context import build_worker_context
    from workers.main import run_worker

    parent = os.getpid()
    main_thread = threading.get_ident()  # serve runs in the main thread; signal handlers run there
    stop_before_rq = threading.Event()  # a stop signal that came before RQ's worker could take it

    def stop_asked_early(signum: int, frame: Any) -> None:
        if os.getpid() != parent:
            # A process forked before its own handlers exist (RQ's scheduler, which RQ stops with
            # SIGTERM): the signal does what it would have done without this handler.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop_before_rq.set()

    # Installed before the fork and before RQ installs its own: until then a SIGTERM (from the
    # platform, or from the web watcher below) would kill this process outright, leaving RQ's
    # scheduler running alone once it is forked; now it is remembered and RQ's worker stops at once.
    previous = {signum: signal.signal(signum, stop_asked_early) for signum in (signal.SIGTERM, signal.SIGINT)}

    def as_before_in_a_child() -> None:
        # Every process forked from here (the web server; RQ's scheduler, forked while other threads
        # may hold stdout's lock) starts with the dispositions it would have had: a Python handler
        # cannot run in a child stuck on an inherited lock, and SIGTERM must still end it.
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    os.register_at_fork(after_in_child=as_before_in_a_child)
    child = os.fork()  # before any client or thread exists here: nothing is shared across the fork
    if child == 0:
        _web_child(settings, parent, slack_refuses)  # never returns; gunicorn installs its own handlers
    stopping = threading.Event()
    web_died = threading.Event()
    worker: list[Any] = []  # RQ's worker, once it exists: whether it was asked to stop already

    def asked_to_stop() -> bool:
        # rq records the first stop signal's time; a second SIGTERM would be a cold stop, killing the
        # job at hand, so the worker is only told once.
        return stop_before_rq.is_set() or (
            bool(worker) and getattr(worker[0], "_shutdown_requested_date", None) is not None
        )

    def watch_web() -> None:
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        if stopping.is_set():
            return
        if code == 0 and asked_to_stop():
            log.info("the web server stopped")  # the signal that stopped it reached us too (a group)
            return
        # The worker alone would take requests nobody can approve: stop it (warm, through RQ's SIGTERM
        # handling), so the platform restarts serve whole. Also when the web server was stopped on
        # its own (a SIGTERM sent to it alone): serve never runs half.
        log.error("the web server exited with status %s; stopping the worker", code)
        web_died.set()
        if not asked_to_stop():
            # To the main thread itself: Python runs signal handlers only there, and a signal sent to
            # the process may be delivered to another thread, leaving the main thread blocked in
            # RQ's BLPOP (up to its dequeue timeout, minutes) before the handler runs.
            signal.pthread_kill(main_thread, signal.SIGTERM)

    def honour_an_early_stop(rq_worker: Any) -> None:
        """RQ installs its handlers inside ``work()``, after forking its scheduler; a stop asked for
        before then is handed to the worker as RQ's own handler would (a warm stop before any job),
        so its loop ends at its first turn and its teardown stops the scheduler."""
        worker.append(rq_worker)
        install = rq_worker._install_signal_handlers

        def install_then_take_earlier_stop() -> None:
            install()
            if stop_before_rq.is_set():
                rq_worker._shutdown_requested_date = datetime.now(UTC)
                rq_worker._stop_requested = True

        rq_worker._install_signal_handlers = install_then_take_earlier_stop

    watcher = threading.Thread(target=watch_web, name="breakglass-web-watch", daemon=True)
    watcher.start()
    log.info("serving", extra={"port": settings.port, "socket_mode": settings.socket_mode})
    try:
        run_worker(settings, build_worker_context(settings, core=build_core(settings)), on_start=honour_an_early_stop)
    finally:
        stopping.set()
        for signum in previous:
            signal.signal(signum, stop_asked_early)  # RQ's handlers would raise into this block
        if watcher.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
            watcher.join(WEB_STOP_SECONDS)
        if watcher.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            watcher.join(5)
    return 1 if web_died.is_set() else 0


def _web_child(settings: Settings, parent: int, slack_refuses: Callable[[], bool] | None = None) -> None:
    """The forked child of ``serve``: gunicorn, as ``web`` runs it, until it stops or serve is gone."""
    code = 1
    arbiter = os.getpid()  # gunicorn forks its workers from inside run_web: they unwind through here too
    try:

        def follow_parent() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            log.warning("serve is gone; stopping its web server")
            os.kill(os.getpid(), signal.SIGTERM)  # gunicorn's graceful stop

        threading.Thread(target=follow_parent, name="breakglass-parent-watch", daemon=True).start()
        pause = 1.0
        while slack_refuses is not None and slack_refuses():
            # Said on stderr by slack_refuses, one line each time; the worker runs meanwhile.
            time.sleep(pause)
            pause = min(pause * 2, SLACK_RETRY_MAX_SECONDS)
        run_web(settings, workers=1, threads=SERVE_WEB_THREADS)
        code = 0
    except SystemExit as exc:  # gunicorn's arbiter, and each worker it forks, end with sys.exit
        if os.getpid() != arbiter:
            # A gunicorn worker ends as it does under `web`: a normal interpreter exit, which waits
            # for Bolt's listeners still working after their ack. No frame above this one runs
            # anything on the way out (the fork in run_all_in_one is outside its try).
            raise
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        if os.getpid() != arbiter:
            raise
        log.exception("the web server failed")
    logging.shutdown()
    os._exit(code)  # never back into the parent's stack (the worker's code) in this process
