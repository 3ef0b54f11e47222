"""RBAC as kube-apiserver evaluates it: the authorizer, the rule resolver and the escalation check.

A port of ``plugin/pkg/auth/authorizer/rbac`` and ``pkg/registry/rbac/validation``: ClusterRoleBindings
apply everywhere, RoleBindings only in their namespace (a RoleBinding to a ClusterRole grants that
role's rules in the binding's namespace only); ``*`` matches any verb, API group or resource;
``*/scale`` matches that subresource of any resource; ``resourceNames`` restricts by object name;
non-resource URLs match exactly or by a trailing ``*``. ``system:masters`` is allowed everything before
RBAC is consulted, as the API server's privileged-group authorizer does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

SYSTEM_MASTERS = "system:masters"
SYSTEM_AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    """Who is asking, as an authenticator reports it."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""

    def as_dict(self) -> dict[str, Any]:
        info: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        return info


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(
        f"{SA_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", SYSTEM_AUTHENTICATED),
        uid,
    )


@dataclass(frozen=True)
class Attributes:
    """One authorization question (``authorizer.AttributesRecord``)."""

    user: UserInfo
    verb: str
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True)
class PolicyRule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, rule: dict[str, Any]) -> PolicyRule:
        return cls(
            tuple(rule.get("verbs") or ()),
            tuple(rule.get("apiGroups") or ()),
            tuple(rule.get("resources") or ()),
            tuple(rule.get("resourceNames") or ()),
            tuple(rule.get("nonResourceURLs") or ()),
        )

    def compact(self) -> str:
        """``rbacv1helpers.CompactString``: how the escalation error lists a missing permission."""

        def q(values: tuple[str, ...]) -> str:
            return "[" + " ".join(f'"{v}"' for v in values) + "]"

        parts = []
        if self.api_groups:
            parts.append(f"APIGroups:{q(self.api_groups)}")
        if self.resources:
            parts.append(f"Resources:{q(self.resources)}")
        if self.non_resource_urls:
            parts.append(f"NonResourceURLs:{q(self.non_resource_urls)}")
        if self.resource_names:
            parts.append(f"ResourceNames:{q(self.resource_names)}")
        if self.verbs:
            parts.append(f"Verbs:{q(self.verbs)}")
        return "{" + ", ".join(parts) + "}"


class RoleNotFound(LookupError):
    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource}.rbac.authorization.k8s.io "{name}" not found')
        self.resource = resource
        self.name = name


