"""The Bolt app, built by a factory from Settings and the shared Core (nothing happens at import).

``create_app`` checks the bot token with ``auth.test`` before anything else and refuses to build an
app on a bad token or a token of another workspace (the web process must fail closed), then
registers the listeners and one ``@app.error`` handler for the unexpected. Every Web API call goes to
``settings.slack_api_url``.

HTTP mode: ``bot.web`` mounts ``slack_bolt.adapter.wsgi.SlackRequestHandler(create_app(...))`` at
``/slack/events``; Bolt verifies the signature and the 5-minute freshness of every request.
Socket Mode (``SLACK_APP_TOKEN`` set): ``connect_socket_mode`` opens the connection with Bolt's
built-in Socket Mode client, which needs no extra dependency; ``apps.connections.open`` goes through
``app.client``, so to ``BREAKGLASS_SLACK_API_URL`` like every other call. ``bot.serving`` decides which
process holds the socket.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from slack_bolt import App, Respond

from bot.domain.roster import Roster
from bot.listeners import Deps, register_listeners
from bot.listeners.deps import log_unexpected, send
from bot.listeners.stepup import StepUpDesk
from bot.ports import BreakglassError
from bot.settings import Settings, SettingsError
from bot.slack import wording
from bot.slack.client import SlackApi, SlackError, translated
from bot.slack.identity import IdentityGate
from bot.slack.presence import SlackPresence
from bot.store.stepup import StepUpStore
from bot.wiring import Core

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

log = logging.getLogger(__name__)

# Bolt runs every listener, ack included, on this pool, and answers Slack once the ack has run: with
# Bolt's default of 5 threads, an ack waits behind the work earlier requests do after theirs (Slack
# and Redis calls), and /breakglass acks slowed to 4x a bare app's at 16 in flight. More threads than
# gunicorn's per process, so an ack never queues behind that work.
LISTENER_THREADS = 32


class SlackStartupError(SettingsError):
    """Slack refused the bot token or the app-level token at start, or could not be reached to check
    one (one line naming SLACK_BOT_TOKEN or SLACK_APP_TOKEN, never the token)."""


def verify_token(slack: SlackApi, roster: Roster) -> dict[str, Any]:
    """``auth.test`` for the bot token, and that it belongs to the roster's workspace."""
    try:
        identity = slack.auth_test()
    except SlackError as exc:
        raise SlackStartupError(f"SLACK_BOT_TOKEN: Slack refused it ({exc.error})") from None
    except BreakglassError as exc:
        raise SlackStartupError(f"SLACK_BOT_TOKEN: could not be checked, Slack is unreachable ({exc})") from None
    workspace = roster.workspace
    if workspace.enterprise_id is not None:
        if identity.get("enterprise_id") != workspace.enterprise_id:
            raise SlackStartupError(
                f"SLACK_BOT_TOKEN: belongs to org {identity.get('enterprise_id')}, not the roster's "
                f"{workspace.enterprise_id}"
            )
    elif identity.get("team_id") != workspace.team_id:
        raise SlackStartupError(
            f"SLACK_BOT_TOKEN: belongs to workspace {identity.get('team_id')}, not the roster's {workspace.team_id}"
        )
    return identity


def create_app(
    settings: Settings,
    core: Core,
    *,
    identity: IdentityGate | None = None,
    slack: SlackApi | None = None,
    listener_executor: Executor | None = None,
) -> App:
    """The Bolt app for ``settings`` over ``core``. ``identity``, ``slack`` and ``listener_executor`` (the
    pool listeners run in after their ack) may be given by tests; by default they are built here."""
    slack = slack or SlackApi.connect(settings.slack_bot_token, settings.slack_api_url)
    verify_token(slack, core.roster())
    if identity is None:
        admin = (
            SlackApi.connect(settings.slack_admin_token, settings.slack_api_url)
            if settings.slack_admin_token is not None
            else None
        )
        identity = IdentityGate(slack, core.roster, core.now, admin=admin)
    if settings.slack_signing_secret is not None:
        signing_secret = settings.slack_signing_secret.get_secret_value()
    else:
        # Socket Mode needs no signing secret, but Bolt still verifies anything that reaches it over
        # HTTP. A random secret nobody knows makes every such request fail verification (fail closed)
        # rather than letting an empty secret sign forgeries.
        signing_secret = secrets.token_hex(32)
    app = App(
        client=slack.web,
        signing_secret=signing_secret,
        # verify_token above has checked the token; Bolt calls auth.test again lazily on first use.
        token_verification_enabled=False,
        logger=logging.getLogger("bot.slack.bolt"),
        listener_executor=listener_executor or ThreadPoolExecutor(LISTENER_THREADS, "breakglass-listener"),
    )
    step_up = StepUpDesk(
        settings, StepUpStore(core.redis, settings.key_prefix), core.access, identity, core.roster, core.now
    )
    register_listeners(
        app, Deps(core.access, identity, slack, core.roster, core.now, step_up, SlackPresence(slack, core.now))
    )
    app.error(on_error)
    return app


def on_error(error: Exception, body: dict[str, Any], respond: Respond | None) -> None:
    """The unexpected: logged with a reference (type and message only, never the payload, which may
    hold a reason or a response URL), and the person told that something went wrong."""
    reference = log_unexpected(error, body)
    try:
        send(respond, wording.something_went_wrong(reference))
    except BreakglassError as exc:
        log.warning("could not tell the person about error %s: %s", reference, type(exc).__name__)


def verify_app_token(slack: SlackApi, app_token: SecretStr) -> None:
    """``apps.connections.open`` with the app-level token, the one method it is good for: Slack refuses
    a token that is unknown, revoked, lacks ``connections:write`` or is not an app-level token. The URL
    it hands out is left unused (it expires); that costs one Tier 1 call per process start."""
    _checked_app_token(lambda: slack.web.apps_connections_open(app_token=app_token.get_secret_value()))


def connect_socket_mode(app: App, app_token: SecretStr) -> SocketModeHandler:
    """Open the Socket Mode connection for ``app`` (in the background; ``close()`` ends it). A token
    Slack refuses raises ``SlackStartupError`` naming SLACK_APP_TOKEN; a socket that fails after the
    URL was issued is retried by the client itself."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler  # only Socket Mode processes need it

    handler = SocketModeHandler(app, app_token=app_token.get_secret_value())
    try:
        _checked_app_token(handler.connect)
    except SlackStartupError:
        handler.close()
        raise
    return handler


def _checked_app_token(call: Callable[[], object]) -> None:
    try:
        with translated():
            call()
    except SlackError as exc:
        raise SlackStartupError(f"SLACK_APP_TOKEN: Slack refused it ({exc.error})") from None
    except BreakglassError as exc:
        raise SlackStartupError(f"SLACK_APP_TOKEN: could not be checked, Slack is unreachable ({exc})") from None
