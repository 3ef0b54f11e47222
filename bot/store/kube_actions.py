"""What was done under each grant, kept so that every action is recorded once and storage stays bounded.

Beside the audit log (which holds every kept action, in ``actions_recorded`` entries of at most
``ACTIONS_PER_ENTRY`` each), this keeps, per grant: the ``auditID``s already recorded (the API server
retries a batch it could not deliver, and a retried batch must change nothing), how many actions were
kept and how many were dropped past ``MAX_ACTIONS_PER_GRANT``, the long-running sessions (exec,
attach, port-forward, watch) that started and have not completed, and the changes not yet told in a
digest. Per cluster it holds, briefly, events that arrived before their grant was committed as active.

The record of actions and its audit entries are written in one MULTI/EXEC (guarded by WATCH on the
grant's seen set and the audit head), so a crash between them cannot record an action twice or lose it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from bot.domain.audit import SYSTEM_ACTOR, AuditEntry, Event
from bot.store.audit_log import AuditLog, Draft

ACTIONS_PER_ENTRY = 100
MAX_ACTIONS_PER_GRANT = 2000
# Early events are held this long, and at most this many per cluster (the oldest go first).
EARLY_SECONDS = 300
MAX_EARLY = 2000
# What is kept of a grant's bookkeeping after its last write: long enough for late batches and the summary.
KEEP_SECONDS = 7 * 24 * 3600
# How many undigested changes are kept in detail for the next digest (the count is always exact).
DIGEST_DETAIL = 10
# A cluster silent for longer than this has stopped sending (or never sent) audit events: when it is
# heard again, idleness counts from then, not from before the gap.
HEARD_GAP = timedelta(minutes=5)


@dataclass(frozen=True)
class Recorded:
    kept: int  # new actions written to the audit log
    duplicates: int  # already recorded (a retried batch)
    dropped: int  # past the per-grant limit: counted, not kept
    entries: list[AuditEntry]


class ActionLedger:
    def __init__(self, client: redis.Redis, audit: AuditLog, prefix: str = "breakglass") -> None:
        self.redis = client
        self.audit = audit
        self.prefix = prefix

    def _key(self, request_id: str, what: str) -> str:
        return f"{self.prefix}:actions:{request_id}:{what}"

    def early_key(self, cluster: str) -> str:
        return f"{self.prefix}:actions:early:{cluster}"

    # --- recording ------------------------------------------------------------------------------

    def record(self, request_id: str, cluster: str, actions: Sequence[Mapping[str, Any]]) -> Recorded:
        """Write the actions not recorded before, up to the grant's limit, with their audit entries.
        Each action's ``audit_id`` identifies it; one without an id is always new."""
        seen_key, stats_key = self._key(request_id, "seen"), self._key(request_id, "stats")
        digest_key = self._key(request_id, "undigested")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(seen_key, stats_key, *self.audit.watch_keys)
                    ids = [str(a.get("audit_id")) for a in actions if a.get("audit_id")]
                    known = set()
                    if ids:
                        flags = pipe.smismember(seen_key, ids)
                        known = {i for i, flag in zip(ids, flags, strict=True) if flag}
                    fresh, batch_ids = [], set()
                    for action in actions:
                        audit_id = action.get("audit_id")
                        if audit_id and (audit_id in known or audit_id in batch_ids):
                            continue
                        if audit_id:
                            batch_ids.add(str(audit_id))
                        fresh.append(dict(action))
                    raw_kept, last_before = pipe.hmget(stats_key, "kept", "last_at")
                    kept_before = int(raw_kept or 0)
                    last_at = max([str(a.get("at") or "") for a in fresh] + [str(last_before or "")])
                    room = max(MAX_ACTIONS_PER_GRANT - kept_before, 0)
                    kept, dropped = fresh[:room], len(fresh) - min(room, len(fresh))
                    drafts = [
                        Draft(
                            Event.ACTIONS_RECORDED,
                            SYSTEM_ACTOR,
                            request_id,
                            {"cluster": cluster, "count": len(chunk), "actions": chunk},
                        )
                        for chunk in _chunks(kept, ACTIONS_PER_ENTRY)
                    ]
                    head = self.audit.read_head(pipe) if drafts else None
                    pipe.multi()
                    if batch_ids:
                        pipe.sadd(seen_key, *batch_ids)
                        pipe.expire(seen_key, KEEP_SECONDS)
                    if kept:
                        pipe.hincrby(stats_key, "kept", len(kept))
                    if dropped:
                        pipe.hincrby(stats_key, "dropped", dropped)
                    if last_at:
                        pipe.hset(stats_key, "last_at", last_at)
                    pipe.expire(stats_key, KEEP_SECONDS)
                    changes = [a for a in kept if a.get("mutating")]
                    if changes:
                        pipe.hincrby(stats_key, "undigested", len(changes))
                        pipe.rpush(digest_key, *(json.dumps(a, sort_keys=True) for a in changes))
                        pipe.ltrim(digest_key, 0, DIGEST_DETAIL - 1)
                        pipe.expire(digest_key, KEEP_SECONDS)
                    entries = self.audit.queue_appends(pipe, head, drafts) if head is not None else []
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        if entries:
            self.audit.published(entries)
        return Recorded(len(kept), len(actions) - len(fresh), dropped, entries)

    def counts(self, request_id: str) -> tuple[int, int]:
        """(kept, dropped) so far for the grant."""
        raw = self.redis.hmget(self._key(request_id, "stats"), "kept", "dropped")
        return int(raw[0] or 0), int(raw[1] or 0)

    def last_action_at(self, request_id: str) -> datetime | None:
        """When the newest recorded (or dropped) action of the grant happened."""
        return _instant(self.redis.hget(self._key(request_id, "stats"), "last_at"))

    # --- which clusters send audit events ---------------------------------------------------------

    def cluster_key(self, cluster: str) -> str:
        return f"{self.prefix}:actions:cluster:{cluster}"

    def heard(self, cluster: str, now: datetime) -> None:
        """The cluster delivered a batch now."""
        key = self.cluster_key(cluster)
        last = _instant(self.redis.hget(key, "last"))
        with self.redis.pipeline() as pipe:
            if last is None or now - last > HEARD_GAP:
                pipe.hset(key, "since", now.isoformat())
            pipe.hset(key, "last", now.isoformat())
            pipe.expire(key, KEEP_SECONDS)
            pipe.execute()

    def hearing(self, cluster: str) -> tuple[datetime, datetime] | None:
        """(since, last): the cluster has sent audit events without a gap since ``since``, the last at ``last``."""
        since, last = self.redis.hmget(self.cluster_key(cluster), "since", "last")
        start, end = _instant(since), _instant(last)
        return (start, end) if start is not None and end is not None else None

    # --- the digest -----------------------------------------------------------------------------

    def take_digest(self, request_id: str, every_seconds: int) -> tuple[int, list[dict[str, Any]]] | None:
        """The changes recorded since the last digest, (count, the first few), and the digest's turn
        taken; None when there is nothing to tell or the last digest was less than ``every_seconds`` ago."""
        stats_key, digest_key = self._key(request_id, "stats"), self._key(request_id, "undigested")
        if not int(self.redis.hget(stats_key, "undigested") or 0):
            return None
        if not self.redis.set(self._key(request_id, "digested"), "1", nx=True, ex=every_seconds):
            return None
        with self.redis.pipeline() as pipe:
            pipe.hget(stats_key, "undigested")
            pipe.lrange(digest_key, 0, -1)
            pipe.hset(stats_key, "undigested", 0)
            pipe.delete(digest_key)
            count, detail, _, _ = pipe.execute()
        return int(count or 0), [json.loads(raw) for raw in detail]

    # --- long-running sessions ------------------------------------------------------------------

    def session_started(self, request_id: str, audit_id: str, session: Mapping[str, Any]) -> None:
        key = self._key(request_id, "sessions")
        with self.redis.pipeline() as pipe:
            pipe.hsetnx(key, audit_id, json.dumps(dict(session), sort_keys=True))
            pipe.expire(key, KEEP_SECONDS)
            pipe.execute()

    def sessions_completed(self, request_id: str, audit_ids: Sequence[str]) -> None:
        if audit_ids:
            self.redis.hdel(self._key(request_id, "sessions"), *audit_ids)

    def open_sessions(self, request_id: str) -> list[dict[str, Any]]:
        raw = self.redis.hgetall(self._key(request_id, "sessions"))
        sessions = [json.loads(value) for value in raw.values()]
        return sorted(sessions, key=lambda s: str(s.get("at") or ""))

    # --- events that came before their grant ----------------------------------------------------

    def hold(self, cluster: str, events: Sequence[Mapping[str, Any]]) -> None:
        if not events:
            return
        key = self.early_key(cluster)
        with self.redis.pipeline() as pipe:
            pipe.rpush(key, *(json.dumps(dict(e), sort_keys=True) for e in events))
            pipe.ltrim(key, -MAX_EARLY, -1)
            pipe.expire(key, EARLY_SECONDS)
            pipe.execute()

    def take_held(self, cluster: str) -> list[dict[str, Any]]:
        """Every held event of ``cluster``, removed; the caller holds again those still early."""
        key = self.early_key(cluster)
        with self.redis.pipeline() as pipe:
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
            raw, _ = pipe.execute()
        return [json.loads(item) for item in raw]


def _instant(raw: object) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
