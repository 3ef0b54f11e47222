"""The worker process: an RQ worker with its scheduler, and the sweep and expiry clocks beside it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rq import SimpleWorker

from bot.settings import Settings
from workers.context import WorkerContext, build_worker_context, install
from workers.expiry import ExpiryClock
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
    clocks = (SweepClock(context), ExpiryClock(context))
    for clock in clocks:
        clock.start()
    try:
        worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
    finally:
        for clock in clocks:
            clock.stop()
