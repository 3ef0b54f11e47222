"""The reconcile sweep's trigger: about once per interval cluster-wide, one sweep at a time.

Every worker process runs a ``SweepClock`` thread. Each tick it tries to claim the current interval
(a key that lives one interval); whoever claims it sweeps, under a lock it renews while working. The
clock lives in the worker process rather than in RQ's scheduler on purpose: RQ's scheduler lock
outlives a SIGKILLed holder by a minute, and the sweep is what must still run when things die.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

import redis

from bot.services.reconcile import SweepReport
from workers.context import WorkerContext

log = logging.getLogger(__name__)


class SweepLock:
    def __init__(self, client: redis.Redis, prefix: str, ttl: timedelta) -> None:
        self.redis = client
        self.key = f"{prefix}:sweep:running"
        self.ttl_ms = max(int(ttl.total_seconds() * 1000), 1000)
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(self.key)
                if pipe.get(self.key) == self.token:
                    pipe.multi()
                    pipe.delete(self.key)
                    pipe.execute()
            except redis.WatchError:
                pass


def sweep_once(context: WorkerContext) -> SweepReport | None:
    """Sweep now unless another process is sweeping. None when skipped."""
    core = context.core
    lock = SweepLock(core.redis, core.settings.key_prefix, core.settings.sweep_interval * 2)
    if not lock.acquire():
        return None
    try:
        report = context.reconciler.sweep()
    finally:
        lock.release()
    if report.corrections or report.unreachable or report.timed_out:
        log.info(
            "sweep corrected state",
            extra={
                "deleted": report.deleted,
                "expired": report.expired,
                "timed_out": report.timed_out,
                "rescheduled": report.rescheduled,
                "regranted": report.regranted,
                "adopted": report.adopted,
                "unreachable": report.unreachable,
            },
        )
    return report


class SweepClock(threading.Thread):
    def __init__(self, context: WorkerContext) -> None:
        super().__init__(name="breakglass-sweep", daemon=True)
        self.context = context
        self.interval = context.core.settings.sweep_interval
        self.stopped = threading.Event()

    def claim_interval(self) -> bool:
        core = self.context.core
        key = f"{core.settings.key_prefix}:sweep:due"
        # Slightly shorter than the interval so the next tick after it lapses can claim it.
        ttl_ms = max(int(self.interval.total_seconds() * 1000) - 100, 500)
        return bool(core.redis.set(key, "1", nx=True, px=ttl_ms))

    def tick(self) -> SweepReport | None:
        if not self.claim_interval():
            return None
        return sweep_once(self.context)

    def run(self) -> None:
        # Tick faster than the interval so the sweep runs close to every interval whichever
        # worker claims it; the claim keeps it to about one sweep per interval in all.
        period = max(self.interval.total_seconds() / 4, 0.25)
        while not self.stopped.wait(period):
            try:
                self.tick()
            except Exception:  # the clock must outlive any one bad sweep
                log.exception("sweep failed; trying again next interval")

    def stop(self) -> None:
        self.stopped.set()
