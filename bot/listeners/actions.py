"""Button clicks: Approve / Deny (request message, Home tab), Revoke / Cancel (Home tab), and Extend /
Write review (reminder and ended DMs, the approvers' review-owed DM, Home tab), which open a form.

A button's ``value`` is only a request id: everything else is looked up and every check is made
against stored state by the service (``AccessService.approve`` refuses the requester, non-approvers,
double approvals, decided and lapsed requests). Every refusal is written to the audit log as a
refused attempt by ``Deps.record_refusal``, the one rule commands follow too; an identity refusal by the
gate. The answer is ephemeral where the click happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import policy
from bot.domain.ids import RequestId, parse_request_id
from bot.listeners.deps import Deps, action_value, actor_from, answer, on_home_tab, send
from bot.services.errors import Refused
from bot.slack import blocks, wording
from bot.slack.blocks import Message
from bot.slack.client import SlackError
from bot.slack.forms import extension_choices, options_for
from bot.slack.identity import IdentityRefused, Profile

BROKEN_BUTTON = wording.BROKEN_BUTTON  # kept importable from here
_FORM_GONE = ("expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id")

Act = Callable[[Deps, RequestId, Profile, Mapping[str, Any]], str | Message | None]


def register(app: App, deps: Deps) -> None:
    def listen(action_id: str, action: str, act: Act) -> None:
        @app.action(action_id)
        def on_click(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            ack()
            click(deps, body, respond, action, act)

    listen(blocks.APPROVE_ACTION, "approve", approve)
    listen(blocks.DENY_ACTION, "deny", deny)
    listen(blocks.REVOKE_ACTION, "revoke", revoke)
    listen(blocks.CANCEL_ACTION, "cancel", cancel)
    listen(blocks.EXTEND_ACTION, "extend", open_extension)
    listen(blocks.REVIEW_ACTION, "review", open_review)

    @app.action(blocks.REQUEST_ACCESS_ACTION)
    def on_request_access(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        request_form(deps, body, respond)

    @app.action(blocks.STEP_UP_LINK_ACTION)
    def on_verify_link(ack: Ack) -> None:
        ack()  # the link opens in the browser; Slack reports the click too, and there is nothing to do


def request_form(deps: Deps, body: Mapping[str, Any], respond: Respond | None) -> None:
    """The Home tab's Request access button: the form ``/breakglass`` alone opens."""
    person: Profile | None = None
    try:
        person = deps.identify(actor_from(body), "request")
        roster = deps.roster()
        options = options_for(roster, person.user_id)
        if not options.entitled:
            raise Refused(wording.NOT_ENTITLED)
        text = _open(deps, body, blocks.request_modal(options, roster))
    except IdentityRefused as refused:
        answer(deps, body, respond, None, wording.refusal(refused.reason))
        return
    except Refused as refused:
        assert person is not None  # identify passed: only the roster refuses here
        deps.record_refusal(None, person, "request", refused.reason)
        answer(deps, body, respond, person, wording.refusal(refused.reason))
        return
    if text is not None:
        answer(deps, body, respond, person, text)


def click(deps: Deps, body: Mapping[str, Any], respond: Respond | None, action: str, act: Act) -> None:
    request_id = parse_request_id(action_value(body))
    actor = actor_from(body)
    person: Profile | None = None
    try:
        person = deps.identify(actor, action)
        if request_id is None:
            raise Refused(BROKEN_BUTTON)
        text = act(deps, request_id, person, body)
    except IdentityRefused as refused:
        answer(deps, body, respond, None, wording.refusal(refused.reason))
        return
    except Refused as refused:
        # The identity gate audits its own refusals above, so none is written twice.
        if person is not None:
            deps.record_refusal(request_id, person, action, refused.reason)
        answer(deps, body, respond, person, wording.refusal(refused.reason))
        return
    if isinstance(text, tuple):
        send(respond, *text)
    elif text is not None:
        answer(deps, body, respond, person, text)


def approve(deps: Deps, request_id: RequestId, person: Profile, body: Mapping[str, Any]) -> str | Message:
    request = deps.access.check_approve(request_id, person.user_id)
    if deps.needs_step_up("approve", request.role):
        assert deps.step_up is not None
        prompt = deps.step_up.hold(person.user_id, "approve", {"request_id": request_id})
        return prompt.line if on_home_tab(body) else prompt.message
    outcome = deps.access.approve(request_id, person.user_id)
    return wording.approved_reply(outcome.request, outcome.counted, outcome.required)


def deny(deps: Deps, request_id: RequestId, person: Profile, body: Mapping[str, Any]) -> str | None:
    """Asks for a reason first (optional) in a form; if the form cannot open, denies without one."""
    deps.access.may_decide(request_id, person.user_id)
    request = deps.access.get_visible(request_id, person.user_id)
    try:
        deps.slack.open_view(str(body.get("trigger_id") or ""), blocks.deny_modal(request))
    except SlackError as exc:
        if exc.error not in _FORM_GONE:
            raise
        return wording.denied_reply(deps.access.deny(request_id, person.user_id).request)
    return None


def revoke(deps: Deps, request_id: RequestId, person: Profile, body: Mapping[str, Any]) -> str:
    return wording.revoked_reply(deps.access.revoke(request_id, person.user_id))


def cancel(deps: Deps, request_id: RequestId, person: Profile, body: Mapping[str, Any]) -> str:
    return wording.cancelled_reply(deps.access.cancel(request_id, person.user_id))


def open_extension(deps: Deps, request_id: RequestId, person: Profile, body: Mapping[str, Any]) -> str | None:
    roster = deps.roster()
    grant = deps.access.get_visible(request_id, person.user_id)
    choices = extension_choices(policy.extension_room(roster, grant))
    # Ask the domain with the smallest length on offer: it explains a non-holder, an ended grant or
    # a grant already at the role's maximum in its own words.
    decision = policy.evaluate_extension(roster, grant, person.user_id, choices[0] if choices else timedelta(seconds=1))
    if not decision:
        raise Refused(decision.reason)
    return _open(deps, body, blocks.extension_modal(grant, choices, deps.now()))


def open_review(deps: Deps, request_id: RequestId, person: Profile, body: Mapping[str, Any]) -> str | None:
    request = deps.access.get_visible(request_id, person.user_id)
    decision = policy.may_review(deps.roster(), request, person.user_id)
    if not decision:
        raise Refused(decision.reason)
    closes = policy.review_closes(request, person.user_id)
    actions = deps.access.actions_summary(request.id)
    return _open(
        deps, body, blocks.review_modal(request, policy.REVIEW_MIN, policy.REVIEW_MAX, closes=closes, actions=actions)
    )


def _open(deps: Deps, body: Mapping[str, Any], view: dict[str, Any]) -> str | None:
    try:
        deps.slack.open_view(str(body.get("trigger_id") or ""), view)
    except SlackError as exc:
        if exc.error in _FORM_GONE:
            return wording.refusal(wording.button_form_expired())
        raise
    return None
