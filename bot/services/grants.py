"""What the workers do to clusters, by use case: grant (``Granting``), extend (``Extending``), and end,
with the reminder before it (``Ending``). ``GrantService`` puts the three together over one set of
clients, and is what the jobs and the sweep call.

Each call is safe to run twice and safe to be killed half-way: it re-reads the request, acts only if
its state still calls for it, and leaves a state the reconcile sweep can finish from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from bot.domain.roster import Roster
from bot.ports import ClusterGateway, JobQueue, Notifier
from bot.services.ending import Ending
from bot.services.extending import Extending
from bot.services.grant_steps import EXPIRY_TOLERANCE, KUBECONFIG_FILE, GrantSteps
from bot.services.granting import Granting
from bot.store import RequestStore

__all__ = ["EXPIRY_TOLERANCE", "KUBECONFIG_FILE", "GrantService"]


class GrantService:
    def __init__(
        self,
        store: RequestStore,
        roster: Callable[[], Roster],
        clusters: ClusterGateway,
        jobs: JobQueue,
        notifier: Notifier,
        now: Callable[[], datetime],
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        steps = GrantSteps(store, roster, clusters, jobs, notifier, now, wait)
        self.ending = Ending(steps)
        self.extending = Extending(steps)
        self.granting = Granting(steps, self.ending, self.extending)
        # The jobs' and the sweep's calls, each answered by its use case.
        self.grant = self.granting.grant
        self.revoke = self.ending.revoke
        self.expire = self.ending.expire
        self.remind = self.ending.remind
        self.cut_unrecorded = self.ending.cut_unrecorded
