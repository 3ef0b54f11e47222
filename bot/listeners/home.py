"""The App Home tab: refreshed each time it is opened (``app_home_opened`` -> ``views.publish``).

It shows the person's active grants (time left, Extend, Revoke), their pending requests (Cancel),
requests waiting for their approval (Approve / Deny) and reviews they owe. Someone the identity gate
refuses sees the refusal instead, and the refusal is audited.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.listeners.deps import Deps, actor_from, refresh_home, refuse_on_home
from bot.slack import wording
from bot.slack.identity import IdentityRefused


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def on_home_opened(body: dict[str, Any], event: dict[str, Any]) -> None:
        # Events are acknowledged by Bolt before the listener runs.
        if event.get("tab") not in (None, "home"):
            return  # the Messages tab: nothing to refresh
        opened(deps, body)


def opened(deps: Deps, body: dict[str, Any]) -> None:
    actor = actor_from(body)
    try:
        person = deps.identify(actor, "home")
    except IdentityRefused as refused:
        refuse_on_home(deps, actor.user_id, wording.refusal(refused.reason))
        return
    refresh_home(deps, person)
