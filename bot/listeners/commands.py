"""``/breakglass``: ack, parse the text into a command, check who is asking, call the service, answer.

Every answer is ephemeral (the response URL). The request itself reaches the incident channel through
the publish job, never from here. A refused command gets one sentence saying why and what to type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain.lifecycle import AccessRequest
from bot.listeners.deps import Deps, actor_from, send
from bot.services.errors import Refused
from bot.slack import blocks, wording
from bot.slack.client import SlackError
from bot.slack.forms import options_for
from bot.slack.identity import IdentityRefused, Profile
from bot.slack.slash_grammar import (
    Ask,
    Cancel,
    Command,
    CommandError,
    Extend,
    Help,
    ListRequests,
    OpenForm,
    Revoke,
    Status,
    parse_command,
)
from bot.slack.text import unescape

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.command(wording.COMMAND)
    def breakglass(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        handle(deps, body, respond)


def handle(deps: Deps, body: Mapping[str, Any], respond: Respond) -> None:
    try:
        command = parse_command(unescape(str(body.get("text") or "")), deps.roster().clusters)
    except CommandError as bad:
        send(respond, wording.refusal(bad.reason))
        return
    request_id = getattr(command, "request_id", None)
    actor = actor_from(body)
    try:
        person = deps.identify(actor, command.action)
    except IdentityRefused as refused:
        send(respond, wording.refusal(refused.reason))
        return
    try:
        run(deps, command, person, body, respond)
    except Refused as refused:
        deps.record_refusal(request_id, person, command.action, refused.reason)
        send(respond, wording.refusal(refused.reason))


def run(deps: Deps, command: Command, person: Profile, body: Mapping[str, Any], respond: Respond) -> None:
    access = deps.access
    roster = deps.roster()
    now = deps.now()
    match command:
        case OpenForm():
            open_form(deps, person, str(body.get("trigger_id") or ""), respond)
        case Help(unknown=unknown, unknown_word=word):
            text, body_blocks = blocks.help_message(roster, person.user_id, unknown, word)
            send(respond, text, body_blocks)
        case ListRequests():
            mine, waiting = access.listing(person.user_id)
            text, body_blocks = blocks.listing(mine, waiting, now)
            send(respond, text, body_blocks)
        case Status(request_id=request_id):
            text, body_blocks = blocks.status(access.get_visible(request_id, person.user_id), roster, now)
            send(respond, text, body_blocks)
        case Cancel(request_id=request_id):
            send(respond, wording.cancelled_reply(access.cancel(request_id, person.user_id)))
        case Revoke(request_id=request_id):
            send(respond, wording.revoked_reply(access.revoke(request_id, person.user_id)))
        case Extend(request_id=request_id, duration=duration, reason=reason):
            send(respond, wording.extension_reply(access.extend(request_id, person.user_id, duration, reason)))
        case Ask() if deps.needs_step_up("request", command.role):
            assert deps.step_up is not None
            # Checked before the person is sent to sign in: nobody verifies for a request that cannot be made.
            ask = command.by(person.user_id)
            access.check_submit(ask)
            send(respond, *deps.step_up.hold(person.user_id, "request", ask.held(), respond.response_url).message)
        case Ask():
            request: AccessRequest = access.submit(command.by(person.user_id))
            send(respond, deps.submitted(request, roster))


def open_form(deps: Deps, person: Profile, trigger_id: str, respond: Respond) -> None:
    roster = deps.roster()
    options = options_for(roster, person.user_id)
    if not options.entitled:
        raise Refused(wording.NOT_ENTITLED)
    try:
        deps.slack.open_view(trigger_id, blocks.request_modal(options, roster))
    except SlackError as exc:
        if exc.error in ("expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id"):
            send(respond, wording.refusal(wording.form_expired()))
            return
        raise
