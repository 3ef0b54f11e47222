"""The Slack Web API as the rest of breakglass sees it: a few typed calls, and our own errors.

``make_web_client`` builds slack_sdk's ``WebClient`` against ``BREAKGLASS_SLACK_API_URL`` with retry
handlers: a dropped connection is retried, and a 429 is retried after the ``Retry-After`` Slack names
(when that wait is short enough to spend in-process; a longer one becomes a ``TemporaryError`` whose
``delay`` tells RQ when to try again). ``SlackApi`` wraps the handful of methods breakglass calls and
translates every slack_sdk or connection exception at this boundary (``translate``): nothing above
this module catches slack_sdk's exceptions, and nothing here swallows one.

Tokens stay in ``SecretStr`` until the one line that hands them to the client; no error message built
here contains a token (Slack's error codes and the method name only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.metrics import count_error
from bot.ports import BreakglassError, PermanentError, TemporaryError

log = logging.getLogger(__name__)

# The bot token's scopes: exactly what the methods below need (deploy/slack/manifest.yaml is tested
# against this). chat.postMessage/update -> chat:write; conversations.open -> im:write;
# conversations.info of a public/private channel -> channels:read/groups:read; users.info ->
# users:read (and its email, compared with the identity provider's for mfa: oidc, users:read.email,
# which also lets users.lookupByEmail match an Okta group's members to people);
# usergroups.users.list -> usergroups:read; files.getUploadURLExternal/completeUploadExternal -> files:write; the slash command ->
# commands. views.*, chat.getPermalink and auth.test need none.
REQUIRED_SCOPES: tuple[str, ...] = (
    "channels:read",
    "chat:write",
    "commands",
    "files:write",
    "groups:read",
    "im:write",
    "users:read",
    "users:read.email",
    "usergroups:read",
)
# SLACK_ADMIN_TOKEN (a workspace admin's user token) is only ever used for users.info.
ADMIN_SCOPES: tuple[str, ...] = ("users:read",)

TIMEOUT_SECONDS = 10
CONNECTION_RETRIES = 2
RATE_LIMIT_RETRIES = 1
# A Retry-After longer than this is not slept through in-process: a worker runs one job at a time,
# and a publish job sleeping through Slack's rate limit would hold up the revokes queued behind it.
# A longer wait becomes a TemporaryError with that delay, and RQ retries the job later.
LONGEST_IN_PROCESS_WAIT = 3.0

# Slack error codes that mean "Slack is having trouble", not "you asked for something wrong".
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "service_unavailable", "fatal_error", "request_timeout", "timeout"}
)


class SlackError(PermanentError):
    """Slack refused the call and retrying will not help (``error`` is Slack's code, e.g. not_in_channel)."""

    def __init__(self, message: str, error: str, method: str = "") -> None:
        super().__init__(message)
        self.error = error
        self.method = method


class SlackUnavailable(TemporaryError):
    """Slack could not be reached, timed out, answered 5xx, or rate-limited us: worth retrying."""

    def __init__(self, message: str, error: str, method: str = "", delay: float = 1.0) -> None:
        super().__init__(message, delay=delay)
        self.error = error
        self.method = method


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                return None
    return None


class RetryAfterHandler(RateLimitErrorRetryHandler):
    """slack_sdk's rate-limit handler, waiting exactly the ``Retry-After`` Slack names, through an
    injectable ``sleep``, and only when that wait is short (see ``LONGEST_IN_PROCESS_WAIT``)."""

    def __init__(
        self,
        max_retry_count: int = RATE_LIMIT_RETRIES,
        longest_wait: float = LONGEST_IN_PROCESS_WAIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.longest_wait = longest_wait
        self.sleep = sleep

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(response.headers)
        return wait is None or wait <= self.longest_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = _retry_after(response.headers if response is not None else None)
        state.next_attempt_requested = True
        # slack_sdk's own line for this is off with its debug lines (``sdk_logger``).
        method = request.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        log.info("Slack rate-limited %s; trying again in %g s", method, 1.0 if wait is None else wait)
        self.sleep(1.0 if wait is None else wait)
        state.increment_current_attempt()


def sdk_logger() -> logging.Logger:
    """The logger our ``WebClient``s write to, its level set to INFO. slack_sdk asks its logger's own
    level, not the effective one, before building each debug line (the whole request body, a
    requester's reason included, and Slack's whole answer): with the level unset it built them on
    every call for logging to drop, a tenth of a millisecond of the web process's CPU per request form
    opened. Its INFO lines that are not debug lines in disguise, and its warnings, pass as before."""
    logger = logging.getLogger("bot.slack.sdk")
    logger.setLevel(logging.INFO)
    return logger


def make_web_client(
    token: SecretStr,
    base_url: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    timeout: int = TIMEOUT_SECONDS,
) -> WebClient:
    """A ``WebClient`` for ``base_url`` (Slack, or the local double) that retries 429s and dropped
    connections. ``sleep`` is injectable so tests do not wait out a Retry-After."""
    return WebClient(
        token=token.get_secret_value(),
        base_url=base_url,
        timeout=timeout,
        logger=sdk_logger(),
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
            RetryAfterHandler(sleep=sleep),
        ],
    )


def _method_of(exc: SlackApiError) -> str:
    url = getattr(exc.response, "api_url", "") or ""
    return str(url).rstrip("/").rsplit("/", 1)[-1]


def translate(exc: BaseException) -> BreakglassError:
    """Our error for a slack_sdk or connection exception: ``SlackUnavailable`` (retry) or ``SlackError``."""
    if isinstance(exc, BreakglassError):
        return exc
    if isinstance(exc, SlackApiError):
        method = _method_of(exc)
        status = int(getattr(exc.response, "status_code", 200) or 200)
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or (f"http_{status}" if status != 200 else "unknown_error"))
        if status == 429 or error == "ratelimited":
            delay = _retry_after(exc.response.headers) or 1.0
            return SlackUnavailable(f"Slack rate-limited {method}; retry in {delay:g}s", "ratelimited", method, delay)
        if status >= 500 or error in _TRANSIENT_ERRORS:
            return SlackUnavailable(f"Slack answered {error} to {method}", error, method)
        needed = data.get("needed")
        extra = f" (needs scope {needed})" if needed else ""
        return SlackError(f"Slack refused {method}: {error}{extra}", error, method)
    if isinstance(exc, TimeoutError):
        return SlackUnavailable("Slack did not answer in time", "timeout")
    if isinstance(exc, OSError):  # URLError, connection refused or reset
        return SlackUnavailable(f"Slack could not be reached: {type(exc).__name__}", "unreachable")
    if isinstance(exc, SlackClientError):
        # SlackRequestError (a failed file upload step) and friends: Slack's side, worth another try.
        return SlackUnavailable(f"the Slack client failed: {type(exc).__name__}", "client_error")
    raise TypeError(f"not a Slack error: {type(exc).__name__}") from exc


