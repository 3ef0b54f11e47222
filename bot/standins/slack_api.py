"""A local Slack Web API that answers like Slack, over real HTTP, for the tests and ``breakglass demo``.

``SlackApiDouble`` serves ``http://127.0.0.1:<port>/api/<method>`` from a stdlib ``ThreadingHTTPServer``;
the app reaches it through ``slack_sdk.WebClient(base_url=double.api_url)`` exactly as it reaches
``https://slack.com/api/``. It keeps what a person would see in the workspace (channel messages with
their edits, threads, DMs, ephemerals, modals, the Home tab, uploaded files) and every call made, so
tests assert on what happened rather than on how the app called a client.

What it models, as Slack answers it:

- Authentication: ``Authorization: Bearer`` (or a form ``token``; Slack ignores a token inside a JSON
  body), ``not_authed`` / ``invalid_auth`` / ``token_revoked``, and the token's granted scopes in the
  ``x-oauth-scopes`` header of every authenticated answer; ``missing_scope`` with ``needed``/``provided``.
  Three kinds of token: bot, the admin's user token, and the app-level token (``xapp-…``), which only
  ``apps.connections.open`` takes, only in the header, and which every other method refuses
  (``not_allowed_token_type``, as a bot or user token is refused there).
- The methods the app calls: ``auth.test``, ``chat.postMessage``/``update``/``delete``/``postEphemeral``/
  ``getPermalink``, ``conversations.open``/``info``, ``users.info``, ``views.open``/``update``/``push``/
  ``publish``, ``apps.permissions.info``, ``apps.connections.open`` (a URL of the attached
  ``bot.standins.slack_socket.SocketModeServer``) and the ``files_upload_v2`` flow
  (``files.getUploadURLExternal``, a POST of the bytes to the upload URL handed out,
  ``files.completeUploadExternal``). Any other method answers ``unknown_method``, as Slack does, so a
  call the double does not know fails loudly.
- Slack's limits: 40,000 characters of ``text`` (``msg_too_long``), 50 blocks a message and 100 a view,
  3,000 characters of section/context text, 2,000 a section field, 150 a header, 75 button text, 2,000
  a button value, 255 a ``block_id``/``action_id``/``callback_id``, 24 a modal title, 3,000 of
  ``private_metadata``; refusals carry Slack's ``response_metadata.messages`` with JSON pointers.
- Channel rules: ``channel_not_found``, ``not_in_channel`` (unless ``chat:write.public`` and the channel is
  public), a private channel the bot is not in is invisible (``channel_not_found``), ``is_archived``;
  a user id as ``channel`` posts into that user's DM with the bot (``D…``, deterministic per user).
- A ``thread_ts`` that names no top-level message is accepted (``ok: true``) and the reply is lost: it
  shows neither in the channel nor in any thread, as with real Slack; ``lost_replies()`` shows them.
- ``users.info`` never shows ``has_2fa`` to a bot token (Slack shows it only to admins and owners); with
  the admin user token it is shown as configured (true, false, or absent).
- Trigger ids (minted by ``bot.standins.slack_events``) live 3 s of the injected clock and are single use:
  ``invalid_trigger_id``, ``exchanged_trigger_id``, ``expired_trigger_id``. Response URLs take 5 posts
  within 30 minutes.
- Fault injection: ``rate_limit`` (HTTP 429, ``Retry-After``, ``ratelimited``), ``fail`` (any error name,
  any HTTP status), ``latency``.

What it does not model: Slack's per-method rate-limit tiers (only injected 429s), pagination, group DMs
and shared channels, message attachments beyond storing them, rich-text and markdown block internals,
Slack's exact wording for a few refusals nobody documents (duplicate ``block_id``, a missing ``submit``
with input blocks), the exact HTTP answer of an expired response URL, OAuth installs, token rotation,
and events Slack would send on its own (``message`` events and the like).
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JsonDict = dict[str, Any]

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

# Slack's limits, as its reference documents them (docs.slack.dev, Block Kit and method pages).
MESSAGE_TEXT_LIMIT = 40_000
MARKDOWN_TEXT_LIMIT = 12_000
MESSAGE_BLOCKS_LIMIT = 50
VIEW_BLOCKS_LIMIT = 100
SECTION_TEXT_LIMIT = 3_000
SECTION_FIELD_LIMIT = 2_000
SECTION_FIELDS_MAX = 10
CONTEXT_TEXT_LIMIT = 3_000
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
HEADER_TEXT_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2_000
URL_LIMIT = 3_000
ID_LIMIT = 255
PLACEHOLDER_LIMIT = 150
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
OPTIONS_MAX = 100
INPUT_LABEL_LIMIT = 2_000
CONFIRM_TITLE_LIMIT = 100
CONFIRM_TEXT_LIMIT = 300
CONFIRM_BUTTON_LIMIT = 30
VIEW_TITLE_LIMIT = 24
VIEW_PRIVATE_METADATA_LIMIT = 3_000
VIEW_SIZE_LIMIT = 250_000
VIEW_STACK_LIMIT = 3
ATTACHMENTS_LIMIT = 100
TRIGGER_LIFETIME_SECONDS = 3.0
RESPONSE_URL_LIFETIME_SECONDS = 30 * 60
RESPONSE_URL_USES = 5

# Which scope lets a token call a method; any one of those listed will do.
_METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.permissions.info": (),
    "apps.connections.open": ("connections:write",),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.getPermalink": (),
    "conversations.open": ("im:write", "mpim:write", "channels:manage", "groups:write"),
    "conversations.info": (),  # depends on the conversation's kind; checked in the method
    "users.info": ("users:read",),
    "views.open": (),
    "views.update": (),
    "views.push": (),
    "views.publish": (),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}

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
class _Channel:
    id: str
    name: str
    members: set[str]
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    bot_is_member: bool = True
    is_archived: bool = False
    created: int = 0


@dataclass
class _Message:
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
class _Ephemeral:
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
class _Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass
class _ResponseUrl:
    user: str
    channel: str
    issued_at: float
    message_ts: str | None
    message_is_ephemeral: bool
    uses: int = 0


@dataclass
class _View:
    id: str
    user: str
    view: JsonDict
    via: str
    trigger_id: str
    is_open: bool = True


@dataclass
class _Upload:
    id: str
    name: str
    length: int
    content: bytes | None = None
    completed: bool = False


@dataclass
class _Fault:
    times: int
    error: str
    status: int
    retry_after: int | None = None


@dataclass(frozen=True)
class _Caller:
    kind: str  # "bot", "admin" or "app"
    scopes: tuple[str, ...]


class _SlackError(Exception):
    """A refusal, answered as ``{"ok": false, "error": ...}`` plus ``extra``."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


