"""The Kubernetes adapter: every cluster the roster names, behind ``bot.ports.ClusterGateway``.

This is the only module that imports ``kubernetes``. It turns a ``BindingSpec`` into exactly what the
contract says lands in a cluster (one RoleBinding or ClusterRoleBinding per grant, plus a ServiceAccount
and a short-lived token for ``credentials: token``), reads managed bindings back for the sweep, and asks
the API server access questions. Library failures are translated here, as kopf's ``clients/errors.py``
does: 404 → ``BindingNotFound`` where absence is the answer, AlreadyExists → adopt or
``BindingConflict``, 400/403/422 → ``ClusterRefused``, 401 → ``CredentialsRejected`` (transient: the
credentials are reloaded), 409 Conflict → ``TemporaryError``, 429/5xx/timeouts/connection errors →
``ClusterUnavailable`` (with Retry-After as the delay).

What it must not do: load configuration or touch a cluster at import or construction (clients are
built on first use), retry on its own (urllib3's retries are off; the job's retry policy decides),
block forever (every call has a connect and read timeout), or let a token or kubeconfig into an
exception message or a log line.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException
from kubernetes.config import ConfigException

from bot.domain.grants import (
    DEFAULT_INSTALLATION,
    EXPIRES_AT_ANNOTATION,
    INSTALLATION_LABEL,
    MANAGED_SELECTOR,
    REQUEST_ID_LABEL,
    SERVICE_ACCOUNT_ANNOTATION,
    SYSTEM_NAMESPACE,
    THREAD_ANNOTATION,
    BindingSpec,
    Credentials,
    IssuedCredentials,
    ManagedBinding,
    ManagedServiceAccount,
    RequestThread,
    binding_name,
    format_instant,
    parse_instant,
)
from bot.domain.ids import RequestId, parse_request_id
from bot.domain.warrant import WARRANT_ANNOTATION, Subject, Warranted, sign_warrant, warrant_verifies
from bot.metrics import count_error
from bot.ports import (
    AccessCheck,
    BindingConflict,
    BindingNotFound,
    BreakglassError,
    ClusterRefused,
    ClusterUnavailable,
    CredentialsRejected,
    TemporaryError,
    UnknownCluster,
)

log = logging.getLogger(__name__)

IN_CLUSTER = "in-cluster"
RBAC_GROUP = "rbac.authorization.k8s.io"
MERGE_PATCH = "application/merge-patch+json"
MIN_TOKEN_SECONDS = 600  # the API server refuses a TokenRequest for less than ten minutes
DEFAULT_REQUEST_TIMEOUT = (3.0, 10.0)  # (connect, read) seconds
_LIST_PAGE = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClusterTarget:
    """How to reach one roster cluster: a kubeconfig context (or ``in-cluster``) and its grant mode."""

    context: str
    credentials: Credentials = "user"


_Binding: TypeAlias = client.V1RoleBinding | client.V1ClusterRoleBinding


@dataclass(frozen=True)
class _Cluster:
    """One cluster's client and the typed API groups over it."""

    name: str
    target: ClusterTarget
    api: ApiClient
    rbac: client.RbacAuthorizationV1Api
    core: client.CoreV1Api
    authz: client.AuthorizationV1Api


