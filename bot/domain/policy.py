"""Who may ask for what, who may approve it, and for how long: answered from the roster alone.

Every function returns a ``Decision`` rather than raising, so callers can show the one-sentence reason
to the person and write it to the audit log. They are pure: the workers call ``evaluate_request``
again, against the roster as it is *now*, before they create a binding ("check, act, check again").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.durations import format_duration
from bot.domain.grant_failures import FailureCode, GrantFailure
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Role, Roster, is_dns_label

REASON_MIN = 10
REASON_MAX = 500
REVIEW_MIN = 20  # characters of a post-incident review
REVIEW_MAX = 3000
FOLLOW_UPS_MAX = 2000  # characters of a review's follow-ups
# A review not written this long after its grant ended is overdue; whoever owes it is then reminded
# once a day until it is written.
REVIEW_DUE = timedelta(days=1)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def deny(reason: str) -> Decision:
    return Decision(False, reason)


@dataclass(frozen=True)
class Ask:
    """What a person asks for, before it becomes a request: the one value the form, the command, a
    step-up sign-in and ``breakglass grant`` hand to ``AccessService.submit``. Entitlement is judged on
    who, where, which role and for how long; ``reason`` and ``channel`` (None: the roster's incident
    channel) are checked once it is submitted, and an empty reason is refused there."""

    requester: SlackUserId
    cluster: str
    namespace: str | None
    role: str
    duration: timedelta
    reason: str = ""
    channel: str | None = None

    def held(self) -> dict[str, Any]:
        """The ask as JSON, without its person, while that person signs in at the identity provider."""
        held: dict[str, Any] = {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "role": self.role,
            "duration": self.duration.total_seconds(),
            "reason": self.reason,
        }
        if self.channel is not None:
            held["channel"] = self.channel
        return held

    @classmethod
    def resumed(cls, requester: SlackUserId, held: Mapping[str, Any]) -> Ask:
        """The ask ``held`` kept, once ``requester`` has signed in."""
        channel = held.get("channel")
        return cls(
            requester,
            str(held["cluster"]),
            held.get("namespace"),
            str(held["role"]),
            timedelta(seconds=float(held["duration"])),
            str(held["reason"]),
            str(channel) if channel is not None else None,
        )


def check_review(text: str) -> Decision:
    if not REVIEW_MIN <= len(text.strip()) <= REVIEW_MAX:
        return deny(f"A review is {REVIEW_MIN} to {REVIEW_MAX} characters: what was done, and why it was needed.")
    return ALLOW


def check_follow_ups(text: str) -> Decision:
    if len(text.strip()) > FOLLOW_UPS_MAX:
        return deny(f"Follow-ups are at most {FOLLOW_UPS_MAX} characters.")
    return ALLOW


def check_channel(roster: Roster, channel: str) -> Decision:
    """A request is posted only in the incident channel or one the roster lists: never in a channel
    the requester picked to keep it (and its approvals and actions) from the incident channel."""
    if channel == roster.incident_channel or channel in roster.request_channels:
        return ALLOW
    return deny("Requests are posted only in the incident channel or a channel the roster lists; choose one of those.")


def check_pending_quota(roster: Roster, pending: int) -> Decision:
    """``pending``: how many undecided requests the person has already."""
    if pending >= roster.max_pending_requests:
        return deny(
            f"You already have {pending} requests waiting for approval; cancel one "
            "(/breakglass cancel <id>) or wait for a decision before asking again."
        )
    return ALLOW


def check_extension_quota(roster: Roster, grant: AccessRequest, pending: int) -> Decision:
    """``pending``: how many undecided extensions of ``grant`` there are already."""
    if pending >= roster.max_pending_extensions:
        return deny(
            f"{grant.id} already has {pending} extension(s) waiting for approval; wait for them, or cancel one "
            "(/breakglass cancel <id>) and ask again."
        )
    return ALLOW


def check_reason(reason: str) -> Decision:
    length = len(reason.strip())
    if length < REASON_MIN:
        return deny(f"The reason is too short ({length} characters); say what is broken in at least {REASON_MIN}.")
    if length > REASON_MAX:
        return deny(f"The reason is too long ({length} characters); keep it to {REASON_MAX}.")
    return ALLOW


def evaluate_request(roster: Roster, ask: Ask) -> Decision:
    """May ``ask.requester`` have ``ask.role`` on ``ask.cluster``/``ask.namespace`` for ``ask.duration``?"""
    if ask.requester not in roster.people:
        return deny("You are not in the breakglass roster; ask your platform team to add you.")
    if ask.cluster not in roster.clusters:
        return deny(f"There is no cluster '{ask.cluster}'; known clusters: {', '.join(sorted(roster.clusters))}.")
    role = roster.roles.get(ask.role)
    if role is None:
        return deny(f"There is no role '{ask.role}'; known roles: {', '.join(sorted(roster.roles))}.")
    if role.scope == "namespace":
        if not ask.namespace:
            return deny(f"The role '{role.name}' is granted in one namespace; write it as {ask.cluster}/<namespace>.")
        if not is_dns_label(ask.namespace):
            return deny(f"'{ask.namespace}' is not a valid Kubernetes namespace name.")
    elif ask.namespace:
        return deny(f"The role '{role.name}' is cluster-wide; ask for {ask.cluster} without a namespace.")
    if not _entitled(roster, ask, role):
        where = f"{ask.cluster}/{ask.namespace}" if ask.namespace else ask.cluster
        return deny(f"You are not entitled to '{role.name}' on {where}; see /breakglass help for what you may ask.")
    length = check_duration(role, ask.duration)
    if not length:
        return length
    return check_approvers_remain(roster, role, ask)


def check_approvers_remain(roster: Roster, role: Role, ask: Ask) -> Decision:
    """Refuse an ask that could only time out: fewer people may approve it than it needs approvals,
    or, for self-service, nobody but the requester could be told of it and review it."""
    eligible = len(approvers_for(roster, ask))
    groups = ", ".join(role.approvers) or "no group"
    if role.approvals == 0:
        if eligible:
            return ALLOW
        # Self-service needs nobody to approve, but someone other than the holder must be told and
        # must close the review afterwards; with nobody, the grant would go unchecked for ever.
        return deny(
            f"'{role.name}' is self-service, but nobody in {groups} other than you could review it afterwards; "
            f"ask your platform team to add approvers to {groups}."
        )
    if eligible >= role.approvals:
        return ALLOW
    needs = f"{role.approvals} approval{'s' if role.approvals != 1 else ''}"
    return deny(
        f"'{role.name}' needs {needs} but only {eligible} member{'s' if eligible != 1 else ''} of {groups} "
        f"other than you may approve it, so it could only time out; ask your platform team to add approvers to {groups}."
    )


def check_duration(role: Role, duration: timedelta) -> Decision:
    if duration > role.max_duration:
        most = format_duration(role.max_duration)
        return deny(f"'{role.name}' may be granted for at most {most}; ask for {most} or less.")
    if duration < role.min_duration:
        least = format_duration(role.min_duration)
        return deny(f"'{role.name}' is granted for at least {least}; ask for {least} or more.")
    return ALLOW


def _entitled(roster: Roster, ask: Ask, role: Role) -> bool:
    for entitlement in roster.entitlements:
        if ask.requester not in roster.groups.get(entitlement.group, ()):
            continue
        if role.name not in entitlement.roles or ask.cluster not in entitlement.clusters:
            continue
        if role.scope == "cluster":
            # A cluster-wide binding reaches every namespace, so an entitlement limited to some
            # namespaces must never let it through.
            if entitlement.namespaces is None:
                return True
        elif ask.namespace is not None and entitlement.covers_namespace(
            ask.namespace, protected=roster.is_protected(ask.namespace)
        ):
            return True
    return False


def entitled_targets(roster: Roster, person: SlackUserId) -> list[tuple[str, str, tuple[str, ...] | None]]:
    """(cluster, role, namespace globs or None) the person may ask for, for forms and help."""
    targets = []
    for entitlement in roster.entitlements:
        if person not in roster.groups.get(entitlement.group, ()):
            continue
        for cluster in entitlement.clusters:
            for role_name in entitlement.roles:
                role = roster.roles.get(role_name)
                if role is None or (role.scope == "cluster" and entitlement.namespaces is not None):
                    continue
                targets.append((cluster, role_name, entitlement.namespaces))
    return targets


def approvers_for(roster: Roster, request: AccessRequest | Ask) -> frozenset[SlackUserId]:
    """Everyone who may approve ``request`` (or an ask not yet made): roster people in its role's
    approver groups, minus the requester and anyone with the requester's ``kube_user`` (one person
    with two Slack accounts). For self-service, those who are told and close the review."""
    role = roster.roles.get(request.role)
    if role is None:
        return frozenset()
    own = roster.kube_user_of(request.requester)
    return frozenset(
        p
        for p in roster.members(role.approvers)
        if p != request.requester and p in roster.people and roster.people[p].kube_user != own
    )


# How many people a request's card and its requester's reply name before "and N more".
SHOWN_APPROVERS = 5


@dataclass(frozen=True)
class NamedApprovers:
    """Who may still approve a request, as its card and the requester's reply name them."""

    shown: tuple[SlackUserId, ...]
    more: int  # eligible people beyond ``shown``, not named (and not looked up)


