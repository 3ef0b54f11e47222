"""Slack listeners by feature, as in the Bolt starter template: each module has ``register(app, deps)``.

Every listener does the same four steps: ``ack()``, parse the payload into a typed value, call the
service (identity gate first), render the result. Listeners answer the person ephemerally; the
incident channel hears about requests only through the publish job and ``SlackNotifier``.
"""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, home, views
from bot.listeners.deps import Deps


def register_listeners(app: App, deps: Deps) -> None:
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    home.register(app, deps)


__all__ = ["Deps", "register_listeners"]
