"""The bot's own Kubernetes RBAC, rendered from the roster's cluster roles.

One home for what the bot may do in a cluster: ``bot_rbac_manifests`` renders the ClusterRole,
Role and their bindings that ``deploy/base/rbac.yaml`` holds and ``breakglass deploy rbac`` prints,
and ``REQUIRED_PERMISSIONS`` is the same list, as questions ``breakglass doctor`` asks the API
server with SelfSubjectAccessReview. Both come from the rule tables below, so they cannot drift.

Least privilege, and why each rule is there:

- RoleBindings and ClusterRoleBindings: get/list (the sweep finds managed bindings), create (grant),
  patch (move the expiry annotation on extension), delete (revoke). No ``update``, no ``watch``.
- ``bind`` on ClusterRoles, limited by ``resourceNames`` to the roster's ``cluster_role`` values.
  Kubernetes prevents privilege escalation through RBAC: creating a (Cluster)RoleBinding to a role
  is allowed only if the creator already holds every permission in that role, or holds ``bind`` on
  it. The bot must not hold ``admin`` or ``cluster-admin`` itself, so it gets ``bind`` on exactly the
  roles the roster hands out and nothing else. The trade-off is explicit: whatever role the roster
  offers, a compromised bot could bind to anyone (including itself), which is why the roster's roles
  are the real security boundary and the audit webhook watches what grants are used for.
- ServiceAccounts (get/list/create/delete) and ``serviceaccounts/token`` (create) only in the grant
  namespace, through a Role there: ``credentials: token`` grants make one ServiceAccount per grant
  and mint a short-lived TokenRequest token for it. A ClusterRole would let the bot mint tokens for
  every ServiceAccount in the cluster, i.e. become any workload. Only clusters the roster runs with
  ``credentials: token`` get this Role (``roster_rbac``): on a ``credentials: user`` cluster the bot
  never makes a ServiceAccount, so it is not allowed to.
- SubjectAccessReviews and SelfSubjectAccessReviews (create): ``doctor`` and the pre-grant check ask
  the API server what a user (or the bot itself) may do. Neither reveals or changes anything else.

This module is pure: no I/O, and no kubernetes, redis or slack imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import yaml

from bot.domain.grants import SYSTEM_NAMESPACE
from bot.domain.roster import Roster

RBAC_API_GROUP = "rbac.authorization.k8s.io"
AUTHORIZATION_API_GROUP = "authorization.k8s.io"
DEFAULT_SERVICE_ACCOUNT = "breakglass"

# ClusterRole names may hold ":" (system:aggregate-to-view). A name is never a pattern: RBAC has no
# wildcards in resourceNames, so "*" would silently mean "the role literally named *".
_ROLE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.:]{0,251}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class Permission(NamedTuple):
    """One thing the bot must be allowed to do: ``verb`` on ``resource`` in ``api_group``.

    ``resource`` may carry a subresource (``serviceaccounts/token``): split it on ``/`` into
    ResourceAttributes ``resource`` and ``subresource``. ``namespace`` None means cluster-wide.
    """

    verb: str
    api_group: str
    resource: str
    namespace: str | None


# (api group, resources, verbs) granted cluster-wide by the ClusterRole, besides `bind`.
_CLUSTER_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (RBAC_API_GROUP, ("rolebindings", "clusterrolebindings"), ("get", "list", "create", "patch", "delete")),
    (AUTHORIZATION_API_GROUP, ("subjectaccessreviews", "selfsubjectaccessreviews"), ("create",)),
)
# Granted only in the grant namespace by a Role there.
_GRANT_NAMESPACE_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("", ("serviceaccounts",), ("get", "list", "create", "delete")),
    ("", ("serviceaccounts/token",), ("create",)),
)


def required_permissions(
    grant_namespace: str = SYSTEM_NAMESPACE, *, service_account_tokens: bool = True
) -> tuple[Permission, ...]:
    """Every permission the bot needs apart from ``bind``, which ``doctor`` checks per roster role
    (verb ``bind``, group ``rbac.authorization.k8s.io``, resource ``clusterroles``, name = the role).
    ``service_account_tokens``: the cluster runs with ``credentials: token`` and needs the Role's rights."""
    cluster = [
        Permission(verb, group, resource, None)
        for group, resources, verbs in _CLUSTER_RULES
        for resource in resources
        for verb in verbs
    ]
    namespaced = [
        Permission(verb, group, resource, grant_namespace)
        for group, resources, verbs in _GRANT_NAMESPACE_RULES
        for resource in resources
        for verb in verbs
    ]
    return (*cluster, *namespaced) if service_account_tokens else tuple(cluster)


