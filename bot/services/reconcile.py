"""The sweep that makes clusters and Redis agree, so that no grant outlives its time.

It trusts the cluster for what is granted and when it ends (the expiry annotation), and Redis for
the workflow. Run periodically by one process at a time. Whatever else has failed — a worker
killed mid-job, Redis flushed, a cluster API down for a while — every binding past its expiry, or
whose request is ended or unknown, is deleted by the next sweep that reaches its cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.grants import ManagedBinding, format_instant
from bot.domain.ids import RequestId
from bot.domain.lifecycle import State
from bot.domain.roster import Roster
from bot.ports import BreakglassError, ClusterGateway, JobQueue
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.store import Draft, RequestStore

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    deleted: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    rescheduled: list[str] = field(default_factory=list)
    regranted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    @property
    def corrections(self) -> int:
        return len(self.deleted) + len(self.expired) + len(self.rescheduled) + len(self.regranted) + len(self.adopted)


class Reconciler:
    def __init__(
        self,
        store: RequestStore,
        roster: Callable[[], Roster],
        clusters: ClusterGateway,
        jobs: JobQueue,
        grants: GrantService,
        access: AccessService,
        now: Callable[[], datetime],
        grant_grace: timedelta = timedelta(seconds=60),
    ) -> None:
        self.store = store
        self.roster = roster
        self.clusters = clusters
        self.jobs = jobs
        self.grants = grants
        self.access = access
        self.now = now
        self.grant_grace = grant_grace

    def sweep(self) -> SweepReport:
        report = SweepReport()
        bound: set[str] = set()  # requests with a binding in a cluster: settled here, never granted blind
        for cluster in self.roster().clusters:
            try:
                bindings = self.clusters.list_managed(cluster)
            except BreakglassError as exc:
                log.warning("sweep could not list bindings in %s: %s", cluster, exc)
                report.unreachable.append(cluster)
                continue
            for binding in bindings:
                if binding.request_id:
                    bound.add(binding.request_id)
                try:
                    self._check_binding(binding, report)
                except BreakglassError as exc:
                    log.warning("sweep could not settle %s in %s: %s", binding.name, cluster, exc)
                    report.unreachable.append(cluster)
        self._check_redis(report, bound)
        return report

    def _check_binding(self, binding: ManagedBinding, report: SweepReport) -> None:
        now = self.now()
        request = self.store.get(binding.request_id) if binding.request_id else None
        expired = binding.expires_at is None or binding.expires_at <= now
        if request is not None and request.state is State.ACTIVE and not expired:
            if self.jobs.revoke(request.id, at=request.expires_at or binding.expires_at):
                report.rescheduled.append(request.id)
                self.store.audit.append(Draft(Event.SWEEP_RESCHEDULED, SYSTEM_ACTOR, request.id, {"job": "revoke"}))
            return
        if request is not None and request.state is State.APPROVED:
            if not expired and now - request.updated_at <= self.grant_grace:
                return  # the grant job is making it right now
            # The binding was made but its grant job was lost (a worker killed after the create landed).
            # The cluster says the grant happened and when it ends: record it so, with that expiry.
            # Deleting it and queueing the grant again would hand the access out a second time, with
            # the whole duration counted afresh.
            request = self.grants.grant(request.id, expires_at=binding.expires_at or now) or request
            report.adopted.append(request.id)
            return
        if request is not None and request.state is State.ACTIVE:
            request = self.grants.revoke(request.id) or request
            report.expired.append(request.id)
            return
        why = (
            "its expiry has passed"
            if expired
            else "its request is unknown to Redis"
            if request is None
            else f"its request is {request.state.label}"
        )
        removed = self.clusters.remove_grant(
            binding.cluster, binding.request_id or _id_from_name(binding.name), binding.namespace
        )
        if removed:
            report.deleted.append(binding.name)
            self.store.audit.append(
                Draft(
                    Event.SWEEP_DELETED,
                    SYSTEM_ACTOR,
                    binding.request_id,
                    {
                        "cluster": binding.cluster,
                        "namespace": binding.namespace,
                        "binding": binding.name,
                        "why": why,
                        "expires_at": format_instant(binding.expires_at) if binding.expires_at else None,
                        "late_by_seconds": round((now - binding.expires_at).total_seconds(), 3)
                        if binding.expires_at and binding.expires_at <= now
                        else None,
                    },
                )
            )
            if request is not None:
                self.jobs.publish(request.id)

    def _check_redis(self, report: SweepReport, bound: set[str]) -> None:
        now = self.now()
        for request in self.store.pending():
            if self.access.time_out(request.id) is not None:
                report.timed_out.append(request.id)
        for request in self.store.approved():
            if request.id in bound:
                continue  # its binding exists: adopted above, or being made, never granted afresh
            if now - request.updated_at > self.grant_grace and self.jobs.grant(request.id):
                report.regranted.append(request.id)
        for request in self.store.active():
            try:
                if request.expires_at is not None and request.expires_at <= now:
                    self.grants.revoke(request.id)
                    report.expired.append(request.id)
                elif request.expires_at is not None and self.jobs.revoke(request.id, at=request.expires_at):
                    report.rescheduled.append(request.id)
            except BreakglassError as exc:
                # Its cluster is down: the request is marked ended already, and the first sweep that
                # reaches the cluster again deletes the binding. The other requests must not wait.
                log.warning("sweep could not end %s in %s: %s", request.id, request.cluster, exc)
                if request.cluster not in report.unreachable:
                    report.unreachable.append(request.cluster)


def _id_from_name(name: str) -> RequestId:
    return RequestId(name.removeprefix("breakglass-").upper())
