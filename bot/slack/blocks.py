"""Block Kit renderers: they render, they do not decide.

Each function takes facts that are already decided (a request in its current state, the roster, the
clock's ``now``) and returns Slack's JSON. Wording comes from ``wording.py``; this module only wraps
it in blocks and keeps within Slack's limits (3,000 characters a text, 50 blocks a message, 100 a
view). Action ids, block ids and callback ids are wire constants named once, here.

Text objects that may contain what a person typed are mrkdwn with ``verbatim: true`` (Slack then
does not auto-link URLs or channel names in them) *and* escaped by the wording functions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain import automation, policy
from bot.domain.audit import AuditEntry
from bot.domain.durations import format_duration
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Roster
from bot.slack import wording
from bot.slack.forms import (
    CHANNEL_INPUT,
    CLUSTER_INPUT,
    DURATION_INPUT,
    FOLLOW_UPS_INPUT,
    NAMESPACE_INPUT,
    NAMESPACE_TEXT_INPUT,
    REASON_INPUT,
    REVIEW_INPUT,
    ROLE_INPUT,
    FormOptions,
    FormState,
)
from bot.slack.text import (
    BUTTON_LIMIT,
    FIELD_LIMIT,
    HEADER_LIMIT,
    MESSAGE_BLOCKS,
    MESSAGE_TEXT_LIMIT,
    OPTION_LIMIT,
    TEXT_LIMIT,
    TITLE_LIMIT,
    VIEW_BLOCKS,
    Block,
    fit_blocks,
    truncate,
)

# --- wire constants --------------------------------------------------------------------------------

APPROVE_ACTION = "approve"  # contract: the request message's buttons
DENY_ACTION = "deny"
EXTEND_ACTION = "extend"  # opens the extension form (reminder DM, Home tab)
REVOKE_ACTION = "revoke"  # Home tab
CANCEL_ACTION = "cancel"  # Home tab
REVIEW_ACTION = "review"  # opens the review form (ended DM, Home tab)
REQUEST_ACCESS_ACTION = "request_access"  # Home tab: opens the request form, as /breakglass alone does
STEP_UP_LINK_ACTION = "step_up_verify"  # a link button: Slack still reports the click, which is only acked
DECISION_BLOCK = "decision"

REQUEST_CALLBACK = "breakglass_request"
EXTEND_CALLBACK = "breakglass_extend"
REVIEW_CALLBACK = "breakglass_review"
DENY_CALLBACK = "breakglass_deny"
DENY_REASON_INPUT = "deny_reason"


Message = tuple[str, list[Block]]

# --- building blocks -------------------------------------------------------------------------------


def mrkdwn(text: str, limit: int = TEXT_LIMIT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit), "verbatim": True}


def plain(text: str, limit: int = TEXT_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": mrkdwn(text), **extra}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:10]]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, HEADER_LIMIT)}


def button(
    text: str, action_id: str, value: str, style: str | None = None, confirm: tuple[str, str, str] | None = None
) -> dict[str, Any]:
    """``confirm``: (title, text, confirm label) of the dialog Slack shows before the click counts."""
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, BUTTON_LIMIT),
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        title, body, yes = confirm
        element["confirm"] = {
            "title": plain(title, 100),
            "text": plain(body, 300),
            "confirm": plain(yes, 30),
            "deny": plain("Cancel", 30),
            "style": "danger",
        }
    return element


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_LIMIT), "value": value}


def fallback(text: str) -> str:
    return truncate(text, MESSAGE_TEXT_LIMIT)


# --- the request message ---------------------------------------------------------------------------


def request_message(
    request: AccessRequest,
    roster: Roster,
    now: datetime,
    *,
    buttons: bool = True,
    approvers: policy.NamedApprovers | None = None,
) -> list[Block]:
    """The root message of a request, as it stands. Approve/Deny only while approvals are outstanding;
    ``approvers`` (chosen by the caller) are named while it waits for them."""
    role = roster.roles.get(request.role)
    # Who, what and for how long are in the summary line; the fields hold only what changes.
    fields = [f"*State*\n{wording.state_text(request)}"]
    if role and role.cluster_role != request.role:
        fields.append(f"*ClusterRole*\n{wording.code(role.cluster_role)}")
    if not request.self_service:
        fields.append(f"*Approvals*\n{wording.approvals_text(request)}")
    if approvers is not None and request.state is State.PENDING and not request.self_service:
        fields.append(f"*May approve*\n{wording.may_approve(approvers)}")
    blocks: list[Block] = [
        header(wording.request_title(request)),
        section(wording.request_summary(request)),
        {"type": "section", "fields": [mrkdwn(f, FIELD_LIMIT) for f in fields]},
        section("*Reason*\n" + wording.reason_text(request.reason)),
    ]
    if request.ticket is not None:
        blocks.append(section("*Ticket*\n" + wording.ticket_line(automation.ticket_details(request.ticket))))
    if request.self_service:
        blocks.append(section(wording.self_service_warning(request, roster)))
    if request.note and request.state in (State.FAILED, State.REVOKED, State.EXPIRED):
        blocks.append(context(f":information_source: {wording.reason_text(request.note, 2000)}"))
    review = wording.review_status(request)
    if review:
        blocks.append(context(review))
    blocks.append(context(wording.lifecycle_text(request, roster, now)))
    if buttons and request.state is State.PENDING and not request.self_service:
        blocks.append(
            {
                "type": "actions",
                "block_id": DECISION_BLOCK,
                "elements": [
                    button("Approve", APPROVE_ACTION, request.id, "primary"),
                    button("Deny", DENY_ACTION, request.id, "danger", wording.DENY_CONFIRM),
                ],
            }
        )
    return fit_blocks(blocks, MESSAGE_BLOCKS)


def thread_reply(entry: AuditEntry, request: AccessRequest | None) -> Message | None:
    """The thread reply for one audit entry, with its time; None for entries kept out of the channel.
    Without its request (Redis lost it), only what the sweep did can be told."""
    text = wording.event_text(entry, request) if request is not None else wording.lost_request_text(entry)
    if text is None:
        return None
    at = datetime.fromisoformat(entry.at.replace("Z", "+00:00"))
    blocks = [section(text), context(f"{wording.when(at)} · audit #{entry.seq}")]
    return fallback(f"{wording.event_fallback(entry)}"), blocks


# --- direct messages ---------------------------------------------------------------------------------


def dm(text: str, *actions: dict[str, Any], block_id: str = "dm_actions") -> Message:
    blocks = [section(text)]
    if actions:
        blocks.append({"type": "actions", "block_id": block_id, "elements": list(actions)})
    return fallback(text), blocks


def reminder_dm(request: AccessRequest, text: str, can_extend: bool) -> Message:
    if can_extend:
        return dm(text, button("Extend", EXTEND_ACTION, request.id, "primary"))
    return dm(text)


def ended_dm(request: AccessRequest, text: str) -> Message:
    """To the holder when a grant ends. Self-service: an approver reviews it, the holder adds an account.
    A request revoked before it was granted has nothing to review, so it gets no button."""
    if request.granted_at is None or request.review is not None or request.holder_account is not None:
        return dm(text)
    label = "Add your account" if request.self_service else "Write review"
    return dm(text, button(label, REVIEW_ACTION, request.id))


def review_owed_dm(request: AccessRequest, text: str) -> Message:
    """To each approver when a self-service grant ends: the review that closes it is theirs to write."""
    if request.review is not None:
        return dm(text)
    return dm(text, button("Write review", REVIEW_ACTION, request.id, "primary"), block_id="review_owed")


# --- ephemeral replies -------------------------------------------------------------------------------


def reply(text: str) -> Message:
    return fallback(text), [section(text)]


def step_up_prompt(provider: str, action: str, url: str) -> Message:
    """The ephemeral "verify first" answer: a link button to the start URL (single-use, 5 minutes)."""
    text = wording.step_up_needed(provider, action)
    link = {
        "type": "button",
        "text": plain(wording.step_up_button(provider), BUTTON_LIMIT),
        "action_id": STEP_UP_LINK_ACTION,
        "url": url,
        "style": "primary",
    }
    return fallback(text), [section(text), {"type": "actions", "block_id": "step_up", "elements": [link]}]


def help_message(
    roster: Roster, person: SlackUserId | None, unknown: str | None = None, unknown_word: str | None = None
) -> Message:
    return reply(wording.help_text(roster, person, unknown, unknown_word))


def listing(mine: Sequence[AccessRequest], waiting: Sequence[AccessRequest], now: datetime) -> Message:
    blocks: list[Block] = [section("*Your requests and grants*")]
    if mine:
        blocks.extend(section(wording.status_line(r, now)) for r in mine[:20])
    else:
        blocks.append(context(wording.NONE_YET))
    blocks.append(section("*Waiting for your approval*"))
    if waiting:
        blocks.extend(section(wording.status_line(r, now)) for r in waiting[:20])
    else:
        blocks.append(context(wording.NOTHING_WAITING))
    return fallback(wording.listing_fallback(len(mine), len(waiting))), fit_blocks(blocks)


def status(request: AccessRequest, roster: Roster, now: datetime) -> Message:
    return fallback(wording.request_fallback(request)), request_message(request, roster, now, buttons=False)


# --- modals ------------------------------------------------------------------------------------------


def _modal(
    callback_id: str, title: str, blocks: list[Block], submit: str | None, private_metadata: str = ""
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, TITLE_LIMIT),
        "close": plain("Close", TITLE_LIMIT),
        "blocks": fit_blocks(blocks, VIEW_BLOCKS),
    }
    if submit:
        view["submit"] = plain(submit, TITLE_LIMIT)
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view


def _select(
    block_id: str,
    label: str,
    options: Sequence[tuple[str, str]],
    *,
    optional: bool = False,
    hint: str | None = None,
    initial: str | None = None,
    dispatch: bool = False,
) -> Block:
    """A static select; ``initial`` is preselected if offered, ``dispatch`` sends a block action on
    every choice (the form then renders again to follow it)."""
    offered = [option(text, value) for text, value in options[:100]]
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": block_id,
        "placeholder": plain("Choose…", 150),
        "options": offered,
    }
    chosen = next((o for o in offered if o["value"] == initial), None) if initial is not None else None
    if chosen is not None:
        element["initial_option"] = chosen
    return _input(block_id, label, element, optional=optional, hint=hint, dispatch=dispatch)


def _text_input(
    block_id: str,
    label: str,
    *,
    multiline: bool = False,
    min_length: int | None = None,
    max_length: int | None = None,
    optional: bool = False,
    hint: str | None = None,
    placeholder: str | None = None,
    initial_value: str | None = None,
) -> Block:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id, "multiline": multiline}
    if initial_value:
        element["initial_value"] = initial_value[: max_length or 3000]
    if min_length is not None:
        element["min_length"] = min_length
    if max_length is not None:
        element["max_length"] = max_length
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    return _input(block_id, label, element, optional=optional, hint=hint)


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str | None, dispatch: bool = False
) -> Block:
    """An input block around ``element``, its label and hint cut to Slack's limits."""
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, 2000),
        "element": element,
    }
    if dispatch:
        block["dispatch_action"] = True
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def request_modal(
    options: FormOptions, roster: Roster, state: FormState | None = None, notice: str | None = None
) -> dict[str, Any]:
    """The request form, offering only what the person is entitled to (checked again on submit).

    Choosing a cluster or a role renders it again (``options`` then follow that choice); ``state``
    keeps what the person had filled in, and ``notice`` says why the form is shown again."""
    state = state or FormState()
    blocks: list[Block] = [
        context(wording.FORM_INTRO),
    ]
    if notice:
        blocks.append(section(notice))
    blocks.append(
        _select(CLUSTER_INPUT, "Cluster", [(c, c) for c in options.clusters], initial=options.cluster, dispatch=True)
    )
    blocks.append(
        _select(
            ROLE_INPUT,
            "Role",
            [(f"{r} (up to {format_duration(roster.roles[r].max_duration)})", r) for r in options.roles],
            initial=options.role,
            dispatch=True,
            hint=None if options.cluster else wording.ROLE_HINT,
        )
    )
    if options.cluster_wide:
        blocks.append(context(wording.cluster_wide_role(options.role or "")))
    else:
        if options.namespaces:
            blocks.append(
                _select(
                    NAMESPACE_INPUT,
                    "Namespace",
                    [(n, n) for n in options.namespaces],
                    optional=True,
                    initial=state.namespace,
                    hint=(
                        wording.NAMESPACE_OR_TYPED_HINT
                        if options.typed_namespace_allowed
                        else wording.NAMESPACE_ONLY_LISTED_HINT
                    ),
                )
            )
        if options.typed_namespace_allowed:
            other = _text_input(
                NAMESPACE_TEXT_INPUT,
                "Other namespace",
                optional=True,
                max_length=63,
                hint=wording.typed_namespace_hint(options.any_namespace, options.namespace_patterns),
                placeholder="e.g. payments-eu",
            )
            if state.namespace_other:
                other["element"]["initial_value"] = state.namespace_other[:63]
            blocks.append(other)
    blocks.append(
        _select(
            DURATION_INPUT,
            "For how long",
            [(format_duration(d), format_duration(d)) for d in options.durations],
            initial=state.duration,
            hint=(
                wording.duration_hint(
                    options.role, roster.roles[options.role].min_duration, roster.roles[options.role].max_duration
                )
                if options.role
                else wording.duration_hint(None)
            ),
        )
    )
    reason = _text_input(
        REASON_INPUT,
        "Reason",
        multiline=True,
        min_length=policy.REASON_MIN,
        max_length=policy.REASON_MAX,
        hint=wording.REASON_HINT,
    )
    if state.reason:
        reason["element"]["initial_value"] = state.reason[: policy.REASON_MAX]
    blocks.append(reason)
    blocks.append(
        {
            "type": "input",
            "block_id": CHANNEL_INPUT,
            "label": plain("Post the request in", 2000),
            "element": {
                "type": "conversations_select",
                "action_id": CHANNEL_INPUT,
                "initial_conversation": state.channel or roster.incident_channel,
                "filter": {"include": ["public", "private"], "exclude_bot_users": True},
            },
        }
    )
    blocks.append(context(wording.mfa_statement(roster)))
    return _modal(REQUEST_CALLBACK, "Break-glass access", blocks, "Request")


