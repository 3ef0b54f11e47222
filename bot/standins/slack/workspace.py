"""The state of a Slack workspace with one app installed: people, channels, messages, threads, DMs,
ephemerals, views, files, tokens, faults, and the record of every call.

What the HTTP methods (``bot.standins.slack.methods``) read and change, and what the tests read.
All state sits behind one lock.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.standins.slack.blockkit import (
    ATTACHMENTS_LIMIT,
    MARKDOWN_TEXT_LIMIT,
    MESSAGE_TEXT_LIMIT,
    VIEW_SIZE_LIMIT,
    JsonDict,
    block_problems,
    view_problems,
)
from bot.standins.slack.rendering import format_ts, render_blocks, render_mrkdwn

DEFAULT_BOT_TOKEN = "xoxb-fake-breakglass-double"  # noqa: S105 - a fake token for a fake Slack
DEFAULT_BOT_SCOPES: tuple[str, ...] = (
    "commands",
    "chat:write",
    "im:write",
    "im:read",
    "users:read",
    "files:write",
    "channels:read",
    "groups:read",
)
DEFAULT_ADMIN_SCOPES: tuple[str, ...] = ("users:read",)
DEFAULT_APP_TOKEN = "xapp-fake-breakglass-double"  # noqa: S105 - a fake app-level token for a fake Slack
DEFAULT_APP_SCOPES: tuple[str, ...] = ("connections:write",)


TRIGGER_LIFETIME_SECONDS = 3.0
RESPONSE_URL_LIFETIME_SECONDS = 30 * 60
RESPONSE_URL_USES = 5

_TZ_LABELS = {
    "UTC": "Coordinated Universal Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "IST": "India Standard Time",
    "JST": "Japan Standard Time",
}


# ---------------------------------------------------------------------------------------------------
# What the record hands out: plain snapshots, safe to keep after the double moves on.


class Hold:
    """Calls of one method wait unanswered until ``release()`` (or ``timeout`` seconds): while they wait
    a test can look at what the app has already done, an ordering that no machine's speed changes."""

    def __init__(self, method: str, timeout: float) -> None:
        self.method = method
        self.timeout = timeout
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.arrived = 0  # calls that came in
        self.answered = 0  # calls let through, released or timed out

    def release(self) -> None:
        self._released.set()

    def pass_through(self) -> None:
        with self._lock:
            self.arrived += 1
        self._released.wait(self.timeout)
        with self._lock:
            self.answered += 1


@dataclass(frozen=True)
class MessageVersion:
    """A message as it read before an update, and when (``edited_ts``) it stopped reading so."""

    text: str
    blocks: tuple[JsonDict, ...]
    edited_ts: str


@dataclass(frozen=True)
class SlackMessage:
    """A message as a person reading the channel sees it now; ``edits`` holds what it said before."""

    channel: str
    ts: str
    text: str
    blocks: tuple[JsonDict, ...]
    user: str
    thread_ts: str | None = None
    reply_broadcast: bool = False
    files: tuple[str, ...] = ()
    edits: tuple[MessageVersion, ...] = ()
    metadata: JsonDict | None = None
    attachments: tuple[JsonDict, ...] = ()

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def edited(self) -> bool:
        return bool(self.edits)


@dataclass(frozen=True)
class Ephemeral:
    """A message only ``user`` sees. ``via`` says how it came: ``chat.postEphemeral``, ``response_url``
    or ``command_reply`` (the body of the app's answer to a slash command)."""

    user: str
    channel: str
    text: str
    blocks: tuple[JsonDict, ...]
    message_ts: str
    via: str
    thread_ts: str | None = None
    edits: tuple[MessageVersion, ...] = ()


@dataclass(frozen=True)
class OpenedView:
    """A modal opened (``views.open``) or pushed (``views.push``) for ``user``, with its current view."""

    view_id: str
    user: str
    via: str
    trigger_id: str
    view: JsonDict
    is_open: bool


@dataclass(frozen=True)
class UploadedFile:
    id: str
    name: str
    title: str
    content: bytes
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None
    user: str


@dataclass(frozen=True)
class ApiCall:
    """One Web API call as it arrived; the token is never kept (``token_kind`` says what it was)."""

    method: str
    params: JsonDict
    token_kind: str  # "bot", "admin", "revoked", "unknown" or "none"
    status: int
    ok: bool
    error: str | None
    at: float


# ---------------------------------------------------------------------------------------------------
# Internal state


@dataclass
class Channel:
    id: str
    name: str
    members: set[str]
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    bot_is_member: bool = True
    is_archived: bool = False
    created: int = 0
    is_ext_shared: bool = False  # a Slack Connect channel, shared with another organisation


