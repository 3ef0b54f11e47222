"""The request, extension and review forms: what they offer, and reading a submission back.

What a form offers is computed from the roster and the person (``options_for``), and a submission is
checked against that same computation *at submit time*, never against the view Slack sends back: a
payload edited outside the form (an option that was not offered, a namespace outside the person's
entitlements, a duration above the role's maximum) is refused field by field. The services then
check everything once more against stored state.

Pure: no Slack calls. Field problems come back as ``{block_id: sentence}`` for
``ack(response_action="errors", errors=...)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.domain import policy
from bot.domain.durations import DurationError, format_duration, parse_duration
from bot.domain.ids import RequestId, SlackUserId, parse_request_id
from bot.domain.lifecycle import AccessRequest
from bot.domain.roster import Roster, is_dns_label

# Block ids (== action ids) of the forms' inputs; blocks.py renders them, this module reads them.
CLUSTER_INPUT = "cluster"
NAMESPACE_INPUT = "namespace"
NAMESPACE_TEXT_INPUT = "namespace_other"
ROLE_INPUT = "role"
DURATION_INPUT = "duration"
REASON_INPUT = "reason"
CHANNEL_INPUT = "channel"
REVIEW_INPUT = "review"
FOLLOW_UPS_INPUT = "follow_ups"

# The durations a form offers, filtered per person (and each role's maximum is always offered).
DURATION_LADDER: tuple[timedelta, ...] = tuple(
    timedelta(minutes=m) for m in (5, 10, 15, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720)
)
_WILDCARD = re.compile(r"[*?\[\]]")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")

FieldErrors = dict[str, str]


@dataclass(frozen=True)
class FormOptions:
    clusters: tuple[str, ...]
    roles: tuple[str, ...]  # on the chosen cluster, if one is chosen
    namespaces: tuple[str, ...]  # concrete names taken from entitlement globs without wildcards
    namespace_patterns: tuple[str, ...]  # globs with wildcards
    any_namespace: bool  # some entitlement names no namespaces: any may be typed
    durations: tuple[timedelta, ...]  # the chosen role's min to max, or every role's range pooled
    cluster: str | None = None  # the choice these options follow (None: not chosen yet)
    role: str | None = None
    cluster_wide: bool = False  # the chosen role is granted cluster-wide: no namespace to ask

    @property
    def entitled(self) -> bool:
        return bool(self.clusters and self.roles)

    @property
    def typed_namespace_allowed(self) -> bool:
        """Whether a namespace may be typed at all: only entitlement globs or "any" leave room for one
        that the list does not name."""
        return self.any_namespace or bool(self.namespace_patterns)


def options_for(
    roster: Roster, person: SlackUserId, cluster: str | None = None, role: str | None = None
) -> FormOptions:
    """What the form offers ``person``; once a cluster (and a role) is chosen, only what follows from
    that choice: the roles entitled on that cluster, the namespaces of that cluster and role, and the
    durations from that role's minimum to its maximum."""
    targets = policy.entitled_targets(roster, person)
    clusters = sorted({c for c, _, _ in targets})
    if cluster not in clusters:
        cluster = None
    on_cluster = [t for t in targets if cluster is None or t[0] == cluster]
    roles = sorted({r for _, r, _ in on_cluster if r in roster.roles})
    if role not in roles:
        role = None
    chosen = [t for t in on_cluster if role is None or t[1] == role]
    concrete: set[str] = set()
    patterns: set[str] = set()
    any_namespace = False
    for _, role_name, globs in chosen:
        if roster.roles[role_name].scope != "namespace":
            continue
        if globs is None:
            any_namespace = True
            continue
        for glob in globs:
            (patterns if _WILDCARD.search(glob) else concrete).add(glob)
    ranged = [role] if role is not None else roles
    maxima = [roster.roles[r].max_duration for r in ranged]
    minima = [roster.roles[r].min_duration for r in ranged]
    durations: tuple[timedelta, ...] = ()
    if ranged:
        lowest, highest = min(minima), max(maxima)
        offered = {d for d in DURATION_LADDER if lowest <= d <= highest} | set(maxima) | set(minima)
        durations = tuple(sorted(offered))
    return FormOptions(
        clusters=tuple(clusters),
        roles=tuple(roles),
        namespaces=tuple(sorted(concrete)),
        namespace_patterns=tuple(sorted(patterns)),
        any_namespace=any_namespace,
        durations=durations,
        cluster=cluster,
        role=role,
        cluster_wide=role is not None and roster.roles[role].scope == "cluster",
    )


