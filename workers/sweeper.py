"""The reconcile sweep's trigger: about once per interval cluster-wide, one sweep at a time.

Every worker process runs a ``SweepClock`` thread. Each tick it tries to claim the current interval
(a key that lives one interval); whoever claims it sweeps, under a ``SweepLock``. The clock lives in
the worker process rather than in RQ's scheduler on purpose: RQ's scheduler lock outlives a
SIGKILLed holder by a minute, and the sweep is what must still run when things die.

The lock's TTL is short (seconds) and a heartbeat thread renews it while the sweep runs, so a long
sweep keeps it and a killed holder loses it within the TTL. Renewing and releasing compare the
holder's token in one Lua script: a holder that stalled past its TTL can never extend or delete the
lock someone else has taken since.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import redis

from bot.services.reconcile import SweepReport
from workers.context import WorkerContext

log = logging.getLogger(__name__)

# Renewed every second; the TTL leaves a few seconds for a slow Redis round trip or a stalled thread
# before a live holder could lose it. A holder killed with SIGKILL blocks sweeps for at most the TTL.
LOCK_RENEW_EVERY = timedelta(seconds=1)
LOCK_TTL = timedelta(seconds=5)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class SweepLock:
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
        self.redis = client
        self.key = f"{prefix}:sweep:running"
        self.ttl_ms = max(int(ttl.total_seconds() * 1000), 100)
        self.renew_every = renew_every.total_seconds()
        self.token = uuid.uuid4().hex
        self.lost = threading.Event()  # set when a renewal found the lock no longer ours

    def acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extend the lock if it is still ours. False: it lapsed (and may be someone else's now)."""
        return bool(self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> bool:
        """Delete the lock if it is still ours; never anyone else's."""
        return bool(self.redis.eval(_RELEASE, 1, self.key, self.token))

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
                    log.error("sweep lock lapsed while sweeping; stopping this sweep")
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
