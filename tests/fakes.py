"""Fakes at our own adapter boundary (``bot.ports``), for service and store tests.

They behave like the adapters they stand in for, and record what happened as plain objects, so
tests assert outcomes ("the binding exists, with this expiry") rather than call arguments. They are
thread-safe where the real adapters must be. No ``Mock()`` here: a fake that drifts from the port's
documented behaviour is a bug in the fake.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from bot.domain.audit import AuditEntry
from bot.domain.grants import (
    EXPIRES_AT_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REQUEST_ID_LABEL,
    THREAD_ANNOTATION,
    BindingSpec,
    IssuedCredentials,
    ManagedBinding,
    ManagedServiceAccount,
    RequestThread,
    binding_name,
    format_instant,
    parse_instant,
)
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest
from bot.domain.roster import Roster, parse_roster
from bot.domain.warrant import WARRANT_ANNOTATION, Subject, Warranted, sign_warrant, warrant_verifies
from bot.ports import (
    AccessCheck,
    BindingConflict,
    BindingNotFound,
    BreakglassError,
    TemporaryError,
    UnknownCluster,
)
from tests.conftest import EXAMPLE_ROSTER, WARRANT_KEY

# --- the roster ---------------------------------------------------------------------------------

ALICE = "U000000ALICE"  # payments-devs: view/admin in payments and payments-*
BOB = "U0000000BOB"  # sre
CAROL = "U00000CAROL"  # sre


def example_roster_data() -> dict[str, Any]:
    """The contract's example roster as plain data, a fresh copy each call."""
    return copy.deepcopy(yaml.safe_load(EXAMPLE_ROSTER.read_text(encoding="utf-8")))


def roster_from(data: dict[str, Any]) -> Roster:
    """A roster through the real parser and check, so tests never hold a roster the check refuses."""
    return parse_roster(yaml.safe_dump(data, sort_keys=False))


def roster_with(**changes: Any) -> Roster:
    """The example roster with top-level keys replaced (``None`` removes a key).

    ``roles``, ``clusters``, ``groups`` and ``people`` given as mappings are merged into the example's
    (a value of ``None`` for one name removes that name); other keys replace the example's value.
    """
    data = example_roster_data()
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif key in ("roles", "clusters", "groups", "people") and isinstance(value, dict):
            merged = data.get(key, {})
            for name, body in value.items():
                if body is None:
                    merged.pop(name, None)
                elif isinstance(body, dict) and isinstance(merged.get(name), dict):
                    merged[name] = {**merged[name], **body}
                else:
                    merged[name] = body
            data[key] = merged
        else:
            data[key] = value
    return roster_from(data)


def example_roster() -> Roster:
    return parse_roster(EXAMPLE_ROSTER.read_text(encoding="utf-8"))


T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # the FakeClock's start


def access_request(**fields: Any) -> AccessRequest:
    """A stored-looking request: Alice asking for view on prod/payments for 1h, pending, unless told."""
    values: dict[str, Any] = {
        "id": RequestId("BG-7K2QXM"),
        "requester": ALICE,
        "cluster": "prod",
        "namespace": "payments",
        "role": "view",
        "duration": timedelta(hours=1),
        "reason": "INC-4411 checkout pods crash-looping",
        "channel": "C0000INCIDENT",
        "created_at": T0,
        "updated_at": T0,
        "approvals_required": 1,
    }
    values.update(fields)
    return AccessRequest(**values)


# --- Kubernetes -----------------------------------------------------------------------------------

# What each cluster role lets its holder do, coarsely: enough for review_access questions in tests.
ROLE_VERBS: dict[str, frozenset[str]] = {
    "view": frozenset({"get", "list", "watch"}),
    "edit": frozenset({"get", "list", "watch", "create", "update", "patch", "delete"}),
    "admin": frozenset({"*"}),
    "cluster-admin": frozenset({"*"}),
    # bot/grant_roles.py: edit and admin's verbs on what they cover; what they leave out is RBAC's
    # business, which tests/deploy/test_grant_roles.py asks a stand-in API server about.
    "breakglass-edit": frozenset({"get", "list", "watch", "create", "update", "patch", "delete"}),
    "breakglass-admin": frozenset({"get", "list", "watch", "create", "update", "patch", "delete"}),
}


