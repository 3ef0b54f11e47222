"""The Bolt app's old import path: it is ``bot.app`` now, above the listeners it registers.

Kept so that code written against ``bot.slack.app`` still runs; the layers contract ignores this one
upward import. New code imports ``bot.app``.
"""

from bot.app import SlackStartupError, connect_socket_mode, create_app, verify_app_token, verify_token

__all__ = ["SlackStartupError", "connect_socket_mode", "create_app", "verify_app_token", "verify_token"]