@dataclass
class _Answer:
    status: int
    body: JsonDict | bytes
    headers: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Block Kit validation: what Slack refuses, with its JSON-pointer messages.


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.items.append(f"{message} [json-pointer:{pointer}]")

    def __bool__(self) -> bool:
        return bool(self.items)


def _check_length(value: Any, pointer: str, limit: int, problems: _Problems, *, minimum: int = 0) -> bool:
    if not isinstance(value, str):
        problems.add("must provide a string", pointer)
        return False
    if len(value) < minimum:
        problems.add(f"must be more than {minimum - 1} characters", pointer)
        return False
    if len(value) > limit:
        problems.add(f"must be less than {limit + 1} characters", pointer)
        return False
    return True


def _check_text_object(
    parent: Mapping[str, Any],
    key: str,
    pointer: str,
    problems: _Problems,
    *,
    limit: int,
    plain_only: bool = False,
    required: bool = True,
) -> None:
    value = parent.get(key)
    here = f"{pointer}/{key}"
    if value is None:
        if required:
            problems.add(f"missing required field: {key}", pointer)
        return
    if not isinstance(value, dict):
        problems.add("must provide an object", here)
        return
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if value.get("type") not in allowed:
        problems.add("must be a valid enum value", f"{here}/type")
        return
    inner = _Problems()
    _check_length(value.get("text"), f"{here}/text", limit, inner, minimum=1)
    if inner and not plain_only:
        # A field that takes either kind of text object fails both schemas, and Slack says so first.
        problems.add("failed to match all allowed schemas", here)
    problems.items.extend(inner.items)


def _check_id(parent: Mapping[str, Any], key: str, pointer: str, problems: _Problems) -> None:
    if key in parent and parent[key] is not None:
        _check_length(parent[key], f"{pointer}/{key}", ID_LIMIT, problems, minimum=1)


def _check_confirm(element: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    confirm = element.get("confirm")
    if confirm is None:
        return
    here = f"{pointer}/confirm"
    if not isinstance(confirm, dict):
        problems.add("must provide an object", here)
        return
    _check_text_object(confirm, "title", here, problems, limit=CONFIRM_TITLE_LIMIT, plain_only=True)
    _check_text_object(confirm, "text", here, problems, limit=CONFIRM_TEXT_LIMIT)
    _check_text_object(confirm, "confirm", here, problems, limit=CONFIRM_BUTTON_LIMIT, plain_only=True)
    _check_text_object(confirm, "deny", here, problems, limit=CONFIRM_BUTTON_LIMIT, plain_only=True)


def _check_options(element: Mapping[str, Any], pointer: str, problems: _Problems, *, maximum: int) -> None:
    options = element.get("options")
    if options is None:
        return
    here = f"{pointer}/options"
    if not isinstance(options, list):
        problems.add("must provide an array", here)
        return
    if len(options) > maximum:
        problems.add(f"no more than {maximum} items allowed", here)
        return
    for index, option in enumerate(options):
        at = f"{here}/{index}"
        if not isinstance(option, dict):
            problems.add("must provide an object", at)
            continue
        _check_text_object(option, "text", at, problems, limit=OPTION_TEXT_LIMIT)
        if "value" in option:
            _check_length(option["value"], f"{at}/value", OPTION_VALUE_LIMIT, problems, minimum=1)


_SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
}
_INPUT_ELEMENTS = {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "rich_text_input",
    "file_input",
}


def _check_element(element: Any, pointer: str, problems: _Problems) -> None:
    if not isinstance(element, dict):
        problems.add("must provide an object", pointer)
        return
    kind = element.get("type")
    _check_id(element, "action_id", pointer, problems)
    if kind == "button":
        _check_text_object(element, "text", pointer, problems, limit=BUTTON_TEXT_LIMIT, plain_only=True)
        if "value" in element:
            _check_length(element["value"], f"{pointer}/value", BUTTON_VALUE_LIMIT, problems, minimum=1)
        if "url" in element:
            _check_length(element["url"], f"{pointer}/url", URL_LIMIT, problems, minimum=1)
        if "style" in element and element["style"] not in ("primary", "danger"):
            problems.add("must be a valid enum value", f"{pointer}/style")
        _check_confirm(element, pointer, problems)
    elif kind in _SELECTS or kind in _INPUT_ELEMENTS or kind == "overflow":
        _check_text_object(
            element, "placeholder", pointer, problems, limit=PLACEHOLDER_LIMIT, plain_only=True, required=False
        )
        maximum = 5 if kind == "overflow" else 10 if kind in ("checkboxes", "radio_buttons") else OPTIONS_MAX
        _check_options(element, pointer, problems, maximum=maximum)
        _check_confirm(element, pointer, problems)
    elif kind == "image":
        if "alt_text" not in element:
            problems.add("missing required field: alt_text", pointer)
    else:
        problems.add("failed to match all allowed schemas", pointer)