@dataclass
class FakeBinding:
    """A RoleBinding (``namespace`` set) or ClusterRoleBinding (``namespace`` None) in a FakeCluster."""

    cluster: str
    name: str
    namespace: str | None
    cluster_role: str
    subject_kind: str  # "User" or "ServiceAccount"
    subject: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: BindingSpec | None = None
    resource_version: int = 1

    @property
    def kind(self) -> str:
        return "RoleBinding" if self.namespace is not None else "ClusterRoleBinding"

    @property
    def request_id(self) -> RequestId | None:
        value = self.labels.get(REQUEST_ID_LABEL)
        return RequestId(value) if value else None

    @property
    def expires_at(self) -> datetime | None:
        try:
            return parse_instant(self.annotations[EXPIRES_AT_ANNOTATION])
        except (KeyError, ValueError):
            return None

    @property
    def managed(self) -> bool:
        return self.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE

    def warranted_as(self, expires_at: datetime | None = None) -> Warranted | None:
        """What its warrant must sign, as the binding is now (or with another expiry)."""
        expiry = expires_at or self.expires_at
        if self.request_id is None or expiry is None:
            return None
        subject = (
            Subject("ServiceAccount", self.subject, "breakglass-system")
            if self.subject_kind == "ServiceAccount"
            else Subject("User", self.subject)
        )
        return Warranted(self.request_id, self.cluster, self.namespace, self.cluster_role, subject, expiry)

    def sign(self) -> None:
        """Sign its warrant as breakglass does (WARRANT_KEY, the tests' signing key)."""
        what = self.warranted_as()
        assert what is not None
        self.annotations[WARRANT_ANNOTATION] = sign_warrant(WARRANT_KEY, what)

    @property
    def warranted(self) -> bool:
        what = self.warranted_as()
        return what is not None and warrant_verifies(
            WARRANT_KEY, self.annotations.get(WARRANT_ANNOTATION), self.name, what
        )


@dataclass
class _Failures:
    remaining: int
    error: Callable[[str], BreakglassError]
    cluster: str | None
    operations: frozenset[str] | None


