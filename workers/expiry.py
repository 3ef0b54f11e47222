"""Revokes at the instant of expiry, on the worker's own clock.

RQ's scheduler, which runs the revoke job scheduled at a grant's expiry, moves due jobs once a second
and scores them by the whole second: alone it ends access up to a second after the expiry, plus the
job's own time. Every worker process runs an ``ExpiryClock`` thread that sleeps until the grant
schedule's next expiry (the active index in Redis, scored by the exact expiry) and then revokes every
grant that is due (``Reconciler.revoke_overdue``: each grant is claimed by one process, and a burst
is shared by every worker). It looks again at least every ``LOOK_EVERY`` seconds, for a grant made
meanwhile that ends sooner than the one it was waiting for. The scheduled RQ job stays the backstop
(and what the sweep checks for): when it runs it finds the grant ended and its binding gone.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from workers.context import WorkerContext

log = logging.getLogger(__name__)

LOOK_EVERY = 0.5  # seconds; no grant is that short, so none is seen later than its expiry
DUE = timedelta(0)


class ExpiryClock(threading.Thread):
    def __init__(self, context: WorkerContext) -> None:
        super().__init__(name="breakglass-expiry", daemon=True)
        self.context = context
        self.stopped = threading.Event()

    def tick(self) -> float:
        """Revoke every grant due now; the seconds to wait before the next look."""
        core = self.context.core
        if self.context.reconciler.revoke_overdue(late_by=DUE):
            return 0.0  # more may have come due meanwhile
        now = core.now()
        upcoming = core.store.next_expiry(after=now)
        if upcoming is None:
            return LOOK_EVERY
        return min(max((upcoming - now).total_seconds(), 0.0), LOOK_EVERY)

    def run(self) -> None:
        wait = 0.0
        while not self.stopped.wait(wait):
            try:
                wait = self.tick()
            except Exception:  # the clock must outlive any one failure (Redis down a moment)
                log.exception("revoking at expiry failed; trying again shortly")
                wait = LOOK_EVERY

    def stop(self) -> None:
        self.stopped.set()
