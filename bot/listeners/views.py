"""Form submissions: the request form, the extension form and the review form.

A view submission is answered in its ``ack``: field problems with ``response_action="errors"`` (the
form stays open), otherwise the form turns into a confirmation (or into the reason nothing was done)
with ``response_action="update"``. So here, unlike other listeners, the work comes before the ack; it
is short (a cached ``users.info``, a ``conversations.info``, one Redis transaction) and the posting to
the channel is left to the publish job.

What was submitted is checked against what the form offers *now* (``bot.slack.forms``), and then by
the service against stored state; ``private_metadata`` is only an id to look up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt import Ack, App

from bot.domain.ids import parse_request_id
from bot.listeners.deps import Deps, actor_from
from bot.ports import BreakglassError
from bot.services.errors import Refused
from bot.slack import blocks, wording
from bot.slack.client import SlackError
from bot.slack.forms import (
    CHANNEL_INPUT,
    ExtensionForm,
    RequestForm,
    ReviewForm,
    read_extension_form,
    read_request_form,
    read_review_form,
    state_values,
)
from bot.slack.identity import IdentityRefused

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.view(blocks.REQUEST_CALLBACK)
    def on_request(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit_request(deps, ack, body, view)

    @app.view(blocks.EXTEND_CALLBACK)
    def on_extension(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit_extension(deps, ack, body, view)

    @app.view(blocks.REVIEW_CALLBACK)
    def on_review(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit_review(deps, ack, body, view)


def _refused(ack: Ack, reason: str) -> None:
    ack(response_action="update", view=blocks.notice_modal("Nothing was done", wording.refusal(reason)))


def _done(ack: Ack, title: str, text: str) -> None:
    ack(response_action="update", view=blocks.notice_modal(title, text))


def submit_request(deps: Deps, ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any]) -> None:
    try:
        person = deps.identify(actor_from(body), "request")
    except IdentityRefused as refused:
        _refused(ack, refused.reason)
        return
    roster = deps.roster()
    form = read_request_form(state_values(view), roster, person.user_id)
    if not isinstance(form, RequestForm):
        ack(response_action="errors", errors=form)
        return
    channel_problem = check_channel(deps, form.channel)
    if channel_problem:
        ack(response_action="errors", errors={CHANNEL_INPUT: channel_problem})
        return
    try:
        request = deps.access.submit(
            person.user_id, form.cluster, form.namespace, form.role, form.duration, form.reason, form.channel
        )
    except Refused as refused:
        deps.access.refuse(None, person.user_id, "request", refused.reason)
        _refused(ack, refused.reason)
        return
    _done(ack, "Request sent", wording.submitted(request, roster))


def check_channel(deps: Deps, channel: str) -> str | None:
    """Why the request could not be posted in ``channel``, or None. A Slack hiccup is not a reason to
    refuse: the publish job falls back to the incident channel if the post fails."""
    try:
        info = deps.slack.conversation_info(channel)
    except SlackError as exc:
        if exc.error == "channel_not_found":
            return "breakglass cannot see that channel; invite it (/invite @breakglass) or choose another."
        log.warning("conversations.info refused; not checking the channel", extra={"error": exc.error})
        return None
    except BreakglassError:
        return None
    if info.get("is_archived"):
        return "That channel is archived; choose another."
    if info.get("is_member") is False:
        return "breakglass is not in that channel; invite it (/invite @breakglass) or choose another."
    return None


def submit_extension(deps: Deps, ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any]) -> None:
    metadata = str(view.get("private_metadata") or "")
    grant_id = parse_request_id(metadata)
    try:
        person = deps.identify(actor_from(body), "extend", grant_id)
    except IdentityRefused as refused:
        _refused(ack, refused.reason)
        return
    try:
        grant = deps.access.get_visible(grant_id, person.user_id) if grant_id else None
    except Refused as refused:
        deps.access.refuse(grant_id, person.user_id, "extend", refused.reason)
        _refused(ack, refused.reason)
        return
    form = read_extension_form(state_values(view), metadata, grant, deps.roster())
    if not isinstance(form, ExtensionForm):
        ack(response_action="errors", errors=form)
        return
    try:
        extension = deps.access.extend(form.grant_id, person.user_id, form.duration, form.reason)
    except Refused as refused:
        deps.access.refuse(form.grant_id, person.user_id, "extend", refused.reason)
        _refused(ack, refused.reason)
        return
    _done(ack, "Extension asked", wording.extension_reply(extension))


def submit_review(deps: Deps, ack: Ack, body: Mapping[str, Any], view: Mapping[str, Any]) -> None:
    metadata = str(view.get("private_metadata") or "")
    try:
        person = deps.identify(actor_from(body), "review", parse_request_id(metadata))
    except IdentityRefused as refused:
        _refused(ack, refused.reason)
        return
    form = read_review_form(state_values(view), metadata)
    if not isinstance(form, ReviewForm):
        ack(response_action="errors", errors=form)
        return
    try:
        request = deps.access.write_review(form.request_id, person.user_id, form.text)
    except Refused as refused:
        deps.access.refuse(form.request_id, person.user_id, "review", refused.reason)
        _refused(ack, refused.reason)
        return
    _done(ack, "Review saved", wording.reviewed_reply(request))
