"""An approved extension made real: the grant's expiry moved in the cluster, then in Redis, and a new
token sent when the grant's credentials are tokens.

The cluster goes first so that Redis never records an expiry the cluster refused; extensions racing on
one grant each compare-and-set, so both count and the binding's annotation ends equal to Redis.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.domain import policy
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.durations import format_duration
from bot.domain.end_reasons import EndCode, EndReason
from bot.domain.grant_failures import FailureCode, GrantFailure
from bot.domain.grants import format_instant
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest, State, activate, extend_expiry, transition
from bot.domain.roster import Roster
from bot.ports import BindingNotFound, PermanentError, TemporaryError
from bot.services.grant_steps import KUBECONFIG_FILE, GrantSteps
from bot.store import Change, Draft

log = logging.getLogger(__name__)

# Extensions racing on one grant each retry their compare-and-set; more rounds than this is a storm.
EXTEND_ROUNDS = 20


class Extending:
    def __init__(self, steps: GrantSteps) -> None:
        self.steps = steps
        self.store = steps.store

    def apply(self, extension: AccessRequest) -> AccessRequest | None:
        """Apply an approved extension to its grant; the extension ends active (applied) or failed."""
        assert extension.extends is not None
        steps = self.steps
        roster = steps.roster()
        grant = self.store.get(extension.extends)
        if grant is None or grant.state is not State.ACTIVE or grant.expires_at is None:
            return steps.fail(extension, _not_active(extension.extends))
        refusal = steps.still_allowed(roster, extension.model_copy(update={"duration": grant.duration}))
        if refusal:
            return steps.fail(extension, refusal)
        try:
            extended, refusal = self._extend(grant.id, extension, roster)
        except BindingNotFound:
            return self._grant_gone(grant, extension)
        except PermanentError as exc:
            return steps.fail(extension, GrantFailure(FailureCode.CLUSTER_REFUSED_EXPIRY, {"error": str(exc)}))
        if refusal or extended is None or extended.expires_at is None:
            return steps.fail(extension, refusal or _not_active(extension.extends))
        new_expiry = extended.expires_at
        reissued = self._reissue_token(extended, roster, new_expiry)

        def mark_applied(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.APPROVED:
                return Change(None)
            now = steps.now()
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
        steps.schedule_end(extended, roster)
        steps.jobs.publish(grant.id)
        steps.jobs.publish(extension.id)
        return applied.request

    def _reissue_token(self, grant: AccessRequest, roster: Roster, expires_at: datetime) -> dict[str, object]:
        """In token mode, a new token for the longer grant, sent to the holder: the one they hold ends
        at the old expiry (a TokenRequest's lifetime cannot be moved). Details for the audit entry."""
        cluster = roster.clusters.get(grant.cluster)
        if cluster is None or cluster.credentials != "token":
            return {}
        try:
            credentials = self.steps.clusters.issue_credentials(self.steps.binding_spec(grant, roster, expires_at))
            file_id = self.steps.notifier.deliver_credentials(grant, credentials)
        except PermanentError as exc:
            # The extension stands (the binding says so); the holder keeps the old token until the
            # old expiry and is told in the thread why no new one came.
            log.warning("no new token for the extended grant %s: %s", grant.id, exc, extra={"request_id": grant.id})
            return {"token_reissued": False, "token_error": str(exc)}
        return {"token_reissued": True, **({KUBECONFIG_FILE: file_id} if file_id else {})}

    def _extend(
        self, grant_id: RequestId, extension: AccessRequest, roster: Roster
    ) -> tuple[AccessRequest | None, GrantFailure | None]:
        """Move the grant's expiry by the extension's duration, counted from its *current* expiry.

        Two extensions applied at once must both count, and the binding's annotation must end equal to
        what Redis says. Each round writes the annotation for the expiry it has just read, then commits
        only if Redis still holds that expiry (compare-and-set); a round that lost to another extension
        reads again. The cluster goes first so that Redis never records an expiry the cluster refused.
        Returns the grant as extended, or why not (its room ran out, or it ended meanwhile).
        """
        now = self.steps.now
        wrote = False
        for _ in range(EXTEND_ROUNDS):
            read = self.store.get(grant_id)
            if read is None or read.state is not State.ACTIVE or read.expires_at is None:
                return read, _not_active(grant_id)  # its binding is being removed: leave it
            if extension.id in read.extensions:
                return self._sync_expiry(grant_id, roster), None  # an earlier run of this job committed it
            room = policy.extension_room(roster, read)
            if extension.duration > room:
                if wrote:
                    self._sync_expiry(grant_id, roster)  # take back the annotation an earlier round wrote
                return read, GrantFailure(FailureCode.NO_EXTENSION_ROOM, {"left": format_duration(room)})
            new_expiry = extend_expiry(read, extension.duration)
            self.steps.clusters.set_expiry(self.steps.binding_spec(read, roster, new_expiry))
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
                    current.changed(now(), expires_at=new_expiry, extensions=(*current.extensions, extension.id)),
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
            self.steps.clusters.set_expiry(self.steps.binding_spec(current, roster, current.expires_at))
            written = current.expires_at
        raise TemporaryError(f"{grant_id}'s expiry kept changing while its binding was brought up to date")

    def _grant_gone(self, grant: AccessRequest, extension: AccessRequest) -> AccessRequest | None:
        """The grant's binding is no longer in the cluster: the grant is over, whatever Redis says (the
        cluster is the truth for what is granted). Retrying cannot bring it back, so record it once: the
        extension fails, and a grant Redis still calls active ends as revoked, with its ServiceAccount
        (token mode) removed by the revoke job."""
        steps = self.steps
        why = EndReason(EndCode.BINDING_REMOVED_OUTSIDE, {"cluster": grant.cluster})

        def end_grant(current: AccessRequest | None) -> Change[None]:
            if current is None or current.state is not State.ACTIVE:
                return Change(None)  # ended by us meanwhile (expired or revoked): nothing to add
            return Change(
                transition(current, State.REVOKED, steps.now(), note=why.sentence()),
                [Draft(Event.REVOKED, SYSTEM_ACTOR, current.id, why.details())],
            )

        applied = self.store.apply(grant.id, end_grant)
        if applied.entries:
            steps.jobs.revoke(grant.id)
            steps.jobs.publish(grant.id)
            return steps.fail(
                extension,
                GrantFailure(FailureCode.GRANT_REMOVED_OUTSIDE, {"grant": grant.id, "cluster": grant.cluster}),
            )
        # It ended through breakglass meanwhile (its expiry, a revoke): say that, not "outside".
        ended = applied.request.state.label if applied.request is not None else "gone"
        return steps.fail(extension, GrantFailure(FailureCode.GRANT_ENDED, {"grant": grant.id, "state": ended}))


def _not_active(grant_id: RequestId) -> GrantFailure:
    return GrantFailure(FailureCode.GRANT_NOT_ACTIVE, {"grant": grant_id})