def _check_section(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    if block.get("text") is None and block.get("fields") is None:
        problems.add("missing required field: text", pointer)
    _check_text_object(block, "text", pointer, problems, limit=SECTION_TEXT_LIMIT, required=False)
    fields = block.get("fields")
    if fields is not None:
        here = f"{pointer}/fields"
        if not isinstance(fields, list):
            problems.add("must provide an array", here)
        elif len(fields) > SECTION_FIELDS_MAX:
            problems.add(f"no more than {SECTION_FIELDS_MAX} items allowed", here)
        else:
            holder = {str(i): f for i, f in enumerate(fields)}
            for index in range(len(fields)):
                _check_text_object(holder, str(index), here, problems, limit=SECTION_FIELD_LIMIT)
    if block.get("accessory") is not None:
        _check_element(block["accessory"], f"{pointer}/accessory", problems)


def _check_header(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    _check_text_object(block, "text", pointer, problems, limit=HEADER_TEXT_LIMIT, plain_only=True)


def _check_context(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    elements = block.get("elements")
    here = f"{pointer}/elements"
    if not isinstance(elements, list) or not elements:
        problems.add("missing required field: elements", pointer)
        return
    if len(elements) > CONTEXT_ELEMENTS_MAX:
        problems.add(f"no more than {CONTEXT_ELEMENTS_MAX} items allowed", here)
        return
    holder = {str(i): e for i, e in enumerate(elements)}
    for index, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            _check_element(element, f"{here}/{index}", problems)
        else:
            _check_text_object(holder, str(index), here, problems, limit=CONTEXT_TEXT_LIMIT)


def _check_actions(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    elements = block.get("elements")
    here = f"{pointer}/elements"
    if not isinstance(elements, list) or not elements:
        problems.add("missing required field: elements", pointer)
        return
    if len(elements) > ACTIONS_ELEMENTS_MAX:
        problems.add(f"no more than {ACTIONS_ELEMENTS_MAX} items allowed", here)
        return
    seen: set[str] = set()
    for index, element in enumerate(elements):
        _check_element(element, f"{here}/{index}", problems)
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                problems.add("non-unique action_id", f"{here}/{index}/action_id")
            seen.add(action_id)


def _check_input(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    _check_text_object(block, "label", pointer, problems, limit=INPUT_LABEL_LIMIT, plain_only=True)
    _check_text_object(block, "hint", pointer, problems, limit=INPUT_LABEL_LIMIT, plain_only=True, required=False)
    if block.get("element") is None:
        problems.add("missing required field: element", pointer)
    else:
        _check_element(block["element"], f"{pointer}/element", problems)


def _check_image_block(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    if "alt_text" not in block:
        problems.add("missing required field: alt_text", pointer)
    _check_text_object(block, "title", pointer, problems, limit=INPUT_LABEL_LIMIT, plain_only=True, required=False)


def _check_markdown(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    _check_length(block.get("text"), f"{pointer}/text", MARKDOWN_TEXT_LIMIT, problems, minimum=1)


def _no_check(block: Mapping[str, Any], pointer: str, problems: _Problems) -> None:
    """Blocks whose insides the double does not validate (see the module docstring)."""


_BlockCheck = Callable[[Mapping[str, Any], str, _Problems], None]
_BLOCK_CHECKS: dict[str, tuple[_BlockCheck, frozenset[str]]] = {
    "section": (_check_section, frozenset({"message", "modal", "home"})),
    "header": (_check_header, frozenset({"message", "modal", "home"})),
    "context": (_check_context, frozenset({"message", "modal", "home"})),
    "actions": (_check_actions, frozenset({"message", "modal", "home"})),
    "divider": (_no_check, frozenset({"message", "modal", "home"})),
    "image": (_check_image_block, frozenset({"message", "modal", "home"})),
    "input": (_check_input, frozenset({"message", "modal", "home"})),
    "rich_text": (_no_check, frozenset({"message", "modal", "home"})),
    "video": (_no_check, frozenset({"message", "modal", "home"})),
    "file": (_no_check, frozenset({"message"})),
    "markdown": (_check_markdown, frozenset({"message"})),
}


def block_problems(blocks: Any, pointer: str = "/blocks", *, surface: str = "message") -> list[str]:
    """What Slack would say is wrong with ``blocks`` on ``surface`` (message, modal or home); empty if fine."""
    problems = _Problems()
    limit = MESSAGE_BLOCKS_LIMIT if surface == "message" else VIEW_BLOCKS_LIMIT
    if not isinstance(blocks, list):
        problems.add("must provide an array", pointer)
        return problems.items
    if len(blocks) > limit:
        problems.add(f"no more than {limit} items allowed", pointer)
        return problems.items
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        here = f"{pointer}/{index}"
        if not isinstance(block, dict):
            problems.add("must provide an object", here)
            continue
        rule = _BLOCK_CHECKS.get(str(block.get("type")))
        if rule is None or surface not in rule[1]:
            problems.add("failed to match all allowed schemas", here)
            continue
        _check_id(block, "block_id", here, problems)
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.add("duplicate block_id", f"{here}/block_id")
            block_ids.add(block_id)
        rule[0](block, here, problems)
    return problems.items


def view_problems(view: Any, *, expected_type: str) -> list[str]:
    """What Slack would say is wrong with a view of ``expected_type`` (modal or home); empty if fine."""
    problems = _Problems()
    if not isinstance(view, dict):
        problems.add("must provide an object", "/view")
        return problems.items
    if view.get("type") != expected_type:
        problems.add("must be a valid enum value", "/view/type")
        return problems.items
    if expected_type == "modal":
        _check_text_object(view, "title", "/view", problems, limit=VIEW_TITLE_LIMIT, plain_only=True)
        _check_text_object(view, "submit", "/view", problems, limit=VIEW_TITLE_LIMIT, plain_only=True, required=False)
        _check_text_object(view, "close", "/view", problems, limit=VIEW_TITLE_LIMIT, plain_only=True, required=False)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            problems.add("must provide submit when using input blocks", "/view")
    if "private_metadata" in view:
        _check_length(view["private_metadata"], "/view/private_metadata", VIEW_PRIVATE_METADATA_LIMIT, problems)
    for key in ("callback_id", "external_id"):
        if key in view and view[key] not in (None, ""):
            _check_length(view[key], f"/view/{key}", ID_LIMIT, problems)
    if "blocks" not in view:
        problems.add("missing required field: blocks", "/view")
    else:
        problems.items.extend(block_problems(view["blocks"], "/view/blocks", surface=expected_type))
    return problems.items


def _refusal(error: str, problems: Sequence[str], *, lead: str | None = None) -> _SlackError:
    messages = ([f"[ERROR] {lead}"] if lead else []) + [f"[ERROR] {p}" for p in problems]
    return _SlackError(error, errors=list(problems), response_metadata={"messages": messages})


# ---------------------------------------------------------------------------------------------------
# Rendering Block Kit as a person reads it.

_SPECIAL = re.compile(r"<([^<>]*)>")


def _render_mrkdwn(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (users.get(target[1:]) or label or target[1:])
        if target.startswith("#"):
            return "#" + (label or channels.get(target[1:]) or target[1:])
        if target.startswith("!subteam^"):
            return label or "@group"
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!"):
            return "@" + target[1:]
        return label or target

    return html.unescape(_SPECIAL.sub(replace, text))


def _text_of(obj: Any, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    if not isinstance(obj, dict):
        return str(obj) if obj is not None else ""
    text = str(obj.get("text", ""))
    # Slack parses mentions and links only in mrkdwn; plain_text is shown exactly as sent.
    return _render_mrkdwn(text, users, channels) if obj.get("type") == "mrkdwn" else text


def _element_label(element: Any, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "button":
        return f"[{_text_of(element.get('text'), users, channels)}]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind == "overflow":
        return "[⋯]"
    placeholder = element.get("placeholder")
    label = _text_of(placeholder, users, channels) if placeholder else str(kind)
    return f"[{label} ▾]" if kind in _SELECTS else f"[{label}]"


def _rich_text(element: Any) -> str:
    if isinstance(element, dict):
        if "text" in element and isinstance(element["text"], str):
            return element["text"]
        if element.get("type") == "user":
            return "@" + str(element.get("user_id", ""))
        if element.get("type") == "link":
            return str(element.get("text") or element.get("url", ""))
        return "".join(_rich_text(e) for e in element.get("elements", []))
    return ""


def render_blocks(
    blocks: Sequence[Mapping[str, Any]],
    *,
    users: Mapping[str, str] | None = None,
    channels: Mapping[str, str] | None = None,
) -> str:
    """Block Kit as plain text, one line per visual line: buttons as ``[Approve]``, dividers as a rule."""
    users = users or {}
    channels = channels or {}
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(_text_of(block.get("text"), users, channels))
        elif kind == "section":
            if block.get("text"):
                lines.extend(_text_of(block["text"], users, channels).splitlines())
            for item in block.get("fields") or []:
                lines.extend(_text_of(item, users, channels).splitlines())
            if block.get("accessory"):
                lines.append(_element_label(block["accessory"], users, channels))
        elif kind == "context":
            parts = []
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "image":
                    parts.append(_element_label(element, users, channels))
                else:
                    parts.append(_text_of(element, users, channels))
            lines.extend("  ".join(parts).splitlines())
        elif kind == "actions":
            lines.append(" ".join(_element_label(e, users, channels) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("─" * 24)
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "input":
            label = _text_of(block.get("label"), users, channels)
            lines.append(f"{label}: {_element_label(block.get('element'), users, channels)}")
        elif kind == "rich_text":
            lines.extend(_rich_text(block).splitlines())
        elif kind == "markdown":
            lines.extend(str(block.get("text", "")).splitlines())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Request parsing


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        fields[name] = raw if part.get_filename() else raw.decode("utf-8", "replace")
    return fields


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def _as_json(value: Any, error: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _SlackError(error) from exc
    return value


# ---------------------------------------------------------------------------------------------------


class SlackApiDouble:
    """A Slack workspace with one app installed, reachable as the Web API at ``api_url``.

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
        host: str = "127.0.0.1",
        port: int = 0,
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
        self._host = host
        self._port = port
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
        self._channels: dict[str, _Channel] = {}
        self._messages: dict[tuple[str, str], _Message] = {}
        self._order: dict[str, list[str]] = {}
        self._ephemerals: list[_Ephemeral] = []
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._views: dict[str, _View] = {}
        self._stacks: dict[str, list[str]] = {}
        self._home: dict[str, str] = {}
        self._uploads: dict[str, _Upload] = {}
        self._files: list[UploadedFile] = []
        self._calls: list[ApiCall] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._latency: dict[str | None, float] = {}
        self._last_ts_us = 0
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._add_bot_user()

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> SlackApiDouble:
        if self._server is not None:
            return self
        double = self

        class Handler(_Handler):
            owner = double

        server = _Server((self._host, self._port), Handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="slack-api-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SlackApiDouble:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Slack double is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """What to give ``WebClient(base_url=...)`` and ``BREAKGLASS_SLACK_API_URL``; ends with ``/api/``."""
        return f"{self.base_url}/api/"

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
    ) -> JsonDict:
        """Add (or replace) a member; returns the user object as ``users.info`` shows it to an admin."""
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
            "is_email_confirmed": not is_bot,
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
    ) -> None:
        """Add a channel; the bot is a member unless ``bot_is_member=False``."""
        with self._lock:
            self._channels[id] = _Channel(
                id=id,
                name=name.lstrip("#"),
                members=set(members),
                is_private=is_private,
                bot_is_member=bot_is_member,
                is_archived=is_archived,
                created=int(self.now()),
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
            message = _Message(channel=found.id, ts=self._next_ts(), text=text, blocks=[], user=user_id, bot_id=None)
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

    # -- fault injection ----------------------------------------------------------------------------

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP 429, ``Retry-After: retry_after``."""
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(times, "ratelimited", 429, retry_after))

    def fail(self, method: str, error: str = "internal_error", *, times: int = 1, status: int = 200) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}`` with ``status``."""
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(times, error, status))

    def latency(self, seconds: float, method: str | None = None) -> None:
        """Every call (of ``method``, or of any method) waits ``seconds`` of real time before answering."""
        with self._lock:
            self._latency[method] = seconds

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._latency.clear()

    # -- what Slack mints for the app (used by bot.standins.slack_events) ---------------------------

    def mint_trigger_id(self, user_id: str) -> str:
        """A trigger id as Slack puts in an interaction payload: good for one view, for 3 seconds."""
        with self._lock:
            self._counter += 1
            trigger_id = f"{int(self.now())}.{self._counter}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = _Trigger(user=user_id, issued_at=self.now())
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
            self._response_urls[key] = _ResponseUrl(
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
                message = _Message(
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
                self._views[new_id] = _View(new_id, user_id, stored, "response_action", "")
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
        body = (
            render_blocks(blocks, users=users, channels=channels) if blocks else _render_mrkdwn(text, users, channels)
        )
        ids = [str(f.get("id")) if isinstance(f, Mapping) else str(f) for f in files]
        attached = [f"[file: {file_names.get(f, f)}]" for f in ids]
        return "\n".join(part for part in [body, *attached] if part)

    def render_thread(self, channel: str, ts: str) -> str:
        """The root message and every reply, each with its UTC timestamp, for a printout."""
        root = self.message(channel, ts)
        if root is None:
            raise LookupError(f"no message {ts} in {channel}")
        name = self.channel_name(channel)
        stamp = _format_ts(ts, full=True)
        edited = f" (edited {len(root.edits)}×)" if root.edits else ""
        lines = [f"#{name} · {stamp}{edited}"]
        lines.extend("    " + line for line in self.render_text(root).splitlines())
        for reply in self.thread(channel, ts):
            body = self.render_text(reply).splitlines() or [""]
            lines.append(f"  ↳ {_format_ts(reply.ts)}  {body[0]}")
            lines.extend("      " + line for line in body[1:])
        return "\n".join(lines)

    # -- HTTP entry points (called by the handler threads) -------------------------------------------

    def _serve_api(self, method: str, headers: Mapping[str, str], query: str, body: bytes) -> _Answer:
        params: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
        warnings: list[str] = []
        content_type = headers.get("content-type", "")
        token: str | None = None
        body_token: Any = None
        refusal: _SlackError | None = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        token_in_header = token is not None
        try:
            if body:
                if content_type.startswith("application/json"):
                    if "charset" not in content_type:
                        warnings.append("missing_charset")
                    parsed = json.loads(body)
                    if not isinstance(parsed, dict):
                        raise _SlackError("invalid_json")
                    body_token = parsed.pop("token", None)  # Slack does not read a token from a JSON body
                    params.update(parsed)
                elif content_type.startswith("application/x-www-form-urlencoded"):
                    params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                elif content_type.startswith("multipart/form-data"):
                    params.update(_parse_multipart(content_type, body))
                else:
                    raise _SlackError("invalid_post_type")
            if token is None and isinstance(params.get("token"), str):
                token = params["token"]
        except ValueError:
            refusal = _SlackError("invalid_json")
        except _SlackError as caught:
            refusal = caught
        if "token" in params or body_token is not None:
            params["token"] = "[redacted]"  # noqa: S105 - the record never keeps a credential
        if refusal is not None:
            return self._finish(method, params, "none", refusal, None)

        if method not in _METHOD_SCOPES:
            return self._finish(method, params, "none", _SlackError("unknown_method", req_method=method), None)
        caller, kind = self._authenticate(token)
        if caller is None:
            error = {"none": "not_authed", "revoked": "token_revoked"}.get(kind, "invalid_auth")
            return self._finish(method, params, kind, _SlackError(error), None)
        if (method == "apps.connections.open") != (caller.kind == "app"):
            # An app-level token opens Socket Mode connections and nothing else; no other token may.
            return self._finish(method, params, kind, _SlackError("not_allowed_token_type"), caller)
        if caller.kind == "app" and not token_in_header:
            # Slack's reference: for this method the token must come in the Authorization header.
            return self._finish(method, params, kind, _SlackError("invalid_auth"), None)

        delay = self._delay_for(method)
        if delay > 0:
            time.sleep(delay)  # outside the lock: a slow Slack must not stall the other HTTP threads
        with self._lock:
            fault = self._take_fault(method)
            if fault is not None:
                headers_out = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                injected = _SlackError(fault.error, status=fault.status)
                return self._finish(method, params, kind, injected, caller, headers_out)
            accepted = _METHOD_SCOPES[method]
            if accepted and not set(accepted) & set(caller.scopes):
                unscoped = _SlackError("missing_scope", needed=accepted[0], provided=",".join(caller.scopes))
                return self._finish(method, params, kind, unscoped, caller)
            handler = getattr(self, "_m_" + method.replace(".", "_"))
            try:
                result = handler(params, caller)
            except _SlackError as refused:
                return self._finish(method, params, kind, refused, caller)
            if warnings:
                result["warning"] = ",".join(warnings)
                result.setdefault("response_metadata", {})["warnings"] = warnings
            return self._finish(method, params, kind, result, caller)

    def _finish(
        self,
        method: str,
        params: JsonDict,
        kind: str,
        outcome: JsonDict | _SlackError,
        caller: _Caller | None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        headers = dict(extra_headers or {})
        if caller is not None:
            headers["x-oauth-scopes"] = ",".join(caller.scopes)
            headers["x-accepted-oauth-scopes"] = ",".join(_METHOD_SCOPES.get(method, ()))
        if isinstance(outcome, _SlackError):
            status, body = outcome.status, {"ok": False, "error": outcome.error, **outcome.extra}
        else:
            status, body = 200, {"ok": True, **outcome}
        with self._lock:
            self._calls.append(
                ApiCall(
                    method=method,
                    params=copy.deepcopy(params),
                    token_kind=kind,
                    status=status,
                    ok=bool(body["ok"]),
                    error=None if body["ok"] else str(body["error"]),
                    at=self.now(),
                )
            )
        return _Answer(status, body, headers)

    def _serve_upload(self, key: str, body: bytes) -> _Answer:
        with self._lock:
            upload = self._uploads.get(key)
            if upload is None or upload.completed:
                return _Answer(404, b"Not Found")
            upload.content = body
            return _Answer(200, f"OK - {len(body)}".encode())

    def _serve_response_url(self, key: str, body: bytes) -> _Answer:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return _Answer(400, {"ok": False, "error": "invalid_payload"})
        if not isinstance(payload, dict):
            return _Answer(400, {"ok": False, "error": "invalid_payload"})
        with self._lock:
            hook = self._response_urls.get(key)
            if hook is None or self.now() - hook.issued_at > RESPONSE_URL_LIFETIME_SECONDS:
                return _Answer(404, {"ok": False, "error": "expired_url"})
            if hook.uses >= RESPONSE_URL_USES:
                return _Answer(404, {"ok": False, "error": "used_url"})
            hook.uses += 1
            try:
                self._respond(hook, payload)
            except _SlackError as refusal:
                return _Answer(400, {"ok": False, "error": refusal.error, **refusal.extra})
            return _Answer(200, {"ok": True})

    def _respond(self, hook: _ResponseUrl, payload: JsonDict) -> None:
        original = None
        if hook.message_ts is not None and not hook.message_is_ephemeral:
            original = self._messages.get((hook.channel, hook.message_ts))
        original_ephemeral = None
        if hook.message_ts is not None and hook.message_is_ephemeral:
            original_ephemeral = next(
                (e for e in self._ephemerals if e.message_ts == hook.message_ts and e.user == hook.user), None
            )
        if _as_bool(payload.get("delete_original", False)):
            if original is not None:
                original.deleted = True
            if original_ephemeral is not None:
                original_ephemeral.deleted = True
            return
        text, blocks = self._content(payload, require=True)
        if _as_bool(payload.get("replace_original", False)):
            if original is not None:
                original.edits.append(MessageVersion(original.text, tuple(original.blocks), self._next_ts()))
                original.text, original.blocks = text, blocks
                return
            if original_ephemeral is not None:
                original_ephemeral.edits.append(
                    MessageVersion(original_ephemeral.text, tuple(original_ephemeral.blocks), self._next_ts())
                )
                original_ephemeral.text, original_ephemeral.blocks = text, blocks
                return
        thread_ts = payload.get("thread_ts")
        if payload.get("response_type") == "in_channel":
            message = _Message(
                channel=hook.channel,
                ts=self._next_ts(),
                text=text,
                blocks=blocks,
                user=self.bot_user_id,
                bot_id=self.bot_id,
            )
            self._place(message, thread_ts if isinstance(thread_ts, str) else None)
        else:
            self._add_ephemeral(
                hook.user, hook.channel, text, blocks, "response_url", thread_ts if isinstance(thread_ts, str) else None
            )

    # -- Web API methods ----------------------------------------------------------------------------

    def _m_auth_test(self, params: JsonDict, caller: _Caller) -> JsonDict:
        result: JsonDict = {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": "breakglass" if caller.kind == "bot" else self.user_name(self.admin_user_id),
            "team_id": self.team_id,
            "user_id": self.bot_user_id if caller.kind == "bot" else self.admin_user_id,
            "is_enterprise_install": False,
        }
        if caller.kind == "bot":
            result["bot_id"] = self.bot_id
        if self.enterprise_id:
            result["enterprise_id"] = self.enterprise_id
        return result

    def _m_apps_permissions_info(self, params: JsonDict, caller: _Caller) -> JsonDict:
        empty: JsonDict = {"scopes": [], "resources": {"ids": []}}
        return {
            "info": {
                "team": {"scopes": list(caller.scopes), "resources": {"ids": [], "excluded_ids": []}},
                "app_home": copy.deepcopy(empty),
                "channel": copy.deepcopy(empty),
                "group": copy.deepcopy(empty),
                "im": copy.deepcopy(empty),
                "mpim": copy.deepcopy(empty),
            }
        }

    def _m_apps_connections_open(self, params: JsonDict, caller: _Caller) -> JsonDict:
        if self._socket_mode is None:
            # Slack does not document its answer for an app with Socket Mode off; access_denied is
            # the nearest error its reference lists for this method.
            raise _SlackError("access_denied")
        return {"url": self._socket_mode(self.app_id)}

    def _m_chat_postMessage(self, params: JsonDict, caller: _Caller) -> JsonDict:
        channel = self._postable_channel(params.get("channel"), caller)
        text, blocks = self._content(params, require=True)
        message = _Message(
            channel=channel.id,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            user=self.bot_user_id,
            bot_id=self.bot_id,
            reply_broadcast=_as_bool(params.get("reply_broadcast", False)),
            metadata=_as_json(params["metadata"], "invalid_metadata_format") if params.get("metadata") else None,
            attachments=self._attachments(params),
        )
        thread_ts = params.get("thread_ts")
        self._place(message, str(thread_ts) if thread_ts not in (None, "") else None)
        return {"channel": channel.id, "ts": message.ts, "message": self._message_json(message)}

    def _m_chat_update(self, params: JsonDict, caller: _Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        ts = str(params.get("ts") or "")
        found = self._messages.get((channel.id, ts))
        if found is None or found.deleted:
            raise _SlackError("message_not_found")
        if found.bot_id != self.bot_id:
            raise _SlackError("cant_update_message")
        # Slack keeps the previous blocks (and text) when the update leaves them out; [] removes blocks.
        text = params["text"] if params.get("text") is not None else None
        blocks = params["blocks"] if "blocks" in params and params["blocks"] is not None else None
        merged: JsonDict = {
            "text": found.text if text is None else text,
            "blocks": found.blocks if blocks is None else blocks,
        }
        if params.get("markdown_text") is not None:
            merged["markdown_text"] = params["markdown_text"]
        new_text, new_blocks = self._content(merged, require=True)
        found.edits.append(MessageVersion(found.text, tuple(copy.deepcopy(found.blocks)), self._next_ts()))
        found.text, found.blocks = new_text, new_blocks
        if params.get("attachments") is not None:
            found.attachments = self._attachments(params)
        return {"channel": channel.id, "ts": ts, "text": found.text, "message": self._message_json(found)}

    def _m_chat_delete(self, params: JsonDict, caller: _Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        ts = str(params.get("ts") or "")
        found = self._messages.get((channel.id, ts))
        if found is None or found.deleted:
            raise _SlackError("message_not_found")
        if found.bot_id != self.bot_id:
            raise _SlackError("cant_delete_message")
        found.deleted = True
        return {"channel": channel.id, "ts": ts}

    def _m_chat_postEphemeral(self, params: JsonDict, caller: _Caller) -> JsonDict:
        user = str(params.get("user") or "")
        raw = params.get("channel")
        if isinstance(raw, str) and raw[:1] in ("U", "W"):
            raise _SlackError("channel_not_found")
        channel = self._visible_channel(raw)
        if channel.is_archived:
            raise _SlackError("is_archived")
        if not channel.bot_is_member:
            raise _SlackError("not_in_channel")
        if user not in self._users:
            raise _SlackError("user_not_found")
        if user not in channel.members:
            raise _SlackError("user_not_in_channel")
        text, blocks = self._content(params, require=True)
        thread_ts = params.get("thread_ts")
        entry = self._add_ephemeral(
            user, channel.id, text, blocks, "chat.postEphemeral", str(thread_ts) if thread_ts else None
        )
        return {"message_ts": entry.message_ts}

    def _m_chat_getPermalink(self, params: JsonDict, caller: _Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        ts = str(params.get("message_ts") or "")
        found = self._messages.get((channel.id, ts))
        if found is None or found.deleted:
            raise _SlackError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        if found.thread_ts and found.thread_ts != found.ts:
            link += f"?thread_ts={found.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _m_conversations_open(self, params: JsonDict, caller: _Caller) -> JsonDict:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if params.get("channel"):
            channel = self._visible_channel(params["channel"])
            return {"channel": {"id": channel.id}}
        if not users:
            raise _SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise _SlackError(
                "internal_error", response_metadata={"messages": ["group DMs are not modelled by the double"]}
            )
        if users[0] not in self._users:
            raise _SlackError("user_not_found")
        if self._users[users[0]]["is_bot"]:
            raise _SlackError("cannot_dm_bot")
        existed = self.dm_channel_id(users[0]) in self._channels
        channel = self._open_dm(users[0])
        result: JsonDict = {"channel": {"id": channel.id}}
        if existed:
            result.update(no_op=True, already_open=True)
        if _as_bool(params.get("return_im", False)):
            result["channel"] = self._channel_json(channel)
        return result

    def _m_conversations_info(self, params: JsonDict, caller: _Caller) -> JsonDict:
        channel = self._visible_channel(params.get("channel"))
        needed = "im:read" if channel.is_im else "groups:read" if channel.is_private else "channels:read"
        if needed not in caller.scopes:
            raise _SlackError("missing_scope", needed=needed, provided=",".join(caller.scopes))
        return {"channel": self._channel_json(channel)}

    def _m_users_info(self, params: JsonDict, caller: _Caller) -> JsonDict:
        user = str(params.get("user") or "")
        if user not in self._users:
            raise _SlackError("user_not_found")
        shown = self._user_view(user, admin=caller.kind == "admin", scopes=caller.scopes)
        if _as_bool(params.get("include_locale", False)):
            shown["locale"] = "en-US"
        return {"user": shown}

    def _m_views_open(self, params: JsonDict, caller: _Caller) -> JsonDict:
        trigger = self._exchange_trigger(params)
        view = self._checked_view(params.get("view"), "modal")
        view_id = self._new_view_id()
        stored = self._stored_view(view, view_id, trigger.user, view_id)
        self._views[view_id] = _View(view_id, trigger.user, stored, "views.open", str(params["trigger_id"]))
        for old in self._stacks.get(trigger.user, []):
            self._views[old].is_open = False
        self._stacks[trigger.user] = [view_id]
        return {"view": copy.deepcopy(stored)}

    def _m_views_push(self, params: JsonDict, caller: _Caller) -> JsonDict:
        trigger = self._exchange_trigger(params)
        view = self._checked_view(params.get("view"), "modal")
        stack = self._stacks.setdefault(trigger.user, [])
        if len(stack) >= VIEW_STACK_LIMIT:
            raise _SlackError("push_limit_reached")
        view_id = self._new_view_id()
        stored = self._stored_view(view, view_id, trigger.user, stack[0] if stack else view_id)
        stored["previous_view_id"] = stack[-1] if stack else None
        self._views[view_id] = _View(view_id, trigger.user, stored, "views.push", str(params["trigger_id"]))
        stack.append(view_id)
        return {"view": copy.deepcopy(stored)}

    def _m_views_update(self, params: JsonDict, caller: _Caller) -> JsonDict:
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        found: _View | None = None
        if view_id:
            found = self._views.get(str(view_id))
        elif external_id:
            found = next((v for v in self._views.values() if v.view.get("external_id") == external_id), None)
        else:
            raise _refusal("invalid_arguments", ["missing required field: view_id"])
        if found is None:
            raise _SlackError("not_found")
        if params.get("hash") and params["hash"] != found.view.get("hash"):
            raise _SlackError("hash_conflict")
        view = self._checked_view(params.get("view"), str(found.view.get("type")))
        found.view = self._stored_view(view, found.id, found.user, found.view.get("root_view_id"))
        return {"view": copy.deepcopy(found.view)}

    def _m_views_publish(self, params: JsonDict, caller: _Caller) -> JsonDict:
        user = str(params.get("user_id") or "")
        if user not in self._users:
            raise _SlackError("user_not_found")
        view = self._checked_view(params.get("view"), "home")
        view_id = self._home.get(user)
        if view_id is not None and params.get("hash") and params["hash"] != self._views[view_id].view.get("hash"):
            raise _SlackError("hash_conflict")
        if view_id is None:
            view_id = self._new_view_id()
        stored = self._stored_view(view, view_id, user, None)
        self._views[view_id] = _View(view_id, user, stored, "views.publish", "")
        self._home[user] = view_id
        return {"view": copy.deepcopy(stored)}

    def _m_files_getUploadURLExternal(self, params: JsonDict, caller: _Caller) -> JsonDict:
        name = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except (TypeError, ValueError) as exc:
            raise _refusal("invalid_arguments", ["missing required field: length"]) from exc
        if not name:
            raise _refusal("invalid_arguments", ["missing required field: filename"])
        self._counter += 1
        file_id = f"F{self._counter:010d}"
        key = secrets.token_urlsafe(18)
        self._uploads[key] = _Upload(id=file_id, name=str(name), length=length)
        return {"upload_url": f"{self.base_url}/upload/v1/{key}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, params: JsonDict, caller: _Caller) -> JsonDict:
        entries = _as_json(params.get("files"), "invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise _refusal("invalid_arguments", ["missing required field: files"])
        by_id = {u.id: u for u in self._uploads.values()}
        uploads: list[tuple[_Upload, str]] = []
        for entry in entries:
            upload = by_id.get(str(entry.get("id"))) if isinstance(entry, dict) else None
            if upload is None or upload.completed or upload.content is None:
                raise _SlackError("file_not_found")
            uploads.append((upload, str(entry.get("title") or upload.name)))
        channel_ids = [c for c in str(params.get("channels") or "").split(",") if c]
        if params.get("channel_id"):
            channel_ids.insert(0, str(params["channel_id"]))
        channels = [self._postable_channel(c, caller) for c in channel_ids]
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        comment = str(params["initial_comment"]) if params.get("initial_comment") else None
        if comment is not None and len(comment) > MESSAGE_TEXT_LIMIT:
            raise _SlackError("msg_too_long")
        shared = []
        for upload, title in uploads:
            upload.completed = True
            shared.append(
                {
                    "id": upload.id,
                    "name": upload.name,
                    "title": title,
                    "size": len(upload.content or b""),
                    "created": int(self.now()),
                    "user": self.bot_user_id,
                    "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{upload.id}",
                }
            )
        destinations: list[_Channel | None] = list(channels) or [None]
        for channel in destinations:
            for upload, title in uploads:
                self._files.append(
                    UploadedFile(
                        id=upload.id,
                        name=upload.name,
                        title=title,
                        content=upload.content or b"",
                        channel=channel.id if channel else None,
                        thread_ts=thread_ts,
                        initial_comment=comment,
                        user=self.bot_user_id,
                    )
                )
            if channel is not None:
                message = _Message(
                    channel=channel.id,
                    ts=self._next_ts(),
                    text=comment or "",
                    blocks=[],
                    user=self.bot_user_id,
                    bot_id=self.bot_id,
                    files=[u.id for u, _ in uploads],
                )
                self._place(message, thread_ts)
        return {"files": shared}

    # -- helpers (all called with the lock held) ------------------------------------------------------

    def _authenticate(self, token: str | None) -> tuple[_Caller | None, str]:
        with self._lock:
            if not token:
                return None, "none"
            if token in self._revoked:
                return None, "revoked"
            if token in self.bot_tokens:
                return _Caller("bot", self._scopes), "bot"
            if self.admin_token is not None and token == self.admin_token:
                return _Caller("admin", self._admin_scopes), "admin"
            if token in self.app_tokens:
                return _Caller("app", self._app_scopes), "app"
            return None, "unknown"

    def _delay_for(self, method: str) -> float:
        with self._lock:
            return self._latency.get(method, self._latency.get(None, 0.0))

    def _take_fault(self, method: str) -> _Fault | None:
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

    def _channel(self, channel: str) -> _Channel:
        found = self._channels.get(self._channel_id_for(channel))
        if found is None:
            if channel[:1] in ("U", "W") and channel in self._users:
                return self._open_dm(channel)
            raise KeyError(channel)
        return found

    def _open_dm(self, user: str) -> _Channel:
        channel_id = self.dm_channel_id(user)
        found = self._channels.get(channel_id)
        if found is None:
            found = _Channel(
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

    def _visible_channel(self, raw: Any) -> _Channel:
        """The conversation ``raw`` names, as the bot can see it; private ones it is not in stay hidden."""
        if not isinstance(raw, str) or not raw:
            raise _SlackError("channel_not_found")
        if raw[:1] in ("U", "W"):
            user = self._users.get(raw)
            if user is None or user["deleted"]:
                raise _SlackError("channel_not_found")
            if user["is_bot"]:
                raise _SlackError("cannot_dm_bot")
            return self._open_dm(raw)
        if raw.startswith("#") or not raw[:1].isupper():
            name = raw.lstrip("#")
            raw = next((c.id for c in self._channels.values() if c.name == name and not c.is_im), raw)
        found = self._channels.get(raw)
        if found is None or (found.is_private and not found.is_im and not found.bot_is_member):
            raise _SlackError("channel_not_found")
        return found

    def _postable_channel(self, raw: Any, caller: _Caller) -> _Channel:
        channel = self._visible_channel(raw)
        if channel.is_archived:
            raise _SlackError("is_archived")
        may_post_uninvited = not channel.is_private and "chat:write.public" in caller.scopes
        if not channel.bot_is_member and not channel.is_im and not may_post_uninvited:
            raise _SlackError("not_in_channel")
        return channel

    def _attachments(self, params: JsonDict) -> list[JsonDict]:
        raw = params.get("attachments")
        if raw in (None, ""):
            return []
        parsed = _as_json(raw, "invalid_attachments")
        if not isinstance(parsed, list):
            raise _SlackError("invalid_attachments")
        if len(parsed) > ATTACHMENTS_LIMIT:
            raise _SlackError("too_many_attachments")
        return parsed

    def _content(self, params: Mapping[str, Any], *, require: bool) -> tuple[str, list[JsonDict]]:
        """The message's text and blocks, refused as Slack refuses them."""
        text = params.get("text")
        text = "" if text is None else str(text)
        markdown_text = params.get("markdown_text")
        raw_blocks = params.get("blocks")
        blocks: list[JsonDict] = []
        if raw_blocks not in (None, ""):
            parsed = _as_json(raw_blocks, "invalid_blocks_format")
            if not isinstance(parsed, list):
                raise _SlackError("invalid_blocks_format")
            problems = block_problems(parsed)
            if problems:
                raise _refusal("invalid_blocks", problems)
            blocks = parsed
        if markdown_text is not None:
            if text or blocks:
                raise _SlackError("markdown_text_conflict")
            if len(str(markdown_text)) > MARKDOWN_TEXT_LIMIT:
                raise _SlackError("msg_too_long")
            text = str(markdown_text)
        if len(text) > MESSAGE_TEXT_LIMIT:
            raise _SlackError("msg_too_long")
        if require and not text.strip() and not blocks and not params.get("attachments"):
            raise _SlackError("no_text")
        return text, blocks

    def _place(self, message: _Message, thread_ts: str | None) -> None:
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
    ) -> _Ephemeral:
        entry = _Ephemeral(
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

    def _message_json(self, message: _Message) -> JsonDict:
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

    def _channel_json(self, channel: _Channel) -> JsonDict:
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
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": channel.bot_is_member,
            "created": channel.created,
            "creator": "",
            "name_normalized": channel.name,
            "context_team_id": self.team_id,
        }

    def _exchange_trigger(self, params: JsonDict) -> _Trigger:
        trigger_id = params.get("trigger_id")
        if not trigger_id:
            raise _refusal("invalid_arguments", ["missing required field: trigger_id"])
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise _SlackError("invalid_trigger_id")
        if trigger.used:
            raise _SlackError("exchanged_trigger_id")
        if self.now() - trigger.issued_at > TRIGGER_LIFETIME_SECONDS:
            raise _SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _checked_view(self, raw: Any, expected_type: str) -> JsonDict:
        if raw is None or raw == "":
            raise _refusal("invalid_arguments", ["missing required field: view"])
        view = _as_json(raw, "invalid_arguments")
        if len(json.dumps(view)) > VIEW_SIZE_LIMIT:
            raise _SlackError("view_too_large")
        problems = view_problems(view, expected_type=expected_type)
        if problems:
            raise _refusal(
                "invalid_arguments", problems, lead="failed to match all allowed schemas [json-pointer:/view]"
            )
        if not isinstance(view, dict):  # view_problems already refused anything else
            raise _SlackError("invalid_arguments")
        external_id = view.get("external_id")
        if external_id and any(v.view.get("external_id") == external_id for v in self._views.values()):
            raise _SlackError("duplicate_external_id")
        return view

    def _stored_view(self, view: JsonDict, view_id: str, user: str, root_view_id: Any) -> JsonDict:
        stored = copy.deepcopy(view)
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


def _format_ts(ts: str, *, full: bool = False) -> str:
    at = datetime.fromtimestamp(float(ts), UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC" if full else "%H:%M:%S")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when workers post at once, and the client then waits
    # a full second to retry: a slowness real Slack does not have.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    """Routes ``/api/<method>``, ``/upload/v1/<key>`` and ``/response/<key>`` to the owning double."""

    owner: SlackApiDouble
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes; do not let Nagle hold the second

    def do_POST(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the record (``calls()``) is the log."""

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = parts.path
        if path.startswith("/api/"):
            answer = self.owner._serve_api(path[len("/api/") :], headers, parts.query, body)
        elif path.startswith("/upload/v1/") and self.command == "POST":
            answer = self.owner._serve_upload(path[len("/upload/v1/") :], body)
        elif path.startswith("/response/") and self.command == "POST":
            answer = self.owner._serve_response_url(path[len("/response/") :], body)
        else:
            answer = _Answer(404, b"Not Found")
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        if isinstance(answer.body, bytes):
            payload, content_type = answer.body, "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(answer.body).encode(), "application/json; charset=utf-8"
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-slack-req-id", secrets.token_hex(16))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _iter_buttons(blocks: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str | None, JsonDict]]:
    """Every button in ``blocks`` with the ``block_id`` of the block that holds it."""
    for block in blocks:
        block_id = block.get("block_id")
        if block.get("type") == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "button":
                    yield block_id, element
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "button":
            yield block_id, accessory


def find_button(
    blocks: Iterable[Mapping[str, Any]], action_id: str, value: str | None = None
) -> tuple[str | None, JsonDict] | None:
    """The first button with ``action_id`` (and ``value``, if given) in ``blocks``, with its block id."""
    for block_id, button in _iter_buttons(blocks):
        if button.get("action_id") == action_id and (value is None or button.get("value") == value):
            return block_id, button
    return None
