"""A local Slack Web API that answers like Slack, over real HTTP, for the tests and ``breakglass demo``.

Split as the Kubernetes double is: ``blockkit`` (Slack's limits and Block Kit refusals), ``rendering``
(blocks as a person reads them), ``workspace`` (the state and what the tests read), ``methods`` (the
Web API methods and their HTTP entry points) and ``server`` (``SlackApiDouble`` behind HTTP).

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
  any HTTP status), ``latency``, ``hold`` (calls wait unanswered until released).

What it does not model: Slack's per-method rate-limit tiers (only injected 429s), pagination, group DMs
and shared channels, message attachments beyond storing them, rich-text and markdown block internals,
Slack's exact wording for a few refusals nobody documents (duplicate ``block_id``, a missing ``submit``
with input blocks), the exact HTTP answer of an expired response URL, OAuth installs, token rotation,
and events Slack would send on its own (``message`` events and the like).
"""

from bot.standins.slack.blockkit import JsonDict, block_problems, view_problems
from bot.standins.slack.rendering import find_button, render_blocks
from bot.standins.slack.server import SlackApiDouble
from bot.standins.slack.workspace import (
    DEFAULT_ADMIN_SCOPES,
    DEFAULT_APP_SCOPES,
    DEFAULT_APP_TOKEN,
    DEFAULT_BOT_SCOPES,
    DEFAULT_BOT_TOKEN,
    ApiCall,
    Ephemeral,
    MessageVersion,
    OpenedView,
    SlackMessage,
    UploadedFile,
    epoch_seconds,
)

__all__ = [
    "DEFAULT_ADMIN_SCOPES",
    "DEFAULT_APP_SCOPES",
    "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_SCOPES",
    "DEFAULT_BOT_TOKEN",
    "ApiCall",
    "Ephemeral",
    "JsonDict",
    "MessageVersion",
    "OpenedView",
    "SlackApiDouble",
    "SlackMessage",
    "UploadedFile",
    "block_problems",
    "epoch_seconds",
    "find_button",
    "render_blocks",
    "view_problems",
]
