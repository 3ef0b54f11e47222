"""Requests whose escalation incident is open in PagerDuty (paged, not yet resolved).

The sweep reads this set to resolve the incident of a request decided while its resolving job was
lost (a process killed between the decision and the enqueue): nobody stays paged for a request that
no longer waits. Members leave when their incident is resolved.
"""

from __future__ import annotations

import redis

from bot.domain.ids import RequestId
from bot.store.keys import Keys


class Escalations:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.key = Keys(prefix).escalations

    def add(self, request_id: RequestId) -> None:
        self.redis.sadd(self.key, request_id)

    def remove(self, request_id: RequestId) -> None:
        self.redis.srem(self.key, request_id)

    def open(self) -> list[RequestId]:
        return sorted(RequestId(str(member)) for member in self.redis.smembers(self.key))