@dataclass
class StoredMessage:
    channel: str
    ts: str
    text: str
    blocks: list[JsonDict]
    user: str
    bot_id: str | None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    files: list[str] = field(default_factory=list)
    edits: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False
    lost: bool = False
    metadata: JsonDict | None = None
    attachments: list[JsonDict] = field(default_factory=list)

    def snapshot(self) -> SlackMessage:
        return SlackMessage(
            channel=self.channel,
            ts=self.ts,
            text=self.text,
            blocks=tuple(copy.deepcopy(self.blocks)),
            user=self.user,
            thread_ts=self.thread_ts,
            reply_broadcast=self.reply_broadcast,
            files=tuple(self.files),
            edits=tuple(self.edits),
            metadata=copy.deepcopy(self.metadata),
            attachments=tuple(copy.deepcopy(self.attachments)),
        )


@dataclass
class StoredEphemeral:
    user: str
    channel: str
    text: str
    blocks: list[JsonDict]
    message_ts: str
    via: str
    thread_ts: str | None = None
    edits: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False

    def snapshot(self) -> Ephemeral:
        return Ephemeral(
            user=self.user,
            channel=self.channel,
            text=self.text,
            blocks=tuple(copy.deepcopy(self.blocks)),
            message_ts=self.message_ts,
            via=self.via,
            thread_ts=self.thread_ts,
            edits=tuple(self.edits),
        )


@dataclass
class Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseUrl:
    user: str
    channel: str
    issued_at: float
    message_ts: str | None
    message_is_ephemeral: bool
    uses: int = 0


@dataclass
class StoredView:
    id: str
    user: str
    view: JsonDict
    via: str
    trigger_id: str
    is_open: bool = True


@dataclass
class Upload:
    id: str
    name: str
    length: int
    content: bytes | None = None
    completed: bool = False


@dataclass
class Fault:
    times: int
    error: str
    status: int
    retry_after: int | None = None


@dataclass(frozen=True)
class Caller:
    kind: str  # "bot", "admin" or "app"
    scopes: tuple[str, ...]