def extension_choices(room: timedelta) -> tuple[timedelta, ...]:
    """Extension lengths on offer when ``room`` is left under the role's maximum."""
    if room <= timedelta(0):
        return ()
    return tuple(sorted({d for d in DURATION_LADDER if d <= room} | {room}))


# --- reading Slack's view state (never trusting its shape) ---------------------------------------------


def _field(values: Mapping[str, Any], block_id: str) -> Mapping[str, Any]:
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return {}
    element = block.get(block_id)
    return element if isinstance(element, Mapping) else {}


def selected(values: Mapping[str, Any], block_id: str) -> str | None:
    choice = _field(values, block_id).get("selected_option")
    if isinstance(choice, Mapping) and isinstance(choice.get("value"), str):
        return str(choice["value"])
    return None


def typed(values: Mapping[str, Any], block_id: str) -> str:
    value = _field(values, block_id).get("value")
    return value if isinstance(value, str) else ""


def conversation(values: Mapping[str, Any], block_id: str) -> str | None:
    value = _field(values, block_id).get("selected_conversation")
    return value if isinstance(value, str) else None


def state_values(view: Mapping[str, Any]) -> Mapping[str, Any]:
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    return values if isinstance(values, Mapping) else {}


# --- the request form ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestForm:
    cluster: str
    namespace: str | None
    role: str
    duration: timedelta
    reason: str
    channel: str


@dataclass(frozen=True)
class FormState:
    """What the request form holds right now (from a block action or a submission), unchecked: used
    only to render the form again as the person left it."""

    cluster: str | None = None
    role: str | None = None
    namespace: str | None = None
    namespace_other: str = ""
    duration: str | None = None
    reason: str = ""
    channel: str | None = None


def form_state(values: Mapping[str, Any]) -> FormState:
    return FormState(
        cluster=selected(values, CLUSTER_INPUT),
        role=selected(values, ROLE_INPUT),
        namespace=selected(values, NAMESPACE_INPUT),
        namespace_other=typed(values, NAMESPACE_TEXT_INPUT),
        duration=selected(values, DURATION_INPUT),
        reason=typed(values, REASON_INPUT),
        channel=conversation(values, CHANNEL_INPUT),
    )


def read_request_form(values: Mapping[str, Any], roster: Roster, person: SlackUserId) -> RequestForm | FieldErrors:
    """The submission as a ``RequestForm``, or a sentence per field that is wrong.

    Values are read against everything the person may be offered (not only what follows from the
    chosen cluster and role), so that a choice the form no longer offers, say a duration over the
    role's maximum, gets the policy's own sentence ("at most 1h") rather than a generic one."""
    options = options_for(roster, person)
    errors: FieldErrors = {}

    cluster = selected(values, CLUSTER_INPUT)
    if cluster not in options.clusters:
        errors[CLUSTER_INPUT] = "Choose one of the clusters offered."
    role = selected(values, ROLE_INPUT)
    if role not in options.roles:
        errors[ROLE_INPUT] = "Choose one of the roles offered."

    chosen = selected(values, NAMESPACE_INPUT)
    written = typed(values, NAMESPACE_TEXT_INPUT).strip()
    namespace_block = NAMESPACE_TEXT_INPUT if written or not options.namespaces else NAMESPACE_INPUT
    namespace: str | None = None
    if chosen is not None and chosen not in options.namespaces:
        errors[NAMESPACE_INPUT] = "Choose one of the namespaces offered."
    elif chosen and written:
        errors[NAMESPACE_TEXT_INPUT] = "Choose a namespace or type one, not both."
    elif written and not is_dns_label(written):
        # Not quoted back: error texts are shown as Slack chooses, and this one was typed freely.
        errors[NAMESPACE_TEXT_INPUT] = "That is not a Kubernetes namespace name (lower-case letters, digits and '-')."
    else:
        namespace = chosen or written or None

    duration: timedelta | None = None
    raw_duration = selected(values, DURATION_INPUT)
    offered = {format_duration(d): d for d in options.durations}
    if raw_duration not in offered:
        errors[DURATION_INPUT] = "Choose one of the durations offered."
    else:
        duration = offered[raw_duration]

    reason = typed(values, REASON_INPUT)
    reason_ok = policy.check_reason(reason)
    if not reason_ok:
        errors[REASON_INPUT] = reason_ok.reason

    channel = conversation(values, CHANNEL_INPUT)
    if channel is None or not _CHANNEL_ID.fullmatch(channel):
        errors[CHANNEL_INPUT] = "Choose a channel for the request (the incident channel is a good choice)."

    if not ({CLUSTER_INPUT, ROLE_INPUT, NAMESPACE_INPUT, NAMESPACE_TEXT_INPUT, DURATION_INPUT} & errors.keys()):
        assert cluster is not None
        assert role is not None
        assert duration is not None
        problem = _target_problem(roster, person, cluster, namespace, role, duration)
        if problem is not None:
            block, sentence = problem
            errors[namespace_block if block == NAMESPACE_INPUT else block] = sentence

    if errors:
        return errors
    assert cluster is not None
    assert role is not None
    assert duration is not None
    assert channel is not None
    return RequestForm(cluster, namespace, role, duration, reason.strip(), channel)


