"""The HTTP front of the Kubernetes API double: routing, authentication, authorization and the verbs.

Every request goes the way it goes through kube-apiserver: faults (standing in for the network and
overload), bearer-token authentication (401), request-info parsing, authorization by the privileged
group and RBAC (403), then the resource handler (admission-like namespace check, the RBAC escalation
check, defaulting, validation, storage). One lock serialises all state, so each request sees and
leaves a consistent store.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.standins.kube import discovery, selectors, validation
from bot.standins.kube import resources as kinds
from bot.standins.kube.defaults import SYSTEM_NAMESPACES, bootstrap_policy, namespace_object
from bot.standins.kube.faults import Fault, Faults
from bot.standins.kube.kubeconfig import ContextEntry, write_kubeconfig
from bot.standins.kube.patches import JSON_PATCH, PATCH_TYPES, PatchError, json_patch, merge_patch
from bot.standins.kube.rbac import (
    SYSTEM_AUTHENTICATED,
    SYSTEM_MASTERS,
    Attributes,
    Authorizer,
    PolicyRule,
    RoleNotFound,
    UserInfo,
    service_account_user,
)
from bot.standins.kube.resources import ResourceType
from bot.standins.kube.status import (
    ApiError,
    FieldError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    injected,
    invalid,
    invalid_value,
    method_not_allowed,
    not_found,
    path_not_found,
    stale_resource_version,
    unauthorized,
    unsupported_media_type,
)
from bot.standins.kube.transport import HTTPServer, Reply, json_reply

JSON = dict[str, Any]

SERVER_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
MIN_TOKEN_SECONDS = 600
MAX_TOKEN_SECONDS = 1 << 32
DEFAULT_TOKEN_SECONDS = 3600
REQUEST_LOG_SIZE = 10_000
_RESOURCE_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation", "managedFields")


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RequestInfo:
    """What ``RequestInfoFactory`` makes of a URL: the attributes authorization decides on."""

    method: str
    path: str
    verb: str
    resource_request: bool
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    extra_parts: bool = False

    def attributes(self, user: UserInfo) -> Attributes:
        return Attributes(
            user=user,
            verb=self.verb,
            namespace=self.namespace,
            api_group=self.group,
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
            path=self.path,
            resource_request=self.resource_request,
        )


def parse_request(method: str, path: str, query: Mapping[str, list[str]]) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    non_resource = RequestInfo(method, path, method.lower(), resource_request=False)
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    if parts[0] == "api":
        if len(parts) < 3:
            return non_resource
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return non_resource
        group, version, rest = parts[1], parts[2], parts[3:]
    verb = _RESOURCE_VERBS.get(method, method.lower())
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", [""])[0] in ("true", "1") else "list"
    elif not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        method, path, verb, True, group, version, namespace, rest[0], name, subresource, extra_parts=len(rest) > 3
    )


@dataclass(frozen=True)
class RequestRecord:
    """One request as the double saw it, for tests that count calls or check who made them."""

    method: str
    path: str
    code: int
    user: str | None


@dataclass(frozen=True)
class _MintedToken:
    namespace: str
    name: str
    uid: str
    expires_at: datetime
    audiences: tuple[str, ...]


def _jwt_segment(payload: JSON) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()


class KubeApiServer:
    """A local kube-apiserver for the official client: real HTTP, real RBAC, Status bodies, faults.

    ``now`` is the clock for timestamps, token expiry and fault durations. ``namespaces`` are created
    besides the system ones. ``max_token_seconds`` models ``--service-account-max-token-expiration``.
    """

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = utc_now,
        namespaces: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        admin_user: str = "kubernetes-admin",
        max_token_seconds: int | None = None,
        git_version: str = "v1.31.0",
    ) -> None:
        self._clock = now
        self._ahead = timedelta(0)  # shift_clock
        self._host = host
        self._port = port
        self._max_token_seconds = max_token_seconds
        self._git_version = git_version
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], JSON] = {}
        self._resource_version = 0
        self._identities: dict[str, UserInfo] = {}
        self._tokens: dict[str, _MintedToken] = {}
        self._log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)  # a long demo must not grow without end
        self._authorizer = Authorizer(_RbacView(self))
        self._faults = Faults(now)
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._admin = UserInfo(admin_user, (SYSTEM_MASTERS, SYSTEM_AUTHENTICATED))
        self.admin_token = "admin-" + secrets.token_urlsafe(24)
        self._identities[self.admin_token] = self._admin
        for name in (*SYSTEM_NAMESPACES, *namespaces):
            if self.get_object("namespaces", name) is None:
                self.seed(namespace_object(name))
        for obj in bootstrap_policy():
            self.seed(obj)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> str:
        """Serve on a free port (or the one given) in a background thread; returns the base URL."""
        if self._httpd is not None:
            return self.url
        httpd = HTTPServer((self._host, self._port), self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-api-double", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and cut open connections, as a cluster that went away would."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._faults.clear()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the double is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # ----------------------------------------------------------------- identities and tokens

    def add_identity(self, token: str, user: str, groups: Iterable[str] = ()) -> UserInfo:
        """Accept ``token`` as ``user`` in ``groups`` (plus ``system:authenticated``), like a static token file."""
        group_list = [g for g in groups if g != SYSTEM_AUTHENTICATED]
        info = UserInfo(user, (*group_list, SYSTEM_AUTHENTICATED))
        with self._lock:
            self._identities[token] = info
        return info

    def remove_identity(self, token: str) -> None:
        with self._lock:
            self._identities.pop(token, None)

    def shift_clock(self, by: timedelta) -> None:
        """Run this server's clock (token expiry, timestamps) ``by`` ahead of the one it was given, so a
        test sees a token's end without waiting the ten minutes a TokenRequest lasts at least. Fault
        durations keep the given clock."""
        with self._lock:
            self._ahead += by

    def _now(self) -> datetime:
        return self._clock() + self._ahead

    def issue_token(self, namespace: str, name: str, seconds: int = DEFAULT_TOKEN_SECONDS) -> str:
        """Mint a token for an existing ServiceAccount without a request (a test's or the demo's shortcut)."""
        with self._lock:
            sa = self._get(kinds.SERVICE_ACCOUNTS, namespace, name)
            if sa is None:
                raise not_found("serviceaccounts", "", name)
            token, _ = self._mint(namespace, name, sa["metadata"]["uid"], seconds, (SERVER_AUDIENCE,))
            return token

    # ----------------------------------------------------------------- seeding and inspection

    def seed(self, obj: JSON) -> JSON:
        """Store ``obj`` as the cluster admin would create it (validated; no HTTP). Returns what was stored."""
        rt = kinds.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if rt is None:
            raise ValueError(f"the double does not store {obj.get('apiVersion')}/{obj.get('kind')}")
        namespace = (obj.get("metadata") or {}).get("namespace", "") if rt.namespaced else ""
        with self._lock:
            return copy.deepcopy(self._create(rt, namespace, copy.deepcopy(obj), self._admin, "", dry_run=False))

    def create_namespace(self, name: str) -> JSON:
        return self.seed(namespace_object(name))

    def get_object(self, resource: str, name: str, namespace: str | None = None) -> JSON | None:
        """A copy of one stored object by resource plural (``rolebindings``), or None."""
        rt = next((r for r in kinds.STORED if r.plural == resource), None)
        if rt is None:
            raise ValueError(f"the double does not store {resource}")
        with self._lock:
            found = self._get(rt, namespace or "", name)
            return copy.deepcopy(found) if found is not None else None

    def snapshot(self, label_selector: str | None = None) -> dict[str, list[JSON]]:
        """Every RoleBinding, ClusterRoleBinding and ServiceAccount (optionally only those matching)."""
        requirements = selectors.parse_label_selector(label_selector or "")
        with self._lock:
            return {
                rt.plural: [
                    copy.deepcopy(obj)
                    for obj in self._list_all(rt, None)
                    if selectors.labels_match(requirements, obj["metadata"].get("labels") or {})
                ]
                for rt in (kinds.ROLE_BINDINGS, kinds.CLUSTER_ROLE_BINDINGS, kinds.SERVICE_ACCOUNTS)
            }

    @property
    def requests(self) -> list[RequestRecord]:
        """The most recent requests (up to ``REQUEST_LOG_SIZE``), oldest first."""
        with self._lock:
            return list(self._log)

    def context(self, token: str | None = None, namespace: str | None = None) -> ContextEntry:
        """This double as one context of a kubeconfig (admin token unless another is given)."""
        return ContextEntry(self, token or self.admin_token, namespace)

    def write_kubeconfig(
        self,
        path: Path | str,
        context_name: str = "kube-double",
        token: str | None = None,
        namespace: str | None = None,
    ) -> Path:
        """A kubeconfig with one context for this double; see ``kubeconfig.write_kubeconfig`` for several."""
        return write_kubeconfig(path, {context_name: self.context(token, namespace)})

    # ----------------------------------------------------------------- faults

    def add_latency(
        self,
        seconds: float,
        *,
        path_prefix: str | None = None,
        method: str | None = None,
        times: int | None = None,
        for_seconds: float | None = None,
    ) -> None:
        """Delay matching requests by ``seconds`` (wall clock) before answering them."""
        self._faults.add(
            Fault("latency", seconds=seconds, remaining=times, path_prefix=path_prefix, method=method), for_seconds
        )

    def fail_requests(
        self,
        status: int = 503,
        *,
        times: int | None = None,
        for_seconds: float | None = None,
        retry_after: int | None = None,
        path_prefix: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer matching requests with 429, 500, 503 or 504 and a Status body.

        ``times`` limits it to the next N matching requests, ``for_seconds`` to a span of the injected
        clock; with neither, until ``clear_faults()``. 429 carries ``Retry-After`` (default 1 s).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        injected(status, retry_after)  # refuse unsupported codes now, not inside a request
        fault = Fault(
            "error", status=status, retry_after=retry_after, remaining=times, path_prefix=path_prefix, method=method
        )
        self._faults.add(fault, for_seconds)

    def hang_requests(
        self,
        seconds: float = 30.0,
        *,
        times: int | None = None,
        for_seconds: float | None = None,
        path_prefix: str | None = None,
        method: str | None = None,
    ) -> None:
        """Accept matching requests and never answer: hold them ``seconds`` then drop the connection."""
        fault = Fault("hang", seconds=seconds, remaining=times, path_prefix=path_prefix, method=method)
        self._faults.add(fault, for_seconds)

    def clear_faults(self) -> None:
        """Remove every fault and release requests hanging now."""
        self._faults.clear()

    # ----------------------------------------------------------------- request handling

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        """Answer one HTTP request; None means: say nothing and drop the connection (a hang)."""
        split = urlsplit(target)
        path, query = split.path or "/", parse_qs(split.query, keep_blank_values=True)
        outcome = self._faults.decide(method, path)
        if outcome.delay:
            self._faults.wait(outcome.delay)
        user: UserInfo | None = None
        try:
            if outcome.fault is not None and outcome.fault.kind == "hang":
                self._faults.wait(outcome.fault.seconds)
                self._record(method, path, 0, None)
                return None
            if outcome.fault is not None:
                raise injected(outcome.fault.status, outcome.fault.retry_after)
            with self._lock:
                user = self._authenticate(headers.get("authorization"))
                info = parse_request(method, path, query)
                self._authorize(info, user)
                reply = self._dispatch(info, user, query, headers, body)
        except ApiError as error:
            reply = json_reply(error.code, error.status(), error.headers)
        self._record(method, path, reply.code, user.name if user else None)
        return reply

    def _record(self, method: str, path: str, code: int, user: str | None) -> None:
        with self._lock:
            self._log.append(RequestRecord(method, path, code, user))

    def _authenticate(self, header: str | None) -> UserInfo:
        # Anonymous requests are refused outright (--anonymous-auth=false), as on most managed clusters.
        if not header or not header.startswith("Bearer "):
            raise unauthorized()
        token = header.removeprefix("Bearer ").strip()
        if token in self._identities:
            return self._identities[token]
        minted = self._tokens.get(token)
        if minted is None or self._now() >= minted.expires_at or SERVER_AUDIENCE not in minted.audiences:
            raise unauthorized()
        # Bound tokens die with their ServiceAccount: same name recreated later has a new uid.
        sa = self._get(kinds.SERVICE_ACCOUNTS, minted.namespace, minted.name)
        if sa is None or sa["metadata"]["uid"] != minted.uid:
            raise unauthorized()
        return service_account_user(minted.namespace, minted.name, minted.uid)

    def _authorize(self, info: RequestInfo, user: UserInfo) -> None:
        self._require(info.attributes(user))

    def _require(self, attrs: Attributes) -> None:
        if self._authorizer.authorize(attrs).allowed:
            return
        raise forbidden(attrs.resource, attrs.api_group, attrs.name, _forbidden_message(attrs))

    def _dispatch(
        self, info: RequestInfo, user: UserInfo, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> Reply:
        if not info.resource_request:
            return self._non_resource(info)
        if kinds.SERVED_VERSIONS.get(info.group) != info.version or info.extra_parts:
            raise path_not_found()
        if info.verb == "watch" or query.get("watch", [""])[0] in ("true", "1"):
            raise method_not_allowed("watch (not modelled by this double)")
        dry_run = _dry_run(query)
        review = kinds.REVIEWS.get((info.group, info.resource))
        if review is not None:
            if info.verb != "create" or info.name:
                raise method_not_allowed(info.method)
            kind, namespaced = review
            if namespaced != bool(info.namespace):
                raise path_not_found()
            return json_reply(201, self._review(kind, info.namespace, _decode(body), user))
        rt = kinds.stored(info.group, info.resource)
        if rt is None or (not rt.namespaced and info.namespace and rt is not kinds.NAMESPACES):
            raise path_not_found()
        namespace = "" if rt is kinds.NAMESPACES else info.namespace
        if info.subresource:
            if rt is kinds.SERVICE_ACCOUNTS and info.subresource == "token" and info.verb == "create":
                return json_reply(201, self._token_request(namespace, info.name, _decode(body), dry_run))
            raise path_not_found()
        if info.verb == "list":
            return json_reply(200, self._list(rt, namespace or None, query))
        if info.verb == "deletecollection":
            return json_reply(200, self._delete_collection(rt, namespace, query, dry_run))
        if info.verb == "create":
            if rt.namespaced and not namespace:
                raise method_not_allowed(info.method)
            return json_reply(201, self._create(rt, namespace, _decode(body), user, "", dry_run))
        if rt.namespaced and not namespace:
            raise path_not_found()
        if info.verb == "get":
            return json_reply(200, self._must_get(rt, namespace, info.name))
        if info.verb == "update":
            code, obj = self._replace(rt, namespace, info.name, _decode(body), user, dry_run)
            return json_reply(code, obj)
        if info.verb == "patch":
            content_type = (headers.get("content-type") or "").split(";")[0].strip()
            return json_reply(200, self._patch(rt, namespace, info.name, content_type, body, user, dry_run))
        if info.verb == "delete":
            return json_reply(200, self._delete(rt, namespace, info.name, body, dry_run))
        raise method_not_allowed(info.method)

    # ----------------------------------------------------------------- storage primitives

    def _key(self, rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str, str]:
        return (rt.group, rt.plural, namespace if rt.namespaced else "", name)

    def _get(self, rt: ResourceType, namespace: str, name: str) -> JSON | None:
        return self._objects.get(self._key(rt, namespace, name))

    def _must_get(self, rt: ResourceType, namespace: str, name: str) -> JSON:
        found = self._get(rt, namespace, name)
        if found is None:
            raise not_found(rt.plural, rt.group, name)
        return found

    def _list_all(self, rt: ResourceType, namespace: str | None) -> list[JSON]:
        keys = sorted(
            k
            for k in self._objects
            if k[0] == rt.group and k[1] == rt.plural and (namespace is None or k[2] == namespace)
        )
        return [self._objects[k] for k in keys]

    def _next_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    # ----------------------------------------------------------------- verbs

    def _create(
        self, rt: ResourceType, namespace: str, obj: JSON, user: UserInfo, url_name: str, dry_run: bool
    ) -> JSON:
        obj = _typed(obj, rt)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            # NamespaceLifecycle admission runs before the registry: a missing namespace is a 404.
            if self._get(kinds.NAMESPACES, "", namespace) is None:
                raise not_found("namespaces", "", namespace)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        self._check_escalation(rt, obj, None, user, namespace, url_name)
        rt.defaults(obj)
        errors = rt.validate(obj)
        if errors:
            raise invalid(rt.kind, rt.group, meta.get("name") or "", errors)
        if self._get(rt, namespace, meta["name"]) is not None:
            raise already_exists(rt.plural, rt.group, meta["name"])
        for key in _SERVER_FIELDS:
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timestamp(self._now())
        meta["resourceVersion"] = self._next_resource_version()
        if not dry_run:
            self._objects[self._key(rt, namespace, meta["name"])] = obj
        return obj

    def _replace(
        self, rt: ResourceType, namespace: str, name: str, obj: JSON, user: UserInfo, dry_run: bool
    ) -> tuple[int, JSON]:
        obj = _typed(obj, rt)
        meta = obj["metadata"]
        if meta.get("name") != name:
            raise bad_request(
                f"the name of the object ({meta.get('name') or ''}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        old = self._get(rt, namespace, name)
        if old is None:
            if not rt.allow_create_on_update:
                raise not_found(rt.plural, rt.group, name)
            # An update that creates is also a create, and is authorized as one.
            self._require(Attributes(user, "create", namespace, rt.group, rt.plural, name=name))
            meta.pop("resourceVersion", None)
            return 201, self._create(rt, namespace, obj, user, name, dry_run)
        return 200, self._update(rt, namespace, name, obj, old, user, dry_run)

    def _update(
        self, rt: ResourceType, namespace: str, name: str, obj: JSON, old: JSON, user: UserInfo, dry_run: bool
    ) -> JSON:
        meta, old_meta = obj["metadata"], old["metadata"]
        wanted_version = meta.get("resourceVersion")
        if wanted_version and wanted_version != old_meta["resourceVersion"]:
            raise stale_resource_version(rt.plural, rt.group, name)
        if rt.namespaced:
            meta["namespace"] = namespace
        self._check_escalation(rt, obj, old, user, namespace, name)
        rt.defaults(obj)
        errors = rt.validate(obj)
        errors += _immutable_meta(meta, old_meta)
        if rt.is_binding:
            errors += validation.role_ref_unchanged(obj, old)
        if errors:
            raise invalid(rt.kind, rt.group, name, errors)
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if key in old_meta:
                meta[key] = old_meta[key]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if obj == old:
            return old  # a no-op update does not bump resourceVersion, as in Kubernetes
        meta["resourceVersion"] = self._next_resource_version()
        if not dry_run:
            self._objects[self._key(rt, namespace, name)] = obj
        return obj

    def _patch(
        self, rt: ResourceType, namespace: str, name: str, content_type: str, body: bytes, user: UserInfo, dry_run: bool
    ) -> JSON:
        if content_type not in PATCH_TYPES:
            raise unsupported_media_type(content_type)
        old = self._must_get(rt, namespace, name)
        patch = _decode_any(body)
        try:
            if content_type == JSON_PATCH:
                patched = json_patch(old, patch)
            elif isinstance(patch, dict):
                patched = merge_patch(old, patch)
            else:
                raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        except PatchError as exc:
            raise ApiError(
                422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
            ) from exc
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request")
        patched["apiVersion"], patched["kind"] = rt.api_version, rt.kind
        return self._update(rt, namespace, name, patched, old, user, dry_run)

    def _delete(self, rt: ResourceType, namespace: str, name: str, body: bytes, dry_run: bool) -> JSON:
        old = self._must_get(rt, namespace, name)
        options = _decode(body) if body.strip() else {}
        preconditions = options.get("preconditions") or {}
        old_meta = old["metadata"]
        if preconditions.get("uid") and preconditions["uid"] != old_meta["uid"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {old_meta['uid']}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != old_meta["resourceVersion"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: {old_meta['resourceVersion']}",
            )
        if not dry_run:
            self._remove(rt, namespace, name)
        if not rt.return_deleted_object:
            details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": old_meta["uid"]}
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        gone = copy.deepcopy(old)
        if rt is kinds.NAMESPACES:
            # Kubernetes answers with the namespace in Terminating; here its content is already gone.
            gone["metadata"]["deletionTimestamp"] = timestamp(self._now())
            gone.setdefault("status", {})["phase"] = "Terminating"
        return gone

    def _remove(self, rt: ResourceType, namespace: str, name: str) -> None:
        self._objects.pop(self._key(rt, namespace, name), None)
        if rt is kinds.NAMESPACES:
            # Namespaced keys carry their namespace in slot 2; cluster-scoped ones carry "".
            for key in [k for k in self._objects if k[2] == name]:
                del self._objects[key]
        self._resource_version += 1

    def _delete_collection(
        self, rt: ResourceType, namespace: str, query: Mapping[str, list[str]], dry_run: bool
    ) -> JSON:
        listing = self._list(rt, namespace or None, query)
        for item in listing["items"]:
            if not dry_run:
                self._remove(rt, item["metadata"].get("namespace") or "", item["metadata"]["name"])
        return listing

    def _list(self, rt: ResourceType, namespace: str | None, query: Mapping[str, list[str]]) -> JSON:
        try:
            labels = selectors.parse_label_selector(query.get("labelSelector", [""])[0])
            fields = selectors.parse_field_selector(query.get("fieldSelector", [""])[0])
        except selectors.SelectorError as exc:
            raise bad_request(str(exc)) from exc
        items = [
            obj
            for obj in self._list_all(rt, namespace)
            if selectors.labels_match(labels, obj["metadata"].get("labels") or {})
            and all(f.matches(obj) for f in fields)
        ]
        start = _continue_from(query.get("continue", [""])[0])
        items = items[start:]
        meta: JSON = {"resourceVersion": str(self._resource_version)}
        limit = _int_param(query, "limit")
        if limit and len(items) > limit:
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        # As on the wire from kube-apiserver: list items carry no apiVersion/kind of their own.
        stripped = [{k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in items]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": stripped}

    # ----------------------------------------------------------------- RBAC escalation prevention

    def _check_escalation(
        self, rt: ResourceType, obj: JSON, old: JSON | None, user: UserInfo, namespace: str, url_name: str
    ) -> None:
        if not rt.is_rbac or self._authorizer.escalation_allowed(user):
            return
        if old is not None and _only_gc_fields_changed(obj, old):
            return
        name = obj["metadata"].get("name") or url_name
        if rt.is_binding:
            ref = obj.get("roleRef") or {}
            ref_resource = {"ClusterRole": "clusterroles", "Role": "roles"}.get(ref.get("kind") or "")
            if ref_resource is None:
                raise ApiError(
                    500,
                    "InternalError",
                    f'Internal error occurred: unsupported role reference kind: "{ref.get("kind")}"',
                )
            bind = Attributes(
                user, "bind", namespace, ref.get("apiGroup") or "", ref_resource, name=ref.get("name") or ""
            )
            if self._authorizer.authorize(bind).allowed:
                return
            try:
                wanted = self._authorizer.role_reference_rules(ref, namespace)
            except RoleNotFound as exc:
                raise not_found(exc.resource, validation.RBAC_GROUP, exc.name) from exc
        else:
            escalate = Attributes(user, "escalate", namespace, rt.group, rt.plural, name=url_name)
            if self._authorizer.authorize(escalate).allowed:
                return
            wanted = [PolicyRule.from_dict(r) for r in obj.get("rules") or []]
        missing = self._authorizer.missing_rules(user, namespace, wanted)
        if missing:
            groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
            listed = "\n".join(sorted(rule.compact() for rule in missing))
            raise forbidden(
                rt.plural,
                rt.group,
                name,
                f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions not currently held:\n{listed}',
            )

    # ----------------------------------------------------------------- reviews and tokens

    def _review(self, kind: str, namespace: str, body: JSON, requester: UserInfo) -> JSON:
        group = "authentication.k8s.io" if kind == "SelfSubjectReview" else "authorization.k8s.io"
        response: JSON = {"kind": kind, "apiVersion": f"{group}/v1", "metadata": {"creationTimestamp": None}}
        if kind == "SelfSubjectReview":
            response["status"] = {"userInfo": requester.as_dict()}
            return response
        spec = body.get("spec") or {}
        resource_attrs, non_resource_attrs = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        errors: list[FieldError] = []
        if (resource_attrs is None) == (non_resource_attrs is None):
            errors.append(
                invalid_value(
                    "spec.resourceAttributes",
                    resource_attrs,
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            )
        if kind == "SelfSubjectAccessReview":
            user = requester
        else:
            if not spec.get("user") and not spec.get("groups"):
                errors.append(
                    invalid_value(
                        "spec.user", spec.get("user") or "", "at least one of user or group must be specified"
                    )
                )
            user = UserInfo(spec.get("user") or "", tuple(spec.get("groups") or ()), spec.get("uid") or "")
        if kind == "LocalSubjectAccessReview":
            if non_resource_attrs is not None:
                errors.append(
                    invalid_value(
                        "spec.nonResourceAttributes", non_resource_attrs, "disallowed on this kind of request"
                    )
                )
            if resource_attrs is not None and (resource_attrs.get("namespace") or "") != namespace:
                errors.append(
                    invalid_value(
                        "spec.resourceAttributes.namespace",
                        resource_attrs.get("namespace") or "",
                        "must match metadata.namespace",
                    )
                )
        if errors:
            raise invalid(kind, group, "", errors)
        if resource_attrs is not None:
            attrs = Attributes(
                user,
                resource_attrs.get("verb") or "",
                resource_attrs.get("namespace") or "",
                resource_attrs.get("group") or "",
                resource_attrs.get("resource") or "",
                resource_attrs.get("subresource") or "",
                resource_attrs.get("name") or "",
            )
        else:
            assert non_resource_attrs is not None  # exactly one of the two was checked above
            attrs = Attributes(
                user,
                non_resource_attrs.get("verb") or "",
                path=non_resource_attrs.get("path") or "",
                resource_request=False,
            )
        decision = self._authorizer.authorize(attrs)
        status: JSON = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        response["spec"] = spec
        if namespace:
            response["metadata"]["namespace"] = namespace
        response["status"] = status
        return response

    def _token_request(self, namespace: str, name: str, body: JSON, dry_run: bool) -> JSON:
        sa = self._must_get(kinds.SERVICE_ACCOUNTS, namespace, name)
        spec = body.get("spec") or {}
        seconds = spec.get("expirationSeconds")
        if seconds is None:
            seconds = DEFAULT_TOKEN_SECONDS
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise bad_request("spec.expirationSeconds must be an integer")
        if seconds < MIN_TOKEN_SECONDS:
            raise invalid(
                "TokenRequest",
                "authentication.k8s.io",
                name,
                [invalid_value("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")],
            )
        if seconds > MAX_TOKEN_SECONDS:
            raise invalid(
                "TokenRequest",
                "authentication.k8s.io",
                name,
                [
                    invalid_value(
                        "spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds"
                    )
                ],
            )
        if self._max_token_seconds is not None:
            seconds = min(seconds, self._max_token_seconds)
        audiences = tuple(spec.get("audiences") or (SERVER_AUDIENCE,))
        if dry_run:
            token, expires = "", self._now().replace(microsecond=0) + timedelta(seconds=seconds)
        else:
            token, expires = self._mint(namespace, name, sa["metadata"]["uid"], seconds, audiences)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": timestamp(self._now())},
            "spec": {"audiences": list(audiences), "expirationSeconds": seconds, "boundObjectRef": None},
            "status": {"token": token, "expirationTimestamp": timestamp(expires)},
        }

    def _mint(
        self, namespace: str, name: str, uid: str, seconds: int, audiences: tuple[str, ...]
    ) -> tuple[str, datetime]:
        issued = self._now().replace(microsecond=0)
        expires = issued + timedelta(seconds=seconds)
        claims = {
            "aud": list(audiences),
            "exp": int(expires.timestamp()),
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "iss": SERVER_AUDIENCE,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        # Shaped like a real bound token so code that peeks at claims works; the "signature" is random
        # and the double checks tokens by lookup, not by key.
        token = ".".join(
            (_jwt_segment({"alg": "RS256", "kid": "kube-api-double"}), _jwt_segment(claims), secrets.token_urlsafe(48))
        )
        with self._lock:
            self._tokens = {t: m for t, m in self._tokens.items() if m.expires_at > issued}  # forget dead ones
            self._tokens[token] = _MintedToken(namespace, name, uid, expires, audiences)
        return token, expires

    # ----------------------------------------------------------------- non-resource paths

    def _non_resource(self, info: RequestInfo) -> Reply:
        if info.verb != "get":
            raise method_not_allowed(info.method)
        code, body = discovery.answer(info.path, self._git_version)
        if isinstance(body, bytes):
            return Reply(code, body, "text/plain; charset=utf-8")
        return json_reply(code, body)


class _RbacView:
    """The stored RBAC objects as the authorizer reads them (callers hold the double's lock)."""

    def __init__(self, api: KubeApiServer) -> None:
        self._api = api

    def cluster_role_bindings(self) -> list[JSON]:
        return self._api._list_all(kinds.CLUSTER_ROLE_BINDINGS, None)

    def role_bindings(self, namespace: str) -> list[JSON]:
        return self._api._list_all(kinds.ROLE_BINDINGS, namespace)

    def cluster_role(self, name: str) -> JSON | None:
        return self._api._get(kinds.CLUSTER_ROLES, "", name)

    def role(self, namespace: str, name: str) -> JSON | None:
        return self._api._get(kinds.ROLES, namespace, name)


def _forbidden_message(attrs: Attributes) -> str:
    """``authorization.forbiddenMessage``: what a 403 says about the request."""
    who = attrs.user.name
    if not attrs.resource_request:
        return f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return f'User "{who}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'


def _decode_any(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError as exc:
        raise bad_request(f"the body of the request could not be decoded: {exc}") from exc


def _decode(body: bytes) -> JSON:
    value = _decode_any(body)
    if not isinstance(value, dict):
        raise bad_request("the body of the request must be a JSON object")
    return value


def _typed(obj: JSON, rt: ResourceType) -> JSON:
    """Default apiVersion/kind from the endpoint, as the decoder does; refuse a mismatch."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version and api_version != rt.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
    meta = obj.get("metadata")
    if meta is None:
        obj["metadata"] = {}
    elif not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    return obj


def _immutable_meta(meta: JSON, old: JSON) -> list[FieldError]:
    errors = []
    for key in ("name", "namespace", "uid"):
        if key in meta and meta.get(key) and meta.get(key) != old.get(key):
            errors.append(invalid_value(f"metadata.{key}", meta.get(key), "field is immutable"))
    return errors


def _only_gc_fields_changed(obj: JSON, old: JSON) -> bool:
    """``IsOnlyMutatingGCFields``: ownerReferences/finalizers edits skip the escalation check."""

    def without_gc(o: JSON) -> JSON:
        trimmed = copy.deepcopy(o)
        for key in ("ownerReferences", "finalizers", "resourceVersion"):
            trimmed.get("metadata", {}).pop(key, None)
        return trimmed

    return without_gc(obj) == without_gc(old)


def _dry_run(query: Mapping[str, list[str]]) -> bool:
    values = query.get("dryRun", [])
    for value in values:
        if value != "All":
            raise bad_request(f'Invalid dry run value: "{value}"; supported values: "All"')
    return bool(values)


def _int_param(query: Mapping[str, list[str]], name: str) -> int | None:
    raw = query.get(name, [""])[0]
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: invalid integer {raw!r}") from exc


def _continue_from(token: str) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("continue key is not valid") from exc
