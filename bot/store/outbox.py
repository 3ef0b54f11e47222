"""Requests whose thread is owed to Slack however long Slack is down.

Those changed by an operator while Slack was down (``breakglass grant|revoke``). A publish job
retries for minutes; an outage lasts as long as it lasts, so the sweep hands each owed request to a
publish job again until its thread has caught up, and only then is it taken out.
"""

from __future__ import annotations

import redis

from bot.domain.ids import RequestId
from bot.store.keys import Keys


class Outbox:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.key = Keys(prefix).outbox

    def add(self, request_id: RequestId) -> None:
        self.redis.sadd(self.key, request_id)

    def owed(self) -> list[RequestId]:
        return sorted(RequestId(str(member)) for member in self.redis.smembers(self.key))

    def done(self, request_id: RequestId) -> None:
        self.redis.srem(self.key, request_id)