class FakeCluster:
    """``ClusterGateway`` over in-memory bindings, one set per cluster.

    ``fail_next(n, ClusterUnavailable)`` makes the next ``n`` matching calls raise instead of acting.
    ``slow_by`` advances ``clock`` inside ``apply_grant``, as a slow API server would.
    """

    def __init__(
        self,
        clusters: Iterable[str] = ("prod", "staging"),
        clock: Any = None,
        slow_by: timedelta = timedelta(0),
    ) -> None:
        self._clusters = tuple(clusters)
        self.bindings: dict[tuple[str, str], FakeBinding] = {}
        self.service_accounts: set[tuple[str, str, str]] = set()  # (cluster, namespace, name)
        # Bindings someone else made (a holder, during a grant): (cluster, namespace or None, name).
        self.foreign_bindings: set[tuple[str, str | None, str]] = set()
        self.calls: list[tuple[str, str]] = []  # (operation, cluster), including failed ones
        self.clock = clock
        self.slow_by = slow_by
        self.token_namespace = "breakglass-system"
        self._failures: list[_Failures] = []
        self._lock = threading.RLock()

    # --- test controls ----------------------------------------------------------------------

    def fail_next(
        self,
        times: int,
        error: Callable[[str], BreakglassError],
        cluster: str | None = None,
        operations: Iterable[str] | None = None,
    ) -> None:
        """The next ``times`` calls (to ``cluster`` and of ``operations``, if given) raise ``error``."""
        with self._lock:
            self._failures.append(_Failures(times, error, cluster, frozenset(operations) if operations else None))

    def recover(self) -> None:
        """Every failure still pending is called off: the cluster answers again."""
        with self._lock:
            self._failures.clear()

    def plant(
        self,
        cluster: str,
        request_id: str,
        namespace: str | None,
        expires_at: datetime | None,
        cluster_role: str = "view",
        subject: str = "mallory@example.com",
        name: str | None = None,
        warranted: bool = True,
    ) -> FakeBinding:
        """A managed binding breakglass made and Redis does not account for (a lost grant job, a
        flushed Redis), signed as breakglass signs; with ``warranted=False`` one made by someone else
        (by hand, a copy), which no warrant covers. A binding without an expiry cannot be signed."""
        annotations = {EXPIRES_AT_ANNOTATION: format_instant(expires_at)} if expires_at else {}
        binding = FakeBinding(
            cluster=cluster,
            name=name or binding_name(RequestId(request_id)),
            namespace=namespace,
            cluster_role=cluster_role,
            subject_kind="User",
            subject=subject,
            labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE, REQUEST_ID_LABEL: request_id},
            annotations=annotations,
        )
        if warranted and expires_at is not None:
            binding.sign()
        with self._lock:
            self.bindings[(cluster, binding.name)] = binding
        return binding

    def plant_service_account(self, cluster: str, request_id: str) -> None:
        """A grant's ServiceAccount left behind without its binding (a worker killed between the two)."""
        with self._lock:
            self.service_accounts.add((cluster, self.token_namespace, binding_name(RequestId(request_id))))

    def binding(self, cluster: str, request_id: str) -> FakeBinding | None:
        with self._lock:
            return self.bindings.get((cluster, binding_name(RequestId(request_id))))

    # --- ClusterGateway ---------------------------------------------------------------------

    def apply_grant(self, spec: BindingSpec) -> IssuedCredentials | None:
        self._enter("apply_grant", spec.cluster)
        if self.clock is not None and self.slow_by:
            self.clock.advance(seconds=self.slow_by.total_seconds())
        with self._lock:
            existing = self.bindings.get((spec.cluster, spec.name))
            if existing is not None:
                if existing.request_id != spec.request_id:
                    raise BindingConflict(f"{spec.name} exists in {spec.cluster} and is not {spec.request_id}'s")
                existing.annotations[EXPIRES_AT_ANNOTATION] = format_instant(spec.expires_at)
                existing.sign()
                existing.spec = spec
                existing.resource_version += 1
            else:
                token = spec.credentials == "token"
                if token:
                    self.service_accounts.add((spec.cluster, self.token_namespace, spec.name))
                self.bindings[(spec.cluster, spec.name)] = FakeBinding(
                    cluster=spec.cluster,
                    name=spec.name,
                    namespace=spec.namespace,
                    cluster_role=spec.cluster_role,
                    subject_kind="ServiceAccount" if token else "User",
                    subject=spec.name if token else spec.kube_user,
                    labels=spec.labels(),
                    annotations=spec.annotations(),
                    spec=spec,
                )
                self.bindings[(spec.cluster, spec.name)].sign()
        if spec.credentials == "token":
            return IssuedCredentials(kubeconfig=f"fake kubeconfig for {spec.name}", token_expires_at=spec.expires_at)
        return None

    def issue_credentials(self, spec: BindingSpec) -> IssuedCredentials:
        self._enter("issue_credentials", spec.cluster)
        return IssuedCredentials(kubeconfig=f"fake kubeconfig for {spec.name}", token_expires_at=spec.expires_at)

    def set_expiry(self, spec: BindingSpec) -> None:
        self._enter("set_expiry", spec.cluster)
        with self._lock:
            existing = self.bindings.get((spec.cluster, spec.name))
            if existing is None:
                raise BindingNotFound(f"{spec.name} is not in {spec.cluster}")
            existing.annotations[EXPIRES_AT_ANNOTATION] = format_instant(spec.expires_at)
            if spec.thread is not None:
                existing.annotations[THREAD_ANNOTATION] = spec.thread.annotation()
            existing.sign()  # an extension re-signs
            existing.spec = spec
            existing.resource_version += 1

    def remove_grant(self, cluster: str, request_id: RequestId, namespace: str | None) -> bool:
        self._enter("remove_grant", cluster)
        name = binding_name(request_id)
        with self._lock:
            self.service_accounts.discard((cluster, self.token_namespace, name))
            return self.bindings.pop((cluster, name), None) is not None

    def binding_exists(self, cluster: str, namespace: str | None, name: str) -> bool:
        self._enter("binding_exists", cluster)
        with self._lock:
            return (cluster, name) in self.bindings or (cluster, namespace, name) in self.foreign_bindings

    def remove_binding(self, binding: ManagedBinding) -> bool:
        self._enter("remove_binding", binding.cluster)
        with self._lock:
            if binding.service_account == (self.token_namespace, binding.name):
                self.service_accounts.discard((binding.cluster, self.token_namespace, binding.name))
            return self.bindings.pop((binding.cluster, binding.name), None) is not None

    def list_managed(self, cluster: str) -> Sequence[ManagedBinding]:
        self._enter("list_managed", cluster)
        with self._lock:
            return [
                ManagedBinding(
                    cluster=b.cluster,
                    name=b.name,
                    namespace=b.namespace,
                    request_id=b.request_id,
                    expires_at=b.expires_at,
                    service_account=(self.token_namespace, b.name) if b.subject_kind == "ServiceAccount" else None,
                    warranted=b.warranted,
                    thread=RequestThread.parse(b.annotations.get(THREAD_ANNOTATION)),
                )
                for (c, _), b in sorted(self.bindings.items())
                if c == cluster and b.managed
            ]

    def list_managed_service_accounts(self, cluster: str) -> Sequence[ManagedServiceAccount]:
        self._enter("list_managed_service_accounts", cluster)
        with self._lock:
            return [
                ManagedServiceAccount(cluster, name, namespace, RequestId(name.removeprefix("breakglass-").upper()))
                for (c, namespace, name) in sorted(self.service_accounts)
                if c == cluster
            ]

    def remove_service_account(self, cluster: str, request_id: RequestId) -> bool:
        self._enter("remove_service_account", cluster)
        key = (cluster, self.token_namespace, binding_name(request_id))
        with self._lock:
            if key not in self.service_accounts:
                return False
            self.service_accounts.discard(key)
            return True

    def review_access(self, cluster: str, check: AccessCheck) -> bool:
        self._enter("review_access", cluster)
        with self._lock:
            for binding in self.bindings.values():
                if binding.cluster != cluster:
                    continue
                if binding.namespace is not None and binding.namespace != check.namespace:
                    continue
                if binding.subject_kind == "ServiceAccount":
                    subject = f"system:serviceaccount:{self.token_namespace}:{binding.subject}"
                else:
                    subject = binding.subject
                verbs = ROLE_VERBS.get(binding.cluster_role, frozenset())
                if subject == check.user and ("*" in verbs or check.verb in verbs):
                    return True
        return False

    def clusters(self) -> Sequence[str]:
        return self._clusters

    def _enter(self, operation: str, cluster: str) -> None:
        with self._lock:
            self.calls.append((operation, cluster))
            for failure in self._failures:
                if failure.remaining <= 0:
                    continue
                if failure.cluster is not None and failure.cluster != cluster:
                    continue
                if failure.operations is not None and operation not in failure.operations:
                    continue
                failure.remaining -= 1
                raise failure.error(f"fake {operation} on {cluster} failed")
        if cluster not in self._clusters:
            raise UnknownCluster(f"no client for cluster '{cluster}'")


