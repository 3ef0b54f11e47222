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

from bot.domain.lifecycle import AccessRequest
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
        self._steps = steps

    def name_thread(self, grant: AccessRequest) -> None:
        """Write a grant's thread onto its binding when the binding was made before the request message
        was posted (self-service, Slack slow or down), so that a sweep after Redis lost the request can
        still tell that thread. The same expiry, signed again; nothing the binding grants changes."""
        roster = self._steps.roster()
        known = grant.requester in roster.people and grant.role in roster.roles and grant.cluster in roster.clusters
        if grant.expires_at is None or grant.message_ts is None or not known:
            return  # a grant the roster no longer knows is the sweep's to end, not to annotate
        self._steps.clusters.set_expiry(self._steps.binding_spec(grant, roster, grant.expires_at))
