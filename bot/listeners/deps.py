"""What every listener needs, and the steps they share: check identity, answer the person.

Listeners follow four steps (STYLE): ``ack()``, parse the payload into a typed value, call the service
(identity gate first), render the result. The gate and the answers live here so that every listener
checks identity the same way and audits every refusal the same way (``Deps.record_refusal``).

Answers are ephemeral: through the interaction's ``response_url`` (``respond``) when there is one, or,
on the Home tab, as a notice at the top of the refreshed Home view.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_bolt import Respond

from bot.domain import policy
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import AccessRequest
from bot.domain.roster import Roster, StepUpAction
from bot.listeners.stepup import StepUpDesk
from bot.ports import BreakglassError
from bot.services.access import AccessService
from bot.services.errors import Refused
from bot.slack import blocks, wording
from bot.slack.blocks import Block
from bot.slack.client import SlackApi, translated
from bot.slack.identity import Actor, IdentityGate, IdentityRefused, Profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    access: AccessService
    identity: IdentityGate
    slack: SlackApi
    roster: Callable[[], Roster]
    now: Callable[[], datetime]
    step_up: StepUpDesk | None = None
    # Whether a member is still in Slack, for naming who may approve (None: everyone counts as present).
    presence: Callable[[SlackUserId], bool] | None = None

    def submitted(self, request: AccessRequest, roster: Roster) -> str:
        """The requester's answer to a new request, naming who may approve it (chosen by the domain)."""
        named = policy.approvers_to_name(roster, request, self.presence or (lambda _: True))
        return wording.submitted(request, roster, self.access.not_automatic(request.id), named)

    def needs_step_up(self, action: StepUpAction, role: str) -> bool:
        """Whether ``action`` on ``role`` must wait for a verified login at the identity provider;
        Refused (fail closed) when it must but this process has no way to ask for one."""
        if not self.roster().needs_step_up(action, role):
            return False
        if self.step_up is None:
            raise Refused(wording.step_up_not_set_up())
        return True

    def identify(self, actor: Actor, action: str) -> Profile:
        """The checked person; an IdentityRefused is written to the audit log before it is raised."""
        try:
            return self.identity.check(actor)
        except IdentityRefused as refused:
            # Not filed under ``request_id``: nothing about an unverified person's claim is taken
            # on trust, not even which request they named.
            self.access.refuse(None, SlackUserId(actor.user_id or "unknown"), action, refused.reason)
            raise

    def record_refusal(self, request_id: RequestId | None, person: Profile, action: str, reason: str) -> None:
        """The one rule for audited refusals, for clicks and commands alike: every refused action that
        concerns a request or asks for access is a refused attempt in the audit log (so a probe for
        someone else's id is on record too). Only writes: the listener renders the answer
        (``wording.refusal``). Identity refusals are written by ``identify``; a command that does not
        parse concerns nothing and is not written."""
        self.access.refuse(request_id, person.user_id, action, reason)


def log_unexpected(error: BaseException, body: Mapping[str, Any]) -> str:
    """Log an unexpected failure with a new reference, and return the reference to tell the person.
    Type and message only, never the payload, which may hold a reason or a response URL. The app's
    error handler and the forms (which answer on the form itself) both log through here."""
    reference = uuid.uuid4().hex[:10]
    log.error(
        "a Slack listener failed",
        extra={"reference": reference, "error_type": type(error).__name__, "payload_type": body.get("type")},
        exc_info=error,
    )
    return reference


def actor_from(body: Mapping[str, Any]) -> Actor:
    """Who the payload says acts, and from which workspace, for every payload shape Slack sends."""
    user = body.get("user")
    event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
    team = body.get("team") if isinstance(body.get("team"), Mapping) else {}
    assert isinstance(event, Mapping)
    assert isinstance(team, Mapping)
    if isinstance(user, Mapping):  # block_actions, view_submission
        user_id = user.get("id")
        team_id = user.get("team_id") or team.get("id")
    elif isinstance(body.get("user_id"), str):  # slash command
        user_id = body.get("user_id")
        team_id = body.get("team_id")
    else:  # Events API
        user_id = event.get("user")
        team_id = body.get("team_id")
    enterprise = body.get("enterprise")
    enterprise_id: Any = None
    if isinstance(enterprise, Mapping):
        enterprise_id = enterprise.get("id")
    elif isinstance(enterprise, str):
        enterprise_id = enterprise
    enterprise_id = enterprise_id or body.get("enterprise_id") or team.get("enterprise_id")
    return Actor(
        user_id=user_id if isinstance(user_id, str) else "",
        team_id=team_id if isinstance(team_id, str) else None,
        enterprise_id=enterprise_id if isinstance(enterprise_id, str) else None,
    )


def action_value(body: Mapping[str, Any]) -> str:
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], Mapping):
        value = actions[0].get("value")
        return value if isinstance(value, str) else ""
    return ""


def on_home_tab(body: Mapping[str, Any]) -> bool:
    container = body.get("container")
    return isinstance(container, Mapping) and container.get("type") == "view"


def send(respond: Respond | None, text: str, body: list[Block] | None = None) -> None:
    """An ephemeral answer through the response URL (never replacing the message clicked on). A view
    submission has no response URL (Bolt still passes a ``respond``, which would raise): its form
    shows the answer instead."""
    if respond is None or respond.response_url is None:
        return
    with translated():
        answer = respond(
            text=blocks.fallback(text),
            blocks=body if body is not None else blocks.reply(text)[1],
            response_type="ephemeral",
            replace_original=False,
        )
    if getattr(answer, "status_code", 200) != 200:
        log.warning("the response URL refused an answer", extra={"status": getattr(answer, "status_code", None)})


def refresh_home(deps: Deps, person: Profile, notice: str | None = None) -> None:
    mine, waiting = deps.access.listing(person.user_id)
    owed = deps.access.reviews_owed(person.user_id)
    roster = deps.roster()
    extendable = {r.id for r in mine if policy.extension_room(roster, r) > timedelta(0)}
    alerts: list[str] = []
    if roster.is_admin(person.user_id):
        # What only an admin can fix: a group that cannot be read, a role its groups leave short.
        alerts = [*roster.group_problems.values(), *(str(short) for short in policy.approver_shortfalls(roster))]
    view = blocks.home_view(
        person.user_id, mine, waiting, deps.now(), notice, owed=owed, extendable=extendable, alerts=alerts
    )
    deps.slack.publish_home(person.user_id, view)


def refuse_on_home(deps: Deps, user_id: str, reason: str) -> None:
    try:
        deps.slack.publish_home(user_id, blocks.home_refused(reason))
    except BreakglassError:
        log.warning("could not show a refusal on the Home tab", extra={"user": user_id})


def answer(deps: Deps, body: Mapping[str, Any], respond: Respond | None, person: Profile | None, text: str) -> None:
    """Answer a click where it happened: the Home tab gets a refreshed view with a notice on top."""
    if on_home_tab(body):
        if person is None:
            refuse_on_home(deps, actor_from(body).user_id, text)
        else:
            refresh_home(deps, person, notice=text)
    else:
        send(respond, text)


__all__ = [
    "Deps",
    "action_value",
    "actor_from",
    "answer",
    "on_home_tab",
    "refresh_home",
    "send",
]
