"""What people do with requests: ask, approve, deny, cancel, revoke, extend, review.

Identity (is this really a roster person from our workspace, with MFA) is checked by the caller on
every action before it reaches here; these functions then decide against the *stored* request and
the *current* roster, never against anything the caller sent along (button values are only ids).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain import policy
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.automation import Approved, LeftToApprovers, capped
from bot.domain.automation_misses import miss_sentence
from bot.domain.durations import format_duration
from bot.domain.ids import RequestId, SlackUserId, new_request_id, request_id_for
from bot.domain.lifecycle import AccessRequest, Approval, Review, State, transition
from bot.domain.roster import Roster
from bot.ports import JobQueue
from bot.services.automation import NOTHING, AutomatedApprovals, Screening, approved_details, requested_details
from bot.services.errors import Refused, no_such_request
from bot.services.kube_actions import summary_draft
from bot.store import Change, Draft, RequestStore
from bot.store.requests import RequestExists

REVIEW_MIN = policy.REVIEW_MIN  # kept importable from here
REVIEW_MAX = policy.REVIEW_MAX
FOLLOW_UPS_MAX = policy.FOLLOW_UPS_MAX
# Refused attempts written to the audit log per person per window; the rest are answered, not written.
REFUSALS_WRITTEN = 20
REFUSAL_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class ApprovalOutcome:
    request: AccessRequest
    counted: int
    required: int

    @property
    def decided(self) -> bool:
        return self.request.state is not State.PENDING


# How the audit log says a grant or revoke came from ``breakglass grant|revoke`` run where the bot
# runs, not from Slack.
OPERATOR_COMMAND = "command line"


class AccessService:
    def __init__(
        self,
        store: RequestStore,
        roster: Callable[[], Roster],
        jobs: JobQueue,
        now: Callable[[], datetime],
        automation: AutomatedApprovals | None = None,
    ) -> None:
        self.store = store
        self.roster = roster
        self.jobs = jobs
        self.now = now
        # Without outside services, a role's ticket or rules still apply and fail closed: no lookup
        # can succeed, so tickets are refused (or left to approvers) and nothing is approved by a rule.
        self.automation = automation or AutomatedApprovals(store, jobs, now)

    # --- asking -------------------------------------------------------------------------------

    def submit(
        self,
        ask: policy.Ask,
        *,
        submission: str | None = None,
        operator: str | None = None,
        verified: Mapping[str, Any] | None = None,
    ) -> AccessRequest:
        """A new pending request. ``submission`` names where it came from (a form, by its Slack view
        id): the same submission delivered again returns the request it made instead of a second one.
        ``operator``: see ``grant_by_operator``. ``verified``: the step-up login that backs it
        (``identity_verified``, written with it)."""
        self.check_submit(ask, submission=submission)
        requester, role, duration, reason = ask.requester, ask.role, ask.duration, ask.reason
        roster = self.roster()
        # The ticket check and the rules' lookups, after identity and step-up, before anything is
        # stored: a refused ticket leaves no request behind. ``breakglass grant`` (Slack down, run by
        # an operator where the bot runs) is approved by that operator and checks neither.
        screening = NOTHING if operator else self.automation.screen(roster, requester, role, duration, reason)
        now = self.now()
        request = AccessRequest(
            id=request_id_for(submission) if submission else new_request_id(),
            requester=requester,
            cluster=ask.cluster,
            namespace=ask.namespace,
            role=role,
            duration=duration,
            reason=reason.strip(),
            channel=ask.channel or roster.incident_channel,
            created_at=now,
            updated_at=now,
            approvals_required=0 if operator else roster.roles[role].approvals,
            ticket=screening.ticket,
        )
        operated = {"operator": operator, "via": OPERATOR_COMMAND} if operator else None
        left = screening.outcome if isinstance(screening.outcome, LeftToApprovers) else None
        request, created = self._create(
            request,
            Event.REQUESTED,
            once=submission is not None,
            extra={**(operated or {}), **requested_details(screening)},
            verified=verified,
            left_to_approvers=left,
        )
        if not created:
            return request
        return self._after_created(request, approved=operated, screening=screening)

    def check_submit(self, ask: policy.Ask, *, submission: str | None = None) -> None:
        """Refused if ``submit`` would refuse this ask now: asked before a step-up too, so nobody signs
        in at the identity provider for a request that could never be made."""
        roster = self.roster()
        same = request_id_for(submission) if submission else None  # a redelivered form is not a new ask
        mine = [r for r in self._undecided(roster) if r.requester == ask.requester and not r.extends and r.id != same]
        _require(
            policy.evaluate_request(roster, ask),
            policy.check_channel(roster, ask.channel) if ask.channel is not None else policy.ALLOW,
            policy.check_pending_quota(roster, len(mine)),
            policy.check_reason(ask.reason),
        )

    def extend(
        self, grant_id: RequestId, person: SlackUserId, by: timedelta, reason: str, *, submission: str | None = None
    ) -> AccessRequest:
        roster = self.roster()
        grant = self.get_visible(grant_id, person)  # do not confirm that someone else's id exists
        earlier = self._earlier_extension(grant_id, person, by, reason, submission)
        if earlier is not None:
            return earlier
        same = request_id_for(submission) if submission else None
        waiting = [r for r in self._undecided(roster) if r.extends == grant.id and r.id != same]
        _require(
            policy.evaluate_extension(roster, grant, person, by),
            policy.check_extension_quota(roster, grant, len(waiting)),
            policy.check_reason(reason),
        )
        now = self.now()
        extension = AccessRequest(
            id=request_id_for(submission) if submission else new_request_id(),
            requester=person,
            cluster=grant.cluster,
            namespace=grant.namespace,
            role=grant.role,
            duration=by,
            reason=reason.strip(),
            channel=grant.channel,
            created_at=now,
            updated_at=now,
            approvals_required=roster.roles[grant.role].approvals,
            extends=grant.id,
        )
        # Rules judge the grant's whole length once extended: a chain of extensions never adds up past
        # a rule's max_duration without an approver.
        ran = grant.expires_at - grant.granted_at if grant.expires_at and grant.granted_at else timedelta(0)
        total = ran + by
        screening = self.automation.screen_extension(roster, person, grant.role, total, reason)
        left = screening.outcome if isinstance(screening.outcome, LeftToApprovers) else None
        extension, created = self._create(
            extension, Event.REQUESTED, once=submission is not None, left_to_approvers=left
        )
        if not created:
            return extension
        self.store.audit.append(
            Draft(
                Event.EXTENSION_REQUESTED,
                person,
                grant.id,
                {"extension": extension.id, "by": format_duration(by), "reason": extension.reason},
            )
        )
        self.jobs.publish(grant.id)
        return self._after_created(extension, screening=screening)

    def grant_by_operator(self, ask: policy.Ask, operator: str) -> AccessRequest:
        """``breakglass grant``, run where the bot runs while Slack is down: the same roster, policy
        and limits as a request, then granted at once as self-service break-glass is. Nobody could
        approve it in Slack, so, as for self-service, the approvers are told and a review is owed; the
        operator is named in the audit log from the first entry."""
        return self.submit(ask, operator=operator)

    def revoke_by_operator(self, request_id: RequestId, operator: str, reason: str | None) -> AccessRequest:
        """``breakglass revoke``, run where the bot runs: ends a grant now, whoever holds it."""

        def decide(current: AccessRequest | None) -> Change[Refused]:
            if current is None:
                return Change(None, result=no_such_request(request_id))
            decision = policy.revocable(current)
            if not decision:
                return Change(None, result=Refused(decision.reason))
            details: dict[str, object] = {"early": True, "operator": operator, "via": OPERATOR_COMMAND}
            if reason:
                details["why"] = reason.strip()
            return Change(
                transition(current, State.REVOKED, self.now()),
                [Draft(Event.REVOKED, SYSTEM_ACTOR, current.id, details)],
            )

        request = self._apply_or_refuse(request_id, decide)
        self.jobs.revoke(request_id)
        self.jobs.publish(request_id)
        return request

    def _earlier_extension(
        self, grant_id: RequestId, person: SlackUserId, by: timedelta, reason: str, submission: str | None
    ) -> AccessRequest | None:
        # Looked up before the policy check, which judges the grant as it is now: the first delivery
        # may have changed it since (a granted extension moves its expiry and uses up the room left;
        # the grant may have ended), and the second delivery must answer with the extension it made.
        if submission is None:
            return None
        found = self.store.get(request_id_for(submission))
        if found is not None and (found.extends, found.requester, found.duration, found.reason) == (
            grant_id,
            person,
            by,
            reason.strip(),
        ):
            return found
        return None

    def _create(
        self,
        request: AccessRequest,
        event: Event,
        *,
        once: bool = False,
        extra: Mapping[str, object] | None = None,
        verified: Mapping[str, Any] | None = None,
        left_to_approvers: LeftToApprovers | None = None,
    ) -> tuple[AccessRequest, bool]:
        """Store ``request`` (under a fresh id if its own is taken) and return it with True. With
        ``once``, its id names its submission: if that id holds the same ask, this submission was
        delivered before, and the earlier request comes back with False. The store's create is atomic,
        so of two deliveries at the same instant exactly one creates."""
        details: dict[str, object] = {
            "cluster": request.cluster,
            "namespace": request.namespace,
            "role": request.role,
            "duration": format_duration(request.duration),
            "reason": request.reason,
            "channel": request.channel,
            "approvals_required": request.approvals_required,
        }
        if request.extends:
            details["extends"] = request.extends
        details.update(extra or {})
        for _ in range(5):
            try:
                drafts = [Draft(event, request.requester, request.id, details)]
                if verified is not None:
                    drafts.append(Draft(Event.IDENTITY_VERIFIED, request.requester, request.id, dict(verified)))
                if left_to_approvers is not None:
                    drafts.append(_left_draft(request.id, left_to_approvers))
                self.store.create(request, drafts)
                return request, True
            except RequestExists:
                if once:
                    found = self.store.get(request.id)
                    # Ids are short, so an unrelated request may hold this one: only the same ask is it.
                    if found is not None and all(getattr(found, f) == getattr(request, f) for f in _SAME_ASK):
                        return found, False
                    once = False
                request = request.model_copy(update={"id": new_request_id()})
        raise RuntimeError("could not find a free request id")  # 30^6 ids: practically unreachable

    def _after_created(
        self,
        request: AccessRequest,
        approved: Mapping[str, object] | None = None,
        screening: Screening = NOTHING,
    ) -> AccessRequest:
        if isinstance(screening.outcome, Approved):
            request = self._approve_automatically(request, screening.outcome)
        if request.state is State.PENDING:
            self._schedule_escalation(request)
        if request.self_service:
            # Break-glass proper: no one to wait for. Granted at once, announced loudly (the publish
            # job names the approvers), and a review is owed afterwards.
            def approve_now(current: AccessRequest | None) -> Change[None]:
                assert current is not None
                if current.state is not State.PENDING:
                    return Change(None)
                return Change(
                    transition(current, State.APPROVED, self.now()),
                    [
                        Draft(
                            Event.APPROVED,
                            SYSTEM_ACTOR,
                            current.id,
                            {"self_service": True, "waited_seconds": 0.0, **(approved or {})},
                        )
                    ],
                )

            request = self.store.apply(request.id, approve_now).request or request
            self.jobs.grant(request.id)
        self.jobs.publish(request.id)
        return request

    def _approve_automatically(self, request: AccessRequest, outcome: Approved) -> AccessRequest:
        """Approve ``request`` by ``outcome``'s rule: first take its place under the rule's daily cap
        (atomically: two requests at once cannot both take the last one), then record the approval
        with its evidence. The grant job checks the rule's limits again before it acts."""
        if not self.automation.claim(request, outcome.rule):
            left = capped(outcome.rule)
            self.store.audit.append(_left_draft(request.id, left))
            return request

        def approve(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.PENDING:
                return Change(None)
            now = self.now()
            waited = round((now - current.created_at).total_seconds(), 3)
            return Change(
                transition(current, State.APPROVED, now, automatic_rule=outcome.rule.name),
                [Draft(Event.APPROVED, SYSTEM_ACTOR, current.id, approved_details(outcome, waited))],
            )

        applied = self.store.apply(request.id, approve)
        if not applied.entries:
            self.automation.release(request)  # decided otherwise meanwhile (cancelled): not counted
            return applied.request or request
        self.jobs.grant(request.id)
        return applied.request or request

    def _schedule_escalation(self, request: AccessRequest) -> None:
        role = self.roster().roles.get(request.role)
        if role is not None and role.escalate_after is not None and role.escalate_service is not None:
            self.jobs.escalate(request.id, request.created_at + role.escalate_after)

    def _settle_escalation(self, request: AccessRequest | None) -> None:
        """The request is decided: resolve its escalation incident, if one was opened."""
        if request is None or request.state is State.PENDING:
            return
        role = self.roster().roles.get(request.role)
        if role is not None and role.escalate_service is not None:
            self.jobs.settle_escalation(request.id)

    # --- deciding -----------------------------------------------------------------------------

    def approve(
        self, request_id: RequestId, approver: SlackUserId, *, verified: Mapping[str, Any] | None = None
    ) -> ApprovalOutcome:
        """Count ``approver``'s approval; ``verified`` is the step-up login that backs it, written
        just before it (``identity_verified``) in the same transaction."""
        return self._decide(request_id, approver, approve=True, verified=verified)

    def check_approve(self, request_id: RequestId, approver: SlackUserId) -> AccessRequest:
        """The request, if ``approver`` may approve it now; Refused otherwise (asked before a step-up)."""
        current = self.store.get(request_id)
        if current is None:
            raise no_such_request(request_id)
        roster, now = self.roster(), self.now()
        if policy.lapsed(roster, current, now):
            self._decide(request_id, approver, approve=True)  # times it out and says so, as a click would
        decision = policy.may_decide(roster, current, approver, now)
        if not decision:
            raise Refused(decision.reason)
        return current

    def deny(self, request_id: RequestId, approver: SlackUserId, reason: str | None = None) -> ApprovalOutcome:
        """``reason`` (optional) goes to the thread and to the requester."""
        return self._decide(request_id, approver, approve=False, reason=(reason or "").strip()[:2000] or None)

    def may_decide(self, request_id: RequestId, person: SlackUserId) -> None:
        """Raise Refused, as approve or deny would, when ``person`` may not decide on it now; nothing is
        written (the deny button asks this before it opens the form for a reason)."""
        current = self.store.get(request_id)
        if current is None:
            raise no_such_request(request_id)
        decision = policy.may_decide(self.roster(), current, person, self.now())
        if not decision:
            raise Refused(decision.reason)

    def _decide(
        self,
        request_id: RequestId,
        person: SlackUserId,
        *,
        approve: bool,
        reason: str | None = None,
        verified: Mapping[str, Any] | None = None,
    ) -> ApprovalOutcome:
        roster = self.roster()

        def decide(current: AccessRequest | None) -> Change[ApprovalOutcome | Refused]:
            if current is None:
                return Change(None, result=no_such_request(request_id))
            now = self.now()
            decision = policy.may_decide(roster, current, person, now)
            if policy.lapsed(roster, current, now):
                # Whoever clicked, the request is past its deadline: time it out here, as the sweep
                # would, rather than leave it looking decidable until the sweep next runs.
                lapsed = _timed_out(roster, current, now)
                return Change(lapsed.request, lapsed.drafts, Refused(decision.reason))
            if not decision:
                # The caller writes the refused attempt to the audit log (one place for every action).
                return Change(None, result=Refused(decision.reason))
            if not approve:
                denied = transition(current, State.DENIED, now, decided_by=person)
                return Change(
                    denied,
                    [Draft(Event.DENIED, person, current.id, {"reason": reason} if reason else {})],
                    ApprovalOutcome(denied, len(current.approvals), current.approvals_required),
                )
            approvals = (*current.approvals, Approval(by=person, at=now))
            updated = current.changed(now, approvals=approvals)
            details: dict[str, object] = {"count": len(approvals), "required": current.approvals_required}
            if len(approvals) >= current.approvals_required:
                updated = transition(updated, State.APPROVED, now)
                details["waited_seconds"] = round((now - current.created_at).total_seconds(), 3)
            drafts = [Draft(Event.APPROVED, person, current.id, details)]
            if verified is not None:
                drafts.insert(0, Draft(Event.IDENTITY_VERIFIED, person, current.id, dict(verified)))
            return Change(
                updated,
                drafts,
                ApprovalOutcome(updated, len(approvals), current.approvals_required),
            )

        applied = self.store.apply(request_id, decide)
        if isinstance(applied.result, Refused):
            if applied.entries:
                self._settle_escalation(applied.request)
                self.jobs.publish(request_id)  # timed out just now: the thread and root must say so
            raise applied.result
        assert applied.result is not None
        outcome = applied.result
        if outcome.request.state is State.APPROVED:
            self.jobs.grant(request_id)
        self._settle_escalation(outcome.request)
        self.jobs.publish(request_id)
        return outcome

    def refuse(
        self,
        request_id: RequestId | None,
        person: SlackUserId,
        action: str,
        reason: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a refused attempt in the audit log. Listeners call this for every refusal they
        answer, whether the identity gate, the policy or this service refused it.

        Anyone in the workspace can be refused as often as they like (``status BG-XXXXXX`` with
        made-up ids), and every entry is one more write on the single chain head. So a refusal is
        filed under its request only when that request exists (an id nobody holds is kept in the
        details, and makes no key of its own), and each person gets REFUSALS_WRITTEN in full per
        REFUSAL_WINDOW: the last of them says that further ones are not written until the window
        ends. The answer to the person is the same either way."""
        count = self.store.count_refusal(person, REFUSAL_WINDOW)
        if count > REFUSALS_WRITTEN:
            return
        details: dict[str, object] = {"action": action, "reason": reason, **(extra or {})}
        filed_under = request_id if request_id is not None and self.store.get(request_id) is not None else None
        if request_id is not None and filed_under is None:
            details["unknown_id"] = request_id
        if count == REFUSALS_WRITTEN:
            details["further_refusals_not_written_for"] = format_duration(REFUSAL_WINDOW)
        self.store.audit.append(Draft(Event.REFUSED, person, filed_under, details))

    # --- ending -------------------------------------------------------------------------------

    def cancel(self, request_id: RequestId, person: SlackUserId) -> AccessRequest:
        roster = self.roster()

        def decide(current: AccessRequest | None) -> Change[Refused]:
            if current is None or not _may_see(roster, current, person):
                return Change(None, result=no_such_request(request_id))  # do not confirm someone else's id
            decision = policy.may_cancel(current, person)
            if not decision:
                return Change(None, result=Refused(decision.reason))
            cancelled = transition(current, State.CANCELLED, self.now(), decided_by=person)
            return Change(cancelled, [Draft(Event.CANCELLED, person, current.id, {})])

        request = self._apply_or_refuse(request_id, decide)
        self._settle_escalation(request)
        self.jobs.publish(request_id)
        return request

    def revoke(self, request_id: RequestId, person: SlackUserId) -> AccessRequest:
        """End a grant now. The state changes first, so that even if the removal job is lost the
        sweep sees a revoked request and deletes its binding."""
        roster = self.roster()

        def decide(current: AccessRequest | None) -> Change[Refused]:
            if current is None or not _may_see(roster, current, person):
                return Change(None, result=no_such_request(request_id))  # do not confirm someone else's id
            decision = policy.may_revoke(roster, current, person)
            if not decision:
                return Change(None, result=Refused(decision.reason))
            revoked = transition(current, State.REVOKED, self.now(), decided_by=person)
            return Change(revoked, [Draft(Event.REVOKED, person, current.id, {"early": True})])

        request = self._apply_or_refuse(request_id, decide)
        self.jobs.revoke(request_id)
        self.jobs.publish(request_id)
        return request

    def time_out(self, request_id: RequestId) -> AccessRequest | None:
        """Expire a pending request whose request_timeout has passed (the sweep calls this)."""
        roster = self.roster()

        def decide(current: AccessRequest | None) -> Change[None]:
            now = self.now()
            if current is None or not policy.lapsed(roster, current, now):
                return Change(None)
            return _timed_out(roster, current, now)

        applied = self.store.apply(request_id, decide)
        if applied.entries:
            self._settle_escalation(applied.request)
            self.jobs.publish(request_id)
            return applied.request
        return None

    # --- after --------------------------------------------------------------------------------

    def write_review(
        self,
        request_id: RequestId,
        person: SlackUserId,
        text: str,
        *,
        submission: str | None = None,
        follow_ups: str = "",
    ) -> AccessRequest:
        """Write ``person``'s review (or, as holder of self-service, their account). With ``submission``
        (the form's view id), the same form delivered again answers with the review it wrote."""
        roster = self.roster()
        body = text.strip()
        follow_ups = follow_ups.strip()
        _require(policy.check_review(body), policy.check_follow_ups(follow_ups))

        def decide(current: AccessRequest | None) -> Change[Refused]:
            if current is None or not _may_see(roster, current, person):
                return Change(None, result=no_such_request(request_id))  # do not confirm someone else's id
            if submission is not None and any(
                w is not None and (w.by, w.text) == (person, body) for w in (current.review, current.holder_account)
            ):
                # Checked before the policy, to which the first delivery's review is "already has a review".
                return Change(None)
            decision = policy.may_review(roster, current, person)
            if not decision:
                return Change(None, result=Refused(decision.reason))
            now = self.now()
            written = Review(by=person, at=now, text=body, follow_ups=follow_ups)
            if policy.review_closes(current, person):
                reviewed = current.changed(now, review=written)
                details: dict[str, object] = {"review": body}
            else:
                # The holder's own account of a self-service grant: kept for the reviewer, but the
                # review stays owed until an approver writes it.
                reviewed = current.changed(now, holder_account=written)
                details = {"review": body, "holder_account": True}
            if follow_ups:
                details["follow_ups"] = follow_ups
            return Change(reviewed, [Draft(Event.REVIEW_WRITTEN, person, current.id, details)])

        request = self._apply_or_refuse(request_id, decide)
        self.jobs.publish(request_id)
        return request

    def remind_overdue_reviews(self, limit: int = 500) -> list[RequestId]:
        """Remind whoever owes each overdue review (the sweep calls this; each is reminded at most once
        a day, whichever process gets there first). Returns the requests reminded."""
        roster = self.roster()
        now = self.now()
        reminded = []
        for request in self.store.recent(limit):
            if not policy.review_overdue(request, now):
                continue
            if not self.store.claim_daily(f"review-reminded:{request.id}", int(timedelta(days=1).total_seconds())):
                continue
            owers = policy.review_owers(roster, request)
            assert request.ended_at is not None
            days = max(int((now - request.ended_at) / timedelta(days=1)), 1)
            details = {"owed_by": list(owers), "ended_days_ago": days}
            self.store.audit.append(Draft(Event.REVIEW_REMINDED, SYSTEM_ACTOR, request.id, details))
            self.jobs.publish(request.id)
            reminded.append(request.id)
        return reminded

    # --- reading ------------------------------------------------------------------------------

    def not_automatic(self, request_id: RequestId) -> str | None:
        """Why no automatic-approval rule approved the request (its ``left_to_approvers`` entry), if one
        was tried: the requester is told with the answer to their command."""
        left = [e for e in self.store.audit.for_request(request_id) if e.event == Event.LEFT_TO_APPROVERS]
        return miss_sentence(left[-1].details) if left else None

    def actions_summary(self, request_id: RequestId) -> Mapping[str, Any] | None:
        """What was done under the grant, as its end summed it up (or as recorded so far), for the
        review form to start from; None when nothing was recorded."""
        summaries = [e for e in self.store.audit.for_request(request_id) if e.event == Event.ACTIONS_SUMMARY]
        if summaries:
            return summaries[-1].details
        draft = summary_draft(self.store, request_id)
        return draft.details if draft is not None else None

    def get_visible(self, request_id: RequestId, person: SlackUserId) -> AccessRequest:
        """A request the person may see: their own, one they may approve, or any for an admin."""
        roster = self.roster()
        request = self._get(request_id)
        if not _may_see(roster, request, person):
            raise no_such_request(request_id)  # do not confirm that someone else's id exists
        return request

    def _undecided(self, roster: Roster) -> list[AccessRequest]:
        """Pending requests still open to a decision (the pending index, not the newest N requests)."""
        now = self.now()
        return [r for r in self.store.pending() if not policy.lapsed(roster, r, now)]

    def reviews_owed(self, person: SlackUserId) -> list[AccessRequest]:
        """Ended self-service grants waiting for ``person``'s review (or, as holder, their account)."""
        roster = self.roster()
        # Its own index, however many requests came after; the newest ones too, for grants that
        # ended before the index existed.
        candidates = {r.id: r for r in [*self.store.reviews_owed(), *self.store.recent()]}
        owed = [r for r in candidates.values() if policy.owes_review(roster, r, person)]
        return sorted(owed, key=lambda r: r.created_at, reverse=True)

    def listing(self, person: SlackUserId) -> tuple[list[AccessRequest], list[AccessRequest]]:
        """(mine, awaiting my approval), newest first."""
        roster = self.roster()
        mine = [r for r in self.store.recent() if r.requester == person]
        # From the pending index: a request still open to approval never drops out of sight behind
        # newer ones. Lapsed ones (past their deadline) have nothing left to approve.
        waiting = [
            r
            for r in self._undecided(roster)
            if person in policy.approvers_for(roster, r) and person not in r.approved_by
        ]
        return mine, sorted(waiting, key=lambda r: r.created_at, reverse=True)

    def _get(self, request_id: RequestId) -> AccessRequest:
        request = self.store.get(request_id)
        if request is None:
            raise no_such_request(request_id)
        return request

    def _apply_or_refuse(
        self, request_id: RequestId, decide: Callable[[AccessRequest | None], Change[Refused]]
    ) -> AccessRequest:
        applied = self.store.apply(request_id, decide)
        if isinstance(applied.result, Refused):
            raise applied.result
        assert applied.request is not None
        return applied.request


def _may_see(roster: Roster, request: AccessRequest, person: SlackUserId) -> bool:
    """Their own, one they may approve, or any for an admin."""
    return person == request.requester or person in policy.approvers_for(roster, request) or roster.is_admin(person)


def _timed_out(roster: Roster, request: AccessRequest, now: datetime) -> Change[None]:
    """The one way a lapsed request ends, whether the sweep or a late click finds it."""
    return Change(
        transition(request, State.TIMED_OUT, now),
        [Draft(Event.TIMED_OUT, SYSTEM_ACTOR, request.id, {"after": format_duration(roster.request_timeout)})],
    )


def _left_draft(request_id: RequestId, left: LeftToApprovers) -> Draft:
    """Why no rule approved the request, for the thread and the log."""
    return Draft(Event.LEFT_TO_APPROVERS, SYSTEM_ACTOR, request_id, left.details())


_SAME_ASK = ("requester", "cluster", "namespace", "role", "duration", "reason", "extends")


def _require(*decisions: policy.Decision) -> None:
    """Refuse with the first failing decision's reason (checked in the order given)."""
    for decision in decisions:
        if not decision:
            raise Refused(decision.reason)
