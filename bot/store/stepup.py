"""Step-up verifications in flight: start links and logins at the identity provider.

Both are single-use: taking one is one ``GETDEL``, so of two clicks on a link (or two deliveries of a
callback) exactly one gets it. Both expire with Redis's TTL after ``STEP_UP_LIFETIME``. Keys hold the
SHA-256 of the token or ``state``, never the value itself: whoever reads Redis cannot use a link.
"""

from __future__ import annotations

import hashlib
import json

import redis

from bot.domain.stepup import STEP_UP_LIFETIME, Login, PendingAction
from bot.store.keys import Keys


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class StepUpStore:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.keys = Keys(prefix)

    def hold(self, token: str, pending: PendingAction) -> None:
        self.redis.set(self.keys.step_up_start(_digest(token)), json.dumps(pending.to_dict()), ex=STEP_UP_LIFETIME)

    def take(self, token: str) -> PendingAction | None:
        """The action behind a start link, once; None for an unknown, used or expired link."""
        raw = self.redis.getdel(self.keys.step_up_start(_digest(token)))
        return PendingAction.from_dict(json.loads(str(raw))) if raw else None

    def begin_login(self, state: str, login: Login) -> None:
        self.redis.set(self.keys.step_up_login(_digest(state)), json.dumps(login.to_dict()), ex=STEP_UP_LIFETIME)

    def finish_login(self, state: str) -> Login | None:
        """The login a callback's ``state`` belongs to, once; None for an unknown, used or expired state."""
        raw = self.redis.getdel(self.keys.step_up_login(_digest(state)))
        return Login.from_dict(json.loads(str(raw))) if raw else None
