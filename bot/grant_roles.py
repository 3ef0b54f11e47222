"""The ClusterRoles breakglass ships for grants: upstream ``admin`` and ``edit`` without the powers whose
effect outlives the grant.

A grant ends by deleting its binding. Whatever the holder made with the access that itself grants
access stays: a RoleBinding to themselves or a friend, a ServiceAccount token (TokenRequest), a user
acting as a ServiceAccount (``impersonate``). Upstream ``admin`` and ``edit`` allow all of these, so
``breakglass-admin`` and ``breakglass-edit`` are their rules (Kubernetes' bootstrap policy, as a
current cluster aggregates it) minus:

- ``bind`` and ``escalate`` on roles (neither upstream role has them; listed so a test holds it),
- ``impersonate`` on ServiceAccounts (``edit``, ``admin``),
- ``create`` on ``serviceaccounts/token`` (``edit``, ``admin``),
- every write on RoleBindings and ClusterRoleBindings (``admin`` may create RoleBindings; these keep
  reading them), and writes on Roles, which without RoleBindings only add clutter.

What RBAC cannot take away is left to the audit webhook (``bot.domain.actions``): a holder who may
create Secrets may create one of type ``kubernetes.io/service-account-token`` (the token controller
fills it in), and one who may create pods may run them as any ServiceAccount of the namespace. Those,
and any binding or token made anyway, are flagged in the thread and the review when still there at
the grant's end.

Pure: no I/O. ``deploy/base/grant-roles.yaml`` is ``render_yaml(grant_role_manifests())`` and the Helm
chart's ``templates/grant-roles.yaml`` the same objects (tests/deploy keeps all three equal).
"""

from __future__ import annotations

from typing import Any, NamedTuple

ADMIN_ROLE = "breakglass-admin"
EDIT_ROLE = "breakglass-edit"

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]


class Power(NamedTuple):
    """One verb on one resource (``resource/subresource``) of one API group."""

    api_group: str
    resource: str
    verb: str


# What a holder must never get from a break-glass role: each lets them keep access after the grant.
OUTLIVING_POWERS: tuple[Power, ...] = (
    *(Power("rbac.authorization.k8s.io", resource, verb) for resource in ("roles", "clusterroles")
      for verb in ("bind", "escalate")),
    Power("", "serviceaccounts", "impersonate"),
    Power("", "users", "impersonate"),
    Power("", "groups", "impersonate"),
    Power("", "serviceaccounts/token", "create"),
    *(Power("rbac.authorization.k8s.io", resource, verb) for resource in ("rolebindings", "clusterrolebindings")
      for verb in _WRITE),
)  # fmt: skip


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


_VIEW_RULES = [
    _rule("", ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
               "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
               "services/status"], _READ),
    _rule("", ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
               "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"], _READ),
    _rule("", ["namespaces"], _READ),
    _rule("discovery.k8s.io", ["endpointslices"], _READ),
    _rule("apps", ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                   "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
                   "statefulsets/scale", "statefulsets/status"], _READ),
    _rule("autoscaling", ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], _READ),
    _rule("batch", ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], _READ),
    _rule("policy", ["poddisruptionbudgets", "poddisruptionbudgets/status"], _READ),
    _rule("networking.k8s.io", ["ingresses", "ingresses/status", "networkpolicies"], _READ),
]  # fmt: skip

# Upstream edit's own rules without serviceaccounts impersonate and serviceaccounts/token create.
_EDIT_RULES = [
    _rule("", ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], _READ),
    _rule("", ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], _WRITE),
    _rule("", ["pods/eviction"], ["create"]),
    _rule("", ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
               "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"], _WRITE),
    _rule("apps", ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                   "replicasets/scale", "statefulsets", "statefulsets/scale"], _WRITE),
    _rule("autoscaling", ["horizontalpodautoscalers"], _WRITE),
    _rule("batch", ["cronjobs", "jobs"], _WRITE),
    _rule("networking.k8s.io", ["ingresses", "networkpolicies"], _WRITE),
    _rule("policy", ["poddisruptionbudgets"], _WRITE),
]  # fmt: skip

# Upstream admin's own rules, reading Roles and RoleBindings instead of writing them.
_ADMIN_RULES = [
    _rule("authorization.k8s.io", ["localsubjectaccessreviews"], ["create"]),
    _rule("rbac.authorization.k8s.io", ["rolebindings", "roles"], _READ),
]


def grant_role_manifests() -> list[dict[str, Any]]:
    """The two ClusterRoles, ready for ``kubectl apply`` (a roster's ``cluster_role`` names them)."""
    return [
        _cluster_role(
            ADMIN_ROLE,
            "upstream admin without impersonate, serviceaccounts/token or writes on Roles and RoleBindings",
            _ADMIN_RULES + _EDIT_RULES + _VIEW_RULES,
        ),
        _cluster_role(
            EDIT_ROLE, "upstream edit without impersonate or serviceaccounts/token", _EDIT_RULES + _VIEW_RULES
        ),
    ]


def _cluster_role(name: str, description: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "breakglass", "app.kubernetes.io/component": "grant-roles"},
            "annotations": {"breakglass.dev/description": description},
        },
        "rules": [{**rule, "verbs": list(rule["verbs"])} for rule in rules],
    }
