"""What the workers do to clusters: grant, revoke at expiry, remind, and publish to Slack.

Each function is safe to run twice and safe to be killed half-way: it re-reads the request, acts
only if its state still calls for it, and leaves a state the reconcile sweep can finish from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain import automation, policy
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.durations import format_duration
from bot.domain.grants import BindingSpec, binding_name, format_instant
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest, State, activate, expiry_for, extend_expiry, transition
from bot.domain.roster import Roster
from bot.ports import (
    BindingNotFound,
    BreakglassError,
    ClusterGateway,
    JobQueue,
    Notifier,
    PermanentError,
    TemporaryError,
)
from bot.services.kube_actions import summary_draft
from bot.store import AuditLogBroken, Change, Draft, RequestStore

log = logging.getLogger(__name__)

# The scheduler fires on whole seconds; a revoke arriving this much early is still "on time".
EXPIRY_TOLERANCE = timedelta(seconds=1)
# Moving the expiry annotation after a slow create is only worth a round trip past this.
EXPIRY_SLACK = timedelta(seconds=1)
# The audit detail naming the kubeconfig file sent by DM (a grant's, or an extension's new token).
KUBECONFIG_FILE = "kubeconfig_file"
# Extensions racing on one grant each retry their compare-and-set; more rounds than this is a storm.
EXTEND_ROUNDS = 20


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
        self.store = store
        self.roster = roster
        self.clusters = clusters
        self.jobs = jobs
        self.notifier = notifier
        self.now = now
        self.wait = wait

    # --- grant --------------------------------------------------------------------------------

    def grant(self, request_id: RequestId, expires_at: datetime | None = None) -> AccessRequest | None:
        """Put the approved request's binding in place and record it active.

        ``expires_at`` is the sweep's, for a binding already in the cluster whose grant job was lost (a
        worker killed after its create landed): that binding's expiry stands. Granting it afresh would
        count the whole duration again from now, and, once the sweep had removed the expired binding,
        hand the access out a second time.
        """
        request = self.store.get(request_id)
        if request is None or request.state is not State.APPROVED:
            return request  # already granted, ended, or unknown: nothing to do
        roster = self.roster()
        if expires_at is None:
            # Not for a binding the sweep found: that grant was made in time, and it is recorded as made.
            fresh = policy.approval_still_fresh(roster, request, self.now())
            if not fresh:
                return self._fail(request, fresh.reason)
        if request.extends:
            return self._apply_extension(request)
        refusal = self._still_allowed(roster, request)
        if refusal:
            return self._fail(request, refusal)
        started = self.now()
        spec = self._binding_spec(request, roster, expires_at or expiry_for(request, started))
        # A found binding whose time ran out already is recorded and ended, not applied again (which
        # in token mode would mint and send credentials for a grant that is over).
        lapsed = expires_at is not None and expires_at <= started
        credentials = None
        self.store.audit.check_writable()  # nothing is granted that the log cannot record
        if not lapsed:
            try:
                credentials = self.clusters.apply_grant(spec)
            except PermanentError as exc:
                return self._fail(request, f"the cluster refused the binding: {exc}")
        in_place = self.now()
        if expires_at is None and in_place - started > EXPIRY_SLACK:
            # The duration counts from the moment the binding is in place, not from when we asked.
            spec = _with_expiry(spec, expiry_for(request, in_place))
            self.clusters.set_expiry(spec)
        kubeconfig_file = None
        if credentials is not None:
            try:
                kubeconfig_file = self.notifier.deliver_credentials(request, credentials)
            except PermanentError as exc:
                return self._undeliverable(request, exc)

        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.APPROVED:
                return Change(None)
            return Change(
                activate(current, in_place, spec.expires_at),
                [
                    Draft(
                        Event.GRANTED,
                        SYSTEM_ACTOR,
                        current.id,
                        {
                            "cluster": current.cluster,
                            "namespace": current.namespace,
                            "binding": spec.name,
                            "cluster_role": spec.cluster_role,
                            "subject": spec.kube_user if spec.credentials == "user" else f"serviceaccount/{spec.name}",
                            "expires_at": format_instant(spec.expires_at),
                            "token_outlives_grant": bool(credentials and credentials.outlives_grant),
                            **({KUBECONFIG_FILE: kubeconfig_file} if kubeconfig_file else {}),
                            "latency_seconds": round((in_place - current.updated_at).total_seconds(), 3),
                            **({"found_by_sweep": True} if expires_at is not None else {}),
                        },
                    )
                ],
            )

        try:
            applied = self.store.apply(request_id, decide)
        except AuditLogBroken as exc:
            # The log broke between the check above and now: the grant cannot be recorded, so it
            # must not stand. The job's retry finds the log still broken and creates nothing.
            if not lapsed:
                self.cut_unrecorded(request.cluster, request.id, request.namespace, exc)
            raise
        active = applied.request
        if active is None or active.state is not State.ACTIVE:
            # Revoked while the binding was being made: take it away again.
            self.jobs.revoke(request_id)
            return active
        if lapsed:
            return self.revoke(request_id)
        assert active.expires_at is not None
        if not applied.entries and format_instant(active.expires_at) != format_instant(spec.expires_at):
            # Another copy of this job recorded the grant first, and this one has since written its own
            # expiry on the binding: put back the one the revoke is scheduled for, so that the cluster
            # alone still says when the grant ends.
            self.clusters.set_expiry(_with_expiry(spec, active.expires_at))
        self._schedule_end(active, roster)
        self.jobs.publish(request_id)
        return active

    def _undeliverable(self, request: AccessRequest, exc: PermanentError) -> AccessRequest | None:
        """The kubeconfig of a token-mode grant cannot reach its holder: fail closed. A binding,
        ServiceAccount and token nobody received must not stay live (and a sweep adopting the binding
        would only mint and fail to send another); the request ends failed and both are removed now."""
        failed = self._fail(
            request, f"your kubeconfig could not be sent to you by DM ({exc}), so the grant was withdrawn"
        )
        if failed is not None and failed.state is State.FAILED:
            self.revoke(request.id)  # at once; the revoke job _fail queued finishes it if this cannot
        return failed

    def _still_allowed(self, roster: Roster, request: AccessRequest) -> str | None:
        """Check again, against the roster as it is now, before acting on an old approval."""
        decision = policy.evaluate_request(
            roster, policy.Ask(request.requester, request.cluster, request.namespace, request.role, request.duration)
        )
        if not decision:
            return f"no longer allowed: {decision.reason}"
        role = roster.roles[request.role]
        if request.self_service:
            if role.self_service or self._asked_by_operator(request):
                return None
            # The stored flag says how the request was made, not what the role asks for now: a
            # role changed to need approvals must not grant a self-service request made before.
            return f"'{role.name}' now needs {role.approvals} approval{'s' if role.approvals != 1 else ''}; ask again"
        if request.automatic_rule is not None:
            return self._rule_still_allows(roster, request)
        current_approvers = policy.approvers_for(roster, request)
        valid = [a for a in request.approved_by if a in current_approvers]
        if len(valid) < role.approvals:
            return "its approvals no longer suffice: an approver has left the approver groups"
        return None

    def _rule_still_allows(self, roster: Roster, request: AccessRequest) -> str | None:
        """An automatic approval stands only within its rule's limits, as the roster says them now:
        the rule is still there, the duration, the role's scope and the time window are still within
        it, and the request holds a place under its daily cap. Never more access than the role allows."""
        assert request.automatic_rule is not None
        role = roster.roles[request.role]
        rule = automation.rule_named(role.auto_approve, request.automatic_rule)
        if rule is None:
            return f"the rule that approved it automatically ({request.automatic_rule}) is no longer in the roster; ask again"
        place = self.store.automatic.place(request.requester, request.id, self.now())
        if place is None:
            return f"its automatic approval is not counted under rule {rule.name}'s daily cap; ask again"
        facts = automation.Facts(
            role=role.name,
            cluster_scoped=role.scope == "cluster",
            duration=request.duration,
            reason=request.reason,
            now=request.updated_at,  # when it was approved: the window is judged at that instant
            approvals_in_window=place - 1,
        )
        why = automation.limits_hold(rule, facts)
        return f"rule {rule.name} no longer approves it automatically: {why.rstrip('.')}" if why else None

    def _asked_by_operator(self, request: AccessRequest) -> bool:
        """Made with ``breakglass grant`` where the bot runs (Slack down): approved by the operator
        named in its first audit entry, whatever the role asks of a Slack request."""
        first = next(iter(self.store.audit.for_request(request.id)), None)
        return first is not None and first.event == Event.REQUESTED and bool(first.details.get("operator"))

    def _fail(self, request: AccessRequest, why: str) -> AccessRequest | None:
        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.APPROVED:
                return Change(None)
            return Change(
                transition(current, State.FAILED, self.now(), note=why),
                [Draft(Event.GRANT_FAILED, SYSTEM_ACTOR, current.id, {"error": why})],
            )

        applied = self.store.apply(request.id, decide)
        # Whatever half-made binding exists must go too.
        self.jobs.revoke(request.id)
        self.jobs.publish(request.id)
        return applied.request

    def _reissue_token(self, grant: AccessRequest, roster: Roster, expires_at: datetime) -> dict[str, object]:
        """In token mode, a new token for the longer grant, sent to the holder: the one they hold ends
        at the old expiry (a TokenRequest's lifetime cannot be moved). Details for the audit entry."""
        cluster = roster.clusters.get(grant.cluster)
        if cluster is None or cluster.credentials != "token":
            return {}
        try:
            credentials = self.clusters.issue_credentials(self._binding_spec(grant, roster, expires_at))
            file_id = self.notifier.deliver_credentials(grant, credentials)
        except PermanentError as exc:
            # The extension stands (the binding says so); the holder keeps the old token until the
            # old expiry and is told in the thread why no new one came.
            log.warning("no new token for the extended grant %s: %s", grant.id, exc, extra={"request_id": grant.id})
            return {"token_reissued": False, "token_error": str(exc)}
        return {"token_reissued": True, **({KUBECONFIG_FILE: file_id} if file_id else {})}

    def _apply_extension(self, extension: AccessRequest) -> AccessRequest | None:
        assert extension.extends is not None
        roster = self.roster()
        grant = self.store.get(extension.extends)
        if grant is None or grant.state is not State.ACTIVE or grant.expires_at is None:
            return self._fail(extension, f"{extension.extends} is no longer active")
        refusal = self._still_allowed(roster, extension.model_copy(update={"duration": grant.duration}))
        if refusal:
            return self._fail(extension, refusal)
        try:
            extended, refusal = self._extend(grant.id, extension, roster)
        except BindingNotFound:
            return self._extension_of_a_grant_gone(grant, extension)
        except PermanentError as exc:
            return self._fail(extension, f"the cluster refused the new expiry: {exc}")
        if refusal or extended is None or extended.expires_at is None:
            return self._fail(extension, refusal or f"{extension.extends} is no longer active")
        new_expiry = extended.expires_at
        reissued = self._reissue_token(extended, roster, new_expiry)

        def mark_applied(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.APPROVED:
                return Change(None)
            now = self.now()
            return Change(
                activate(current, now, new_expiry),
                [
                    Draft(
                        Event.GRANTED,
                        SYSTEM_ACTOR,
                        current.id,
                        {"extends": grant.id, "expires_at": format_instant(new_expiry), **reissued},
                    )
                ],
            )

        applied = self.store.apply(extension.id, mark_applied)
        self._schedule_end(extended, roster)
        self.jobs.publish(grant.id)
        self.jobs.publish(extension.id)
        return applied.request

    def _extend(
        self, grant_id: RequestId, extension: AccessRequest, roster: Roster
    ) -> tuple[AccessRequest | None, str | None]:
        """Move the grant's expiry by the extension's duration, counted from its *current* expiry.

        Two extensions applied at once must both count, and the binding's annotation must end equal to
        what Redis says. Each round writes the annotation for the expiry it has just read, then commits
        only if Redis still holds that expiry (compare-and-set); a round that lost to another extension
        reads again. The cluster goes first so that Redis never records an expiry the cluster refused.
        Returns the grant as extended, or why not (its room ran out, or it ended meanwhile).
        """
        wrote = False
        for _ in range(EXTEND_ROUNDS):
            read = self.store.get(grant_id)
            if read is None or read.state is not State.ACTIVE or read.expires_at is None:
                return read, f"{grant_id} is no longer active"  # its binding is being removed: leave it
            if extension.id in read.extensions:
                return self._sync_expiry(grant_id, roster), None  # an earlier run of this job committed it
            room = policy.extension_room(roster, read)
            if extension.duration > room:
                if wrote:
                    self._sync_expiry(grant_id, roster)  # take back the annotation an earlier round wrote
                return read, f"only {format_duration(room)} of the role's maximum is left"
            new_expiry = extend_expiry(read, extension.duration)
            self.clusters.set_expiry(self._binding_spec(read, roster, new_expiry))
            wrote = True
            seen = (read.expires_at, read.extensions)

            def extend_grant(
                current: AccessRequest | None,
                seen: tuple[datetime | None, tuple[RequestId, ...]] = seen,
                new_expiry: datetime = new_expiry,
            ) -> Change[bool]:
                found = (current.expires_at, current.extensions) if current is not None else None
                if current is None or current.state is not State.ACTIVE or found != seen:
                    return Change(None, result=False)  # another extension (or the end) got there first
                return Change(
                    current.changed(self.now(), expires_at=new_expiry, extensions=(*current.extensions, extension.id)),
                    [
                        Draft(
                            Event.EXTENDED,
                            SYSTEM_ACTOR,
                            current.id,
                            {"extension": extension.id, "expires_at": format_instant(new_expiry)},
                        )
                    ],
                    result=True,
                )

            if self.store.apply(grant_id, extend_grant).result:
                return self._sync_expiry(grant_id, roster, written=new_expiry), None
        raise TemporaryError(f"{grant_id}'s expiry kept changing under extension {extension.id}; trying again")

    def _sync_expiry(
        self, grant_id: RequestId, roster: Roster, written: datetime | None = None
    ) -> AccessRequest | None:
        """Make the binding's expiry annotation say what Redis says, and return the grant as Redis has it.

        ``written`` is the expiry this caller last wrote there. Another extension may commit between our
        write and its own, so read again after writing until Redis holds what was written last: whoever
        writes last then sees its own value, and the cluster alone still says when the grant ends.
        """
        for _ in range(EXTEND_ROUNDS):
            current = self.store.get(grant_id)
            if current is None or current.state is not State.ACTIVE or current.expires_at is None:
                return current
            if current.expires_at == written:
                return current
            self.clusters.set_expiry(self._binding_spec(current, roster, current.expires_at))
            written = current.expires_at
        raise TemporaryError(f"{grant_id}'s expiry kept changing while its binding was brought up to date")

    def _binding_spec(self, grant: AccessRequest, roster: Roster, expires_at: datetime) -> BindingSpec:
        return BindingSpec(
            request_id=grant.id,
            cluster=grant.cluster,
            namespace=grant.namespace,
            cluster_role=roster.roles[grant.role].cluster_role,
            credentials=roster.clusters[grant.cluster].credentials,
            kube_user=roster.people[grant.requester].kube_user,
            requester=grant.requester,
            approvers=grant.approved_by,
            reason=grant.reason,
            expires_at=expires_at,
        )

    def _extension_of_a_grant_gone(self, grant: AccessRequest, extension: AccessRequest) -> AccessRequest | None:
        """The grant's binding is no longer in the cluster: the grant is over, whatever Redis says (the
        cluster is the truth for what is granted). Retrying cannot bring it back, so record it once: the
        extension fails, and a grant Redis still calls active ends as revoked, with its ServiceAccount
        (token mode) removed by the revoke job."""
        why = f"its binding is no longer in {grant.cluster}: it was removed outside breakglass"

        def end_grant(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.ACTIVE:
                return Change(None)  # ended by us meanwhile (expired or revoked): nothing to add
            return Change(
                transition(current, State.REVOKED, self.now(), note=why),
                [Draft(Event.REVOKED, SYSTEM_ACTOR, current.id, {"why": why})],
            )

        applied = self.store.apply(grant.id, end_grant)
        if applied.entries:
            self.jobs.revoke(grant.id)
            self.jobs.publish(grant.id)
            return self._fail(extension, f"{grant.id} has already ended: {why}")
        # It ended through breakglass meanwhile (its expiry, a revoke): say that, not "outside".
        ended = applied.request.state.label if applied.request is not None else "gone"
        return self._fail(extension, f"{grant.id} has already ended (it is {ended})")

    def _schedule_end(self, grant: AccessRequest, roster: Roster) -> None:
        assert grant.expires_at is not None
        self.jobs.revoke(grant.id, at=grant.expires_at)
        remind_at = grant.expires_at - roster.reminder_before
        if remind_at > self.now():
            self.jobs.remind(grant.id, at=remind_at)

    # --- revoke -------------------------------------------------------------------------------

    def revoke(self, request_id: RequestId, by_sweep: str | None = None) -> AccessRequest | None:
        """End the grant if its time has come (or it was revoked, failed or extended away), then make
        sure its binding is gone. Early calls for a still-running grant change nothing.

        ``by_sweep`` is the sweep's reason when the sweep, not the scheduled revoke, ends the grant: it is
        recorded in the same transaction as the expiry, so it is written only if the sweep really did it
        (not when the on-time revoke got there a moment earlier, or an extension moved the expiry)."""
        return self._end(request_id, why=None, by_sweep=by_sweep)

    def expire(self, request_id: RequestId, by_sweep: str | None = None) -> AccessRequest | None:
        """Record an active grant whose time is up as expired, without touching its cluster: the
        sweep's call while that cluster fails. Its binding carries its expiry, so the next sweep that
        reaches the cluster deletes it."""
        request = self.store.get(request_id)
        if request is None or request.state is not State.ACTIVE:
            return request
        return self._expire(request, by_sweep=by_sweep)

    def end_now(self, request_id: RequestId, why: str) -> AccessRequest | None:
        """End an active grant before the expiry Redis recorded, and remove its binding: the sweep's
        call when the cluster says the grant is over (its binding's expiry annotation is missing or
        past, or its cluster has left the roster). The cluster is the truth for what is granted, and
        the safe direction is to take access away: ``why`` is recorded with the expiry."""
        return self._end(request_id, why=why, by_sweep=why)

    def _end(self, request_id: RequestId, why: str | None, by_sweep: str | None) -> AccessRequest | None:
        """``revoke`` (``why`` None: only once its time has come) and ``end_now`` (now, for ``why``)."""
        request = self.store.get(request_id)
        if request is None:
            return None
        if request.state is State.ACTIVE:
            assert request.expires_at is not None
            early = (request.expires_at - self.now()).total_seconds()
            if why is None and early > EXPIRY_TOLERANCE.total_seconds():
                return request  # extended since this revoke was scheduled; a later one is queued
            if why is None and early > 0:
                # RQ runs a job scheduled at 12:00:05.7 from 12:00:05.0 (it scores whole seconds):
                # wait out the rest, so access never ends before its time.
                self.wait(early)
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

    def _expire(self, request: AccessRequest, why: str | None = None, by_sweep: str | None = None) -> AccessRequest:
        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.ACTIVE:
                return Change(None)
            assert current.expires_at is not None
            if why is None and self.now() + EXPIRY_TOLERANCE < current.expires_at:
                return Change(None)
            details: dict[str, object] = {"expires_at": format_instant(current.expires_at)}
            if why is not None:
                details["why"] = why
            drafts = [Draft(Event.EXPIRED, SYSTEM_ACTOR, current.id, details)]
            if by_sweep is not None:
                swept = {"cluster": current.cluster, "why": by_sweep, "expires_at": format_instant(current.expires_at)}
                drafts.insert(0, Draft(Event.SWEEP_REVOKED_OVERDUE, SYSTEM_ACTOR, current.id, swept))
            return Change(
                transition(current, State.EXPIRED, self.now(), **({"note": why} if why else {})),
                drafts,
            )

        applied = self.store.apply(request.id, decide)
        if applied.entries:
            self.jobs.publish(request.id)
        return applied.request or request

    def cut_unrecorded(self, cluster: str, request_id: RequestId, namespace: str | None, exc: Exception) -> bool:
        """Take the access away although the audit log refuses to record it (its head was deleted or
        set back, and nothing may be appended until a person repairs it).

        Security trade-off: "no change without its audit entry" meets "no grant outlives its
        expiry", and access ending wins. Failing closed on the log would leave the binding standing
        until somebody repairs Redis; deleting it is the direction that cannot hurt. The structured
        log line (the copy that outlives Redis) records what was done, and ``audit verify`` names the
        damage. The request stays active in Redis, so every sweep tries again, loudly, until repaired."""
        removed = self.clusters.remove_grant(cluster, request_id, namespace)
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
            self.notifier.withdraw_credentials(request, files)
        except BreakglassError as exc:
            # The token stops working with its ServiceAccount either way; the file is a copy of a
            # dead credential, so its removal never holds up the revoke.
            log.warning("could not delete the kubeconfig from the DM: %s", exc, extra={"request_id": request.id})

    def remove_binding(self, request: AccessRequest, actor: str, why: str | None = None) -> bool:
        removed = self.clusters.remove_grant(request.cluster, request.id, request.namespace)
        self._withdraw_kubeconfigs(request)
        if removed:
            now = self.now()
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
            if why:
                details["why"] = why
            summary = summary_draft(self.store, request.id)
            self.store.audit.append(
                Draft(Event.BINDING_DELETED, actor, request.id, details), *([summary] if summary else [])
            )
            # Its own publish: one queued for the transition before it (expired, revoked) may already
            # have run, and this entry would then wait in Redis for a thread reply that never comes.
            self.jobs.publish(request.id)
        return removed

    def _end_extensions(self, grant: AccessRequest) -> None:
        for extension_id in grant.extensions:
            target = State.REVOKED if grant.state is State.REVOKED else State.EXPIRED

            def decide(current: AccessRequest | None, target: State = target) -> Change[None]:
                if current is None or current.state is not State.ACTIVE:
                    return Change(None)
                return Change(transition(current, target, self.now(), note=f"{grant.id} ended"))

            self.store.apply(extension_id, decide)

    # --- remind -------------------------------------------------------------------------------

    def remind(self, request_id: RequestId) -> AccessRequest | None:
        """DM the holder once per expiry, ``reminder_before`` it. Whether this expiry was reminded of is
        its own key (claimed atomically), not a search of the grant's audit entries: a grant with
        thousands of recorded actions, under steady audit traffic, must not make the reminder re-read
        them all in a transaction that any other audit write restarts."""
        roster = self.roster()
        current = self.store.get(request_id)
        if current is None or current.state is not State.ACTIVE or current.expires_at is None:
            return current
        left = current.expires_at - self.now()
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
        self.jobs.publish(request_id)
        return current


def _with_expiry(spec: BindingSpec, expires_at: datetime) -> BindingSpec:
    return replace(spec, expires_at=expires_at)
