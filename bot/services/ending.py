"""A grant's end: the reminder before it, the revoke at expiry (or before it, when the sweep finds the
grant is over), and the removal of its binding and credentials.

Each call is safe to run twice and safe to be killed half-way: it re-reads the request, acts only if its
state still calls for it, and leaves a state the reconcile sweep can finish from. Access ending wins
over everything else, even over an audit log that refuses to record it (``cut_unrecorded``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.end_reasons import EndCode, EndReason
from bot.domain.grants import binding_name, format_instant
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest, State, transition
from bot.ports import BreakglassError
from bot.services.grant_steps import EXPIRY_TOLERANCE, KUBECONFIG_FILE, GrantSteps
from bot.services.kube_actions import summary_draft
from bot.store import AuditLogBroken, Change, Draft

log = logging.getLogger(__name__)


class Ending:
    def __init__(self, steps: GrantSteps) -> None:
        self.steps = steps
        self.store = steps.store

    def revoke(
        self, request_id: RequestId, by_sweep: EndReason | None = None, *, before_expiry: bool = False
    ) -> AccessRequest | None:
        """End the grant if its time has come (or it was revoked, failed or extended away), then make
        sure its binding is gone. Early calls for a still-running grant change nothing.

        ``by_sweep`` is the sweep's reason when the sweep, not the scheduled revoke, ends the grant: it is
        recorded in the same transaction as the expiry, so it is written only if the sweep really did it
        (not when the on-time revoke got there a moment earlier, or an extension moved the expiry).

        ``before_expiry`` (the sweep's, with its reason in ``by_sweep``) ends an active grant before the
        expiry Redis recorded: the cluster says the grant is over (its binding's expiry annotation is
        missing or past, its warrant does not hold, or its cluster has left the roster). The cluster is
        the truth for what is granted, and the safe direction is to take access away: the reason is
        recorded with the expiry."""
        if before_expiry and by_sweep is None:
            raise ValueError("a grant ended before its expiry needs the sweep's reason")
        why = by_sweep if before_expiry else None
        request = self.store.get(request_id)
        if request is None:
            return None
        if request.state is State.ACTIVE:
            assert request.expires_at is not None
            early = (request.expires_at - self.steps.now()).total_seconds()
            if why is None and early > EXPIRY_TOLERANCE.total_seconds():
                return request  # extended since this revoke was scheduled; a later one is queued
            if why is None and early > 0:
                # RQ runs a job scheduled at 12:00:05.7 from 12:00:05.0 (it scores whole seconds):
                # wait out the rest, so access never ends before its time.
                self.steps.wait(early)
            try:
                request = self._expire(request, why=why, by_sweep=by_sweep)
            except AuditLogBroken as exc:
                self.cut_unrecorded(request.cluster, request.id, request.namespace, exc)
                return request
        if request.state not in (State.EXPIRED, State.REVOKED, State.FAILED):
            return request
        if request.extends:
            return request  # an extension owns no binding; its grant's does
        self.remove_binding(request, actor=SYSTEM_ACTOR, why=why)
        self._end_extensions(request)
        return request

    def expire(self, request_id: RequestId, by_sweep: EndReason | None = None) -> AccessRequest | None:
        """Record an active grant whose time is up as expired, without touching its cluster: the
        sweep's call while that cluster fails. Its binding carries its expiry, so the next sweep that
        reaches the cluster deletes it."""
        request = self.store.get(request_id)
        if request is None or request.state is not State.ACTIVE:
            return request
        return self._expire(request, by_sweep=by_sweep)

    def _expire(
        self, request: AccessRequest, why: EndReason | None = None, by_sweep: EndReason | None = None
    ) -> AccessRequest:
        now = self.steps.now

        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.ACTIVE:
                return Change(None)
            assert current.expires_at is not None
            if why is None and now() + EXPIRY_TOLERANCE < current.expires_at:
                return Change(None)
            details: dict[str, object] = {"expires_at": format_instant(current.expires_at)}
            if why is not None:
                details.update(why.details())
            drafts = [Draft(Event.EXPIRED, SYSTEM_ACTOR, current.id, details)]
            if by_sweep is not None:
                swept = {
                    "cluster": current.cluster,
                    **by_sweep.details(),
                    "expires_at": format_instant(current.expires_at),
                }
                drafts.insert(0, Draft(Event.SWEEP_REVOKED_OVERDUE, SYSTEM_ACTOR, current.id, swept))
            return Change(
                transition(current, State.EXPIRED, now(), **({"note": why.sentence()} if why else {})),
                drafts,
            )

        applied = self.store.apply(request.id, decide)
        if applied.entries:
            self.steps.jobs.publish(request.id)
        return applied.request or request

    def cut_unrecorded(self, cluster: str, request_id: RequestId, namespace: str | None, exc: Exception) -> bool:
        """Take the access away although the audit log refuses to record it (its head was deleted or
        set back, and nothing may be appended until a person repairs it).

        Security trade-off: "no change without its audit entry" meets "no grant outlives its
        expiry", and access ending wins. Failing closed on the log would leave the binding standing
        until somebody repairs Redis; deleting it is the direction that cannot hurt. The structured
        log line (the copy that outlives Redis) records what was done, and ``audit verify`` names the
        damage. The request stays active in Redis, so every sweep tries again, loudly, until repaired."""
        removed = self.steps.clusters.remove_grant(cluster, request_id, namespace)
        log.error(
            "access ended without its audit entry: the audit log refuses writes (%s)",
            exc,
            extra={
                "request_id": request_id,
                "cluster": cluster,
                "binding": binding_name(request_id),
                "removed": removed,
            },
        )
        return removed

    def _withdraw_kubeconfigs(self, request: AccessRequest) -> None:
        """Take the grant's kubeconfig files (its own and its extensions') back from the holder's DM."""
        files = [
            str(entry.details[KUBECONFIG_FILE])
            for rid in (request.id, *request.extensions)
            for entry in self.store.audit.for_request(rid)
            if entry.event == Event.GRANTED and entry.details.get(KUBECONFIG_FILE)
        ]
        if not files:
            return
        try:
            self.steps.notifier.withdraw_credentials(request, files)
        except BreakglassError as exc:
            # The token stops working with its ServiceAccount either way; the file is a copy of a
            # dead credential, so its removal never holds up the revoke.
            log.warning("could not delete the kubeconfig from the DM: %s", exc, extra={"request_id": request.id})

    def remove_binding(self, request: AccessRequest, actor: str, why: EndReason | None = None) -> bool:
        removed = self.steps.clusters.remove_grant(request.cluster, request.id, request.namespace)
        self._withdraw_kubeconfigs(request)
        if removed:
            now = self.steps.now()
            details: dict[str, object] = {
                "cluster": request.cluster,
                "namespace": request.namespace,
                "binding": binding_name(request.id),
            }
            if request.state is State.EXPIRED and request.expires_at is not None:
                # Revoke lateness is measured against the expiry only when the grant ran out; an
                # early revoke is measured from the moment it was decided.
                details["late_by_seconds"] = round(max((now - request.expires_at).total_seconds(), 0.0), 3)
            elif request.ended_at is not None:
                details["after_revoke_seconds"] = round(max((now - request.ended_at).total_seconds(), 0.0), 3)
            if why is not None:
                details.update(why.details())
            summary = summary_draft(self.store, request.id, self.steps.clusters, request.cluster)
            self.store.audit.append(
                Draft(Event.BINDING_DELETED, actor, request.id, details), *([summary] if summary else [])
            )
            # Its own publish: one queued for the transition before it (expired, revoked) may already
            # have run, and this entry would then wait in Redis for a thread reply that never comes.
            self.steps.jobs.publish(request.id)
        return removed

    def _end_extensions(self, grant: AccessRequest) -> None:
        for extension_id in grant.extensions:
            target = State.REVOKED if grant.state is State.REVOKED else State.EXPIRED

            def decide(current: AccessRequest | None, target: State = target) -> Change[None]:
                if current is None or current.state is not State.ACTIVE:
                    return Change(None)
                ended = EndReason(EndCode.ENDED_WITH_GRANT, {"grant": grant.id})
                return Change(transition(current, target, self.steps.now(), note=ended.sentence()))

            self.store.apply(extension_id, decide)

    def remind(self, request_id: RequestId) -> AccessRequest | None:
        """DM the holder once per expiry, ``reminder_before`` it. Whether this expiry was reminded of is
        its own key (claimed atomically), not a search of the grant's audit entries: a grant with
        thousands of recorded actions, under steady audit traffic, must not make the reminder re-read
        them all in a transaction that any other audit write restarts."""
        roster = self.steps.roster()
        current = self.store.get(request_id)
        if current is None or current.state is not State.ACTIVE or current.expires_at is None:
            return current
        left = current.expires_at - self.steps.now()
        if left <= timedelta(0) or left > roster.reminder_before + EXPIRY_TOLERANCE:
            return current  # ended already, or extended since this reminder was set
        at = format_instant(current.expires_at)
        if not self.store.claim_reminder(current.id, at, keep_for=left + roster.reminder_before):
            return current  # this expiry was reminded of already (the job ran twice)
        try:
            self.store.audit.append(Draft(Event.REMINDER_SENT, SYSTEM_ACTOR, current.id, {"expires_at": at}))
        except Exception:
            self.store.release_reminder(current.id, at)  # so the job's retry can send it
            raise
        self.steps.jobs.publish(request_id)
        return current
