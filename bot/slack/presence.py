"""Whether a Slack member is still there, for naming who may approve (``policy.approvers_to_name``).

A person who left Slack (deactivated, or unknown to Slack) is skipped on the request card and in the
requester's reply, without an error. Answers are cached for ``CACHE_SECONDS`` of the injected clock.
A lookup that fails counts as present: naming someone grants nothing, and the card must not wait for
Slack to recover.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.domain.ids import SlackUserId
from bot.ports import BreakglassError
from bot.slack.client import SlackApi, SlackError

CACHE_SECONDS = 60


class SlackPresence:
    def __init__(self, slack: SlackApi, now: Callable[[], datetime]) -> None:
        self.slack = slack
        self.now = now
        self._seen: dict[str, tuple[bool, datetime]] = {}
        self._lock = threading.Lock()

    def __call__(self, user: SlackUserId) -> bool:
        now = self.now()
        with self._lock:
            hit = self._seen.get(user)
        if hit is not None and now - hit[1] < timedelta(seconds=CACHE_SECONDS):
            return hit[0]
        try:
            present = self.slack.user_info(user).get("deleted") is False
        except SlackError as exc:
            present = exc.error != "user_not_found"
            if present:
                return True  # Slack could not say: not cached, asked again next time
        except BreakglassError:
            return True
        with self._lock:
            self._seen[user] = (present, now)
        return present
