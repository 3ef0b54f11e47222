"""The sweep that makes clusters and Redis agree, so that no grant outlives its time.

It trusts the cluster for what is granted and when it ends (the expiry annotation), and Redis for
the workflow. A managed binding's warrant (``bot.domain.warrant``) decides whether the cluster is
believed: a binding whose warrant does not verify (edited, relabelled, hand-made) is deleted at once,
by its own name and namespace, and one whose warrant verifies is kept until its signed expiry even
when Redis has lost its request (recorded once as recovered). Losing Redis never cuts a valid grant
short, and never lets one outlive its expiry. Run periodically by one process at a time. Whatever else has failed — a worker
killed mid-job, Redis flushed, a cluster API down for a while — every binding past its expiry, or
whose request is ended or unknown, or whose cluster has left the roster, is deleted by the next
sweep that reaches its cluster; so is a grant's ServiceAccount left behind without its binding.
Every change the sweep makes is written to the audit log, with one exception: while the log refuses
writes (its head deleted or set back), what is past its expiry is still deleted, and said in the
structured log instead (Ending.cut_unrecorded explains the trade-off).

Each cluster is swept on its own thread, within a time budget, and a cluster whose API fails is left
after its first failure until the next sweep: one hung API server costs the sweep one timeout, not
one per binding, and never delays the other clusters. What must not happen here: granting anything
new. The sweep ends, records and re-queues; the one grant it completes is a binding already in the
cluster whose grant job was lost, recorded with the expiry that binding carries (in token mode its
holder is sent the credentials the lost job never delivered).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.end_reasons import EndCode, EndReason
from bot.domain.grants import ManagedBinding, ManagedServiceAccount, binding_name, format_instant
from bot.domain.ids import RequestId, parse_request_id
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Roster
from bot.ports import (
    BreakglassError,
    ClusterGateway,
    ClusterUnavailable,
    CredentialsRejected,
    JobQueue,
    PermanentError,
    UnknownCluster,
)
from bot.services.access import AccessService
from bot.services.grants import EXPIRY_TOLERANCE, GrantService
from bot.services.publishing import drain_outbox
from bot.store import AuditLogBroken, Draft, RequestStore

log = logging.getLogger(__name__)

# A request in one of these may still own a ServiceAccount without a binding: the grant job makes the
# ServiceAccount first, and an active grant's revoke deletes both.
_MAY_OWN_SERVICE_ACCOUNT = frozenset({State.PENDING, State.APPROVED, State.ACTIVE})
NOT_IN_ROSTER = EndReason(EndCode.CLUSTER_LEFT_ROSTER)
OVERDUE = EndReason(EndCode.REVOKE_OVERDUE)
UNWARRANTED = EndReason(EndCode.UNWARRANTED)


@dataclass
class SweepReport:
    deleted: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    rescheduled: list[str] = field(default_factory=list)
    regranted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # kept on their warrant although Redis lost them
    service_accounts_deleted: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    cut_short: list[str] = field(default_factory=list)  # clusters whose time budget ran out this sweep

    @property
    def corrections(self) -> int:
        return (
            len(self.deleted)
            + len(self.expired)
            + len(self.rescheduled)
            + len(self.regranted)
            + len(self.adopted)
            + len(self.service_accounts_deleted)
        )

    def merge(self, other: SweepReport) -> None:
        for name in self.__dataclass_fields__:
            mine: list[str] = getattr(self, name)
            mine.extend(item for item in getattr(other, name) if item not in mine)


@dataclass
class _ClusterPass:
    report: SweepReport = field(default_factory=SweepReport)
    bound: set[str] = field(default_factory=set)


# A revoke later than this is no longer waiting for RQ's scheduler (which moves due jobs every second).
OVERDUE_AFTER = timedelta(seconds=2)
OVERDUE_BATCH = 500  # grants one process takes on per look
OVERDUE_THREADS = 8
OVERDUE_CLAIM = timedelta(seconds=30)  # another process leaves a claimed grant alone this long


class Reconciler:
    """``cluster_budget`` bounds the time one sweep spends on one cluster (``monotonic`` measures it);
    what is left over waits for the next sweep."""

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
        cluster_budget: timedelta = timedelta(seconds=20),
        monotonic: Callable[[], float] = time.monotonic,
        on_cleared: Callable[[str], None] = lambda cluster: None,
    ) -> None:
        self.store = store
        self.roster = roster
        self.clusters = clusters
        self.jobs = jobs
        self.grants = grants
        self.access = access
        self.now = now
        self.grant_grace = grant_grace
        self.cluster_budget = cluster_budget.total_seconds()
        self.monotonic = monotonic
        self.on_cleared = on_cleared  # told of each cluster out of the roster with nothing left to clear
        # Clusters out of the roster found empty (or no longer loadable): nothing left to clear there.
        self._cleared: set[str] = set()

    def sweep(self, keep_going: Callable[[], bool] = lambda: True) -> SweepReport:
        """One pass over every cluster, then over Redis. ``keep_going`` False stops it early (the
        sweep lock was lost: another process is sweeping now)."""
        roster = self.roster()
        in_roster = list(roster.clusters)
        self._cleared -= set(in_roster)  # back in the roster: swept as usual again
        retired = [c for c in self.clusters.clusters() if c not in roster.clusters and c not in self._cleared]
        names = in_roster + retired
        with ThreadPoolExecutor(max_workers=max(len(names), 1), thread_name_prefix="breakglass-sweep") as pool:
            passes = list(pool.map(lambda c: self._sweep_cluster(c, c in roster.clusters, keep_going), names))
        report = SweepReport()
        bound: set[str] = set()  # requests with a binding in a cluster: settled there, never granted blind
        for done in passes:
            report.merge(done.report)
            bound |= done.bound
        if keep_going():
            self._check_redis(report, bound)
            try:
                self.access.remind_overdue_reviews()
            except (AuditLogBroken, BreakglassError) as exc:
                log.warning("sweep could not remind of overdue reviews: %s", exc)
            # An escalation whose request was decided while its resolving job was lost is resolved now.
            self.access.automation.settle_decided()
        # What an operator did while Slack was down is posted once Slack answers, however long that is.
        drain_outbox(self.store, self.jobs)
        return report

    def revoke_overdue(self, late_by: timedelta = OVERDUE_AFTER) -> int:
        """End, here and now, every grant more than ``late_by`` past its expiry; how many this process took.

        The revoke at expiry is an RQ scheduled job, and RQ's scheduler is one worker's: when that
        worker dies its lock outlives it by about a minute, and nothing moves due jobs meanwhile; and
        RQ moves due jobs once a second, by the whole second. Every worker's ExpiryClock calls this at
        each expiry (``late_by`` zero) and its SweepClock every second: each overdue grant is claimed
        by one process (a short lock), and the claimed ones are revoked on a few threads at once. The
        scheduled job, when it runs, finds the grant ended and its binding gone."""
        overdue = self.store.overdue(self.now() - late_by, limit=OVERDUE_BATCH)
        if not overdue:
            return 0
        with ThreadPoolExecutor(max_workers=min(OVERDUE_THREADS, len(overdue)), thread_name_prefix="overdue") as pool:
            return sum(pool.map(self._revoke_overdue_one, overdue))

    def _revoke_overdue_one(self, request_id: RequestId) -> bool:
        # Claimed by the thread that revokes it, as threads come free, rather than all at once up
        # front: every worker then takes a share of a thousand grants expiring in the same second.
        if not self.store.claim(self.store.keys.revoking(request_id), OVERDUE_CLAIM):
            return False  # another process has it
        try:
            self.grants.revoke(request_id)
        except BreakglassError as exc:  # the revoke job and the sweep still stand behind it
            log.warning(
                "overdue revoke failed; the revoke job retries it", extra={"request_id": request_id, "error": str(exc)}
            )
        return True

    # --- one cluster ----------------------------------------------------------------------------

    def _sweep_cluster(self, cluster: str, in_roster: bool, keep_going: Callable[[], bool]) -> _ClusterPass:
        done = _ClusterPass()
        report = done.report
        deadline = self.monotonic() + self.cluster_budget
        try:
            bindings = self.clusters.list_managed(cluster)
        except UnknownCluster as exc:
            if not in_roster:
                # Its kubeconfig context is gone too: nothing can reach it any more, from here or
                # from the revoke jobs. Said once, loudly, since bindings may remain there.
                log.error("sweep: cluster %s left the roster and cannot be loaded any more: %s", cluster, exc)
                # Not forgotten in Redis, only by this process: a kubeconfig unreadable for a moment
                # (a secret being rotated) must not end the sweeping of bindings that may remain.
                # The next worker to start tries it again.
                self._cleared.add(cluster)
                return done
            log.warning("sweep could not list bindings in %s: %s", cluster, exc)
            report.unreachable.append(cluster)
            return done
        except BreakglassError as exc:
            log.warning("sweep could not list bindings in %s: %s", cluster, exc)
            report.unreachable.append(cluster)
            return done
        done.bound = {b.request_id for b in bindings if b.request_id}
        settled = self._running_on_schedule(bindings) if in_roster else set()
        for binding in bindings:
            if not keep_going() or self._out_of_time(cluster, deadline, report):
                return done
            if binding.warranted and binding.request_id in settled:
                continue  # its grant's own binding (a warrant names it), running on schedule
            try:
                self._check_binding(binding, report, in_roster)
            except AuditLogBroken as exc:
                # Nothing can be recorded until a person repairs the log; what is over still ends.
                if not in_roster or binding.expires_at is None or binding.expires_at <= self.now():
                    self._cut_unrecorded(
                        binding.cluster,
                        binding.request_id or _id_from_name(binding.name),
                        binding.namespace,
                        exc,
                        report,
                    )
            except (ClusterUnavailable, CredentialsRejected) as exc:
                # The API fails now: every later call would most likely wait for the same timeout.
                # The rest of this cluster waits for the next sweep.
                log.warning(
                    "sweep could not settle %s in %s: %s; leaving %s for now", binding.name, cluster, exc, cluster
                )
                report.unreachable.append(cluster)
                return done
            except BreakglassError as exc:
                log.warning("sweep could not settle %s in %s: %s", binding.name, cluster, exc)
                if cluster not in report.unreachable:
                    report.unreachable.append(cluster)
        if not keep_going() or self._out_of_time(cluster, deadline, report):
            return done
        try:
            leftovers = self._check_service_accounts(cluster, done.bound, in_roster, report)
        except (AuditLogBroken, BreakglassError) as exc:
            log.warning("sweep could not settle serviceaccounts in %s: %s", cluster, exc)
            if cluster not in report.unreachable:
                report.unreachable.append(cluster)
            return done
        if not in_roster and not bindings and not leftovers and cluster not in report.unreachable:
            log.info("sweep: cluster %s left the roster and holds nothing of ours any more", cluster)
            self._clear(cluster)
        return done

    def _running_on_schedule(self, bindings: Sequence[ManagedBinding]) -> set[RequestId]:
        """The bindings' grants that need nothing, found in two round trips for the whole cluster (one
        read of their requests, one look for their revoke jobs) rather than a few per binding: active,
        not yet over by the binding's own expiry, their revoke at that expiry scheduled. The others
        are checked one by one, reading their request afresh."""
        now = self.now()
        # Only a binding whose warrant verifies can need nothing: any other goes now (_check_binding).
        ids = [
            b.request_id
            for b in bindings
            if b.warranted and b.request_id and b.expires_at is not None and b.expires_at > now
        ]
        # A binding made before its request message was posted does not name its thread yet: it is
        # checked one by one, once, so that the thread is written on it (_check_binding).
        unnamed = {b.request_id for b in bindings if b.thread is None}
        running = [
            (r.id, r.expires_at)
            for r in self.store.many(ids)
            if r.state is State.ACTIVE and r.expires_at is not None and not (r.id in unnamed and r.message_ts)
        ]
        return self.jobs.revokes_waiting(running)

    def _clear(self, cluster: str) -> None:
        self._cleared.add(cluster)
        self.on_cleared(cluster)

    def _cut_unrecorded(
        self, cluster: str, request_id: RequestId, namespace: str | None, exc: AuditLogBroken, report: SweepReport
    ) -> None:
        try:
            if self.grants.cut_unrecorded(cluster, request_id, namespace, exc):
                report.deleted.append(binding_name(request_id))
        except BreakglassError as down:
            log.warning("sweep could not end %s in %s: %s", request_id, cluster, down)
            if cluster not in report.unreachable:
                report.unreachable.append(cluster)

    def _out_of_time(self, cluster: str, deadline: float, report: SweepReport) -> bool:
        if self.monotonic() <= deadline:
            return False
        log.warning("sweep ran out of time in %s; the next sweep carries on", cluster)
        report.cut_short.append(cluster)
        return True

    def _check_binding(self, binding: ManagedBinding, report: SweepReport, in_roster: bool = True) -> None:
        now = self.now()
        request = self.store.get(binding.request_id) if binding.request_id else None
        expired = binding.expires_at is None or binding.expires_at <= now
        if not binding.warranted:
            # Nothing it says can be believed, its expiry least of all: it goes now, whatever Redis
            # holds. Its label least of all: it is filed under the grant its name makes it (a
            # relabelled binding is that grant's, tampered with), never in the trail of whichever
            # grant the label names. That grant has lost its access, so it ends too.
            owner_id = parse_request_id(binding.name.removeprefix("breakglass-"))
            owner = self.store.get(owner_id) if owner_id is not None else None
            self._delete(binding, owner, UNWARRANTED, now, report, filed_under=owner_id)
            if owner is not None and owner.state is State.ACTIVE:
                self.grants.revoke(owner.id, by_sweep=UNWARRANTED, before_expiry=True)
                report.expired.append(owner.id)
            return
        if not in_roster:
            # Fail closed: no entitlement names this cluster any more, so nothing there stands.
            # An approved request's grant job, if it runs, fails its own check against the roster.
            if request is not None and request.state is State.ACTIVE:
                self._end_overdue(request, NOT_IN_ROSTER, report)
            else:
                self._delete(binding, request, NOT_IN_ROSTER, now, report)
            return
        if request is not None and request.state is State.ACTIVE and not expired:
            if binding.thread is None and request.message_ts is not None:
                self._name_thread(binding, request)
            if self.jobs.revoke(request.id, at=request.expires_at or binding.expires_at):
                report.rescheduled.append(request.id)
                self.store.audit.append(
                    Draft(Event.SWEEP_RESCHEDULED, SYSTEM_ACTOR, request.id, {"job": "revoke", "found": "binding"})
                )
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
            # The binding says the grant is over (its expiry annotation passed, or is missing).
            if request.expires_at is not None and now + EXPIRY_TOLERANCE < request.expires_at:
                # Redis says it runs on, but the cluster is the truth for what is granted, and taking
                # access away is the safe direction: end it now rather than leave a binding whose own
                # record of its end says it should be gone.
                why = (
                    EndReason(EndCode.BINDING_EXPIRY_UNREADABLE)
                    if binding.expires_at is None
                    else EndReason(
                        EndCode.BINDING_EXPIRY_PASSED, {"binding_expires_at": format_instant(binding.expires_at)}
                    )
                )
            else:
                why = OVERDUE
            self._end_overdue(request, why, report)
            return
        if (
            request is not None
            and request.state.terminal
            and binding.name == binding_name(request.id)
            and now - request.updated_at <= self.grant_grace
            and self.jobs.revoke_under_way(request.id)
        ):
            return  # just ended, and its revoke job is removing the binding now (and records it so)
        if request is None and not expired and binding.request_id is not None:
            # Redis has lost the request (flushed, restored from an old copy), but the binding's
            # warrant says we made it and until when: an incident responder keeps access until then,
            # and the next sweep past that instant deletes it.
            self._recovered(binding, binding.request_id, report)
            return
        why = EndReason(EndCode.EXPIRY_PASSED) if expired else _request_gone(request)
        self._delete(binding, request, why, now, report)

    def _recovered(self, binding: ManagedBinding, request_id: RequestId, report: SweepReport) -> None:
        """Record once that a binding Redis forgot is kept on the strength of its warrant."""
        if any(e.event == Event.SWEEP_RECOVERED for e in self.store.audit.for_request(request_id)):
            return
        assert binding.expires_at is not None
        report.recovered.append(request_id)
        details: dict[str, object] = {
            "cluster": binding.cluster,
            "namespace": binding.namespace,
            "binding": binding.name,
            "expires_at": format_instant(binding.expires_at),
            **EndReason(EndCode.KEPT_ON_WARRANT).details(),
        }
        thread = binding.thread
        roster = self.roster()
        # The thread annotation is not signed: post only where the roster lets requests be posted.
        if thread is not None and thread.channel in (roster.incident_channel, *roster.request_channels):
            details["thread"] = thread.annotation()
        self.store.audit.append(Draft(Event.SWEEP_RECOVERED, SYSTEM_ACTOR, request_id, details))
        if "thread" in details:
            self._tell_thread(request_id)

    def _name_thread(self, binding: ManagedBinding, request: AccessRequest) -> None:
        try:
            self.grants.name_thread(request)
        except ClusterUnavailable:
            raise  # the cluster is left until the next sweep, as for any other call
        except BreakglassError as exc:
            # Only where to post after a Redis loss is missing; the next sweep tries again.
            log.warning("cluster %s: could not name the thread on %s: %s", binding.cluster, binding.name, exc)

    def _tell_thread(self, request_id: RequestId) -> None:
        """Owed to Slack: the publisher posts it to the thread (the outbox keeps it owed until then)."""
        self.store.outbox.add(request_id)
        self.jobs.publish(request_id)

    def _end_overdue(self, request: AccessRequest, why: EndReason, report: SweepReport) -> None:
        """End an active grant the revoke has not ended, recording that the sweep did it and why."""
        # Overdue: its expiry has passed. Any other reason: the cluster says the grant is over before it.
        self.grants.revoke(request.id, by_sweep=why, before_expiry=why.code is not EndCode.REVOKE_OVERDUE)
        report.expired.append(request.id)

    def _delete(
        self,
        binding: ManagedBinding,
        request: AccessRequest | None,
        why: EndReason,
        now: datetime,
        report: SweepReport,
        filed_under: RequestId | None = None,
    ) -> None:
        """``filed_under``: the grant whose trail records it, when that is not the one the binding's
        label names (the label of a binding whose warrant fails is not believed)."""
        # What was listed, by its own name and namespace: a relabelled binding is deleted as it is.
        removed = self.clusters.remove_binding(binding)
        if not removed:
            return
        report.deleted.append(binding.name)
        believed = binding.request_id if binding.warranted else filed_under
        labelled = {} if binding.request_id == believed else {"labelled": binding.request_id}
        self.store.audit.append(
            Draft(
                Event.SWEEP_DELETED,
                SYSTEM_ACTOR,
                believed,
                {
                    "cluster": binding.cluster,
                    "namespace": binding.namespace,
                    "binding": binding.name,
                    **labelled,
                    **why.details(),
                    "expires_at": format_instant(binding.expires_at) if binding.expires_at else None,
                    "late_by_seconds": round((now - binding.expires_at).total_seconds(), 3)
                    if binding.expires_at and binding.expires_at <= now
                    else None,
                },
            )
        )
        if request is not None:
            self.jobs.publish(request.id)
        elif believed is not None and binding.thread is not None and binding.warranted:
            self._tell_thread(believed)  # a recovered grant's thread hears it ended

    def _check_service_accounts(
        self, cluster: str, bound: set[str], in_roster: bool, report: SweepReport
    ) -> Sequence[ManagedServiceAccount]:
        """Delete each managed ServiceAccount whose binding is gone and whose grant is over (a worker
        killed between deleting the binding and the ServiceAccount, then the job lost): its tokens
        authenticate for as long as it exists. Returns the ones left in place."""
        try:
            accounts = self.clusters.list_managed_service_accounts(cluster)
        except PermanentError as exc:
            # A cluster that never used token mode may not give the bot its Role in the token
            # namespace; nothing of ours can be there then. Worth a warning only where tokens are made.
            level = logging.DEBUG if self._credentials(cluster) == "user" else logging.WARNING
            log.log(level, "sweep could not list serviceaccounts in %s: %s", cluster, exc)
            if not in_roster:
                # What was never seen cannot be known to be gone: a cluster out of the roster is
                # only forgotten once a sweep has seen every kind of thing we leave there.
                report.unreachable.append(cluster)
            return ()
        except BreakglassError as exc:
            log.warning("sweep could not list serviceaccounts in %s: %s", cluster, exc)
            report.unreachable.append(cluster)
            return ()
        left: list[ManagedServiceAccount] = []
        for account in accounts:
            request_id = account.request_id or _id_from_name(account.name)
            request = self.store.get(request_id)
            owned = request is not None and request.state in _MAY_OWN_SERVICE_ACCOUNT
            if request_id in bound or (owned and in_roster):
                left.append(account)
                continue
            try:
                removed = self.clusters.remove_service_account(cluster, request_id)
            except (ClusterUnavailable, CredentialsRejected) as exc:
                log.warning("sweep could not delete serviceaccount %s in %s: %s", account.name, cluster, exc)
                report.unreachable.append(cluster)
                return [*left, account]
            if removed:
                report.service_accounts_deleted.append(account.name)
                why = NOT_IN_ROSTER if not in_roster else _request_gone(request)
                details = {
                    "cluster": cluster,
                    "service_account": f"{account.namespace}/{account.name}",
                    **why.details(),
                }
                self.store.audit.append(Draft(Event.SWEEP_SERVICE_ACCOUNT_DELETED, SYSTEM_ACTOR, request_id, details))
                if request is not None:
                    self.jobs.publish(request.id)
        return left

    def _credentials(self, cluster: str) -> str | None:
        entry = self.roster().clusters.get(cluster)
        return entry.credentials if entry else None

    # --- Redis ----------------------------------------------------------------------------------

    def _check_redis(self, report: SweepReport, bound: set[str]) -> None:
        now = self.now()
        # One request that cannot be settled (the audit log refusing writes, a queue error) must not
        # stop the others, least of all the active grants below, whose expiries are the point.
        for request in self.store.pending():
            try:
                if self.access.time_out(request.id) is not None:
                    report.timed_out.append(request.id)
            except (AuditLogBroken, BreakglassError) as exc:
                log.warning("sweep could not time out %s: %s", request.id, exc)
        for request in self.store.approved():
            if request.id in bound:
                continue  # its binding exists: adopted above, or being made, never granted afresh
            try:
                if now - request.updated_at > self.grant_grace and self.jobs.grant(request.id):
                    report.regranted.append(request.id)
                    self.store.audit.append(
                        Draft(
                            Event.SWEEP_GRANT_REQUEUED,
                            SYSTEM_ACTOR,
                            request.id,
                            {"approved_seconds_ago": round((now - request.updated_at).total_seconds(), 3)},
                        )
                    )
            except (AuditLogBroken, BreakglassError) as exc:
                log.warning("sweep could not queue the grant of %s again: %s", request.id, exc)
        active = self.store.active()
        # Whose revoke job is waiting, in one round trip for them all: asking RQ to queue each again
        # (refused as a duplicate) cost three round trips per grant, most of a sweep over thousands.
        waiting = self.jobs.revokes_waiting(
            [(r.id, r.expires_at) for r in active if r.expires_at is not None and r.expires_at > now]
        )
        for request in active:
            if request.extends:
                grant = self.store.get(request.extends)
                if grant is not None and grant.state is State.ACTIVE:
                    # An extension's record keeps the expiry it set; a later extension has moved the
                    # grant's on since. It ends with its grant, never on its own.
                    continue
            try:
                if request.expires_at is not None and request.expires_at <= now:
                    if request.cluster in report.unreachable:
                        # Its cluster failed this sweep: a call now would wait for the same timeout, once
                        # per grant. Recorded as ended; its binding carries its expiry, so the first
                        # sweep that reaches the cluster again deletes it.
                        self.grants.expire(request.id, by_sweep=OVERDUE)
                        report.expired.append(request.id)
                    else:
                        self._end_overdue(request, OVERDUE, report)
                elif (
                    request.expires_at is not None
                    and request.id not in waiting
                    and self.jobs.revoke(request.id, at=request.expires_at)
                ):
                    report.rescheduled.append(request.id)
                    self.store.audit.append(
                        Draft(Event.SWEEP_RESCHEDULED, SYSTEM_ACTOR, request.id, {"job": "revoke", "found": "redis"})
                    )
            except AuditLogBroken as exc:
                if request.expires_at is not None and request.expires_at <= now:
                    self._cut_unrecorded(request.cluster, request.id, request.namespace, exc, report)
            except BreakglassError as exc:
                # Its cluster is down: the request is marked ended already, and the first sweep that
                # reaches the cluster again deletes the binding. The other requests must not wait.
                log.warning("sweep could not end %s in %s: %s", request.id, request.cluster, exc)
                if request.cluster not in report.unreachable:
                    report.unreachable.append(request.cluster)


def _request_gone(request: AccessRequest | None) -> EndReason:
    """Why something of a request the sweep found no longer stands: its request is unknown, or over."""
    if request is None:
        return EndReason(EndCode.REQUEST_UNKNOWN)
    return EndReason(EndCode.REQUEST_ENDED, {"state": request.state.label})


def _id_from_name(name: str) -> RequestId:
    return RequestId(name.removeprefix("breakglass-").upper())
