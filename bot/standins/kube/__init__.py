"""A Kubernetes API server double: real HTTP for the official client, real RBAC, faithful Status bodies.

Used by the tests and by ``breakglass demo``; it must never be wired into production code paths.

What it models, as kube-apiserver does it:

- ``rbac.authorization.k8s.io/v1`` Roles, ClusterRoles, RoleBindings, ClusterRoleBindings and core ``v1``
  Namespaces, ServiceAccounts and Pods: get, list (label and ``metadata.name``/``metadata.namespace``
  field selectors, ``limit``/``continue``), create (``generateName``, ``dryRun=All``), replace with
  optimistic concurrency (stale ``resourceVersion`` → 409 Conflict; create-on-update for RBAC kinds),
  patch (JSON patch, merge patch, strategic merge patch as merge patch), delete (``preconditions``;
  RBAC kinds answer a ``Status`` Success, the core kinds the deleted object), deletecollection.
- Per-kind name rules (path segment for RBAC, DNS-1123 subdomain for ServiceAccounts and Pods, label for
  Namespaces), label/annotation syntax, RBAC field validation, ``roleRef`` immutability → 422 Invalid
  with ``details.causes``; a namespaced object in a missing namespace → 404 ``namespaces "x" not found``.
- Authentication by bearer token only (401 ``Unauthorized`` otherwise): an admin in ``system:masters``,
  identities added with ``add_identity``, and ServiceAccount tokens from TokenRequest
  (``serviceaccounts/{name}/token``: ``expirationSeconds`` ≥ 600 else 422, default 3600, optional cap)
  that stop working at expiry, when their ServiceAccount is deleted (or recreated) or for another audience.
- Authorization of every request by the privileged group then RBAC (403 with the API server's message),
  including the escalation check on writing (Cluster)Roles and (Cluster)RoleBindings (``bind``/``escalate``
  or already holding every permission); SubjectAccessReview, SelfSubjectAccessReview,
  LocalSubjectAccessReview and SelfSubjectReview; bootstrap ClusterRoles ``view``/``edit``/``admin``/
  ``cluster-admin`` and the ``system:`` ones discovery relies on; ``/version``, ``/healthz``, discovery.
- Faults: latency, 429/500/503/504 answers with Status bodies and ``Retry-After``, and hangs.

What it does NOT model: watch (405), server-side apply, ``$patch`` directives, managedFields,
finalizers and graceful deletion (a deleted namespace and its content vanish at once), admission
webhooks, ClusterRole aggregation (the seeded roles carry their aggregated rules), anonymous requests
(refused as with ``--anonymous-auth=false``), impersonation, TLS and client certificates, other kinds
(Secrets, Deployments...), token signatures (tokens are looked up, not verified) and ``boundObjectRef``.
"""

from bot.standins.kube.kubeconfig import ContextEntry, kubeconfig_dict, write_kubeconfig
from bot.standins.kube.rbac import UserInfo
from bot.standins.kube.server import KubeApiServer, RequestRecord

__all__ = ["ContextEntry", "KubeApiServer", "RequestRecord", "UserInfo", "kubeconfig_dict", "write_kubeconfig"]