def extension_modal(grant: AccessRequest, durations: Sequence[timedelta], now: datetime) -> dict[str, Any]:
    left = grant.time_left(now)
    blocks: list[Block] = [
        section(wording.extension_form_intro(grant, left)),
        _select(DURATION_INPUT, "Extend by", [(format_duration(d), format_duration(d)) for d in durations]),
        _text_input(
            REASON_INPUT,
            "Reason",
            multiline=True,
            min_length=policy.REASON_MIN,
            max_length=policy.REASON_MAX,
            hint=wording.EXTENSION_REASON_HINT,
        ),
    ]
    return _modal(EXTEND_CALLBACK, "Extend access", blocks, "Ask", private_metadata=grant.id)


def review_modal(
    request: AccessRequest,
    minimum: int,
    maximum: int,
    *,
    closes: bool = True,
    actions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The review form; with ``closes=False`` the self-service holder's own account instead. The text
    starts from what the cluster recorded (``actions``, an ``actions_summary``'s details), to edit."""
    label, title = ("Review", "Write a review") if closes else ("Your account", "Add your account")
    blocks: list[Block] = [
        section(wording.review_form_intro(request, closes)),
        _text_input(
            REVIEW_INPUT,
            label,
            multiline=True,
            min_length=minimum,
            max_length=maximum,
            initial_value=wording.review_prefill(actions) if actions else None,
        ),
        _text_input(
            FOLLOW_UPS_INPUT,
            "Follow-ups",
            multiline=True,
            optional=True,
            max_length=policy.FOLLOW_UPS_MAX,
            placeholder=wording.FOLLOW_UPS_PLACEHOLDER,
        ),
    ]
    return _modal(REVIEW_CALLBACK, title, blocks, "Save", private_metadata=request.id)


def deny_modal(request: AccessRequest) -> dict[str, Any]:
    """The reason for a denial, optional: opened by the Deny button once its confirm was accepted."""
    blocks: list[Block] = [
        section(wording.deny_form_intro(request)),
        _text_input(DENY_REASON_INPUT, wording.DENY_REASON_LABEL, multiline=True, optional=True, max_length=2000),
    ]
    return _modal(DENY_CALLBACK, wording.DENY_TITLE, blocks, "Deny", private_metadata=request.id)


def notice_modal(title: str, text: str) -> dict[str, Any]:
    """What a submitted form turns into: a confirmation, or why nothing was done."""
    return _modal("breakglass_notice", title, [section(text)], None)


# --- App Home ------------------------------------------------------------------------------------------


def home_view(
    person: str,
    mine: Sequence[AccessRequest],
    waiting: Sequence[AccessRequest],
    now: datetime,
    notice: str | None = None,
    *,
    owed: Sequence[AccessRequest] = (),
    extendable: Collection[str] = (),
    alerts: Sequence[str] = (),
) -> dict[str, Any]:
    """``owed``: ended self-service grants waiting for this person's review (as an approver) or
    their account (as the holder), already chosen by the service; ``extendable``: the ids of the
    active grants with room to extend, decided by the caller (a renderer decides nothing); ``alerts``:
    sentences for an admin (groups that cannot be read, roles short of approvers)."""
    active = [r for r in mine if r.state is State.ACTIVE and not r.extends]
    pending = [r for r in mine if r.state is State.PENDING]
    blocks: list[Block] = [header("breakglass")]
    if notice:
        blocks.append(section(notice))
    if alerts:
        blocks.append(section(wording.admin_alerts(alerts)))
    blocks.append(
        {
            "type": "actions",
            "block_id": "home_request",
            "elements": [button(wording.REQUEST_ACCESS, REQUEST_ACCESS_ACTION, "form", "primary")],
        }
    )
    blocks.append(context(wording.home_footer(now)))

    blocks.append(header("Your active grants"))
    for r in active[:15]:
        elements = [button("Revoke", REVOKE_ACTION, r.id, "danger", wording.REVOKE_CONFIRM)]
        if r.id in extendable:
            elements.insert(0, button("Extend", EXTEND_ACTION, r.id))
        blocks.append(section(wording.status_line(r, now)))
        blocks.append({"type": "actions", "block_id": f"grant:{r.id}", "elements": elements})
    if not active:
        blocks.append(context(wording.NO_ACTIVE_GRANTS))

    blocks.append(header("Your pending requests"))
    for r in pending[:10]:
        blocks.append(section(wording.status_line(r, now)))
        blocks.append(
            {"type": "actions", "block_id": f"pending:{r.id}", "elements": [button("Cancel", CANCEL_ACTION, r.id)]}
        )
    if not pending:
        blocks.append(context(wording.NOTHING_PENDING))

    blocks.append(header("Waiting for your approval"))
    for r in waiting[:10]:
        blocks.append(
            section(f"{wording.status_line(r, now)}\n{wording.who(r.requester)}: {wording.reason_text(r.reason, 500)}")
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"decide:{r.id}",
                "elements": [
                    button("Approve", APPROVE_ACTION, r.id, "primary"),
                    button("Deny", DENY_ACTION, r.id, "danger", wording.DENY_CONFIRM),
                ],
            }
        )
    if not waiting:
        blocks.append(context(wording.NOTHING_WAITING))

    if owed:
        blocks.append(header("Reviews owed"))
        for r in owed[:10]:
            holder = r.requester == person
            blocks.append(section(f"{wording.status_line(r, now)}\n{wording.review_owed_line(r, holder)}"))
            label = "Add your account" if holder else "Write review"
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"review:{r.id}",
                    "elements": [button(label, REVIEW_ACTION, r.id)],
                }
            )
    return {"type": "home", "blocks": fit_blocks(blocks, VIEW_BLOCKS)}


def home_refused(text: str) -> dict[str, Any]:
    """The Home tab of someone breakglass refused (``text`` is a rendered refusal)."""
    return {"type": "home", "blocks": [header("breakglass"), section(text)]}
