"""Object validation as kube-apiserver does it for the kinds the double stores (answers 422 Invalid).

Name rules differ per kind, as in Kubernetes: RBAC objects only need a valid path segment
(``system:controller:x`` is a legal ClusterRole name), ServiceAccounts and Pods need a DNS-1123
subdomain, Namespaces a DNS-1123 label.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.standins.kube.status import FieldError, forbidden_field, invalid_value, not_supported, required, too_long

RBAC_GROUP = "rbac.authorization.k8s.io"

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN)
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME)
_LABEL_VALUE = "(" + _QUALIFIED_NAME + ")?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE)
_ANNOTATIONS_MAX_BYTES = 256 * 1024

NameValidator = Callable[[str], list[str]]


def dns1123_label(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            f"validation is '{_DNS1123_LABEL}')"
        )
    return errors


def dns1123_subdomain(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
            f"is '{_DNS1123_SUBDOMAIN}')"
        )
    return errors


def path_segment_name(value: str) -> list[str]:
    """``path.IsValidPathSegmentName``: what RBAC objects require of their names."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: optional DNS-subdomain prefix, ``/``, and a name of at most 63 chars."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if errs := dns1123_subdomain(prefix):
            return ["prefix part " + e for e in errs]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{_QUALIFIED_NAME}') with an optional DNS subdomain prefix and '/' (e.g. "
            "'example.com/MyName')"
        ]
    if not name:
        return ["name part must be non-empty"]
    errors = []
    if len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            f"alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            f"'{_QUALIFIED_NAME}')"
        )
    return errors


def label_value(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
            f"regex used for validation is '{_LABEL_VALUE}')"
        )
    return errors


def _string_map(meta: dict[str, Any], key: str, errors: list[FieldError]) -> dict[str, Any]:
    value = meta.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        errors.append(invalid_value(f"metadata.{key}", value, "must be a map of strings"))
        return {}
    return value


def object_meta(obj: dict[str, Any], *, namespaced: bool, name_rule: NameValidator) -> list[FieldError]:
    """``ValidateObjectMeta``: name, namespace presence, label and annotation syntax and size."""
    errors: list[FieldError] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        errors.append(required("metadata.name", "name or generateName is required"))
    else:
        errors.extend(invalid_value("metadata.name", name, msg) for msg in name_rule(name))
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        errors.append(required("metadata.namespace"))
    elif namespaced:
        errors.extend(invalid_value("metadata.namespace", namespace, msg) for msg in dns1123_label(namespace))
    elif namespace:
        errors.append(forbidden_field("metadata.namespace", "not allowed on this type"))
    for key, value in _string_map(meta, "labels", errors).items():
        errors.extend(invalid_value("metadata.labels", key, msg) for msg in qualified_name(key))
        errors.extend(invalid_value("metadata.labels", value, msg) for msg in label_value(value))
    annotations = _string_map(meta, "annotations", errors)
    for key in annotations:
        errors.extend(invalid_value("metadata.annotations", key, msg) for msg in qualified_name(key.lower()))
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > _ANNOTATIONS_MAX_BYTES:
        errors.append(too_long("metadata.annotations", f"must have at most {_ANNOTATIONS_MAX_BYTES} bytes"))
    return errors


def _policy_rules(obj: dict[str, Any], *, namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, rule in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            errors.append(required(f"{path}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                errors.append(
                    invalid_value(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errors.append(
                    invalid_value(
                        f"{path}.nonResourceURLs",
                        urls,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            errors.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            errors.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
        if rule.get("resourceNames") and len(rule.get("resources") or []) > 1:
            errors.append(required(f"{path}.resourceNames", "resource names cannot apply to multiple resources"))
    return errors


def role(obj: dict[str, Any], *, namespaced: bool) -> list[FieldError]:
    return object_meta(obj, namespaced=namespaced, name_rule=path_segment_name) + _policy_rules(
        obj, namespaced=namespaced
    )


def role_binding(obj: dict[str, Any], *, namespaced: bool) -> list[FieldError]:
    errors = object_meta(obj, namespaced=namespaced, name_rule=path_segment_name)
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != RBAC_GROUP:
        errors.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (RBAC_GROUP,)))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        errors.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    if not ref.get("name"):
        errors.append(required("roleRef.name"))
    else:
        errors.extend(invalid_value("roleRef.name", ref["name"], msg) for msg in path_segment_name(ref["name"]))
    for i, subject in enumerate(obj.get("subjects") or []):
        errors.extend(_subject(subject, namespaced=namespaced, path=f"subjects[{i}]"))
    return errors


def _subject(subject: dict[str, Any], *, namespaced: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    name = subject.get("name") or ""
    api_group = subject.get("apiGroup") or ""
    kind = subject.get("kind") or ""
    if not name:
        errors.append(required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            errors.extend(invalid_value(f"{path}.name", name, msg) for msg in dns1123_subdomain(name))
        if api_group:
            errors.append(not_supported(f"{path}.apiGroup", api_group, ("",)))
        if not namespaced and not subject.get("namespace"):
            errors.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if api_group != RBAC_GROUP:
            errors.append(not_supported(f"{path}.apiGroup", api_group, (RBAC_GROUP,)))
    else:
        errors.append(not_supported(f"{path}.kind", kind, ("ServiceAccount", "User", "Group")))
    return errors


def role_ref_unchanged(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    if (new.get("roleRef") or {}) != (old.get("roleRef") or {}):
        return [invalid_value("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


def namespace(obj: dict[str, Any]) -> list[FieldError]:
    return object_meta(obj, namespaced=False, name_rule=dns1123_label)


def service_account(obj: dict[str, Any]) -> list[FieldError]:
    return object_meta(obj, namespaced=True, name_rule=dns1123_subdomain)


def pod(obj: dict[str, Any]) -> list[FieldError]:
    errors = object_meta(obj, namespaced=True, name_rule=dns1123_subdomain)
    containers = (obj.get("spec") or {}).get("containers") or []
    if not containers:
        errors.append(required("spec.containers"))
    for i, container in enumerate(containers):
        if not container.get("name"):
            errors.append(required(f"spec.containers[{i}].name"))
        if not container.get("image"):
            errors.append(required(f"spec.containers[{i}].image"))
    return errors