def approvers_to_name(
    roster: Roster,
    request: AccessRequest,
    present: Callable[[SlackUserId], bool],
    limit: int = SHOWN_APPROVERS,
) -> NamedApprovers:
    """The first ``limit`` people (in a stable order) who may still approve ``request`` — eligible
    (``approvers_for``) and not among its approvals yet — and how many more there are. ``present``
    says whether someone is still in Slack; one who left is skipped, never an error, and it is asked
    only until ``limit`` are found, so a large group costs a handful of lookups."""
    candidates = sorted(approvers_for(roster, request) - set(request.approved_by))
    shown: list[SlackUserId] = []
    for index, person in enumerate(candidates):
        if len(shown) == limit:
            return NamedApprovers(tuple(shown), len(candidates) - index)
        if present(person):
            shown.append(person)
    return NamedApprovers(tuple(shown), 0)


@dataclass(frozen=True)
class ApproverShortfall:
    """A role whose approver groups hold fewer people now than its ``approvals``: nothing asked for it
    can be approved until they grow (or the roster asks for fewer)."""

    role: str
    approvals: int
    eligible: int
    groups: tuple[str, ...]

    def __str__(self) -> str:
        groups = ", ".join(self.groups) or "no group"
        held = f"{self.eligible} {'person' if self.eligible == 1 else 'people'}"
        if self.approvals == 0:
            return f"{self.role} is self-service, but its approver groups ({groups}) hold nobody to review it now."
        needs = f"{self.approvals} approval{'s' if self.approvals != 1 else ''}"
        return (
            f"{self.role} needs {needs} but its approver groups ({groups}) hold {held} now, "
            "so nothing asked for it can be approved."
        )


