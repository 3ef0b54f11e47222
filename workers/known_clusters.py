"""The clusters the roster has named, remembered in Redis, so that the sweep still reaches one edited
out of the roster while no worker was running to notice (a roster change often comes with a restart).

Only the way to reach each cluster is kept (kubeconfig context and grant mode), never a credential.
A cluster is forgotten once the sweep has found nothing of ours left in it. A Redis flush forgets
them all: the roster's own clusters are swept as ever, and a removed one's bindings then wait for
it to be named again (the known limit of this memory).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

import redis

from bot.domain.roster import Roster
from bot.store.keys import Keys
from workers.kube import ClusterTarget

log = logging.getLogger(__name__)


class KnownClusters:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.key = Keys(prefix).known_clusters

    def recall(self) -> dict[str, ClusterTarget]:
        try:
            raw = self.redis.hgetall(self.key)
        except redis.RedisError as exc:
            log.warning("known clusters not read (Redis unavailable): %s", exc)
            return {}
        found: dict[str, ClusterTarget] = {}
        for name, value in raw.items():
            try:
                data = json.loads(value)
                credentials = data["credentials"]
                if credentials not in ("user", "token"):
                    raise ValueError(credentials)
                found[str(name)] = ClusterTarget(str(data["context"]), credentials)
            except (ValueError, KeyError, TypeError):
                log.warning("known cluster %s has an unreadable entry; ignored", name)
        return found

    def remember(self, targets: Mapping[str, ClusterTarget]) -> None:
        if not targets:
            return
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for name, target in targets.items():
                    entry = {"context": target.context, "credentials": target.credentials}
                    pipe.hset(self.key, name, json.dumps(entry, sort_keys=True))
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("known clusters not written (Redis unavailable): %s", exc)

    def forget(self, cluster: str) -> None:
        try:
            self.redis.hdel(self.key, cluster)
        except redis.RedisError as exc:
            log.warning("known cluster %s not forgotten (Redis unavailable): %s", cluster, exc)


def remembering(
    roster: Callable[[], Roster], memory: KnownClusters, targets_of: Callable[[Roster], dict[str, ClusterTarget]]
) -> Callable[[], dict[str, ClusterTarget]]:
    """The roster's cluster targets, written to ``memory`` each time the roster is a new one."""
    last: list[Roster] = []

    def targets() -> dict[str, ClusterTarget]:
        current = roster()
        found = targets_of(current)
        if not last or last[0] is not current:
            last[:] = [current]
            memory.remember(found)
        return found

    return targets
