"""What Slack sends to the app, signed as Slack signs it, so a test or the demo can act as a person.

``SlackSender`` posts to the app's events URL (``http://127.0.0.1:PORT/slack/events``) the requests
Slack makes when someone types a slash command, clicks a button, submits a modal or opens the app's
Home tab. Each request carries ``X-Slack-Request-Timestamp`` and the v0 signature
``X-Slack-Signature: v0=hex(hmac_sha256(signing_secret, "v0:{timestamp}:{body}"))``. Payload shapes
follow Slack's reference (slash command form fields; ``block_actions`` and ``view_submission`` JSON in
a ``payload=`` form field; an Events API ``event_callback`` envelope for ``app_home_opened``).

It works with a ``SlackApiDouble``: trigger ids and response URLs are minted there (so ``views.open``
and ``respond()`` behave as with Slack), a click carries the message as the double holds it, and what
Slack does with the app's HTTP answer (a slash command's reply shown to the person, a modal closed or
kept open with errors) is applied to the double. A person can only click a button that is on the
message and submit a modal that is open; asking for anything else raises, unless the test says it is
simulating a stale screen. ``send`` posts raw bytes with any (or no) signature, for forgery tests.

Not modelled: Slack's retries of undelivered events (pass ``retry_num`` to send one by hand), the
3-second acknowledgement deadline (the answer's ``elapsed`` is measured so a test can assert it),
message shortcuts, ``view_closed`` and select menus' ``block_suggestion``. Socket Mode delivery is
``bot.standins.slack_socket.SocketModeSender``, which reuses every person-level method here.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from bot.standins.slack_api import JsonDict, SlackApiDouble, epoch_seconds, find_button

# Slack's deprecated verification token still travels in every payload; Bolt ignores it.
VERIFICATION_TOKEN = "deprecated-verification-token"  # noqa: S105 - not a secret, and not checked
ACK_DEADLINE_SECONDS = 3.0

_VALUE_KEYS = {
    "plain_text_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "number_input": "value",
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "checkboxes": "selected_options",
    "multi_static_select": "selected_options",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}

_LIST_KEYS = {"selected_users", "selected_conversations", "selected_channels"}


class NotOnScreen(LookupError):
    """The person cannot do that: the button is not on the message, or no such modal is open."""


class IncompleteForm(ValueError):
    """A required input of the modal is empty; Slack's client would not submit it."""