def approver_shortfalls(roster: Roster) -> list[ApproverShortfall]:
    """Every role short of approvers in the roster as resolved now. ``roster check`` refuses a static
    shortfall; one that comes from a Slack user group or an Okta group (which may shrink, or fail to
    be read) shows only here, for ``doctor`` and the admins' Home tab."""
    short = []
    for role in roster.roles.values():
        eligible = len({p for p in roster.members(role.approvers) if p in roster.people})
        needed = max(role.approvals, 1 if role.approvers else 0)  # self-service still needs a reviewer
        if eligible < needed:
            short.append(ApproverShortfall(role.name, role.approvals, eligible, role.approvers))
    return short


def lapsed(roster: Roster, request: AccessRequest, now: datetime) -> bool:
    """A pending request past its deadline: it may no longer be decided, only timed out."""
    return request.state is State.PENDING and now >= pending_deadline(roster, request)


def approved_at(request: AccessRequest) -> datetime:
    """When the request became approved: its last approval, or its creation when self-service."""
    return max((a.at for a in request.approvals), default=request.created_at)


def approval_too_old(roster: Roster, request: AccessRequest, now: datetime) -> GrantFailure | None:
    """Why an approved request may no longer be granted ``now``, however late its grant job runs; None
    while it may.

    An approval answers the incident as it stood when it was given. A grant job that only succeeds
    after a long outage would otherwise hand out access hours later, when nobody is watching the
    thread. We refuse rather than announce: announcing still grants access the approvers may no longer
    want, while refusing costs the requester one command to ask again. The limit is the roster's
    ``request_timeout``, the time an approver is already trusted to take over a request.
    """
    age = now - approved_at(request)
    if age <= roster.request_timeout:
        return None
    return GrantFailure(
        FailureCode.APPROVAL_TOO_OLD,
        {"approved_ago": format_duration(age), "timeout": format_duration(roster.request_timeout)},
    )