class SlackError(Exception):
    """A refusal, answered as ``{"ok": false, "error": ...}`` plus ``extra``."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


@dataclass
class Answer:
    status: int
    body: JsonDict | bytes
    headers: dict[str, str] = field(default_factory=dict)


def refusal(error: str, problems: Sequence[str], *, lead: str | None = None) -> SlackError:
    messages = ([f"[ERROR] {lead}"] if lead else []) + [f"[ERROR] {p}" for p in problems]
    return SlackError(error, errors=list(problems), response_metadata={"messages": messages})


def as_json(value: Any, error: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise SlackError(error) from exc
    return value


def json_copy(value: Any) -> Any:
    """A deep copy of what a request's JSON held (a view, a call's parameters) by a JSON round trip, done
    in C: copying a request form takes 40 % less CPU than ``copy.deepcopy``, in a process (a test's, a
    benchmark's) whose other threads time the app. Anything that is not JSON (an uploaded file's
    bytes) is deep-copied."""
    try:
        return json.loads(json.dumps(value))
    except TypeError:
        return copy.deepcopy(value)


class Workspace:
    """A Slack workspace with one app installed: its people, channels and what the app did in it.

    Seed it with ``add_user``/``add_channel``; the app posts through its ``WebClient``; read what a
    person would see with ``messages``/``thread``/``dm``/``ephemerals``/``views_opened``/``home_view``/
    ``files`` and every call with ``calls``. All state sits behind one lock, so the HTTP threads, the
    test and the demo may use it at once.
    """

    def __init__(
        self,
        *,
        bot_tokens: Sequence[str] = (DEFAULT_BOT_TOKEN,),
        admin_token: str | None = None,
        scopes: Iterable[str] = DEFAULT_BOT_SCOPES,
        admin_scopes: Iterable[str] = DEFAULT_ADMIN_SCOPES,
        app_tokens: Sequence[str] = (DEFAULT_APP_TOKEN,),
        app_scopes: Iterable[str] = DEFAULT_APP_SCOPES,
        team_id: str = "T0000000001",
        team_domain: str = "breakglass-demo",
        team_name: str = "Breakglass Demo",
        enterprise_id: str | None = None,
        enterprise_name: str = "Breakglass Demo Org",
        bot_user_id: str = "U0BREAKGLASS",
        bot_id: str = "B0BREAKGLASS",
        app_id: str = "A0BREAKGLASS",
        admin_user_id: str = "U00000ADMIN",
        clock: Callable[[], float | datetime] = time.time,
    ) -> None:
        if not bot_tokens:
            raise ValueError("at least one bot token is needed")
        self.bot_tokens = tuple(bot_tokens)
        self.admin_token = admin_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.enterprise_id = enterprise_id
        self.enterprise_name = enterprise_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.admin_user_id = admin_user_id
        self.clock = clock
        self._lock = threading.RLock()
        self._scopes = tuple(scopes)
        self._admin_scopes = tuple(admin_scopes)
        self.app_tokens = tuple(app_tokens)
        self._app_scopes = tuple(app_scopes)
        self._socket_mode: Callable[[str], str] | None = None
        self._revoked: set[str] = set()
        self._users: dict[str, JsonDict] = {}
        self._has_2fa: dict[str, bool | None] = {}
        self._emails: dict[str, str] = {}
        self._channels: dict[str, Channel] = {}
        self._messages: dict[tuple[str, str], StoredMessage] = {}
        self._order: dict[str, list[str]] = {}
        self._ephemerals: list[StoredEphemeral] = []
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._views: dict[str, StoredView] = {}
        self._stacks: dict[str, list[str]] = {}
        self._home: dict[str, str] = {}
        self._uploads: dict[str, Upload] = {}
        self._files: list[UploadedFile] = []
        self._calls: list[ApiCall] = []
        self._faults: dict[str, list[Fault]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._latency: dict[str | None, float] = {}
        self._holds: dict[str, Hold] = {}
        self._last_ts_us = 0
        self._counter = 0
        self._add_bot_user()

    @property
    def base_url(self) -> str:
        """Where the workspace is served (upload and response URLs point there); ``SlackApiDouble`` knows."""
        raise RuntimeError("the Slack double is not started")

    @property
    def bot_token(self) -> str:
        return self.bot_tokens[0]

    def now(self) -> float:
        """The injected clock's time in epoch seconds (the clock may give seconds or a datetime)."""
        return epoch_seconds(self.clock())

    # -- seeding the workspace -----------------------------------------------------------------------

    def add_user(
        self,
        id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        display_name: str | None = None,
        team_id: str | None = None,
        tz: str = "Europe/London",
        tz_label: str | None = None,
        tz_offset: int | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        is_admin: bool = False,
        is_owner: bool = False,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        is_invited_user: bool = False,
        is_app_user: bool = False,
        has_2fa: bool | None = None,
        enterprise_id: str | None = None,
        email: str | None = None,
        email_confirmed: bool | None = None,
    ) -> JsonDict:
        """Add (or replace) a member; returns the user object as ``users.info`` shows it to an admin.
        ``email_confirmed`` (default: every person's is, no bot's) is ``is_email_confirmed``."""
        name = name or id.lower()
        real_name = real_name or name.replace(".", " ").title()
        team = team_id or self.team_id
        offset, label = self._timezone(tz, tz_offset, tz_label)
        profile: JsonDict = {
            "avatar_hash": secrets.token_hex(6),
            "status_text": "",
            "status_emoji": "",
            "real_name": real_name,
            "display_name": display_name if display_name is not None else name,
            "real_name_normalized": real_name,
            "display_name_normalized": display_name if display_name is not None else name,
            "image_48": f"https://avatars.example.invalid/{id}_48.png",
            "team": team,
        }
        user: JsonDict = {
            "id": id,
            "team_id": team,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": tz,
            "tz_label": label,
            "tz_offset": offset,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": is_app_user,
            "updated": int(self.now()),
            "is_email_confirmed": (not is_bot) if email_confirmed is None else email_confirmed,
        }
        if is_invited_user:
            user["is_invited_user"] = True  # Slack includes the flag only when it is true
        if is_bot:
            profile["bot_id"] = "B" + id[1:]
        grid = enterprise_id or (self.enterprise_id if team_id is None else None)
        if grid:
            user["enterprise_user"] = {
                "id": id,
                "enterprise_id": grid,
                "enterprise_name": self.enterprise_name,
                "is_admin": is_admin,
                "is_owner": is_owner,
                "is_primary_owner": False,
                "teams": [team],
            }
        with self._lock:
            self._users[id] = user
            self._has_2fa[id] = has_2fa
            if email is not None:
                self._emails[id] = email
            return self._user_view(id, admin=True, scopes=("users:read",))

    def add_channel(
        self,
        id: str,
        name: str,
        members: Iterable[str] = (),
        *,
        is_private: bool = False,
        bot_is_member: bool = True,
        is_archived: bool = False,
        is_ext_shared: bool = False,
    ) -> None:
        """Add a channel; the bot is a member unless ``bot_is_member=False``."""
        with self._lock:
            self._channels[id] = Channel(
                id=id,
                name=name.lstrip("#"),
                members=set(members),
                is_private=is_private,
                bot_is_member=bot_is_member,
                is_archived=is_archived,
                created=int(self.now()),
                is_ext_shared=is_ext_shared,
            )
            self._order.setdefault(id, [])

    def set_channel_members(self, channel: str, members: Iterable[str], *, bot_is_member: bool = True) -> None:
        with self._lock:
            found = self._channels[channel]
            found.members = set(members)
            found.bot_is_member = bot_is_member

    def add_message(self, channel: str, user_id: str, text: str, *, thread_ts: str | None = None) -> str:
        """A person's own message in a channel (e.g. to thread a reply under); returns its ts."""
        with self._lock:
            found = self._channel(channel)
            message = StoredMessage(
                channel=found.id, ts=self._next_ts(), text=text, blocks=[], user=user_id, bot_id=None
            )
            self._place(message, thread_ts)
            return message.ts

    def set_scopes(self, scopes: Iterable[str], *, admin: bool = False, app: bool = False) -> None:
        with self._lock:
            if app:
                self._app_scopes = tuple(scopes)
            elif admin:
                self._admin_scopes = tuple(scopes)
            else:
                self._scopes = tuple(scopes)

    def revoke(self, token: str) -> None:
        """From now on ``token`` answers ``token_revoked`` (an uninstalled app, a deactivated admin)."""
        with self._lock:
            self._revoked.add(token)

    def attach_socket_mode(self, open_url: Callable[[str], str] | None) -> None:
        """Switch Socket Mode on: ``apps.connections.open`` answers ``open_url(app_id)`` (a
        ``SocketModeServer`` attaches itself when started); ``None`` switches it off again."""
        with self._lock:
            self._socket_mode = open_url

    def set_usergroup(self, usergroup: str, members: list[str] | None) -> None:
        """A user group and its members, as an admin (or SCIM) keeps it; None deletes it."""
        with self._lock:
            if members is None:
                self._usergroups.pop(usergroup, None)
            else:
                self._usergroups[usergroup] = list(members)

    # -- fault injection ----------------------------------------------------------------------------

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP 429, ``Retry-After: retry_after``."""
        with self._lock:
            self._faults.setdefault(method, []).append(Fault(times, "ratelimited", 429, retry_after))

    def fail(self, method: str, error: str = "internal_error", *, times: int = 1, status: int = 200) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}`` with ``status``."""
        with self._lock:
            self._faults.setdefault(method, []).append(Fault(times, error, status))

    def latency(self, seconds: float, method: str | None = None) -> None:
        """Every call (of ``method``, or of any method) waits ``seconds`` of real time before answering."""
        with self._lock:
            self._latency[method] = seconds

    def hold(self, method: str, timeout: float = 120.0) -> Hold:
        """From now on every call of ``method`` waits unanswered until the hold is released (by
        ``release()`` or ``clear_faults()``), or for ``timeout`` seconds."""
        with self._lock:
            held = self._holds[method] = Hold(method, timeout)
            return held

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._latency.clear()
            holds, self._holds = list(self._holds.values()), {}
        for held in holds:
            held.release()

    # -- what Slack mints for the app (used by bot.standins.slack_events) ---------------------------

    def mint_trigger_id(self, user_id: str) -> str:
        """A trigger id as Slack puts in an interaction payload: good for one view, for 3 seconds."""
        with self._lock:
            self._counter += 1
            trigger_id = f"{int(self.now())}.{self._counter}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = Trigger(user=user_id, issued_at=self.now())
            return trigger_id

    def mint_response_url(
        self,
        user_id: str,
        channel: str,
        *,
        message_ts: str | None = None,
        message_is_ephemeral: bool = False,
    ) -> str:
        """A response URL for an interaction by ``user_id`` in ``channel`` (about ``message_ts``, for a click)."""
        with self._lock:
            key = secrets.token_urlsafe(18)
            self._response_urls[key] = ResponseUrl(
                user=user_id,
                channel=self._channel_id_for(channel),
                issued_at=self.now(),
                message_ts=message_ts,
                message_is_ephemeral=message_is_ephemeral,
            )
            return f"{self.base_url}/response/{key}"

    def dm_channel_id(self, user_id: str) -> str:
        """The id of ``user_id``'s DM with the bot: deterministic, so tests can name it before it exists."""
        return "D" + user_id[1:] if user_id[:1] in ("U", "W") else "D" + user_id

    def message_payload(self, channel: str, ts: str) -> JsonDict | None:
        """The message as Slack puts it in a ``block_actions`` payload, or None if there is none."""
        with self._lock:
            found = self._messages.get((self._channel_id_for(channel), ts))
            return self._message_json(found) if found is not None and not found.deleted else None

    def user_name(self, user_id: str) -> str:
        with self._lock:
            found = self._users.get(user_id)
            return str(found["name"]) if found else user_id

    def channel_name(self, channel: str) -> str:
        with self._lock:
            found = self._channels.get(self._channel_id_for(channel))
            if found is None:
                return channel
            return "directmessage" if found.is_im else found.name

    def ensure_dm(self, user_id: str) -> str:
        with self._lock:
            return self._open_dm(user_id).id

    def reply_to_command(self, user_id: str, channel: str, command: str, status: int, body: bytes) -> None:
        """What Slack does with the app's HTTP answer to a slash command: show its body to the person
        (ephemeral unless ``response_type`` is ``in_channel``), or say the command failed."""
        with self._lock:
            channel_id = self._channel_id_for(channel)
            if status != 200:
                reason = "http_service_error" if status >= 500 else "http_client_error"
                self._add_ephemeral(user_id, channel_id, f'{command} failed with the error "{reason}"', [], "slack")
                return
            if not body.strip():
                return
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {"text": body.decode("utf-8", "replace")}
            if not isinstance(payload, dict):
                return
            text = str(payload.get("text") or "")
            blocks = payload.get("blocks") or []
            if payload.get("response_type") == "in_channel":
                message = StoredMessage(
                    channel=channel_id,
                    ts=self._next_ts(),
                    text=text,
                    blocks=list(blocks),
                    user=self.bot_user_id,
                    bot_id=self.bot_id,
                )
                self._place(message, None)
            else:
                self._add_ephemeral(user_id, channel_id, text, list(blocks), "command_reply")

    def apply_view_response(self, user_id: str, view_id: str, status: int, body: bytes) -> None:
        """What Slack does with the app's answer to a ``view_submission``: close, update, push or keep
        the modal (``response_action`` ``errors`` keeps it open)."""
        with self._lock:
            stack = self._stacks.get(user_id, [])
            if status != 200 or view_id not in stack:
                return
            payload: Any = {}
            if body.strip():
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {}
            action = payload.get("response_action") if isinstance(payload, dict) else None
            if action == "errors":
                return
            if action == "clear":
                for vid in stack:
                    self._views[vid].is_open = False
                stack.clear()
            elif action == "update" and isinstance(payload.get("view"), dict):
                current = self._views[view_id]
                current.view = self._stored_view(payload["view"], view_id, user_id, current.view.get("root_view_id"))
            elif action == "push" and isinstance(payload.get("view"), dict):
                new_id = self._new_view_id()
                stored = self._stored_view(payload["view"], new_id, user_id, stack[0])
                stored["previous_view_id"] = view_id
                self._views[new_id] = StoredView(new_id, user_id, stored, "response_action", "")
                stack.append(new_id)
            else:
                self._views[view_id].is_open = False
                stack.remove(view_id)

    # -- the record ---------------------------------------------------------------------------------

    def messages(self, channel: str) -> list[SlackMessage]:
        """Top-level messages of ``channel`` (an id, ``#name`` or a user id for their DM), oldest first,
        as they read now; thread replies show only if broadcast to the channel."""
        with self._lock:
            channel_id = self._channel_id_for(channel)
            out = []
            for ts in self._order.get(channel_id, []):
                found = self._messages[(channel_id, ts)]
                if found.deleted or found.lost:
                    continue
                if found.thread_ts is None or found.thread_ts == found.ts or found.reply_broadcast:
                    out.append(found.snapshot())
            return out

    def message(self, channel: str, ts: str) -> SlackMessage | None:
        with self._lock:
            found = self._messages.get((self._channel_id_for(channel), ts))
            return found.snapshot() if found is not None and not found.deleted else None

    def thread(self, channel: str, ts: str) -> list[SlackMessage]:
        """The replies under the top-level message ``ts``, in order (the root itself is not included)."""
        with self._lock:
            channel_id = self._channel_id_for(channel)
            return [
                m.snapshot()
                for m in (self._messages[(channel_id, t)] for t in self._order.get(channel_id, []))
                if m.thread_ts == ts and m.ts != ts and not m.deleted and not m.lost
            ]

    def lost_replies(self, channel: str | None = None) -> list[SlackMessage]:
        """Replies posted with a ``thread_ts`` that named no top-level message: Slack said ok, nobody sees them."""
        with self._lock:
            wanted = self._channel_id_for(channel) if channel is not None else None
            return [m.snapshot() for m in self._messages.values() if m.lost and (wanted is None or m.channel == wanted)]

    def dm(self, user_id: str) -> list[SlackMessage]:
        """What ``user_id`` reads in their DM with the bot (top-level messages, oldest first)."""
        return self.messages(self.dm_channel_id(user_id))

    def ephemerals(self, user_id: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        with self._lock:
            wanted = self._channel_id_for(channel) if channel is not None else None
            return [
                e.snapshot()
                for e in self._ephemerals
                if not e.deleted and (user_id is None or e.user == user_id) and (wanted is None or e.channel == wanted)
            ]

    def views_opened(self, user_id: str | None = None) -> list[OpenedView]:
        """Every modal opened or pushed, in order, each with its latest content."""
        with self._lock:
            return [
                OpenedView(v.id, v.user, v.via, v.trigger_id, copy.deepcopy(v.view), v.is_open)
                for v in self._views.values()
                if v.view.get("type") == "modal" and (user_id is None or v.user == user_id)
            ]

    def open_views(self, user_id: str) -> list[JsonDict]:
        """The modal stack ``user_id`` has on screen now, bottom first."""
        with self._lock:
            return [copy.deepcopy(self._views[v].view) for v in self._stacks.get(user_id, [])]

    def view(self, view_id: str) -> JsonDict | None:
        with self._lock:
            found = self._views.get(view_id)
            return copy.deepcopy(found.view) if found else None

    def home_view(self, user_id: str) -> JsonDict | None:
        with self._lock:
            view_id = self._home.get(user_id)
            return copy.deepcopy(self._views[view_id].view) if view_id else None

    def files(self, channel_or_user: str | None = None) -> list[UploadedFile]:
        with self._lock:
            if channel_or_user is None:
                return list(self._files)
            wanted = self._channel_id_for(channel_or_user)
            return [f for f in self._files if f.channel == wanted]

    def calls(self, method: str | None = None) -> list[ApiCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def render_text(self, blocks_or_message: Any) -> str:
        """``blocks_or_message`` (a list of blocks, a message or view dict, a ``SlackMessage`` or
        ``Ephemeral``) as plain text, as Slack would show it; mentions read as ``@name``."""
        with self._lock:
            users = {uid: str(u["profile"].get("display_name") or u["name"]) for uid, u in self._users.items()}
            channels = {cid: c.name for cid, c in self._channels.items()}
            file_names = {f.id: f.name for f in self._files}
        if isinstance(blocks_or_message, list | tuple):
            return render_blocks(list(blocks_or_message), users=users, channels=channels)
        if isinstance(blocks_or_message, SlackMessage | Ephemeral):
            text, blocks = blocks_or_message.text, list(blocks_or_message.blocks)
            files = blocks_or_message.files if isinstance(blocks_or_message, SlackMessage) else ()
        elif isinstance(blocks_or_message, Mapping):
            text = str(blocks_or_message.get("text") or "")
            blocks = list(blocks_or_message.get("blocks") or [])
            files = tuple(blocks_or_message.get("files") or ())
        else:
            raise TypeError(f"cannot render {type(blocks_or_message).__name__}")
        body = render_blocks(blocks, users=users, channels=channels) if blocks else render_mrkdwn(text, users, channels)
        ids = [str(f.get("id")) if isinstance(f, Mapping) else str(f) for f in files]
        attached = [f"[file: {file_names.get(f, f)}]" for f in ids]
        return "\n".join(part for part in [body, *attached] if part)

    def render_thread(self, channel: str, ts: str) -> str:
        """The root message and every reply, each with its UTC timestamp, for a printout."""
        root = self.message(channel, ts)
        if root is None:
            raise LookupError(f"no message {ts} in {channel}")
        name = self.channel_name(channel)
        stamp = format_ts(ts, full=True)
        edited = f" (edited {len(root.edits)}×)" if root.edits else ""
        lines = [f"#{name} · {stamp}{edited}"]
        lines.extend("    " + line for line in self.render_text(root).splitlines())
        for reply in self.thread(channel, ts):
            body = self.render_text(reply).splitlines() or [""]
            lines.append(f"  ↳ {format_ts(reply.ts)}  {body[0]}")
            lines.extend("      " + line for line in body[1:])
        return "\n".join(lines)

    # -- helpers (all called with the lock held) ------------------------------------------------------

    def _authenticate(self, token: str | None) -> tuple[Caller | None, str]:
        with self._lock:
            if not token:
                return None, "none"
            if token in self._revoked:
                return None, "revoked"
            if token in self.bot_tokens:
                return Caller("bot", self._scopes), "bot"
            if self.admin_token is not None and token == self.admin_token:
                return Caller("admin", self._admin_scopes), "admin"
            if token in self.app_tokens:
                return Caller("app", self._app_scopes), "app"
            return None, "unknown"

    def _delay_for(self, method: str) -> float:
        with self._lock:
            return self._latency.get(method, self._latency.get(None, 0.0))

    def _hold_for(self, method: str) -> Hold | None:
        with self._lock:
            return self._holds.get(method)

    def _take_fault(self, method: str) -> Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    def _next_ts(self) -> str:
        now_us = int(self.now() * 1_000_000)
        # Strictly increasing even when the injected clock stands still or steps back.
        self._last_ts_us = max(now_us, self._last_ts_us + 100)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _new_view_id(self) -> str:
        self._counter += 1
        return f"V{self._counter:010d}"

    def _add_bot_user(self) -> None:
        self.add_user(self.bot_user_id, name="breakglass", real_name="Breakglass", is_bot=True)

    def _timezone(self, tz: str, offset: int | None, label: str | None) -> tuple[int, str]:
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            return offset or 0, label or tz
        at = datetime.fromtimestamp(self.now(), UTC).astimezone(zone)
        utcoffset = at.utcoffset()
        computed = int(utcoffset.total_seconds()) if utcoffset is not None else 0
        abbreviation = at.tzname() or tz
        return (computed if offset is None else offset), (label or _TZ_LABELS.get(abbreviation, abbreviation))

    def _user_view(self, user: str, *, admin: bool, scopes: Sequence[str]) -> JsonDict:
        shown = copy.deepcopy(self._users[user])
        has_2fa = self._has_2fa.get(user)
        # Slack shows has_2fa only to workspace admins and owners; a bot token never sees it.
        if admin and has_2fa is not None:
            shown["has_2fa"] = has_2fa
            if has_2fa:
                shown["two_factor_type"] = "app"
        if user in self._emails and "users:read.email" in scopes:
            shown["profile"]["email"] = self._emails[user]
        return shown

    def _channel_id_for(self, channel: str) -> str:
        with self._lock:
            if channel.startswith("#"):
                name = channel[1:]
                return next((c.id for c in self._channels.values() if c.name == name), channel)
            if channel[:1] in ("U", "W"):
                return self.dm_channel_id(channel)
            return channel

    def _channel(self, channel: str) -> Channel:
        found = self._channels.get(self._channel_id_for(channel))
        if found is None:
            if channel[:1] in ("U", "W") and channel in self._users:
                return self._open_dm(channel)
            raise KeyError(channel)
        return found

    def _open_dm(self, user: str) -> Channel:
        channel_id = self.dm_channel_id(user)
        found = self._channels.get(channel_id)
        if found is None:
            found = Channel(
                id=channel_id,
                name=channel_id,
                members={user},
                is_private=True,
                is_im=True,
                im_user=user,
                created=int(self.now()),
            )
            self._channels[channel_id] = found
            self._order.setdefault(channel_id, [])
        return found

    def _visible_channel(self, raw: Any) -> Channel:
        """The conversation ``raw`` names, as the bot can see it; private ones it is not in stay hidden."""
        if not isinstance(raw, str) or not raw:
            raise SlackError("channel_not_found")
        if raw[:1] in ("U", "W"):
            user = self._users.get(raw)
            if user is None or user["deleted"]:
                raise SlackError("channel_not_found")
            if user["is_bot"]:
                raise SlackError("cannot_dm_bot")
            return self._open_dm(raw)
        if raw.startswith("#") or not raw[:1].isupper():
            name = raw.lstrip("#")
            raw = next((c.id for c in self._channels.values() if c.name == name and not c.is_im), raw)
        found = self._channels.get(raw)
        if found is None or (found.is_private and not found.is_im and not found.bot_is_member):
            raise SlackError("channel_not_found")
        return found

    def _postable_channel(self, raw: Any, caller: Caller) -> Channel:
        channel = self._visible_channel(raw)
        if channel.is_archived:
            raise SlackError("is_archived")
        may_post_uninvited = not channel.is_private and "chat:write.public" in caller.scopes
        if not channel.bot_is_member and not channel.is_im and not may_post_uninvited:
            raise SlackError("not_in_channel")
        return channel

    def _attachments(self, params: JsonDict) -> list[JsonDict]:
        raw = params.get("attachments")
        if raw in (None, ""):
            return []
        parsed = as_json(raw, "invalid_attachments")
        if not isinstance(parsed, list):
            raise SlackError("invalid_attachments")
        if len(parsed) > ATTACHMENTS_LIMIT:
            raise SlackError("too_many_attachments")
        return parsed

    def _content(self, params: Mapping[str, Any], *, require: bool) -> tuple[str, list[JsonDict]]:
        """The message's text and blocks, refused as Slack refuses them."""
        text = params.get("text")
        text = "" if text is None else str(text)
        markdown_text = params.get("markdown_text")
        raw_blocks = params.get("blocks")
        blocks: list[JsonDict] = []
        if raw_blocks not in (None, ""):
            parsed = as_json(raw_blocks, "invalid_blocks_format")
            if not isinstance(parsed, list):
                raise SlackError("invalid_blocks_format")
            problems = block_problems(parsed)
            if problems:
                raise refusal("invalid_blocks", problems)
            blocks = parsed
        if markdown_text is not None:
            if text or blocks:
                raise SlackError("markdown_text_conflict")
            if len(str(markdown_text)) > MARKDOWN_TEXT_LIMIT:
                raise SlackError("msg_too_long")
            text = str(markdown_text)
        if len(text) > MESSAGE_TEXT_LIMIT:
            raise SlackError("msg_too_long")
        if require and not text.strip() and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        return text, blocks

    def _place(self, message: StoredMessage, thread_ts: str | None) -> None:
        if thread_ts is not None:
            root = self._messages.get((message.channel, thread_ts))
            message.thread_ts = thread_ts
            # Slack answers ok for a thread_ts that names no top-level message (a reply's ts, a float
            # that lost its zeros) and the reply is seen nowhere; mirror that so the app cannot rely on it.
            if root is None or root.deleted or (root.thread_ts is not None and root.thread_ts != root.ts):
                message.lost = True
            elif root.thread_ts is None:
                root.thread_ts = root.ts
        self._messages[(message.channel, message.ts)] = message
        self._order.setdefault(message.channel, []).append(message.ts)

    def _add_ephemeral(
        self,
        user: str,
        channel: str,
        text: str,
        blocks: list[JsonDict],
        via: str,
        thread_ts: str | None = None,
    ) -> StoredEphemeral:
        entry = StoredEphemeral(
            user=user,
            channel=channel,
            text=text,
            blocks=blocks,
            message_ts=self._next_ts(),
            via=via,
            thread_ts=thread_ts,
        )
        self._ephemerals.append(entry)
        return entry

    def _message_json(self, message: StoredMessage) -> JsonDict:
        shown: JsonDict = {
            "type": "message",
            "text": message.text,
            "user": message.user,
            "ts": message.ts,
            "team": self.team_id,
        }
        if message.bot_id:
            shown.update(
                bot_id=message.bot_id,
                app_id=self.app_id,
                bot_profile={"id": message.bot_id, "app_id": self.app_id, "name": "breakglass", "deleted": False},
            )
        if message.blocks:
            shown["blocks"] = copy.deepcopy(message.blocks)
        if message.thread_ts:
            shown["thread_ts"] = message.thread_ts
        if message.edits:
            shown["edited"] = {"user": message.user, "ts": message.edits[-1].edited_ts}
        if message.files:
            shown["files"] = [{"id": f} for f in message.files]
        if message.attachments:
            shown["attachments"] = copy.deepcopy(message.attachments)
        if message.metadata:
            shown["metadata"] = copy.deepcopy(message.metadata)
        return shown

    def _channel_json(self, channel: Channel) -> JsonDict:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.im_user,
                "is_user_deleted": bool(self._users.get(channel.im_user or "", {}).get("deleted")),
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_private,
            "is_group": channel.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "is_archived": channel.is_archived,
            "is_general": False,
            "is_shared": channel.is_ext_shared,
            "is_ext_shared": channel.is_ext_shared,
            "is_org_shared": False,
            "is_member": channel.bot_is_member,
            "created": channel.created,
            "creator": "",
            "name_normalized": channel.name,
            "context_team_id": self.team_id,
        }

    def _exchange_trigger(self, params: JsonDict) -> Trigger:
        trigger_id = params.get("trigger_id")
        if not trigger_id:
            raise refusal("invalid_arguments", ["missing required field: trigger_id"])
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self.now() - trigger.issued_at > TRIGGER_LIFETIME_SECONDS:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _checked_view(self, raw: Any, expected_type: str) -> JsonDict:
        if raw is None or raw == "":
            raise refusal("invalid_arguments", ["missing required field: view"])
        view = as_json(raw, "invalid_arguments")
        if len(json.dumps(view)) > VIEW_SIZE_LIMIT:
            raise SlackError("view_too_large")
        problems = view_problems(view, expected_type=expected_type)
        if problems:
            raise refusal(
                "invalid_arguments", problems, lead="failed to match all allowed schemas [json-pointer:/view]"
            )
        if not isinstance(view, dict):  # view_problems already refused anything else
            raise SlackError("invalid_arguments")
        external_id = view.get("external_id")
        if external_id and any(v.view.get("external_id") == external_id for v in self._views.values()):
            raise SlackError("duplicate_external_id")
        return view

    def _stored_view(self, view: JsonDict, view_id: str, user: str, root_view_id: Any) -> JsonDict:
        """A copy of ``view`` as Slack stores it. Once stored it is replaced, never changed in place, so
        a ``views.*`` answer holds it uncopied while the answer is written out; readers get copies."""
        stored = json_copy(view)
        stored.update(
            id=view_id,
            team_id=self.team_id,
            hash=f"{int(self.now())}.{secrets.token_hex(4)}",
            state={"values": {}},
            root_view_id=root_view_id,
            app_id=self.app_id,
            bot_id=self.bot_id,
            app_installed_team_id=self.team_id,
        )
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        stored.setdefault("external_id", "")
        stored.setdefault("previous_view_id", None)
        stored.setdefault("clear_on_close", False)
        stored.setdefault("notify_on_close", False)
        return stored


def epoch_seconds(at: float | datetime) -> float:
    return at.timestamp() if isinstance(at, datetime) else float(at)
