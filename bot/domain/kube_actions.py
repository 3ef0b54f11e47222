"""Kubernetes audit events as actions done under a grant: which are changes, which are sessions that
stay open, and how a grant's actions are summed up for its thread. Pure: no storage, no clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# Requests that hold a connection open: the API server sends ResponseStarted when the stream opens and
# ResponseComplete only when it closes, which may be long after the grant's binding is gone.
SESSION_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
STARTED = "ResponseStarted"
COMPLETE = ("ResponseComplete", "Panic")
FIRST_CHANGES = 20


def action_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of one audit event."""
    ref = event.get("objectRef") or {}
    resource = str(ref.get("resource") or "")
    if ref.get("subresource"):
        resource = f"{resource}/{ref['subresource']}"
    verb = str(event.get("verb") or "")
    return {
        "at": event.get("requestReceivedTimestamp") or event.get("stageTimestamp"),
        "verb": verb,
        "resource": resource,
        "api_group": ref.get("apiGroup", ""),
        "namespace": ref.get("namespace"),
        "name": ref.get("name"),
        "code": (event.get("responseStatus") or {}).get("code"),
        "audit_id": event.get("auditID"),
        "mutating": is_change(verb),
    }


def is_change(verb: str) -> bool:
    """A request that changes something. An exec, attach or port-forward is a ``create`` of a
    subresource, and counts as one: what runs inside it is not in the audit log."""
    return verb in MUTATING_VERBS


def is_session(event: Mapping[str, Any]) -> bool:
    ref = event.get("objectRef") or {}
    return event.get("verb") == "watch" or ref.get("subresource") in SESSION_SUBRESOURCES


def session_of(event: Mapping[str, Any]) -> dict[str, Any]:
    ref = event.get("objectRef") or {}
    return {
        "at": event.get("requestReceivedTimestamp") or event.get("stageTimestamp"),
        "verb": "watch" if event.get("verb") == "watch" else str(ref.get("subresource") or event.get("verb")),
        "resource": str(ref.get("resource") or ""),
        "namespace": ref.get("namespace"),
        "name": ref.get("name"),
    }


def summary(actions: Iterable[Mapping[str, Any]], dropped: int, open_sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """The details of a grant's ``actions_summary``: counts by verb and resource, the first changes,
    how many more, how many were not kept, and the sessions that may still be open."""
    kinds: Counter[tuple[str, str]] = Counter()
    changes: list[dict[str, Any]] = []
    total = 0
    for action in actions:
        total += 1
        verb, resource = str(action.get("verb") or ""), str(action.get("resource") or "")
        kinds[(verb, resource)] += 1
        if action.get("mutating", is_change(verb)):
            changes.append({k: action.get(k) for k in ("at", "verb", "resource", "namespace", "name", "code")})
    return {
        "count": total,
        "by_verb_and_resource": [[verb, resource, n] for (verb, resource), n in kinds.most_common()],
        "changes": changes[:FIRST_CHANGES],
        "more_changes": max(len(changes) - FIRST_CHANGES, 0),
        "change_count": len(changes),
        "dropped": dropped,
        "open_sessions": open_sessions,
    }


# What a holder can create that grants access by itself and outlives the grant's binding (issue 10,
# finding 8): (api group, resource) -> what is said of one still there at the grant's end.
ACCESS_GRANTING: dict[tuple[str, str], str] = {
    ("rbac.authorization.k8s.io", "rolebindings"): "a RoleBinding",
    ("rbac.authorization.k8s.io", "clusterrolebindings"): "a ClusterRoleBinding",
    (
        "",
        "serviceaccounts/token",
    ): "a ServiceAccount token, valid until it expires unless its ServiceAccount is deleted",
    ("", "secrets"): "a Secret, which may be a ServiceAccount token (type kubernetes.io/service-account-token)",
    ("", "pods"): "a Pod, which may run as another ServiceAccount",
}
BINDINGS = frozenset({"rolebindings", "clusterrolebindings"})


def access_granting(actions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each object a holder created (successfully) during the grant that may grant access after it:
    {resource, namespace, name, what}, once each, in the order made."""
    found: dict[tuple[str, Any, Any], dict[str, Any]] = {}
    for action in actions:
        key = (str(action.get("api_group") or ""), str(action.get("resource") or ""))
        code = action.get("code")
        if action.get("verb") != "create" or key not in ACCESS_GRANTING:
            continue
        if not isinstance(code, int) or not 200 <= code < 300:
            continue
        where = (key[1], action.get("namespace"), action.get("name"))
        found.setdefault(
            where,
            {"resource": key[1], "namespace": action.get("namespace"), "name": action.get("name"),
             "what": ACCESS_GRANTING[key]},
        )  # fmt: skip
    return list(found.values())
