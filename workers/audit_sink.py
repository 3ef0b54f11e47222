"""The worker's loop that copies the audit log to its sink (``BREAKGLASS_AUDIT_SINK``).

A thread of its own beside the sweep clock, never an RQ job: a sink that hangs holds this thread
only, so grants, revokes and the sweep go on as before. One worker copies at a time (a Redis lock,
renewed every round, lapsing if its holder dies); the others wait their turn. A failed round is
retried with backoff (1 s doubling to 60 s), counted in ``breakglass_audit_sink_failures_total`` and
written to the progress record that ``/readyz`` and ``doctor`` read. Entries wait in Redis meanwhile.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import redis

from bot.metrics import Metrics
from bot.ports import SinkRefused, TemporaryError
from bot.services.audit_sink import AuditShipper, RedisLogProblem
from bot.store.audit_sink import SinkProgressStore
from bot.store.keys import Keys
from bot.store.locks import RedisLock

log = logging.getLogger(__name__)

EVERY = 1.0  # seconds between looks for new entries
MAX_BACKOFF = 60.0
# Longer than one round can take (two attempts of a 30 s read timeout), so a slow round keeps it; a
# holder that died frees it for another worker within this.
LOCK_TTL = timedelta(seconds=90)


class SinkClock(threading.Thread):
    def __init__(
        self,
        shipper: AuditShipper,
        progress: SinkProgressStore,
        metrics: Metrics,
        client: redis.Redis,
        prefix: str,
        every: float = EVERY,
    ) -> None:
        super().__init__(name="breakglass-audit-sink", daemon=True)
        self.shipper = shipper
        self.progress = progress
        self.metrics = metrics
        self.lock = RedisLock(client, Keys(prefix).audit_sink_shipping, LOCK_TTL)
        self.every = every
        self.stopped = threading.Event()
        self.failures = 0
        self._holding = False

    def run(self) -> None:
        wait = 0.0
        while not self.stopped.wait(wait):
            try:
                wait = self.tick()
            except Exception:  # the loop must outlive any one bad round
                log.exception("copying the audit log to its sink failed unexpectedly; trying again")
                wait = self._backoff()

    def stop(self) -> None:
        self.stopped.set()

    def tick(self) -> float:
        """One round: copy what is new if this worker holds the lock. Returns the seconds to wait."""
        try:
            if not self._hold():
                return self.every
        except redis.RedisError:
            return self.every
        try:
            report = self.shipper.ship()
        except TemporaryError as exc:
            return self._failed("unavailable", str(exc))
        except SinkRefused as exc:
            return self._failed("refused", str(exc))
        except RedisLogProblem as exc:
            return self._failed("redis_log", str(exc))
        except redis.RedisError as exc:
            log.warning("audit sink: Redis unavailable (%s); trying again", type(exc).__name__)
            return self.every
        if self.failures:
            log.info("audit sink: copying again after %d failed rounds", self.failures)
        self.failures = 0
        if report.copied:
            self.metrics.inc("breakglass_audit_sink_copied_entries_total", by=report.copied)
        self.progress.copied(report.head, report.behind, self.shipper.now())
        return 0.0 if report.behind else self.every

    def _hold(self) -> bool:
        if self._holding and self.lock.renew():
            return True
        self._holding = self.lock.acquire()
        if self._holding:
            self.shipper.forget()  # another worker may have copied while this one did not hold it
        return self._holding

    def _failed(self, kind: str, error: str) -> float:
        self.failures += 1
        self.metrics.inc("breakglass_audit_sink_failures_total", f'kind="{kind}"')
        log.error("audit sink: %s", error, extra={"failures": self.failures})
        self.shipper.forget()
        try:
            self.progress.failed(error, self.shipper.behind(), self.shipper.now())
        except redis.RedisError:
            log.warning("audit sink: failure not recorded for /readyz and doctor (Redis unavailable)")
        return self._backoff()

    def _backoff(self) -> float:
        return min(self.every * 2 ** max(self.failures - 1, 0), MAX_BACKOFF)
