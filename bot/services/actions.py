"""What was done with the access: Kubernetes audit events matched to the grants they happened under.

The kube-apiserver's audit webhook posts ``audit.k8s.io/v1`` EventLists. An event belongs to a grant
when its user is the grant's subject (the person's ``kube_user``, or the grant's own ServiceAccount)
on that cluster, inside the grant's window and scope. Each batch becomes at most one
``actions_recorded`` audit entry per grant, so a busy session does not drown the thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.grants import binding_name, parse_instant
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Roster
from bot.store import Draft, RequestStore

MAX_ACTIONS_PER_ENTRY = 100
_RECORDED_STAGES = {"ResponseComplete", "Panic"}


class InvalidEventList(ValueError):
    pass


class ActionRecorder:
    def __init__(
        self,
        store: RequestStore,
        roster: Callable[[], Roster],
        now: Callable[[], datetime],
        token_namespace: str = "breakglass-system",  # noqa: S107  (a namespace, not a secret)
    ) -> None:
        self.store = store
        self.roster = roster
        self.now = now
        self.token_namespace = token_namespace

    def record(self, cluster: str, body: Mapping[str, Any]) -> int:
        """Record the events of one webhook call; returns how many matched a grant."""
        if body.get("kind") != "EventList" or not str(body.get("apiVersion", "")).startswith("audit.k8s.io/"):
            raise InvalidEventList("expected an audit.k8s.io/v1 EventList")
        items = body.get("items")
        if not isinstance(items, list):
            raise InvalidEventList("the EventList has no items list")
        roster = self.roster()
        grants = [g for g in self.store.active() + self._recently_ended() if g.cluster == cluster]
        subjects = {self._subject(roster, grant): grant for grant in grants}
        matched: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            if not isinstance(item, dict) or item.get("stage") not in _RECORDED_STAGES:
                continue
            user = (item.get("user") or {}).get("username")
            grant = subjects.get(user) if isinstance(user, str) else None
            if grant is None or not _within(grant, item):
                continue
            matched.setdefault(grant.id, []).append(_action(item))
        for request_id, actions in matched.items():
            self.store.audit.append(
                Draft(
                    Event.ACTIONS_RECORDED,
                    SYSTEM_ACTOR,
                    request_id,
                    {
                        "cluster": cluster,
                        "count": len(actions),
                        "actions": actions[:MAX_ACTIONS_PER_ENTRY],
                        "truncated": len(actions) > MAX_ACTIONS_PER_ENTRY,
                    },
                )
            )
        return sum(len(a) for a in matched.values())

    def _recently_ended(self) -> list[AccessRequest]:
        # The apiserver batches and may deliver a little after a grant ended.
        return [r for r in self.store.recent(200) if r.state in (State.EXPIRED, State.REVOKED) and r.granted_at]

    def _subject(self, roster: Roster, grant: AccessRequest) -> str | None:
        cluster = roster.clusters.get(grant.cluster)
        if cluster is not None and cluster.credentials == "token":
            return f"system:serviceaccount:{self.token_namespace}:{binding_name(grant.id)}"
        person = roster.people.get(grant.requester)
        return person.kube_user if person else None


def _within(grant: AccessRequest, item: Mapping[str, Any]) -> bool:
    stamp = item.get("requestReceivedTimestamp") or item.get("stageTimestamp")
    try:
        at = parse_instant(str(stamp))
    except ValueError:
        return False
    end = grant.ended_at or grant.expires_at
    if grant.granted_at is None or at < grant.granted_at or (end is not None and at > end):
        return False
    namespace = (item.get("objectRef") or {}).get("namespace")
    return grant.namespace is None or namespace in (None, grant.namespace)


def _action(item: Mapping[str, Any]) -> dict[str, Any]:
    ref = item.get("objectRef") or {}
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource = f"{resource}/{ref['subresource']}"
    return {
        "at": item.get("requestReceivedTimestamp"),
        "verb": item.get("verb"),
        "resource": resource,
        "api_group": ref.get("apiGroup", ""),
        "namespace": ref.get("namespace"),
        "name": ref.get("name"),
        "code": (item.get("responseStatus") or {}).get("code"),
        "audit_id": item.get("auditID"),
    }
