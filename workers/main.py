"""The worker process: an RQ worker with its scheduler, and the sweep clock beside it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rq import SimpleWorker

from bot.settings import Settings
from workers.context import WorkerContext, build_worker_context, install
from workers.sweeper import SweepClock

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings,
    context: WorkerContext | None = None,
    burst: bool = False,
    on_start: Callable[[SimpleWorker], None] | None = None,
) -> None:
    context = context or build_worker_context(settings)
    install(context)
    jobs = context.core.jobs
    worker = jobs.worker()
    if on_start is not None:
        on_start(worker)
    clock = SweepClock(context)
    clock.start()
    try:
        worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
    finally:
        clock.stop()