@dataclass(frozen=True)
class AppReply:
    """The app's HTTP answer to one delivery, and how long it took to come."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def within_ack_deadline(self) -> bool:
        """Slack gives up on an answer after 3 seconds and tells the person the app did not respond."""
        return self.elapsed <= ACK_DEADLINE_SECONDS


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``, as Slack signs each request."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSender:
    """Delivers a person's actions to the app at ``events_url`` the way Slack does, signed."""

    def __init__(
        self,
        events_url: str,
        signing_secret: str,
        slack: SlackApiDouble,
        *,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        api_app_id: str | None = None,
        clock: Callable[[], float | datetime] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.slack = slack
        self.team_id = team_id or slack.team_id
        self.enterprise_id = enterprise_id if enterprise_id is not None else slack.enterprise_id
        self.api_app_id = api_app_id or slack.app_id
        # Bolt checks the timestamp against its own clock: keep the real one unless testing staleness.
        self.clock = clock
        self.timeout = timeout
        self._event_numbers = itertools.count(1)

    def now(self) -> float:
        return epoch_seconds(self.clock())

    # -- raw delivery ---------------------------------------------------------------------------------

    def send(
        self,
        body: bytes | str,
        content_type: str,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
        signed: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> AppReply:
        """POST ``body`` as Slack would. ``timestamp`` overrides the clock (a stale request),
        ``signature`` replaces the computed one (a forged request), ``signed=False`` sends neither."""
        raw = body.encode() if isinstance(body, str) else body
        out = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if signed:
            stamp = str(int(self.now()) if timestamp is None else timestamp)
            out["X-Slack-Request-Timestamp"] = stamp
            out["X-Slack-Signature"] = signature or slack_signature(self.signing_secret, stamp, raw)
        out.update(headers or {})
        request = urllib.request.Request(self.events_url, data=raw, headers=out, method="POST")  # noqa: S310
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - a local URL
                return AppReply(
                    response.status, dict(response.headers.items()), response.read(), time.monotonic() - started
                )
        except urllib.error.HTTPError as error:
            return AppReply(error.code, dict(error.headers.items()), error.read(), time.monotonic() - started)

    def send_form(self, fields: Mapping[str, str], **kwargs: Any) -> AppReply:
        return self.send(urlencode(fields), "application/x-www-form-urlencoded", **kwargs)

    def send_interaction(self, payload: JsonDict, **kwargs: Any) -> AppReply:
        """An interactivity payload, form-encoded in ``payload=`` as Slack sends it."""
        return self.send_form({"payload": json.dumps(payload)}, **kwargs)

    def send_event(
        self, event: JsonDict, *, event_id: str | None = None, retry_num: int | None = None, **kwargs: Any
    ) -> AppReply:
        """An Events API ``event_callback`` wrapping ``event``. Reusing ``event_id`` with ``retry_num``
        reproduces Slack's redelivery of an event it thinks was not received."""
        envelope = self.event_callback(event, event_id=event_id)
        headers = dict(kwargs.pop("headers", None) or {})
        if retry_num is not None:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        return self.send(json.dumps(envelope), "application/json", headers=headers, **kwargs)

    def event_callback(self, event: JsonDict, *, event_id: str | None = None) -> JsonDict:
        """The ``event_callback`` envelope Slack wraps ``event`` in (the same over HTTP and Socket Mode)."""
        now = self.now()
        if event_id is None:
            event_id = f"Ev{int(now)}{next(self._event_numbers):04d}"
        envelope: JsonDict = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": self.team_id,
                    "user_id": self.slack.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }
        if self.enterprise_id:
            envelope["enterprise_id"] = self.enterprise_id
        return envelope

    def url_verification(self, challenge: str) -> AppReply:
        body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return self.send(json.dumps(body), "application/json")

    # -- what a person does ---------------------------------------------------------------------------

    def slash_command(
        self,
        user_id: str,
        text: str = "",
        *,
        channel_id: str | None = None,
        command: str = "/breakglass",
    ) -> AppReply:
        """``user_id`` types ``{command} {text}`` in ``channel_id`` (default: their DM with the app).
        The app's answer is shown to them as Slack shows it (see ``SlackApiDouble.reply_to_command``)."""
        channel = channel_id or self.slack.ensure_dm(user_id)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.slack.team_domain,
            "channel_id": channel,
            "channel_name": self.slack.channel_name(channel),
            "user_id": user_id,
            "user_name": self.slack.user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.slack.mint_response_url(user_id, channel),
            "trigger_id": self.slack.mint_trigger_id(user_id),
        }
        if self.enterprise_id:
            fields["enterprise_id"] = self.enterprise_id
            fields["enterprise_name"] = self.slack.enterprise_name
        reply = self.send_form(fields)
        self.slack.reply_to_command(user_id, channel, command, reply.status, reply.body)
        return reply

    def click(
        self,
        user_id: str,
        action_id: str,
        value: str | None = None,
        message_ts: str | None = None,
        channel_id: str | None = None,
        *,
        stale: bool = False,
    ) -> AppReply:
        """``user_id`` clicks the button ``action_id`` (with ``value``, if given) on the message
        ``message_ts`` in ``channel_id``. The button must be on the message as it reads now; with
        ``stale=True`` an earlier version of the message will do (a screen that had not caught up)."""
        if message_ts is None or channel_id is None:
            raise TypeError("click() needs the message_ts and channel_id of the message holding the button")
        message = self.slack.message_payload(channel_id, message_ts)
        ephemeral = None
        if message is None:
            ephemeral = next((e for e in self.slack.ephemerals(user_id=user_id) if e.message_ts == message_ts), None)
            if ephemeral is None:
                raise NotOnScreen(f"no message {message_ts} in {channel_id} for {user_id}")
            versions = [list(ephemeral.blocks)]
        else:
            versions = [list(message.get("blocks") or [])]
            if stale:
                recorded = self.slack.message(channel_id, message_ts)
                versions += [list(v.blocks) for v in reversed(recorded.edits)] if recorded else []
        found = next((hit for hit in (find_button(b, action_id, value) for b in versions) if hit), None)
        if found is None:
            raise NotOnScreen(f"no button {action_id!r} (value {value!r}) on message {message_ts}")
        block_id, button = found
        channel = self.slack.dm_channel_id(user_id) if channel_id[:1] in ("U", "W") else channel_id
        payload = self._interaction_base("block_actions", user_id)
        payload.update(
            container={
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": ephemeral is not None,
            },
            channel={"id": channel, "name": self.slack.channel_name(channel)},
            state={"values": {}},
            response_url=self.slack.mint_response_url(
                user_id, channel, message_ts=message_ts, message_is_ephemeral=ephemeral is not None
            ),
            actions=[self._action(block_id, button)],
        )
        if message is not None:
            payload["message"] = message
        return self.send_interaction(payload)

    def click_home(self, user_id: str, action_id: str, value: str | None = None) -> AppReply:
        """``user_id`` clicks the button ``action_id`` on their App Home tab."""
        view = self.slack.home_view(user_id)
        found = find_button(view.get("blocks") or [], action_id, value) if view else None
        if view is None or found is None:
            raise NotOnScreen(f"no button {action_id!r} on {user_id}'s Home tab")
        block_id, button = found
        payload = self._interaction_base("block_actions", user_id)
        payload.update(
            container={"type": "view", "view_id": view["id"]},
            view=view,
            actions=[self._action(block_id, button)],
        )
        return self.send_interaction(payload)

    def submit_view(
        self,
        user_id: str,
        view_callback_id: str,
        state_values: Mapping[str, Mapping[str, Any]],
        *,
        private_metadata: str | None = None,
        answer_lost: bool = False,
    ) -> AppReply:
        """``user_id`` fills in and submits their open modal ``view_callback_id``.

        ``state_values`` is ``{block_id: {action_id: value}}``: a full Slack value object, or the
        plain answer (a string for text inputs, an option value for selects, a user/channel id, a list
        for multi-selects), which is shaped as Slack shapes it. Inputs left out arrive empty, as Slack
        sends them; a required one left empty raises ``IncompleteForm``.

        With ``answer_lost`` the app's answer never reaches Slack (it came after the 3-second deadline):
        Slack says it had trouble connecting and leaves the modal as it was, so the person can press
        Submit again and Slack delivers the same view once more."""
        open_views = [v for v in self.slack.open_views(user_id) if v.get("callback_id") == view_callback_id]
        if not open_views:
            raise NotOnScreen(f"{user_id} has no open modal {view_callback_id!r}")
        view = open_views[-1]
        values = _state_for(view, state_values)
        view["state"] = {"values": values}
        if private_metadata is not None:
            view["private_metadata"] = private_metadata
        payload = self._interaction_base("view_submission", user_id)
        payload.update(view=view, response_urls=[])
        reply = self.send_interaction(payload)
        if not answer_lost:
            self.slack.apply_view_response(user_id, str(view["id"]), reply.status, reply.body)
        return reply

    def choose(self, user_id: str, view_callback_id: str, block_id: str, value: str) -> AppReply:
        """``user_id`` picks ``value`` in the static select ``block_id`` of their open modal
        ``view_callback_id``; Slack sends a ``block_actions`` only if the block has ``dispatch_action``."""
        open_views = [v for v in self.slack.open_views(user_id) if v.get("callback_id") == view_callback_id]
        if not open_views:
            raise NotOnScreen(f"{user_id} has no open modal {view_callback_id!r}")
        view = open_views[-1]
        block = next(
            (b for b in view.get("blocks") or [] if isinstance(b, dict) and b.get("block_id") == block_id), None
        )
        if block is None or block.get("type") != "input":
            raise NotOnScreen(f"the modal has no input block {block_id!r}")
        element = block.get("element") or {}
        action_id = str(element.get("action_id"))
        shaped = _shape(element, str(element.get("type")), value)
        if not block.get("dispatch_action"):
            raise NotOnScreen(f"input {block_id!r} does not dispatch block actions; the app hears nothing")
        # Slack reports every input as it stands: selections shown (initial ones too) and this choice.
        values: JsonDict = {}
        for other in view.get("blocks") or []:
            if not isinstance(other, dict) or other.get("type") != "input":
                continue
            other_element = other.get("element") or {}
            if "initial_option" in other_element:
                values[str(other.get("block_id"))] = {
                    str(other_element.get("action_id")): {
                        "type": other_element.get("type"),
                        "selected_option": other_element["initial_option"],
                    }
                }
        values[block_id] = {action_id: shaped}
        view["state"] = {"values": values}
        payload = self._interaction_base("block_actions", user_id)
        payload.update(
            container={"type": "view", "view_id": view["id"]},
            view=view,
            actions=[
                {
                    "type": element.get("type"),
                    "action_id": action_id,
                    "block_id": block_id,
                    "selected_option": shaped.get("selected_option"),
                    "action_ts": f"{self.now():.6f}",
                }
            ],
        )
        return self.send_interaction(payload)

    def open_home(self, user_id: str, *, event_id: str | None = None, retry_num: int | None = None) -> AppReply:
        """``user_id`` opens the app's Home tab: an ``app_home_opened`` event."""
        event: JsonDict = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": self.slack.ensure_dm(user_id),
            "tab": "home",
            "event_ts": f"{self.now():.6f}",
        }
        home = self.slack.home_view(user_id)
        if home is not None:
            event["view"] = home
        return self.send_event(event, event_id=event_id, retry_num=retry_num)

    # -- payload parts ----------------------------------------------------------------------------------

    def _interaction_base(self, kind: str, user_id: str) -> JsonDict:
        name = self.slack.user_name(user_id)
        team: JsonDict = {"id": self.team_id, "domain": self.slack.team_domain}
        enterprise = None
        if self.enterprise_id:
            team["enterprise_id"] = self.enterprise_id
            enterprise = {"id": self.enterprise_id, "name": self.slack.enterprise_name}
        return {
            "type": kind,
            "user": {"id": user_id, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self.slack.mint_trigger_id(user_id),
            "team": team,
            "enterprise": enterprise,
            "is_enterprise_install": False,
        }

    def _action(self, block_id: str | None, button: JsonDict) -> JsonDict:
        action: JsonDict = {
            "action_id": button.get("action_id"),
            "block_id": block_id,
            "text": button.get("text"),
            "type": "button",
            "action_ts": f"{self.now():.6f}",
        }
        for key in ("value", "style", "url"):
            if key in button:
                action[key] = button[key]
        return action


def _state_for(view: JsonDict, given: Mapping[str, Mapping[str, Any]]) -> JsonDict:
    """``view``'s input state as Slack reports it, filled with ``given``; refuses what is not there."""
    inputs = {
        str(b.get("block_id")): b for b in view.get("blocks") or [] if isinstance(b, dict) and b.get("type") == "input"
    }
    unknown = set(given) - set(inputs)
    if unknown:
        raise NotOnScreen(f"the modal has no input block(s) {sorted(unknown)}")
    values: JsonDict = {}
    missing = []
    for block_id, block in inputs.items():
        element = block.get("element") or {}
        action_id = str(element.get("action_id"))
        kind = str(element.get("type"))
        answers = given.get(block_id, {})
        if answers and action_id not in answers:
            raise NotOnScreen(f"input {block_id!r} has action {action_id!r}, not {sorted(answers)}")
        answer = answers.get(action_id)
        shaped = _shape(element, kind, answer)
        empty = answer in (None, "", [])
        if empty and not block.get("optional", False):
            missing.append(block_id)
        values[block_id] = {action_id: shaped}
    if missing:
        raise IncompleteForm(f"required input(s) left empty: {missing}")
    return values


def _shape(element: JsonDict, kind: str, answer: Any) -> JsonDict:
    if isinstance(answer, Mapping):
        return {"type": kind, **answer}
    key = _VALUE_KEYS.get(kind, "value")
    if key in ("selected_option", "selected_options"):
        options = {o.get("value"): o for o in element.get("options") or [] if isinstance(o, dict)}

        def option(value: Any) -> JsonDict:
            if value not in options and options:
                raise NotOnScreen(f"{kind} offers no option {value!r}")
            return options.get(value) or {"text": {"type": "plain_text", "text": str(value)}, "value": value}

        if key == "selected_option":
            return {"type": kind, key: option(answer) if answer not in (None, "") else None}
        return {"type": kind, key: [option(v) for v in answer or []]}
    if key in _LIST_KEYS:
        return {"type": kind, key: list(answer or [])}
    return {"type": kind, key: None if answer == "" else answer}