def _status(exc: ApiException) -> tuple[str, str, dict[str, Any]]:
    """``reason``, ``message`` and ``details`` of the Status body the API server sent with an error."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return str(exc.reason or ""), "", {}
    return str(body.get("reason") or exc.reason or ""), str(body.get("message") or ""), body.get("details") or {}


def _retry_after(exc: ApiException, details: Mapping[str, Any]) -> float:
    headers: Mapping[str, str] = exc.headers or {}
    for raw in (headers.get("Retry-After"), details.get("retryAfterSeconds")):
        try:
            if raw is not None and float(raw) >= 0:
                return float(raw)
        except (TypeError, ValueError):
            continue  # an HTTP-date or garbage: no least wait, the retry keeps its backoff
    return 0.0


def _error_kind(exc: ApiException) -> str:
    """The Status ``reason`` (NotFound, Conflict, ServerTimeout…) or, without one, the status class (5xx)."""
    reason = _status(exc)[0]
    if reason and reason.replace(" ", "").isalpha():
        return reason.replace(" ", "")
    code = int(exc.status or 0)
    return f"{code // 100}xx" if code else "unreachable"


def _is(exc: ApiException, code: int, reason: str | None = None) -> bool:
    return exc.status == code and (reason is None or _status(exc)[0] == reason)


def translate(cluster: str, action: str, exc: ApiException) -> BreakglassError:
    """The project's error for an API error answer. Status messages name objects, never credentials."""
    reason, message, details = _status(exc)
    code = int(exc.status or 0)
    what = f"cluster {cluster}: {action}: HTTP {code} {reason}" + (f": {message}" if message else "")
    if code == 404:
        return BindingNotFound(what)
    if code == 409 and reason == "AlreadyExists":
        return BindingConflict(what)
    if code == 409:
        return TemporaryError(what, delay=0.5)  # a write raced another; read again and retry
    if code == 401:
        # Our credentials were not accepted. ``_calls`` drops the client so the next call loads them
        # afresh: mid-rotation that succeeds, so a grant must not fail for good on the first 401.
        return CredentialsRejected(what, delay=2.0)
    if code == 0 or code == 429 or code >= 500:
        return ClusterUnavailable(what, delay=_retry_after(exc, details))
    return ClusterRefused(what)