def may_decide(roster: Roster, request: AccessRequest, person: SlackUserId, now: datetime) -> Decision:
    """May ``person`` approve or deny ``request`` as it is ``now``?"""
    if person == request.requester:
        return deny("You cannot approve or deny your own request; another approver must.")
    if person not in roster.people:
        return deny("You are not in the breakglass roster, so you cannot approve requests.")
    if person not in approvers_for(roster, request):
        role = roster.roles.get(request.role)
        groups = ", ".join(role.approvers) if role else "none"
        return deny(f"Only members of {groups} may approve or deny '{request.role}' requests.")
    if request.state is not State.PENDING:
        return deny(f"{request.id} is already {request.state.label}; there is nothing left to decide.")
    if lapsed(roster, request, now):
        # The sweep that times requests out runs every BREAKGLASS_SWEEP_INTERVAL, and not at all
        # while the workers are down: a click after the deadline must not grant access that was
        # meant to lapse.
        return deny(
            f"{request.id} lapsed undecided after {format_duration(roster.request_timeout)}; "
            "it can no longer be approved, so the requester must ask again."
        )
    if person in request.approved_by:
        return deny(f"You have already approved {request.id}; another approver must add theirs.")
    return ALLOW


def may_revoke(roster: Roster, request: AccessRequest, person: SlackUserId) -> Decision:
    """The holder, the role's approvers and roster admins may end a grant early."""
    # Who is asking comes first: anything said about the request itself (even that it extends
    # another) would tell a stranger the ids exist.
    if person != request.requester and person not in approvers_for(roster, request) and not roster.is_admin(person):
        return deny(f"Only the holder, an approver of '{request.role}' or an admin may revoke {request.id}.")
    return revocable(request)


def revocable(request: AccessRequest) -> Decision:
    """Whether ``request`` is a grant that revoking would end (whoever asks: ``breakglass revoke`` run
    by an operator where the bot runs asks this alone)."""
    if request.extends:
        return deny(f"{request.id} is an extension of {request.extends}; revoke {request.extends} to end the grant.")
    if request.state not in (State.ACTIVE, State.APPROVED):
        return deny(f"{request.id} is {request.state.label}, not an active grant; there is nothing to revoke.")
    return ALLOW


def may_cancel(request: AccessRequest, person: SlackUserId) -> Decision:
    if person != request.requester:
        return deny(f"Only the requester may cancel {request.id}.")
    if request.state is not State.PENDING:
        return deny(f"{request.id} is {request.state.label}, not pending; use revoke for an active grant.")
    return ALLOW