REQUIRED_PERMISSIONS: tuple[Permission, ...] = required_permissions()


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "breakglass", "app.kubernetes.io/component": "rbac"}


def _rule(group: str, resources: Sequence[str], verbs: Sequence[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}


def _check_name(value: str, what: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"{what} {value!r} is not a valid Kubernetes name")
    return value


def bot_rbac_manifests(
    cluster_roles: Iterable[str],
    grant_namespace: str = SYSTEM_NAMESPACE,
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
    namespace: str = SYSTEM_NAMESPACE,
    *,
    service_account_tokens: bool = True,
) -> list[dict[str, Any]]:
    """ClusterRole + ClusterRoleBinding, and (with ``service_account_tokens``, for ``credentials: token``
    clusters) Role + RoleBinding in ``grant_namespace``, for the bot's ServiceAccount
    ``namespace/service_account``, allowed to bind exactly ``cluster_roles``."""
    roles = sorted({_check_name(role, "cluster role", _ROLE_NAME) for role in cluster_roles})
    _check_name(grant_namespace, "grant namespace", _DNS_LABEL)
    _check_name(namespace, "namespace", _DNS_LABEL)
    _check_name(service_account, "service account", _DNS_SUBDOMAIN)
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    grants_name = f"{service_account}-grants"

    cluster_rules = [_rule(group, resources, verbs) for group, resources, verbs in _CLUSTER_RULES]
    # An empty resourceNames list means *every* name to the authorizer, so with no roles the
    # rule is left out rather than rendered empty: a roster offering nothing lets the bot bind nothing.
    if roles:
        cluster_rules.insert(
            1,
            {"apiGroups": [RBAC_API_GROUP], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": roles},
        )

    cluster_wide = [
        {
            "apiVersion": f"{RBAC_API_GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": service_account, "labels": _labels()},
            "rules": cluster_rules,
        },
        {
            "apiVersion": f"{RBAC_API_GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": service_account, "labels": _labels()},
            "roleRef": {"apiGroup": RBAC_API_GROUP, "kind": "ClusterRole", "name": service_account},
            "subjects": [subject],
        },
    ]
    if not service_account_tokens:
        return cluster_wide
    return [
        *cluster_wide,
        {
            "apiVersion": f"{RBAC_API_GROUP}/v1",
            "kind": "Role",
            "metadata": {"name": grants_name, "namespace": grant_namespace, "labels": _labels()},
            "rules": [_rule(group, resources, verbs) for group, resources, verbs in _GRANT_NAMESPACE_RULES],
        },
        {
            "apiVersion": f"{RBAC_API_GROUP}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": grants_name, "namespace": grant_namespace, "labels": _labels()},
            "roleRef": {"apiGroup": RBAC_API_GROUP, "kind": "Role", "name": grants_name},
            "subjects": [subject],
        },
    ]


ADMISSION_API_GROUP = "admissionregistration.k8s.io"
POLICY_NAME = "breakglass-bindings"


