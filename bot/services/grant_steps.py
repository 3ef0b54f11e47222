"""What granting and extending share: the clients a grant's use cases work with, and the steps both take.

A grant and an extension are both approved requests that a worker makes real in a cluster: both are
checked again against the current roster before anything is made, both fail the same way (the request
ends ``failed``, whatever was half made is revoked), both describe their binding with one
``BindingSpec`` (built only here) and both schedule the grant's end. Each use case (``Granting``,
``Extending``, ``Ending``) holds one ``GrantSteps`` and reads its clients from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain import automation, policy
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.grant_failures import FailureCode, GrantFailure
from bot.domain.grants import BindingSpec, RequestThread
from bot.domain.lifecycle import AccessRequest, State, transition
from bot.domain.roster import Roster
from bot.ports import ClusterGateway, JobQueue, Notifier
from bot.store import Change, Draft, RequestStore

# The scheduler fires on whole seconds; a revoke arriving this much early is still "on time".
EXPIRY_TOLERANCE = timedelta(seconds=1)
# The audit detail naming the kubeconfig file sent by DM (a grant's, or an extension's new token).
KUBECONFIG_FILE = "kubeconfig_file"


@dataclass(frozen=True)
class GrantSteps:
    store: RequestStore
    roster: Callable[[], Roster]
    clusters: ClusterGateway
    jobs: JobQueue
    notifier: Notifier
    now: Callable[[], datetime]
    wait: Callable[[float], None] = field(default=time.sleep)

    def binding_spec(self, grant: AccessRequest, roster: Roster, expires_at: datetime) -> BindingSpec:
        """The one place a grant's binding is described, for its creation, its expiry and its tokens."""
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
            thread=RequestThread(grant.channel, grant.message_ts) if grant.message_ts else None,
        )

    def still_allowed(self, roster: Roster, request: AccessRequest) -> GrantFailure | None:
        """Check again, against the roster as it is now, before acting on an old approval."""
        decision = policy.evaluate_request(
            roster, policy.Ask(request.requester, request.cluster, request.namespace, request.role, request.duration)
        )
        if not decision:
            return GrantFailure(FailureCode.NO_LONGER_ALLOWED, {"reason": decision.reason})
        role = roster.roles[request.role]
        if request.self_service:
            if role.self_service or self._asked_by_operator(request):
                return None
            # The stored flag says how the request was made, not what the role asks for now: a
            # role changed to need approvals must not grant a self-service request made before.
            return GrantFailure(FailureCode.ROLE_NEEDS_APPROVALS, {"role": role.name, "approvals": str(role.approvals)})
        if request.automatic_rule is not None:
            return self._rule_still_allows(roster, request)
        current_approvers = policy.approvers_for(roster, request)
        valid = [a for a in request.approved_by if a in current_approvers]
        if len(valid) < role.approvals:
            return GrantFailure(FailureCode.APPROVALS_NO_LONGER_SUFFICE)
        return None

    def _rule_still_allows(self, roster: Roster, request: AccessRequest) -> GrantFailure | None:
        """An automatic approval stands only within its rule's limits, as the roster says them now:
        the rule is still there, the duration, the role's scope and the time window are still within
        it, and the request holds a place under its daily cap. Never more access than the role allows."""
        assert request.automatic_rule is not None
        role = roster.roles[request.role]
        duration = request.duration
        if request.extends:
            # Judged as when it was approved: on the grant's whole length once extended.
            stored, grant = self.store.get(request.id), self.store.get(request.extends)
            if stored is None or grant is None or grant.granted_at is None or grant.expires_at is None:
                return GrantFailure(FailureCode.GRANT_NOT_ACTIVE, {"grant": request.extends})
            duration = grant.expires_at - grant.granted_at + stored.duration
        rule = automation.rule_named(role.auto_approve, request.automatic_rule)
        if rule is None:
            return GrantFailure(FailureCode.RULE_GONE, {"rule": request.automatic_rule})
        place = self.store.automatic.place(request.requester, request.id, self.now())
        if place is None:
            return GrantFailure(FailureCode.RULE_NOT_COUNTED, {"rule": rule.name})
        facts = automation.Facts(
            role=role.name,
            cluster_scoped=role.scope == "cluster",
            duration=duration,
            reason=request.reason,
            now=request.updated_at,  # when it was approved: the window is judged at that instant
            approvals_in_window=place - 1,
        )
        miss = automation.limits_hold(rule, facts)
        if miss is None:
            return None
        return GrantFailure(FailureCode.RULE_NO_LONGER_APPROVES, {"rule": rule.name, **miss.details(key="miss")})

    def _asked_by_operator(self, request: AccessRequest) -> bool:
        """Made with ``breakglass grant`` where the bot runs (Slack down): approved by the operator
        named in its first audit entry, whatever the role asks of a Slack request."""
        first = next(iter(self.store.audit.for_request(request.id)), None)
        return first is not None and first.event == Event.REQUESTED and bool(first.details.get("operator"))

    def fail(self, request: AccessRequest, failure: GrantFailure) -> AccessRequest | None:
        """End an approved request as failed, and revoke whatever half-made binding it left. The audit
        entry records the failure's code and facts; the request's note, its sentence."""

        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.APPROVED:
                return Change(None)
            return Change(
                transition(current, State.FAILED, self.now(), note=failure.sentence()),
                [Draft(Event.GRANT_FAILED, SYSTEM_ACTOR, current.id, failure.details())],
            )

        applied = self.store.apply(request.id, decide)
        # Whatever half-made binding exists must go too.
        self.jobs.revoke(request.id)
        self.jobs.publish(request.id)
        return applied.request

    def schedule_end(self, grant: AccessRequest, roster: Roster) -> None:
        assert grant.expires_at is not None
        self.jobs.revoke(grant.id, at=grant.expires_at)
        remind_at = grant.expires_at - roster.reminder_before
        if remind_at > self.now():
            self.jobs.remind(grant.id, at=remind_at)