@contextmanager
def translated(expected: Collection[str] = ()) -> Iterator[None]:
    """Turn slack_sdk and connection exceptions raised inside into ours (``raise ... from``), and
    count them as API errors, except the error codes in ``expected``: answers the caller asked for
    and absorbs (a guarded ``views.update``'s ``hash_conflict``), which are routine, not trouble."""
    try:
        yield
    except (SlackClientError, OSError) as exc:
        error = translate(exc)
        kind = getattr(error, "error", type(error).__name__)
        if kind not in expected:
            count_error("slack", kind)
        raise error from exc


class SlackApi:
    """The Web API methods breakglass calls, with plain arguments and translated errors."""

    def __init__(self, web: WebClient) -> None:
        self.web = web

    @classmethod
    def connect(cls, token: SecretStr, base_url: str, *, sleep: Callable[[float], None] = time.sleep) -> SlackApi:
        return cls(make_web_client(token, base_url, sleep=sleep))

    def auth_test(self) -> dict[str, Any]:
        with translated():
            data = self.web.auth_test().data
        return dict(data) if isinstance(data, dict) else {}

    def post_message(
        self, channel: str, text: str, blocks: Sequence[Mapping[str, Any]] | None = None, thread_ts: str | None = None
    ) -> str:
        """Post and return the message's ts. Link previews are off: nothing a person typed unfurls."""
        with translated():
            response = self.web.chat_postMessage(
                channel=channel,
                text=text,
                blocks=[dict(b) for b in blocks] if blocks else None,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        return str(response["ts"])

    def update_message(self, channel: str, ts: str, text: str, blocks: Sequence[Mapping[str, Any]]) -> None:
        with translated():
            self.web.chat_update(channel=channel, ts=ts, text=text, blocks=[dict(b) for b in blocks])

    def permalink(self, channel: str, ts: str) -> str:
        with translated():
            return str(self.web.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])

    def open_dm(self, user: str) -> str:
        with translated():
            return str(self.web.conversations_open(users=user)["channel"]["id"])

    def conversation_info(self, channel: str) -> dict[str, Any]:
        with translated():
            return dict(self.web.conversations_info(channel=channel)["channel"])

    def user_info(self, user: str) -> dict[str, Any]:
        with translated():
            return dict(self.web.users_info(user=user)["user"])

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        """``users.lookupByEmail``: the member with this email, or None when Slack has none."""
        try:
            with translated(expected=("users_not_found",)):
                return dict(self.web.users_lookupByEmail(email=email)["user"])
        except SlackError as exc:
            if exc.error == "users_not_found":
                return None
            raise

    def usergroup_members(self, usergroup: str) -> list[str]:
        """The user ids in a Slack user group (``usergroups.users.list``: one page, no cursor)."""
        with translated():
            return [str(u) for u in self.web.usergroups_users_list(usergroup=usergroup)["users"]]

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> str:
        with translated():
            return str(self.web.views_open(trigger_id=trigger_id, view=dict(view))["view"]["id"])

    def update_view(self, view_id: str, view: Mapping[str, Any], view_hash: str | None = None) -> str:
        """Replace the open view ``view_id``; with ``view_hash``, only if it is still that version
        (Slack answers ``hash_conflict`` otherwise). Returns the new version's hash."""
        # A guard is asked for in order to hear hash_conflict: every caller with a hash absorbs it.
        with translated(expected=("hash_conflict",) if view_hash else ()):
            response = self.web.views_update(view_id=view_id, view=dict(view), hash=view_hash)
        return str(response["view"].get("hash") or "")

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        with translated():
            self.web.views_publish(user_id=user, view=dict(view))

    def delete_file(self, file_id: str) -> bool:
        """Delete a file this bot uploaded; False when it was gone already."""
        with translated(expected=("file_not_found", "file_deleted")):
            try:
                self.web.files_delete(file=file_id)
            except SlackApiError as exc:
                if exc.response.get("error") in ("file_not_found", "file_deleted"):
                    return False
                raise
        return True

    def upload_file(
        self, channel: str, content: str, filename: str, title: str, initial_comment: str | None = None
    ) -> str:
        """Upload ``content`` as a file shared in ``channel`` (files_upload_v2); returns the file id."""
        with translated():
            response = self.web.files_upload_v2(
                channel=channel, content=content, filename=filename, title=title, initial_comment=initial_comment
            )
        return str(response["file"]["id"])