class RbacObjects(Protocol):
    """Read access to the stored RBAC objects (the store implements it)."""

    def cluster_role_bindings(self) -> list[dict[str, Any]]: ...

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]: ...

    def cluster_role(self, name: str) -> dict[str, Any] | None: ...

    def role(self, namespace: str, name: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def _subject_applies(user: UserInfo, subject: dict[str, Any], namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name") or ""
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        # A RoleBinding may name a ServiceAccount without a namespace: it means one in its own.
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"{SA_PREFIX}{sa_namespace}:{name}"
    return False


def _describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _describe(binding: dict[str, Any], subject: dict[str, Any]) -> str:
    meta, ref = binding["metadata"], binding.get("roleRef") or {}
    namespace = meta.get("namespace") or ""
    if namespace:
        return (
            f'RoleBinding "{meta["name"]}/{namespace}" of {ref.get("kind")} "{ref.get("name")}" '
            f"to {_describe_subject(subject, namespace)}"
        )
    return f'ClusterRoleBinding "{meta["name"]}" of {ref.get("kind")} "{ref.get("name")}" to {_describe_subject(subject, "")}'


def verb_matches(rule: PolicyRule, verb: str) -> bool:
    return "*" in rule.verbs or verb in rule.verbs


def group_matches(rule: PolicyRule, group: str) -> bool:
    return "*" in rule.api_groups or group in rule.api_groups


def resource_matches(rule: PolicyRule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for candidate in rule.resources:
        if candidate in ("*", combined):
            return True
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


def name_matches(rule: PolicyRule, name: str) -> bool:
    return not rule.resource_names or name in rule.resource_names


def url_matches(rule: PolicyRule, path: str) -> bool:
    for candidate in rule.non_resource_urls:
        if candidate in ("*", path):
            return True
        if candidate.endswith("*") and path.startswith(candidate.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: PolicyRule) -> bool:
    if attrs.resource_request:
        return (
            verb_matches(rule, attrs.verb)
            and group_matches(rule, attrs.api_group)
            and resource_matches(rule, attrs.resource, attrs.subresource)
            and name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and url_matches(rule, attrs.path)


class Authorizer:
    """The privileged-group authorizer followed by RBAC, over whatever ``objects`` currently holds."""

    def __init__(self, objects: RbacObjects) -> None:
        self._objects = objects

    def role_reference_rules(self, role_ref: dict[str, Any], namespace: str) -> list[PolicyRule]:
        kind, name = role_ref.get("kind"), role_ref.get("name") or ""
        if kind == "ClusterRole":
            role = self._objects.cluster_role(name)
            if role is None:
                raise RoleNotFound("clusterroles", name)
        elif kind == "Role":
            role = self._objects.role(namespace, name)
            if role is None:
                raise RoleNotFound("roles", name)
        else:
            raise RoleNotFound("roles", name)
        return [PolicyRule.from_dict(r) for r in role.get("rules") or []]

    def _visit(self, user: UserInfo, namespace: str) -> Iterator[tuple[str, PolicyRule]]:
        for binding in self._objects.cluster_role_bindings():
            yield from self._binding_rules(user, binding, "")
        if namespace:
            for binding in self._objects.role_bindings(namespace):
                yield from self._binding_rules(user, binding, namespace)

    def _binding_rules(
        self, user: UserInfo, binding: dict[str, Any], namespace: str
    ) -> Iterator[tuple[str, PolicyRule]]:
        subject = next((s for s in binding.get("subjects") or [] if _subject_applies(user, s, namespace)), None)
        if subject is None:
            return
        try:
            rules = self.role_reference_rules(binding.get("roleRef") or {}, namespace)
        except RoleNotFound:
            return  # a dangling roleRef grants nothing, exactly as in Kubernetes
        source = _describe(binding, subject)
        for rule in rules:
            yield source, rule

    def rules_for(self, user: UserInfo, namespace: str) -> list[PolicyRule]:
        return [rule for _, rule in self._visit(user, namespace)]

    def authorize(self, attrs: Attributes) -> Decision:
        if SYSTEM_MASTERS in attrs.user.groups:
            return Decision(True)
        for source, rule in self._visit(attrs.user, attrs.namespace):
            if rule_allows(attrs, rule):
                return Decision(True, f"RBAC: allowed by {source}")
        return Decision(False)

    def escalation_allowed(self, user: UserInfo) -> bool:
        return SYSTEM_MASTERS in user.groups

    def missing_rules(self, user: UserInfo, namespace: str, wanted: Iterable[PolicyRule]) -> list[PolicyRule]:
        """What of ``wanted`` ``user`` does not already hold in ``namespace`` (``ConfirmNoEscalation``)."""
        owned = self.rules_for(user, namespace)
        missing = []
        for rule in wanted:
            for simple in breakdown(rule):
                if not any(rule_covers(owner, simple) for owner in owned):
                    missing.append(simple)
        return compact_rules(missing)


def breakdown(rule: PolicyRule) -> list[PolicyRule]:
    """One rule per group × resource × verb (× resource name), or per URL × verb."""
    simple: list[PolicyRule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    simple.extend(PolicyRule((verb,), (group,), (resource,), (n,)) for n in rule.resource_names)
                else:
                    simple.append(PolicyRule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        simple.extend(PolicyRule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return simple


def _resources_cover(owned: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    if "*" in owned or set(wanted) <= set(owned):
        return True
    for resource in wanted:
        if resource in owned:
            continue
        if "/" not in resource or "*/" + resource.split("/", 1)[1] not in owned:
            return False
    return True


def _url_covers(owner: str, wanted: str) -> bool:
    return owner == wanted or (owner.endswith("*") and wanted.startswith(owner.rstrip("*")))


def rule_covers(owner: PolicyRule, wanted: PolicyRule) -> bool:
    """``validation.ruleCovers`` from component-helpers."""
    verbs = "*" in owner.verbs or set(wanted.verbs) <= set(owner.verbs)
    groups = "*" in owner.api_groups or set(wanted.api_groups) <= set(owner.api_groups)
    resources = _resources_cover(owner.resources, wanted.resources)
    urls = all(any(_url_covers(o, w) for o in owner.non_resource_urls) for w in wanted.non_resource_urls)
    if wanted.resource_names:
        names = not owner.resource_names or set(wanted.resource_names) <= set(owner.resource_names)
    else:
        names = not owner.resource_names
    return verbs and groups and resources and names and urls


def compact_rules(rules: list[PolicyRule]) -> list[PolicyRule]:
    """Merge simple rules that differ only in verb, as ``CompactRules`` does for the error message."""
    merged: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    for rule in rules:
        key = (rule.api_groups, rule.resources, rule.resource_names, rule.non_resource_urls)
        verbs = merged.setdefault(key, [])
        verbs.extend(v for v in rule.verbs if v not in verbs)
    return [
        PolicyRule(tuple(verbs), groups, resources, names, urls)
        for (groups, resources, names, urls), verbs in merged.items()
    ]
