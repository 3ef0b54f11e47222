"""The reconcile sweep's trigger: about once per interval cluster-wide, one sweep at a time.

Every worker process runs a ``SweepClock`` thread. Each tick it tries to claim the current interval
(a key that lives one interval); whoever claims it sweeps, under a ``SweepLock``. The clock lives in
the worker process rather than in RQ's scheduler on purpose: RQ's scheduler lock outlives a
SIGKILLed holder by a minute, and the sweep is what must still run when things die.

The lock's TTL is short (seconds) and a heartbeat thread renews it while the sweep runs, so a long
sweep keeps it and a killed holder loses it within the TTL. Renewing and releasing compare the
holder's token in one Lua script (``bot.store.locks``, the one lock primitive): a holder that stalled
past its TTL can never extend or delete the lock someone else has taken since.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import redis

from bot.services.reconcile import SweepReport
from bot.store.keys import Keys
from bot.store.locks import RedisLock
from workers.context import WorkerContext

log = logging.getLogger(__name__)

# Renewed every second; the TTL leaves a few seconds for a slow Redis round trip or a stalled thread
# before a live holder could lose it. A holder killed with SIGKILL blocks sweeps for at most the TTL.
LOCK_RENEW_EVERY = timedelta(seconds=1)
LOCK_TTL = timedelta(seconds=5)
OVERDUE_EVERY = 1.0  # seconds between looks for revokes RQ's scheduler has not run


class SweepLock(RedisLock):
    """At most one holder cluster-wide, for as long as it keeps renewing (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        ttl: timedelta = LOCK_TTL,
        renew_every: timedelta = LOCK_RENEW_EVERY,
    ) -> None:
        if renew_every >= ttl:
            raise ValueError("the lock must be renewed more often than it lapses")
        super().__init__(client, Keys(prefix).sweep_running, ttl)
        self.renew_every = renew_every.total_seconds()
        self.lost = threading.Event()  # set when a renewal found the lock no longer ours

    @contextmanager
    def held(self) -> Iterator[bool]:
        """Yields whether the lock was taken; while inside, a heartbeat keeps it."""
        if not self.acquire():
            yield False
            return
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._beat, args=(stop,), name="breakglass-sweep-lock", daemon=True)
        heartbeat.start()
        try:
            yield True
        finally:
            stop.set()
            heartbeat.join()
            try:
                self.release()
            except redis.RedisError:
                log.warning("sweep lock not released (Redis unavailable); it lapses by itself")

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.renew_every):
            try:
                if not self.renew():
                    # Handled, not an error: a process starved of CPU past the TTL stops its sweep, and
                    # the next sweep (this worker's or another's) takes the lock and does the work.
                    log.warning("sweep lock lapsed while sweeping; stopping this sweep")
                    self.lost.set()
                    return
            except redis.RedisError:
                # Not fatal yet: the lock holds for the rest of its TTL and the next beat tries again.
                log.warning("sweep lock not renewed (Redis unavailable)")


def sweep_once(context: WorkerContext, lock: SweepLock | None = None) -> SweepReport | None:
    """Sweep now unless another process is sweeping. None when skipped."""
    core = context.core
    lock = lock or SweepLock(core.redis, core.settings.key_prefix)
    with lock.held() as taken:
        if not taken:
            return None
        report = context.reconciler.sweep(keep_going=lambda: not lock.lost.is_set())
    if report.corrections or report.unreachable or report.timed_out or report.cut_short:
        log.info(
            "sweep corrected state",
            extra={
                "deleted": report.deleted,
                "expired": report.expired,
                "timed_out": report.timed_out,
                "rescheduled": report.rescheduled,
                "regranted": report.regranted,
                "adopted": report.adopted,
                "service_accounts_deleted": report.service_accounts_deleted,
                "unreachable": report.unreachable,
                "cut_short": report.cut_short,
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
        key = Keys(core.settings.key_prefix).sweep_due
        # Slightly shorter than the interval so the next tick after it lapses can claim it.
        ttl_ms = max(int(self.interval.total_seconds() * 1000) - 100, 500)
        return bool(core.redis.set(key, "1", nx=True, px=ttl_ms))

    def tick(self) -> SweepReport | None:
        if not self.claim_interval():
            return None
        return sweep_once(self.context)

    def run(self) -> None:
        # Tick faster than the interval so the sweep runs close to every interval whichever
        # worker claims it; the claim keeps it to about one sweep per interval in all. Every tick,
        # at least once a second, overdue revokes are queued again (see Reconciler.revoke_overdue).
        period = min(max(self.interval.total_seconds() / 4, 0.25), OVERDUE_EVERY)
        while not self.stopped.wait(period):
            try:
                self.context.reconciler.revoke_overdue()
                self.tick()
            except Exception:  # the clock must outlive any one bad sweep
                log.exception("sweep failed; trying again next interval")
            try:
                # Held audit events and idle timeouts, without waiting for the cluster's next batch.
                self.context.actions.tick()
            except Exception:  # nor may a bad look at actions stop the sweep
                log.exception("matching held audit events failed; trying again next tick")

    def stop(self) -> None:
        self.stopped.set()