def may_review(roster: Roster, request: AccessRequest, person: SlackUserId) -> Decision:
    """May ``person`` write the post-incident review of ``request`` now? (The caller has already
    checked that the person may see the request at all.)

    A review looks back at a grant, so it is written once the grant has ended. For an approved grant
    the holder or an approver may write it. Self-service break-glass was checked by nobody before it
    was used, so someone other than the holder must check it after: only an approver's review closes
    it. The holder may add their own account first (``review_closes`` tells which one this is).
    """
    if request.extends:
        return deny(f"{request.id} is an extension of {request.extends}; review {request.extends} instead.")
    if request.granted_at is None:
        return deny(f"{request.id} was never granted; there is nothing to review.")
    if request.state not in (State.EXPIRED, State.REVOKED):
        return deny(
            f"{request.id} is still {request.state.label}; a review is written once the grant has ended, "
            "so revoke it or wait until it expires."
        )
    if request.review is not None:
        return deny(f"{request.id} already has a review.")
    approver = person in approvers_for(roster, request)
    if request.self_service:
        if person == request.requester:
            if request.holder_account is not None:
                return deny(
                    f"You have already written your account of {request.id}; "
                    f"an approver of '{request.role}' must now review it."
                )
            return ALLOW
        if not approver:
            return deny(
                f"{request.id} was self-service break-glass, so only an approver of '{request.role}' may review it."
            )
        return ALLOW
    if person != request.requester and not approver:
        return deny(f"Only the holder or an approver of '{request.role}' may review {request.id}.")
    return ALLOW


def review_closes(request: AccessRequest, person: SlackUserId) -> bool:
    """Whether ``person``'s review closes ``request``'s review: for self-service, only someone else's."""
    return not (request.self_service and person == request.requester)


def owes_review(roster: Roster, request: AccessRequest, person: SlackUserId) -> bool:
    """Whether ``request`` waits for ``person`` to review it (or, as its holder, to add their account):
    an ended self-service grant nobody has reviewed yet."""
    if not request.self_service or request.extends or not request.review_owed:
        return False
    if request.state not in (State.EXPIRED, State.REVOKED):
        return False
    if person == request.requester:
        return request.holder_account is None
    return person in approvers_for(roster, request)


def extension_room(roster: Roster, grant: AccessRequest) -> timedelta:
    """How much longer ``grant`` may run: never past the role's max_duration from the first grant."""
    role = roster.roles.get(grant.role)
    if role is None or grant.granted_at is None or grant.expires_at is None:
        return timedelta(0)
    return max(role.max_duration - (grant.expires_at - grant.granted_at), timedelta(0))


def evaluate_extension(roster: Roster, grant: AccessRequest, person: SlackUserId, by: timedelta) -> Decision:
    if person != grant.requester:
        return deny(f"Only the holder of {grant.id} may ask to extend it.")
    if grant.state is not State.ACTIVE:
        return deny(f"{grant.id} is {grant.state.label}, not an active grant; request new access instead.")
    still = evaluate_request(
        roster,
        Ask(person, grant.cluster, grant.namespace, grant.role, roster.roles[grant.role].min_duration)
        if grant.role in roster.roles
        else Ask(person, grant.cluster, grant.namespace, grant.role, by),
    )
    if not still:
        return still
    room = extension_room(roster, grant)
    if by > room:
        if room <= timedelta(0):
            return deny(f"{grant.id} already runs for the role's maximum; request new access instead.")
        return deny(f"{grant.id} can be extended by at most {format_duration(room)} (the role's maximum in all).")
    return ALLOW


def pending_deadline(roster: Roster, request: AccessRequest) -> datetime:
    return request.created_at + roster.request_timeout


def review_overdue(request: AccessRequest, now: datetime) -> bool:
    """An ended grant whose closing review is still not written ``REVIEW_DUE`` after its end."""
    if request.extends or not request.review_owed or request.state not in (State.EXPIRED, State.REVOKED):
        return False
    return request.ended_at is not None and now - request.ended_at >= REVIEW_DUE


def review_owers(roster: Roster, request: AccessRequest) -> list[SlackUserId]:
    """Who is reminded of an overdue review: for self-service the approvers (whose review closes it) and
    the holder until they add their account; otherwise the holder, who knows what was done."""
    if not request.self_service:
        return [request.requester]
    owers = sorted(approvers_for(roster, request))
    if request.holder_account is None:
        owers.insert(0, request.requester)
    return owers
