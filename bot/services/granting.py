"""An approved request made real: checked again, its binding put in place, its credentials sent, and
the grant recorded active with its end scheduled.

Safe to run twice and safe to be killed half-way: it re-reads the request and acts only while it is
still approved; a binding made by a run that died before recording it is found by the sweep, which
calls ``grant`` again with the binding's own expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain import policy
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.grant_failures import FailureCode, GrantFailure
from bot.domain.grants import BindingSpec, IssuedCredentials, format_instant
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest, State, activate, expiry_for
from bot.ports import PermanentError
from bot.services.ending import Ending
from bot.services.extending import Extending
from bot.services.grant_steps import KUBECONFIG_FILE, GrantSteps
from bot.store import AuditLogBroken, Change, Draft

# Moving the expiry annotation after a slow create is only worth a round trip past this.
EXPIRY_SLACK = timedelta(seconds=1)


@dataclass(frozen=True)
class _Made:
    """A binding in place (or, for a lapsed found one, left as it was), ready to be recorded."""

    spec: BindingSpec
    in_place: datetime
    credentials: IssuedCredentials | None
    kubeconfig_file: str | None


class Granting:
    def __init__(self, steps: GrantSteps, ending: Ending, extending: Extending) -> None:
        self.steps = steps
        self.store = steps.store
        self.ending = ending
        self.extending = extending

    def grant(self, request_id: RequestId, expires_at: datetime | None = None) -> AccessRequest | None:
        """Put the approved request's binding in place and record it active.

        ``expires_at`` is the sweep's, for a binding already in the cluster whose grant job was lost (a
        worker killed after its create landed): that binding's expiry stands. Granting it afresh would
        count the whole duration again from now, and, once the sweep had removed the expired binding,
        hand the access out a second time.
        """
        steps = self.steps
        request = self.store.get(request_id)
        if request is None or request.state is not State.APPROVED:
            return request  # already granted, ended, or unknown: nothing to do
        roster = steps.roster()
        if expires_at is None:
            # Not for a binding the sweep found: that grant was made in time, and it is recorded as made.
            too_old = policy.approval_too_old(roster, request, steps.now())
            if too_old:
                return steps.fail(request, too_old)
        if request.extends:
            return self.extending.apply(request)
        refusal = steps.still_allowed(roster, request)
        if refusal:
            return steps.fail(request, refusal)
        started = steps.now()
        spec = steps.binding_spec(request, roster, expires_at or expiry_for(request, started))
        # A found binding whose time ran out already is recorded and ended, not applied again (which
        # in token mode would mint and send credentials for a grant that is over).
        lapsed = expires_at is not None and expires_at <= started
        steps.store.audit.check_writable()  # nothing is granted that the log cannot record
        made = self._make(request, spec, started, lapsed, found=expires_at is not None)
        if not isinstance(made, _Made):
            return made  # failed, and recorded so
        try:
            applied = self.store.apply(request_id, self._record(made, found=expires_at is not None))
        except AuditLogBroken as exc:
            # The log broke between the check above and now: the grant cannot be recorded, so it
            # must not stand. The job's retry finds the log still broken and creates nothing.
            if not lapsed:
                self.ending.cut_unrecorded(request.cluster, request.id, request.namespace, exc)
            raise
        active = applied.request
        if active is None or active.state is not State.ACTIVE:
            # Revoked while the binding was being made: take it away again.
            steps.jobs.revoke(request_id)
            return active
        if lapsed:
            return self.ending.revoke(request_id)
        assert active.expires_at is not None
        if not applied.entries and format_instant(active.expires_at) != format_instant(made.spec.expires_at):
            # Another copy of this job recorded the grant first, and this one has since written its own
            # expiry on the binding: put back the one the revoke is scheduled for, so that the cluster
            # alone still says when the grant ends.
            steps.clusters.set_expiry(replace(made.spec, expires_at=active.expires_at))
        steps.schedule_end(active, roster)
        steps.jobs.publish(request_id)
        return active

    def _make(
        self, request: AccessRequest, spec: BindingSpec, started: datetime, lapsed: bool, found: bool
    ) -> _Made | AccessRequest | None:
        """Put the binding in place and send its credentials; the request as failed when either is refused."""
        steps = self.steps
        credentials = None
        if not lapsed:
            try:
                credentials = steps.clusters.apply_grant(spec)
            except PermanentError as exc:
                return steps.fail(request, GrantFailure(FailureCode.CLUSTER_REFUSED_BINDING, {"error": str(exc)}))
        in_place = steps.now()
        if not found and in_place - started > EXPIRY_SLACK:
            # The duration counts from the moment the binding is in place, not from when we asked.
            spec = replace(spec, expires_at=expiry_for(request, in_place))
            steps.clusters.set_expiry(spec)
        kubeconfig_file = None
        if credentials is not None:
            try:
                kubeconfig_file = steps.notifier.deliver_credentials(request, credentials)
            except PermanentError as exc:
                return self._undeliverable(request, exc)
        return _Made(spec, in_place, credentials, kubeconfig_file)

    def _record(self, made: _Made, found: bool) -> Callable[[AccessRequest | None], Change[None]]:
        spec, credentials = made.spec, made.credentials

        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.APPROVED:
                return Change(None)
            details = {
                "cluster": current.cluster,
                "namespace": current.namespace,
                "binding": spec.name,
                "cluster_role": spec.cluster_role,
                "subject": spec.kube_user if spec.credentials == "user" else f"serviceaccount/{spec.name}",
                "expires_at": format_instant(spec.expires_at),
                "token_outlives_grant": bool(credentials and credentials.outlives_grant),
                **({KUBECONFIG_FILE: made.kubeconfig_file} if made.kubeconfig_file else {}),
                "latency_seconds": round((made.in_place - current.updated_at).total_seconds(), 3),
                **({"found_by_sweep": True} if found else {}),
            }
            return Change(
                activate(current, made.in_place, spec.expires_at),
                [Draft(Event.GRANTED, SYSTEM_ACTOR, current.id, details)],
            )

        return decide

    def _undeliverable(self, request: AccessRequest, exc: PermanentError) -> AccessRequest | None:
        """The kubeconfig of a token-mode grant cannot reach its holder: fail closed. A binding,
        ServiceAccount and token nobody received must not stay live (and a sweep adopting the binding
        would only mint and fail to send another); the request ends failed and both are removed now."""
        failed = self.steps.fail(request, GrantFailure(FailureCode.KUBECONFIG_UNDELIVERABLE, {"error": str(exc)}))
        if failed is not None and failed.state is State.FAILED:
            self.ending.revoke(request.id)  # at once; the revoke job fail queued finishes it if this cannot
        return failed