# --- the job queue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobCall:
    kind: str  # grant | revoke | remind | publish | escalate | settle_escalation
    request_id: RequestId
    at: datetime | None
    queued: bool  # False: an equal job was already waiting (the real queue's deterministic id)


class RecordingJobs:
    """``JobQueue`` that runs nothing and records every call.

    Like the RQ queue, an equal job (same kind, request id and scheduled second) is queued once: the
    first call returns True, repeats return False while it waits. ``done``/``lose`` make it run or
    vanish (a worker finished it, or Redis lost it), after which an equal call queues it again.
    ``on_enqueue`` sees each call as it happens, to observe what the caller had already written.
    """

    def __init__(self, on_enqueue: Callable[[JobCall], None] | None = None) -> None:
        self.calls: list[JobCall] = []
        self.waiting: set[tuple[str, str, int | None]] = set()
        self.on_enqueue = on_enqueue
        self._lock = threading.Lock()

    def grant(self, request_id: RequestId) -> bool:
        return self._record("grant", request_id, None)

    def revoke(self, request_id: RequestId, at: datetime | None = None) -> bool:
        return self._record("revoke", request_id, at)

    def remind(self, request_id: RequestId, at: datetime) -> bool:
        return self._record("remind", request_id, at)

    def publish(self, request_id: RequestId) -> bool:
        return self._record("publish", request_id, None)

    def escalate(self, request_id: RequestId, at: datetime) -> bool:
        return self._record("escalate", request_id, at)

    def settle_escalation(self, request_id: RequestId) -> bool:
        return self._record("settle_escalation", request_id, None)

    def revokes_waiting(self, ends: Sequence[tuple[RequestId, datetime]]) -> set[RequestId]:
        with self._lock:
            return {rid for rid, at in ends if ("revoke", str(rid), int(at.timestamp())) in self.waiting}

    def revoke_under_way(self, request_id: RequestId) -> bool:
        with self._lock:
            return ("revoke", str(request_id), None) in self.waiting

    def _record(self, kind: str, request_id: RequestId, at: datetime | None) -> bool:
        key = (kind, str(request_id), int(at.timestamp()) if at is not None else None)
        with self._lock:
            queued = key not in self.waiting
            self.waiting.add(key)
            call = JobCall(kind, request_id, at, queued)
            self.calls.append(call)
        if self.on_enqueue is not None:
            self.on_enqueue(call)
        return queued

    # --- reading ----------------------------------------------------------------------------

    def of(self, kind: str, request_id: str | None = None) -> list[JobCall]:
        """Calls of ``kind`` (for ``request_id``), duplicates included."""
        with self._lock:
            return [c for c in self.calls if c.kind == kind and (request_id is None or c.request_id == request_id)]

    def queued(self, kind: str, request_id: str | None = None) -> list[JobCall]:
        """Calls of ``kind`` that queued a job (duplicates left out)."""
        return [c for c in self.of(kind, request_id) if c.queued]

    # --- the queue's life -------------------------------------------------------------------

    def done(self, kind: str, request_id: str) -> None:
        with self._lock:
            self.waiting = {k for k in self.waiting if not (k[0] == kind and k[1] == request_id)}

    def lose(self) -> None:
        """Every waiting job vanishes, as when the queue's Redis is flushed."""
        with self._lock:
            self.waiting.clear()


