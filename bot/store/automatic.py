"""Each person's automatic approvals in the last 24 hours: the count a rule's ``max_per_day`` caps.

One sorted set per person (request id -> the instant it was approved), trimmed to the window on every
read and write, and expiring a window after its last write, so it never outlives what it counts. A
claim is one Lua script: two requests approved at the same instant cannot both take the last place.
Claiming is idempotent by request id (a retried submission does not count twice).
"""

from __future__ import annotations

from datetime import datetime

import redis

from bot.domain.automation import CAP_WINDOW
from bot.store.keys import Keys

# KEYS[1] the person's set; ARGV: request id, now (epoch s), window (s), cap (0: none).
# Returns 1 when the request holds a place (new or already), 0 when the cap is reached.
_CLAIM = """
local cutoff = tonumber(ARGV[2]) - tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
local cap = tonumber(ARGV[4])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
return 1
"""


class AutomaticApprovals:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.keys = Keys(prefix)

    def count(self, person: str, now: datetime) -> int:
        """How many automatic approvals ``person`` had in the window ending ``now``."""
        cutoff = (now - CAP_WINDOW).timestamp()
        return int(self.redis.zcount(self.keys.automatic_approvals(person), cutoff, "+inf"))

    def claim(self, person: str, request_id: str, now: datetime, cap: int | None) -> bool:
        """Count ``request_id`` as one of ``person``'s automatic approvals, unless ``cap`` are counted
        already. True when it is counted (now, or by an earlier claim of the same request)."""
        key = self.keys.automatic_approvals(person)
        window = int(CAP_WINDOW.total_seconds())
        return bool(self.redis.eval(_CLAIM, 1, key, request_id, now.timestamp(), window, cap or 0))

    def release(self, person: str, request_id: str) -> None:
        """Give back a place claimed for a request that was not approved after all."""
        self.redis.zrem(self.keys.automatic_approvals(person), request_id)

    def place(self, person: str, request_id: str, now: datetime) -> int | None:
        """``request_id``'s place (1 = the first) among ``person``'s automatic approvals in the window
        ending ``now``; None when it is not counted there."""
        key = self.keys.automatic_approvals(person)
        score = self.redis.zscore(key, request_id)
        if score is None or score < (now - CAP_WINDOW).timestamp():
            return None
        return int(self.redis.zcount(key, (now - CAP_WINDOW).timestamp(), score))
