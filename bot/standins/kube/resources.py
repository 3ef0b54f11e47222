"""The kinds the double stores, with the per-kind behaviour of their kube-apiserver registry strategies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.standins.kube import validation
from bot.standins.kube.status import FieldError

RBAC_GROUP = validation.RBAC_GROUP


def _no_defaults(obj: dict[str, Any]) -> None:
    return None


def _default_binding(obj: dict[str, Any]) -> None:
    """``SetDefaults_Subject`` / ``SetDefaults_*RoleBinding`` from ``pkg/apis/rbac/v1/defaults.go``."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def _default_namespace(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    labels = meta.get("labels") or {}
    labels["kubernetes.io/metadata.name"] = meta["name"]
    meta["labels"] = labels
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _default_pod(obj: dict[str, Any]) -> None:
    obj.setdefault("status", {}).setdefault("phase", "Pending")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    validate: Callable[[dict[str, Any]], list[FieldError]]
    defaults: Callable[[dict[str, Any]], None] = _no_defaults
    allow_create_on_update: bool = False
    return_deleted_object: bool = False
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_rbac(self) -> bool:
        return self.group == RBAC_GROUP

    @property
    def is_binding(self) -> bool:
        return self.plural in ("rolebindings", "clusterrolebindings")


NAMESPACES = ResourceType(
    "",
    "v1",
    "namespaces",
    "Namespace",
    False,
    validation.namespace,
    _default_namespace,
    return_deleted_object=True,
    short_names=("ns",),
)
SERVICE_ACCOUNTS = ResourceType(
    "",
    "v1",
    "serviceaccounts",
    "ServiceAccount",
    True,
    validation.service_account,
    return_deleted_object=True,
    short_names=("sa",),
)
PODS = ResourceType(
    "",
    "v1",
    "pods",
    "Pod",
    True,
    validation.pod,
    _default_pod,
    return_deleted_object=True,
    short_names=("po",),
)
ROLES = ResourceType(
    RBAC_GROUP,
    "v1",
    "roles",
    "Role",
    True,
    lambda o: validation.role(o, namespaced=True),
    allow_create_on_update=True,
)
CLUSTER_ROLES = ResourceType(
    RBAC_GROUP,
    "v1",
    "clusterroles",
    "ClusterRole",
    False,
    lambda o: validation.role(o, namespaced=False),
    allow_create_on_update=True,
)
ROLE_BINDINGS = ResourceType(
    RBAC_GROUP,
    "v1",
    "rolebindings",
    "RoleBinding",
    True,
    lambda o: validation.role_binding(o, namespaced=True),
    _default_binding,
    allow_create_on_update=True,
)
CLUSTER_ROLE_BINDINGS = ResourceType(
    RBAC_GROUP,
    "v1",
    "clusterrolebindings",
    "ClusterRoleBinding",
    False,
    lambda o: validation.role_binding(o, namespaced=False),
    _default_binding,
    allow_create_on_update=True,
)

STORED: tuple[ResourceType, ...] = (
    NAMESPACES,
    SERVICE_ACCOUNTS,
    PODS,
    ROLES,
    CLUSTER_ROLES,
    ROLE_BINDINGS,
    CLUSTER_ROLE_BINDINGS,
)
_BY_GROUP_RESOURCE = {(rt.group, rt.plural): rt for rt in STORED}
_BY_API_VERSION_KIND = {(rt.api_version, rt.kind): rt for rt in STORED}

# Create-only kinds that are answered, never stored: (group, plural) -> (kind, namespaced).
REVIEWS: dict[tuple[str, str], tuple[str, bool]] = {
    ("authorization.k8s.io", "subjectaccessreviews"): ("SubjectAccessReview", False),
    ("authorization.k8s.io", "selfsubjectaccessreviews"): ("SelfSubjectAccessReview", False),
    ("authorization.k8s.io", "localsubjectaccessreviews"): ("LocalSubjectAccessReview", True),
    ("authentication.k8s.io", "selfsubjectreviews"): ("SelfSubjectReview", False),
}

SERVED_VERSIONS = {"": "v1", RBAC_GROUP: "v1", "authorization.k8s.io": "v1", "authentication.k8s.io": "v1"}


def stored(group: str, plural: str) -> ResourceType | None:
    return _BY_GROUP_RESOURCE.get((group, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_API_VERSION_KIND.get((api_version, kind))