# --- Slack ----------------------------------------------------------------------------------------


@dataclass
class Thread:
    ts: str
    states: list[str] = field(default_factory=list)  # the root message as rendered at each publish
    entries: list[AuditEntry] = field(default_factory=list)  # thread replies, in posting order


class RecordingNotifier:
    """``Notifier`` that keeps each request's thread as a list of the entries posted to it."""

    def __init__(self) -> None:
        self.threads: dict[str, Thread] = {}
        self.credentials: list[tuple[str, IssuedCredentials]] = []
        self.withdrawn: list[str] = []  # kubeconfig file ids taken back from DMs
        self.told: dict[str, list[AuditEntry]] = {}  # lost requests' threads ("C…/ts"): what they were told
        self.failures_left = 0
        self.attempts = 0
        self._lock = threading.Lock()

    def fail_next(self, times: int) -> None:
        """The next ``times`` publishes raise TemporaryError (Slack down or rate limiting)."""
        self.failures_left = times

    def publish(self, request: AccessRequest, entries: Sequence[AuditEntry]) -> str | None:
        with self._lock:
            self.attempts += 1
            if self.failures_left > 0:
                self.failures_left -= 1
                raise TemporaryError("fake Slack answered 429", delay=1.0)
            thread = self.threads.get(request.id)
            if thread is None:
                thread = self.threads[request.id] = Thread(ts=f"1790000000.{len(self.threads) + 1:06d}")
            thread.states.append(str(request.state))
            thread.entries.extend(entries)
            return thread.ts

    def deliver_credentials(self, request: AccessRequest, credentials: IssuedCredentials) -> str | None:
        with self._lock:
            self.credentials.append((request.id, credentials))
            return f"F{len(self.credentials):08d}"

    def withdraw_credentials(self, request: AccessRequest, file_ids: Sequence[str]) -> None:
        with self._lock:
            self.withdrawn.extend(file_ids)

    def tell_thread(self, thread: RequestThread, entries: Sequence[AuditEntry]) -> None:
        with self._lock:
            self.attempts += 1
            if self.failures_left > 0:
                self.failures_left -= 1
                raise TemporaryError("fake Slack answered 429", delay=1.0)
            self.told.setdefault(thread.annotation(), []).extend(entries)

    def posted(self, request_id: str) -> list[int]:
        """The seqs posted to the request's thread, in order."""
        thread = self.threads.get(request_id)
        return [e.seq for e in thread.entries] if thread else []


def counts_by_event(entries: Iterable[AuditEntry]) -> dict[str, int]:
    result: dict[str, int] = defaultdict(int)
    for entry in entries:
        result[entry.event] += 1
    return dict(result)