def admission_policy_manifests(
    cluster_roles: Iterable[str],
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
    namespace: str = SYSTEM_NAMESPACE,
) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding: the bot's ServiceAccount may create, change or
    delete only bindings named ``breakglass-*`` that carry its labels and a roleRef from the roster.

    RBAC cannot say this: ``create``/``patch``/``delete`` on RoleBindings are all-or-nothing across
    names (create takes no resourceNames at all). A stolen bot token could otherwise delete or rewrite
    every (Cluster)RoleBinding in the cluster; with the policy it can touch only breakglass's own."""
    roles = sorted({_check_name(role, "cluster role", _ROLE_NAME) for role in cluster_roles})
    _check_name(namespace, "namespace", _DNS_LABEL)
    _check_name(service_account, "service account", _DNS_SUBDOMAIN)
    allowed = ", ".join(f"'{role}'" for role in roles)
    the_binding = "request.operation == 'DELETE' ? oldObject : object"
    labels = "has(variables.binding.metadata.labels) ? variables.binding.metadata.labels : {}"
    validations = [
        {
            "expression": "variables.binding.metadata.name.startsWith('breakglass-')",
            "message": "breakglass may only touch bindings named breakglass-*",
        },
        {
            "expression": (
                "variables.labels['app.kubernetes.io/managed-by'] == 'breakglass'"
                " && 'breakglass.dev/installation' in variables.labels"
                " && 'breakglass.dev/request-id' in variables.labels"
            ),
            "message": "breakglass may only touch bindings carrying its managed-by, installation and request-id labels",
        },
        {
            "expression": f"variables.binding.roleRef.kind == 'ClusterRole' && variables.binding.roleRef.name in [{allowed}]",
            "message": f"breakglass may only bind the roster's cluster roles ({', '.join(roles) or 'none'})",
        },
    ]
    return [
        {
            "apiVersion": f"{ADMISSION_API_GROUP}/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": POLICY_NAME, "labels": _labels()},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [RBAC_API_GROUP],
                            "apiVersions": ["*"],
                            "operations": ["CREATE", "UPDATE", "DELETE"],
                            "resources": ["rolebindings", "clusterrolebindings"],
                        }
                    ]
                },
                "matchConditions": [
                    {
                        "name": "the-breakglass-bot",
                        "expression": f"request.userInfo.username == 'system:serviceaccount:{namespace}:{service_account}'",
                    }
                ],
                "variables": [
                    {"name": "binding", "expression": the_binding},
                    {"name": "labels", "expression": labels},
                ],
                "validations": validations,
            },
        },
        {
            "apiVersion": f"{ADMISSION_API_GROUP}/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": POLICY_NAME, "labels": _labels()},
            "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
        },
    ]


def roster_rbac(
    roster: Roster, source: str, grant_namespace: str = SYSTEM_NAMESPACE, cluster: str | None = None
) -> str:
    """What ``breakglass deploy rbac --roster source [--cluster NAME]`` prints: a header comment saying
    where to apply it, then the manifests. The Role for per-grant ServiceAccounts and tokens is there
    only when the cluster (without ``cluster``: any roster cluster) uses ``credentials: token``."""
    if cluster is not None and cluster not in roster.clusters:
        raise ValueError(f"the roster has no cluster {cluster!r}; it has {', '.join(sorted(roster.clusters))}")
    roles = sorted({role.cluster_role for role in roster.roles.values()})
    names = [cluster] if cluster is not None else sorted(roster.clusters)
    token = [name for name in names if roster.clusters[name].credentials == "token"]
    command = f"breakglass deploy rbac --roster {source}" + (
        f" --grant-namespace {grant_namespace}" if grant_namespace != SYSTEM_NAMESPACE else ""
    )
    header = [f"# The bot's own RBAC: `{command}" + (f" --cluster {cluster}`" if cluster else "`")]
    if cluster is not None:
        header.append(f"# for cluster {cluster} (credentials: {roster.clusters[cluster].credentials}).")
    else:
        header.append(
            f"# The ClusterRole and its binding are shared: apply them to every roster cluster ({', '.join(names)})."
        )
    header.append(f"# bind is allowed on exactly the roster's cluster roles: {', '.join(roles) or 'none'}.")
    if not token:
        header.append(
            "# No cluster here uses credentials: token, so the bot gets no rights on ServiceAccounts or tokens."
        )
    elif cluster is None and len(token) < len(names):
        header += [
            f"# The Role and RoleBinding in {grant_namespace} (per-grant ServiceAccounts and tokens) are only for",
            f"# the credentials: token clusters ({', '.join(token)}); leave them off the others, or render each",
            "# cluster's set with --cluster NAME.",
        ]
    manifests = bot_rbac_manifests(roles, grant_namespace=grant_namespace, service_account_tokens=bool(token))
    return "\n".join(header) + "\n" + render_yaml(manifests)


def render_yaml(manifests: Iterable[dict[str, Any]]) -> str:
    """Multi-document YAML, keys in the order the manifests were built (apiVersion, kind, metadata…)."""
    return yaml.safe_dump_all(list(manifests), sort_keys=False, default_flow_style=False, explicit_start=True)