class KubeClusters:
    """``ClusterGateway`` over the official client, one lazily built ``ApiClient`` per cluster.

    ``kubeconfig`` None means ``$KUBECONFIG`` (read when a client is first built), else
    ``~/.kube/config``. ``token_namespace`` holds the per-grant ServiceAccounts of ``credentials: token``
    clusters. ``request_timeout`` is (connect, read) seconds for every call. ``follow``, when given, is
    asked for the targets afresh on every call (the roster's clusters, hot-reloaded): a cluster added
    is reachable at once, a changed one gets a new client, and one no longer named is kept, so the
    sweep can still clear the bindings it holds. Thread-safe.
    """

    def __init__(
        self,
        targets: Mapping[str, ClusterTarget],
        kubeconfig: str | Path | None = None,
        token_namespace: str = SYSTEM_NAMESPACE,
        now: Callable[[], datetime] = _utc_now,
        request_timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT,
        follow: Callable[[], Mapping[str, ClusterTarget]] | None = None,
        warrant_key: bytes | None = None,
        installation: str = DEFAULT_INSTALLATION,
    ) -> None:
        self._targets = dict(targets)
        self._installation = installation
        # Signs each binding's warrant and checks it when reading bindings back; None (a reader
        # such as the demo or doctor) makes nothing and reads every binding as unwarranted.
        self._warrant_key = warrant_key
        self._follow = follow
        self._targets_lock = threading.Lock()
        self._kubeconfig = str(kubeconfig) if kubeconfig is not None else None
        self._token_namespace = token_namespace
        self._now = now
        self._timeout = request_timeout
        self._clients: dict[str, _Cluster] = {}
        # One lock per cluster: building a client may run a credential plugin, which must not hold up
        # the other clusters.
        self._locks = {name: threading.Lock() for name in self._targets}

    # ----------------------------------------------------------------- ClusterGateway

    def clusters(self) -> Sequence[str]:
        self._refresh()
        return tuple(self._targets)

    def retarget(self, targets: Mapping[str, ClusterTarget]) -> None:
        """Take the clusters of a reloaded roster (see the class docstring): add new ones, rebuild a
        changed one's client on its next call, keep the ones no longer named."""
        with self._targets_lock:
            for name, target in targets.items():
                if self._targets.get(name) != target:
                    self._locks.setdefault(name, threading.Lock())
                    self._targets[name] = target

    def _refresh(self) -> None:
        if self._follow is not None:
            self.retarget(self._follow())

    def apply_grant(self, spec: BindingSpec) -> IssuedCredentials | None:
        c = self._cluster(spec.cluster)
        if spec.credentials == "token":
            # The ServiceAccount first, checked to be this grant's: binding a name first would hand the
            # role to whatever ServiceAccount someone else created under that name.
            self._ensure_service_account(c, spec)
            subject = client.RbacV1Subject(kind="ServiceAccount", name=spec.name, namespace=self._token_namespace)
        else:
            subject = client.RbacV1Subject(kind="User", name=spec.kube_user, api_group=RBAC_GROUP)
        self._ensure_binding(c, spec, subject)
        if spec.credentials == "token":
            return self._issue_token(c, spec)
        return None

    def issue_credentials(self, spec: BindingSpec) -> IssuedCredentials:
        return self._issue_token(self._cluster(spec.cluster), spec)

    def set_expiry(self, spec: BindingSpec) -> None:
        c = self._cluster(spec.cluster)
        existing = self._read_binding(c, spec.name, spec.namespace)
        if existing is None:
            raise BindingNotFound(f"cluster {c.name}: binding {_where(spec.name, spec.namespace)} is gone")
        self._check_ours(c, spec, existing)
        self._patch_expiry(c, spec, existing.metadata.resource_version if existing.metadata else None)

    def binding_exists(self, cluster: str, namespace: str | None, name: str) -> bool:
        return self._read_binding(self._cluster(cluster), name, namespace) is not None

    def remove_grant(self, cluster: str, request_id: RequestId, namespace: str | None) -> bool:
        c = self._cluster(cluster)
        name = binding_name(request_id)
        own_sa = f"{self._token_namespace}/{name}"
        delete_sa = c.target.credentials == "token"
        if not delete_sa:
            # A grant made while this cluster was in token mode still has its ServiceAccount to delete.
            existing = self._read_binding(c, name, namespace)
            annotations: dict[str, str] = (
                (existing.metadata.annotations or {}) if existing and existing.metadata else {}
            )
            delete_sa = annotations.get(SERVICE_ACCOUNT_ANNOTATION) == own_sa
        removed = False
        # Deleted by name, whoever made it: the name is ours by contract, and removing access is the
        # safe direction. A revoke must never leave a binding in place because its labels look odd.
        with self._calls(c, f"delete binding {_where(name, namespace)}"):
            try:
                if namespace is None:
                    c.rbac.delete_cluster_role_binding(name, _request_timeout=self._timeout)
                else:
                    c.rbac.delete_namespaced_role_binding(name, namespace, _request_timeout=self._timeout)
                removed = True
            except ApiException as exc:
                if not _is(exc, 404):
                    raise
        if delete_sa and self.remove_service_account(cluster, request_id):
            removed = True
        log.info(
            "cluster %s: removed grant %s (%s)",
            cluster,
            request_id,
            "deleted" if removed else "already gone",
            extra={"request_id": request_id},
        )
        return removed

    def remove_binding(self, binding: ManagedBinding) -> bool:
        c = self._cluster(binding.cluster)
        removed = False
        with self._calls(c, f"delete binding {_where(binding.name, binding.namespace)}"):
            try:
                if binding.namespace is None:
                    c.rbac.delete_cluster_role_binding(binding.name, _request_timeout=self._timeout)
                else:
                    c.rbac.delete_namespaced_role_binding(
                        binding.name, binding.namespace, _request_timeout=self._timeout
                    )
                removed = True
            except ApiException as exc:
                if not _is(exc, 404):
                    raise
        # Its ServiceAccount only when the binding names the one made for it: a hand-made binding
        # pointing elsewhere must not make the sweep delete someone else's account.
        own = binding.service_account == (self._token_namespace, binding.name)
        if own and binding.name.startswith("breakglass-"):
            removed = self.remove_service_account(binding.cluster, _request_of(binding.name)) or removed
        log.info("cluster %s: removed %s", binding.cluster, _where(binding.name, binding.namespace))
        return removed

    def list_managed(self, cluster: str) -> Sequence[ManagedBinding]:
        # Read as plain JSON (_preload_content=False): building the client's model objects for every
        # binding costs more than the HTTP itself, and the sweep lists every binding of every cluster.
        c = self._cluster(cluster)
        found: list[ManagedBinding] = []
        options = {"label_selector": MANAGED_SELECTOR, "limit": _LIST_PAGE, "_request_timeout": self._timeout}
        with self._calls(c, "list managed bindings"):
            for list_kind in (c.rbac.list_role_binding_for_all_namespaces, c.rbac.list_cluster_role_binding):

                def page(token: str | None, list_kind: Callable[..., Any] = list_kind) -> Any:
                    return list_kind(**options, _continue=token, _preload_content=False)

                found.extend(
                    self._managed(cluster, item)
                    for item in self._raw_pages(page)
                    if not self._another_installations((item.get("metadata") or {}).get("labels"))
                )
        return found

    def list_managed_service_accounts(self, cluster: str) -> Sequence[ManagedServiceAccount]:
        c = self._cluster(cluster)
        found: list[ManagedServiceAccount] = []
        with self._calls(c, f"list managed serviceaccounts in {self._token_namespace}"):
            for item in self._pages(
                lambda token: c.core.list_namespaced_service_account(
                    self._token_namespace,
                    label_selector=MANAGED_SELECTOR,
                    limit=_LIST_PAGE,
                    _continue=token,
                    _request_timeout=self._timeout,
                )
            ):
                meta = item.metadata
                labels = (meta.labels or {}) if meta else {}
                if self._another_installations(labels):
                    continue
                found.append(
                    ManagedServiceAccount(
                        cluster=cluster,
                        name=str(meta.name) if meta else "",
                        namespace=self._token_namespace,
                        request_id=parse_request_id(labels.get(REQUEST_ID_LABEL, "")),
                    )
                )
        return found

    def remove_service_account(self, cluster: str, request_id: RequestId) -> bool:
        c = self._cluster(cluster)
        name = binding_name(request_id)  # only ever the grant's own name in the token namespace
        with self._calls(c, f"delete serviceaccount {self._token_namespace}/{name}"):
            try:
                c.core.delete_namespaced_service_account(name, self._token_namespace, _request_timeout=self._timeout)
            except ApiException as exc:
                if _is(exc, 404):
                    return False
                raise
        log.info("cluster %s: removed serviceaccount %s", cluster, name, extra={"request_id": request_id})
        return True

    def review_access(self, cluster: str, check: AccessCheck) -> bool:
        c = self._cluster(cluster)
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=check.user,
                groups=list(check.groups) or None,
                resource_attributes=_resource_attributes(
                    check.verb, check.resource, check.namespace, check.api_group, check.name
                ),
            )
        )
        with self._calls(c, f"review {check.verb} {check.resource} for {check.user}"):
            answer = c.authz.create_subject_access_review(review, _request_timeout=self._timeout)
        return bool(answer.status and answer.status.allowed)

    # ----------------------------------------------------------------- for doctor and readiness

    def self_review(
        self,
        cluster: str,
        verb: str,
        resource: str,
        namespace: str | None = None,
        api_group: str = "",
        name: str | None = None,
    ) -> bool:
        """May the bot itself ``verb`` ``resource`` (``pods/exec`` style subresources allowed)?"""
        c = self._cluster(cluster)
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=_resource_attributes(verb, resource, namespace, api_group, name)
            )
        )
        with self._calls(c, f"self review {verb} {resource}"):
            answer = c.authz.create_self_subject_access_review(review, _request_timeout=self._timeout)
        return bool(answer.status and answer.status.allowed)

    def namespace_exists(self, cluster: str, namespace: str) -> bool | None:
        """Does ``namespace`` exist? Asked with a dry-run create of a ServiceAccount there (nothing is
        stored), because the bot may not read Namespaces (least privilege). None when the API server
        forbids even that: authorization comes before admission, so a bot without its Role in the
        namespace cannot tell a missing namespace from a missing Role."""
        c = self._cluster(cluster)
        probe = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="breakglass-doctor-probe"))
        with self._calls(c, f"dry-run create serviceaccount {namespace}/breakglass-doctor-probe"):
            try:
                c.core.create_namespaced_service_account(
                    namespace, probe, dry_run="All", _request_timeout=self._timeout
                )
            except ApiException as exc:
                if _is(exc, 403):
                    return None
                if _is(exc, 404):
                    return False  # NamespaceLifecycle admission: the namespace is not there
                if not _is(exc, 409, "AlreadyExists"):
                    raise
        return True

    def ping(self, cluster: str) -> str:
        """The API server's version (``v1.31.0``): proof the cluster answers and accepts our credentials."""
        c = self._cluster(cluster)
        with self._calls(c, "read version"):
            info = client.VersionApi(c.api).get_code(_request_timeout=self._timeout)
        return str(info.git_version)

    def close(self) -> None:
        """Release pooled connections (the worker's shutdown calls it; later calls rebuild clients)."""
        for name, lock in list(self._locks.items()):  # a copy: ``retarget`` may add clusters meanwhile
            with lock:
                built = self._clients.pop(name, None)
            if built is not None:
                built.api.close()

    # ----------------------------------------------------------------- clients

    def _cluster(self, cluster: str) -> _Cluster:
        self._refresh()
        target = self._targets.get(cluster)
        if target is None:
            raise UnknownCluster(f"cluster {cluster!r} is not configured (known: {', '.join(sorted(self._targets))})")
        with self._locks[cluster]:
            built = self._clients.get(cluster)
            if built is None or built.target != target:  # new, or its roster entry changed since
                api = self._load(cluster, target)
                built = _Cluster(
                    cluster,
                    target,
                    api,
                    client.RbacAuthorizationV1Api(api),
                    client.CoreV1Api(api),
                    client.AuthorizationV1Api(api),
                )
                self._clients[cluster] = built
            return built

    def _load(self, cluster: str, target: ClusterTarget) -> ApiClient:
        configuration = client.Configuration()
        try:
            if target.context == IN_CLUSTER:
                config.load_incluster_config(client_configuration=configuration)
            else:
                path = self._kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
                config.load_kube_config(
                    config_file=path, context=target.context, client_configuration=configuration, persist_config=False
                )
        except (ConfigException, OSError) as exc:
            # ConfigException texts name files, contexts and keys, not their secret values.
            raise UnknownCluster(f"cluster {cluster}: cannot load context {target.context!r}: {exc}") from exc
        # Our retry policy decides, not urllib3's: its default Retry sleeps through Retry-After inside
        # the call and re-sends requests that are not idempotent.
        configuration.retries = False
        return ApiClient(configuration)

    @contextmanager
    def _calls(self, c: _Cluster, action: str) -> Iterator[None]:
        try:
            yield
        except ApiException as exc:
            count_error("kubernetes", _error_kind(exc))
            if exc.status == 401:
                # Our credentials were refused: rotated, expired, or an exec plugin that failed when the
                # client was built (the library logs that and carries on without a token). Load them
                # afresh on the next call instead of keeping a client that can never succeed.
                self._forget(c)
            raise translate(c.name, action, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Timeouts, refused or reset connections, DNS and TLS failures: nothing was decided.
            # urllib3's NewConnectionError (refused, DNS) subclasses its TimeoutError for old callers.
            refused = isinstance(exc, urllib3.exceptions.NewConnectionError)
            timed_out = not refused and isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError)
            count_error("kubernetes", "timeout" if timed_out else "unreachable")
            raise ClusterUnavailable(f"cluster {c.name}: {action}: {type(exc).__name__}: {exc}", delay=0) from exc
        except ConfigException as exc:
            count_error("kubernetes", "credentials")
            # The client refreshes expiring credentials (exec plugins, in-cluster token files) inside the
            # call; a failed refresh may pass, and its text names the plugin, not the credential.
            raise ClusterUnavailable(
                f"cluster {c.name}: {action}: credentials could not be refreshed: {exc}", delay=0
            ) from exc
        except ValueError as exc:
            count_error("kubernetes", "unreadable")
            # An answer the client could not read (it raises ValueError for a model it cannot build). Its
            # text quotes the answer, which for a TokenRequest is the token: keep neither text nor cause.
            raise ClusterRefused(
                f"cluster {c.name}: {action}: the API server's answer could not be read ({type(exc).__name__})"
            ) from None

    def _forget(self, c: _Cluster) -> None:
        with self._locks[c.name]:
            if self._clients.get(c.name) is c:
                del self._clients[c.name]  # not closed: other threads may still be mid-call on it

    @staticmethod
    def _raw_pages(fetch: Callable[[str | None], Any]) -> Iterator[dict[str, Any]]:
        """The items of a list answered as raw JSON, page after page."""
        token: str | None = None
        while True:
            response = fetch(token)
            try:
                page = json.loads(response.data)
            finally:
                response.release_conn()  # read whole; back to the pool (not automatic without preload)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    @staticmethod
    def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = fetch(token)
            yield from page.items or []
            token = page.metadata._continue if page.metadata else None
            if not token:
                return

    # ----------------------------------------------------------------- grants

    def _ensure_service_account(self, c: _Cluster, spec: BindingSpec) -> None:
        body = client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(
                name=spec.name,
                namespace=self._token_namespace,
                labels=self._labels(spec),
                annotations=spec.annotations(),
            ),
            # The ServiceAccount stands for a person; no pod should ever run as it.
            automount_service_account_token=False,
        )
        action = f"create serviceaccount {self._token_namespace}/{spec.name}"
        with self._calls(c, action):
            try:
                c.core.create_namespaced_service_account(self._token_namespace, body, _request_timeout=self._timeout)
                return
            except ApiException as exc:
                if _is(exc, 404):
                    self._refuse(c, action, exc)
                if not _is(exc, 409, "AlreadyExists"):
                    raise
            existing = c.core.read_namespaced_service_account(
                spec.name, self._token_namespace, _request_timeout=self._timeout
            )
        labels = (existing.metadata.labels or {}) if existing.metadata else {}
        if labels.get(REQUEST_ID_LABEL) != spec.request_id:
            raise BindingConflict(
                f"cluster {c.name}: serviceaccount {self._token_namespace}/{spec.name} exists and is not {spec.request_id}'s"
            )

    def _labels(self, spec: BindingSpec) -> dict[str, str]:
        return {**spec.labels(), INSTALLATION_LABEL: self._installation}

    def _another_installations(self, labels: Mapping[str, Any] | None) -> bool:
        """Made by another installation sharing this cluster: its to sweep, never ours. One with no
        installation label (made before the label existed) is ours to judge."""
        return (labels or {}).get(INSTALLATION_LABEL, self._installation) != self._installation

    def _subject(self, spec: BindingSpec) -> Subject:
        if spec.credentials == "token":
            return Subject("ServiceAccount", spec.name, self._token_namespace)
        return Subject("User", spec.kube_user)

    def _warrant(self, c: _Cluster, spec: BindingSpec) -> str:
        if self._warrant_key is None:
            raise ClusterRefused(f"cluster {c.name}: no BREAKGLASS_SIGNING_KEY to sign the binding's warrant with")
        what = Warranted(
            spec.request_id, c.name, spec.namespace, spec.cluster_role, self._subject(spec), spec.expires_at
        )
        return sign_warrant(self._warrant_key, what)

    def _ensure_binding(self, c: _Cluster, spec: BindingSpec, subject: client.RbacV1Subject) -> None:
        annotations = spec.annotations()
        annotations[WARRANT_ANNOTATION] = self._warrant(c, spec)
        if spec.credentials == "token":
            annotations[SERVICE_ACCOUNT_ANNOTATION] = f"{self._token_namespace}/{spec.name}"
        metadata = client.V1ObjectMeta(name=spec.name, labels=self._labels(spec), annotations=annotations)
        role_ref = client.V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=spec.cluster_role)
        action = f"create binding {_where(spec.name, spec.namespace)} to {spec.cluster_role}"
        with self._calls(c, action):
            try:
                if spec.namespace is None:
                    c.rbac.create_cluster_role_binding(
                        client.V1ClusterRoleBinding(metadata=metadata, role_ref=role_ref, subjects=[subject]),
                        _request_timeout=self._timeout,
                    )
                else:
                    c.rbac.create_namespaced_role_binding(
                        spec.namespace,
                        client.V1RoleBinding(metadata=metadata, role_ref=role_ref, subjects=[subject]),
                        _request_timeout=self._timeout,
                    )
                log.info(
                    "cluster %s: created %s",
                    c.name,
                    _where(spec.name, spec.namespace),
                    extra={"request_id": spec.request_id},
                )
                return
            except ApiException as exc:
                if _is(exc, 404):
                    self._refuse(c, action, exc)  # the namespace (or the role) does not exist
                if not _is(exc, 409, "AlreadyExists"):
                    raise
        # It is there already: ours from an earlier attempt of this same grant, or someone else's.
        existing = self._read_binding(c, spec.name, spec.namespace)
        if existing is None:
            raise TemporaryError(f"cluster {c.name}: {_where(spec.name, spec.namespace)} vanished while adopted", 0.5)
        self._check_ours(c, spec, existing, subject)
        self._patch_expiry(c, spec, existing.metadata.resource_version if existing.metadata else None)

    def _check_ours(
        self, c: _Cluster, spec: BindingSpec, existing: _Binding, subject: client.RbacV1Subject | None = None
    ) -> None:
        labels = (existing.metadata.labels or {}) if existing.metadata else {}
        ref = existing.role_ref
        same_role = ref is not None and ref.kind == "ClusterRole" and ref.name == spec.cluster_role
        same_subject = subject is None or [_subject_key(s) for s in existing.subjects or []] == [_subject_key(subject)]
        if labels.get(REQUEST_ID_LABEL) != spec.request_id or not same_role or not same_subject:
            raise BindingConflict(
                f"cluster {c.name}: {_where(spec.name, spec.namespace)} exists and was not made for {spec.request_id}"
            )

    def _patch_expiry(self, c: _Cluster, spec: BindingSpec, resource_version: str | None) -> None:
        # Carrying the resourceVersion we checked makes the patch fail (409) if the binding changed since.
        # The warrant signs the expiry: a new expiry is signed anew (an extension re-signs).
        annotations = {
            EXPIRES_AT_ANNOTATION: format_instant(spec.expires_at),
            WARRANT_ANNOTATION: self._warrant(c, spec),
        }
        if spec.thread is not None:  # a grant made before its thread existed learns it at extension
            annotations[THREAD_ANNOTATION] = spec.thread.annotation()
        patch: dict[str, Any] = {"metadata": {"annotations": annotations}}
        if resource_version:
            patch["metadata"]["resourceVersion"] = resource_version
        with self._calls(c, f"set expiry of {_where(spec.name, spec.namespace)}"):
            if spec.namespace is None:
                c.rbac.patch_cluster_role_binding(
                    spec.name, patch, _content_type=MERGE_PATCH, _request_timeout=self._timeout
                )
            else:
                c.rbac.patch_namespaced_role_binding(
                    spec.name, spec.namespace, patch, _content_type=MERGE_PATCH, _request_timeout=self._timeout
                )

    def _read_binding(self, c: _Cluster, name: str, namespace: str | None) -> _Binding | None:
        """The binding, or None when it is not there."""
        with self._calls(c, f"read binding {_where(name, namespace)}"):
            try:
                if namespace is None:
                    return c.rbac.read_cluster_role_binding(name, _request_timeout=self._timeout)
                return c.rbac.read_namespaced_role_binding(name, namespace, _request_timeout=self._timeout)
            except ApiException as exc:
                if _is(exc, 404):
                    return None
                raise

    def _issue_token(self, c: _Cluster, spec: BindingSpec) -> IssuedCredentials:
        remaining = math.ceil((spec.expires_at - self._now()).total_seconds())
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=max(MIN_TOKEN_SECONDS, remaining))
        )
        with self._calls(c, f"request a token for serviceaccount {self._token_namespace}/{spec.name}"):
            answer = c.core.create_namespaced_service_account_token(
                spec.name, self._token_namespace, request, _request_timeout=self._timeout
            )
        status = answer.status
        if status is None or not status.token or status.expiration_timestamp is None:
            raise ClusterRefused(f"cluster {c.name}: the TokenRequest for {spec.name} came back without a token")
        expires = status.expiration_timestamp.astimezone(UTC)
        try:
            kubeconfig = _holder_kubeconfig(c, spec, status.token)
        except OSError as exc:
            raise ClusterRefused(f"cluster {c.name}: cannot read the cluster's CA file: {type(exc).__name__}") from None
        return IssuedCredentials(
            kubeconfig=kubeconfig,
            token_expires_at=expires,
            # The API server will not issue under ten minutes, so a short grant's token outlives it;
            # revoking deletes the ServiceAccount, which is what ends the token early.
            outlives_grant=expires > spec.expires_at,
        )

    def _refuse(self, c: _Cluster, action: str, exc: ApiException) -> NoReturn:
        """A 404 on create means something the grant needs is missing: permanent, not 'already gone'."""
        reason, message, _ = _status(exc)
        raise ClusterRefused(f"cluster {c.name}: {action}: HTTP 404 {reason}: {message}") from exc

    # ----------------------------------------------------------------- reading back

    def _managed(self, cluster: str, item: Mapping[str, Any]) -> ManagedBinding:
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        expires_at: datetime | None
        try:
            expires_at = parse_instant(annotations[EXPIRES_AT_ANNOTATION])
        except (KeyError, ValueError, TypeError):
            expires_at = None  # the sweep treats a binding without a readable expiry as expired
        namespace, _, sa_name = str(annotations.get(SERVICE_ACCOUNT_ANNOTATION, "")).partition("/")
        name = str(meta.get("name") or "")
        binding_namespace = meta.get("namespace") or None
        request_id = parse_request_id(str(labels.get(REQUEST_ID_LABEL, "")))
        subjects = [
            Subject(str(s.get("kind") or ""), str(s.get("name") or ""), str(s.get("namespace") or ""))
            for s in item.get("subjects") or []
            if isinstance(s, dict)
        ]
        ref = item.get("roleRef") or {}
        warranted = (
            self._warrant_key is not None
            and request_id is not None
            and expires_at is not None
            and len(subjects) == 1
            and ref.get("kind") == "ClusterRole"
            and warrant_verifies(
                self._warrant_key,
                annotations.get(WARRANT_ANNOTATION),
                name,
                Warranted(request_id, cluster, binding_namespace, str(ref.get("name") or ""), subjects[0], expires_at),
            )
        )
        return ManagedBinding(
            cluster=cluster,
            name=name,
            namespace=binding_namespace,
            request_id=request_id,
            expires_at=expires_at,
            service_account=(namespace, sa_name) if namespace and sa_name else None,
            warranted=warranted,
            thread=RequestThread.parse(annotations.get(THREAD_ANNOTATION)),
        )