def _target_problem(
    roster: Roster, person: SlackUserId, cluster: str, namespace: str | None, role_name: str, duration: timedelta
) -> tuple[str, str] | None:
    role = roster.roles[role_name]
    if role.scope == "namespace" and not namespace:
        return NAMESPACE_INPUT, f"'{role_name}' is granted in one namespace; choose or type one."
    if role.scope == "cluster" and namespace:
        return NAMESPACE_INPUT, f"'{role_name}' is cluster-wide; leave the namespace empty."
    length = policy.check_duration(role, duration)
    if not length:
        return DURATION_INPUT, length.reason
    decision = policy.evaluate_request(roster, policy.Ask(person, cluster, namespace, role_name, duration))
    if not decision:
        return (NAMESPACE_INPUT if namespace else ROLE_INPUT), decision.reason
    return None


# --- the extension and review forms ------------------------------------------------------------------


@dataclass(frozen=True)
class ExtensionForm:
    grant_id: RequestId
    duration: timedelta
    reason: str


def extension_field_problems(values: Mapping[str, Any], private_metadata: str) -> FieldErrors:
    """What can be told about an extension form without looking anything up: an id, a length that
    is a duration, a reason. Whether the length fits is checked against the stored grant later."""
    errors: FieldErrors = {}
    if parse_request_id(private_metadata) is None:
        return {REASON_INPUT: "This form names no request of yours; close it and start again."}
    raw = selected(values, DURATION_INPUT)
    try:
        if raw is None:
            raise DurationError("no length chosen")
        parse_duration(raw)
    except DurationError:
        errors[DURATION_INPUT] = "Choose one of the lengths offered."
    reason_ok = policy.check_reason(typed(values, REASON_INPUT))
    if not reason_ok:
        errors[REASON_INPUT] = reason_ok.reason
    return errors


def read_extension_form(
    values: Mapping[str, Any], private_metadata: str, grant: AccessRequest | None, roster: Roster
) -> ExtensionForm | FieldErrors:
    """``grant`` is the stored grant ``private_metadata`` names (looked up by the caller), or None."""
    errors: FieldErrors = {}
    grant_id = parse_request_id(private_metadata)
    if grant_id is None or grant is None or grant.id != grant_id:
        return {REASON_INPUT: "This form names no request of yours; close it and start again."}
    offered = {format_duration(d): d for d in extension_choices(policy.extension_room(roster, grant))}
    raw = selected(values, DURATION_INPUT)
    if raw not in offered:
        errors[DURATION_INPUT] = "Choose one of the lengths offered."
    reason = typed(values, REASON_INPUT)
    reason_ok = policy.check_reason(reason)
    if not reason_ok:
        errors[REASON_INPUT] = reason_ok.reason
    if errors:
        return errors
    assert raw is not None
    return ExtensionForm(grant_id, offered[raw], reason.strip())


@dataclass(frozen=True)
class ReviewForm:
    request_id: RequestId
    text: str
    follow_ups: str = ""


def read_review_form(values: Mapping[str, Any], private_metadata: str) -> ReviewForm | FieldErrors:
    request_id = parse_request_id(private_metadata)
    if request_id is None:
        return {REVIEW_INPUT: "This form names no request; close it and start again."}
    text = typed(values, REVIEW_INPUT).strip()
    review = policy.check_review(text)
    if not review.allowed:
        return {REVIEW_INPUT: review.reason}
    follow_ups = typed(values, FOLLOW_UPS_INPUT).strip()
    if len(follow_ups) > policy.FOLLOW_UPS_MAX:
        return {FOLLOW_UPS_INPUT: f"Follow-ups are at most {policy.FOLLOW_UPS_MAX} characters."}
    return ReviewForm(request_id, text, follow_ups)


__all__ = [
    "ExtensionForm",
    "FieldErrors",
    "FormOptions",
    "FormState",
    "RequestForm",
    "ReviewForm",
    "extension_choices",
    "extension_field_problems",
    "form_state",
    "options_for",
    "read_extension_form",
    "read_request_form",
    "read_review_form",
]
