"""The worker process: an RQ worker with its scheduler, the sweep and expiry clocks beside it, and
(with BREAKGLASS_AUDIT_SINK) the loop copying the audit log to its sink."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rq import SimpleWorker

from bot.settings import Settings
from bot.store.audit_sink import SinkProgressStore
from workers.audit_sink import SinkClock
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
    clocks: list[SweepClock | ExpiryClock | SinkClock] = [SweepClock(context), ExpiryClock(context)]
    if context.shipper is not None:
        core = context.core
        progress = SinkProgressStore(core.redis, core.settings.key_prefix)
        clocks.append(SinkClock(context.shipper, progress, core.metrics, core.redis, core.settings.key_prefix))
    for clock in clocks:
        clock.start()
    try:
        worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
    finally:
        for clock in clocks:
            clock.stop()
