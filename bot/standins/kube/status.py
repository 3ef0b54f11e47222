"""``metav1.Status`` failures exactly as kube-apiserver writes them, and field errors for ``Invalid``.

Messages follow apimachinery's ``k8s.io/apimachinery/pkg/api/errors`` constructors word for word, because
callers (and our own adapter) parse ``reason`` and show ``message`` to people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

FieldErrorType = Literal[
    "FieldValueInvalid", "FieldValueRequired", "FieldValueNotSupported", "FieldValueTooLong", "FieldValueForbidden"
]


def group_resource(resource: str, group: str) -> str:
    """``rolebindings.rbac.authorization.k8s.io``, or just ``serviceaccounts`` for the core group."""
    return f"{resource}.{group}" if group else resource


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``; its ``body`` is what apimachinery prints after the field path."""

    type: FieldErrorType
    field: str
    value: Any = None
    detail: str = ""
    supported: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        if self.type == "FieldValueRequired":
            text = "Required value"
        elif self.type == "FieldValueNotSupported":
            text = f"Unsupported value: {_go_value(self.value)}"
            if self.supported:
                text += ": supported values: " + ", ".join(json.dumps(s) for s in self.supported)
            return text
        elif self.type == "FieldValueTooLong":
            text = "Too long"
        elif self.type == "FieldValueForbidden":
            text = "Forbidden"
        else:
            text = f"Invalid value: {_go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body}"

    def cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.body, "field": self.field}


def invalid_value(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, None, detail)


def not_supported(path: str, value: Any, supported: tuple[str, ...]) -> FieldError:
    return FieldError("FieldValueNotSupported", path, value, supported=supported)


def too_long(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueTooLong", path, None, detail)


def forbidden_field(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, None, detail)


@dataclass
class ApiError(Exception):
    """A failure the double answers with a ``Status`` body and ``code`` as the HTTP status."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{group_resource(resource, group)} "{name}" not found', _details(name, group, resource)
    )


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{group_resource(resource, group)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {group_resource(resource, group)} "{name}": {why}',
        _details(name, group, resource),
    )


def stale_resource_version(resource: str, group: str, name: str) -> ApiError:
    return conflict(
        resource,
        group,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    qualified = f"{kind}.{group}" if group else kind
    summary = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    details = _details(name, group, kind)
    details["causes"] = [e.cause() for e in errors]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    if not resource:
        message = f"forbidden: {why}"
    elif name:
        message = f'{group_resource(resource, group)} "{name}" is forbidden: {why}'
    else:
        message = f"{group_resource(resource, group)} is forbidden: {why}"
    return ApiError(403, "Forbidden", message, _details(name, group, resource))


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource: {method}"
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "{content_type}")',
    )


def injected(code: int, retry_after: int | None) -> ApiError:
    """The failure a fault answers with, shaped like the API server's own for that code."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    details: dict[str, Any] | None = {"retryAfterSeconds": retry_after} if retry_after is not None else None
    if code == 429:
        return ApiError(429, "TooManyRequests", "Too many requests, please try again later.", details, headers)
    if code == 503:
        return ApiError(
            503, "ServiceUnavailable", "the server is currently unable to handle the request", details, headers
        )
    if code == 504:
        return ApiError(
            504, "Timeout", "Timeout: request did not complete within the allotted timeout", details, headers
        )
    if code == 500:
        causes = {"causes": [{"message": "injected fault"}]}
        return ApiError(
            500, "InternalError", "Internal error occurred: injected fault", {**(details or {}), **causes}, headers
        )
    raise ValueError(f"no fault shape for HTTP {code}; use 429, 500, 503 or 504")