def _request_of(name: str) -> RequestId:
    return RequestId(name.removeprefix("breakglass-").upper())


def _where(name: str, namespace: str | None) -> str:
    return f"clusterrolebinding {name}" if namespace is None else f"rolebinding {namespace}/{name}"


def _subject_key(subject: client.RbacV1Subject) -> tuple[str, str, str]:
    return (subject.kind or "", subject.name or "", subject.namespace or "")


def _resource_attributes(
    verb: str, resource: str, namespace: str | None, api_group: str, name: str | None
) -> client.V1ResourceAttributes:
    plural, _, subresource = resource.partition("/")
    return client.V1ResourceAttributes(
        verb=verb, resource=plural, subresource=subresource or None, namespace=namespace, group=api_group, name=name
    )


def _holder_kubeconfig(c: _Cluster, spec: BindingSpec, token: str) -> str:
    """A complete kubeconfig for the grant holder: this cluster's server and CA, the token, the namespace.

    The server is the one the bot uses. With ``in-cluster`` that is the in-cluster service address,
    which a holder outside the cluster cannot reach: token mode wants a kubeconfig context there.
    """
    settings = c.api.configuration
    cluster: dict[str, Any] = {"server": settings.host}
    if settings.ssl_ca_cert:
        cluster["certificate-authority-data"] = base64.b64encode(Path(settings.ssl_ca_cert).read_bytes()).decode()
    if settings.verify_ssl is False:
        cluster["insecure-skip-tls-verify"] = True  # mirrors the bot's own setting for this cluster
    if settings.tls_server_name:
        cluster["tls-server-name"] = settings.tls_server_name
    context: dict[str, str] = {"cluster": spec.cluster, "user": spec.name}
    if spec.namespace:
        context["namespace"] = spec.namespace
    name = f"{spec.cluster}-{spec.name}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": spec.cluster, "cluster": cluster}],
        "users": [{"name": spec.name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(document, sort_keys=False)
