"""End-to-end fixtures: the whole stack (real Redis db, the Kubernetes and Slack doubles, real
``breakglass web`` and ``breakglass worker`` processes) per test, and a watch on what the clusters hold.

Every test gets Redis empty (``real_redis`` flushes the test database before and after) and fresh
doubles. ``BindingWatch`` polls the doubles' objects in the background, so a test can ask afterwards
when each binding appeared, what expiry it carried, when it disappeared, and whether it ever came back:
the product's promise is about the cluster, so that is where these tests look.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

from bot.domain.grants import EXPIRES_AT_ANNOTATION, REQUEST_ID_LABEL, parse_instant
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import AccessRequest
from bot.domain.policy import Ask
from bot.ports import AccessCheck
from bot.settings import load_settings
from bot.standins.kube import ContextEntry, KubeApiServer, write_kubeconfig
from bot.standins.kube.transport import Reply
from bot.standins.stack import ALICE, DEMO_ROSTER, LocalStack, Process, local_stack, wait_until
from bot.wiring import Core, build_core
from workers.kube import ClusterTarget, KubeClusters

SWEEP = timedelta(seconds=2)
# The promise under faults: no binding outlives its expiry by more than one sweep interval plus this.
SLACK = timedelta(seconds=5)
REASON = "INC-4411 checkout pods crash-looping"
BINDINGS_PATH = "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings"

# The demo roster, with the two-approval ``admin`` role allowed down to seconds so a real approval
# flow can also be watched to its end inside a test.
E2E_ROSTER: dict[str, Any] = copy.deepcopy(DEMO_ROSTER)
E2E_ROSTER["roles"]["admin"]["min_duration"] = "5s"


@pytest.fixture
def stack(real_redis: redis.Redis, redis_url: str) -> Iterator[LocalStack]:
    with local_stack(redis_url=redis_url, roster=E2E_ROSTER, sweep_interval=f"{int(SWEEP.total_seconds())}s") as s:
        try:
            yield s
        finally:
            for server in s.clusters.values():
                server.clear_faults()  # release hanging requests so the processes stop promptly
            # Shown by pytest only when the test failed: what the processes said.
            for process in s.processes:
                print(f"----- {process.name} (last 4000 characters) -----\n{process.output()[-4000:]}")


@pytest.fixture
def core(stack: LocalStack) -> Core:
    """The services as the web process builds them, on the stack's Redis and roster."""
    return build_core(load_settings(stack.env()))


@pytest.fixture
def kube(stack: LocalStack) -> Iterator[KubeClusters]:
    """The Kubernetes adapter on the stack's kubeconfig (cluster admin), for access reviews."""
    targets = {name: ClusterTarget(c["context"], c["credentials"]) for name, c in stack.roster["clusters"].items()}
    clusters = KubeClusters(targets, kubeconfig=stack.kubeconfig_path)
    yield clusters
    clusters.close()


@pytest.fixture
def watch(stack: LocalStack) -> Iterator[BindingWatch]:
    with BindingWatch(stack.clusters) as w:
        yield w


def grant_now(
    core: Core, seconds: float, cluster: str = "prod", requester: str = ALICE, namespace: str = "payments"
) -> AccessRequest:
    """A self-service ``emergency`` grant (approvals: 0), approved the moment it is asked for."""
    return core.access.submit(
        Ask(SlackUserId(requester), cluster, namespace, "emergency", timedelta(seconds=seconds), REASON)
    )


def may_edit(kube: KubeClusters, user: str = "alice@example.com", cluster: str = "prod") -> bool:
    """SubjectAccessReview: may ``user`` create Deployments in payments (what ``edit`` gives)?"""
    return kube.review_access(
        cluster, AccessCheck(user=user, verb="create", resource="deployments", namespace="payments", api_group="apps")
    )


def events(core: Core, request_id: str) -> list[str]:
    return [str(e.event) for e in core.audit.for_request(request_id)]


def start_worker_as(stack: LocalStack, name: str) -> tuple[Process, str]:
    """A worker process with its own cluster-admin token on every cluster double, so a test can tell
    from a request's ``Authorization`` header which worker sent it. Returns (process, header)."""
    token = f"{name}-{secrets.token_urlsafe(12)}"
    contexts = {}
    for cluster, spec in stack.roster["clusters"].items():
        server = stack.clusters[cluster]
        server.add_identity(token, f"system:serviceaccount:breakglass-system:{name}", ["system:masters"])
        contexts[spec["context"]] = ContextEntry(server, token)
    kubeconfig = write_kubeconfig(stack.workdir / f"kubeconfig-{name}", contexts)
    shared = stack.extra_env
    stack.extra_env = {**shared, "KUBECONFIG": str(kubeconfig)}
    try:
        return stack.start_worker(name), f"Bearer {token}"
    finally:
        stack.extra_env = shared


class Spy(threading.Event):
    """Set when a watched request arrives; ``authorization`` is the header of the first one."""

    authorization: str | None = None


def spy_requests(
    server: KubeApiServer, method: str | None, path_prefix: str, then: Callable[[], object] | None = None
) -> Spy:
    """Set the moment a matching request *arrives* at the double (``method`` None: any), before faults
    or answers, so a test can act while that call is in flight. ``then`` runs once, on the first
    match and before it is answered: a fault it injects already applies to that request."""
    spy = Spy()
    answer = server.handle
    once = threading.Lock()

    def handle(verb: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        if (method is None or verb == method) and target.startswith(path_prefix) and once.acquire(blocking=False):
            spy.authorization = headers.get("authorization")
            if then is not None:
                then()
            spy.set()
        return answer(verb, target, headers, body)

    server.handle = handle  # type: ignore[method-assign,assignment]
    return spy


@dataclass
class Sighting:
    """One binding name as the watch saw it: when present (one span per appearance) and its expiries."""

    cluster: str
    name: str
    request_id: str
    spans: list[list[float]] = field(default_factory=list)  # [first seen, last seen], epoch seconds
    expiries: list[datetime] = field(default_factory=list)  # each distinct expiry annotation, in order
    gone_at: float | None = None  # first poll that found it absent after its last span

    @property
    def first_seen(self) -> float:
        return self.spans[0][0]


class BindingWatch:
    """Polls every managed binding of every cluster double every 50 ms, on a background thread."""

    PERIOD = 0.05

    def __init__(self, clusters: dict[str, KubeApiServer]) -> None:
        self.clusters = clusters
        self.sightings: dict[tuple[str, str], Sighting] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="binding-watch", daemon=True)

    def __enter__(self) -> BindingWatch:
        self.poll()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self.PERIOD):
            self.poll()

    def poll(self) -> None:
        now = time.time()
        present: set[tuple[str, str]] = set()
        for cluster, server in self.clusters.items():
            snapshot = server.snapshot("app.kubernetes.io/managed-by=breakglass")
            for obj in snapshot["rolebindings"] + snapshot["clusterrolebindings"]:
                meta = obj["metadata"]
                key = (cluster, meta["name"])
                present.add(key)
                with self._lock:
                    seen = self.sightings.setdefault(
                        key, Sighting(cluster, meta["name"], (meta.get("labels") or {}).get(REQUEST_ID_LABEL, ""))
                    )
                    if seen.gone_at is not None or not seen.spans:
                        seen.spans.append([now, now])  # first appearance, or back after it was gone
                        seen.gone_at = None
                    seen.spans[-1][1] = now
                    expiry = (meta.get("annotations") or {}).get(EXPIRES_AT_ANNOTATION)
                    if expiry and (not seen.expiries or seen.expiries[-1] != parse_instant(expiry)):
                        seen.expiries.append(parse_instant(expiry))
        with self._lock:
            for key, seen in self.sightings.items():
                if key not in present and seen.gone_at is None:
                    seen.gone_at = now

    def of(self, request_id: RequestId | str) -> Sighting:
        with self._lock:
            found = [s for s in self.sightings.values() if s.request_id == request_id]
        assert len(found) == 1, f"expected one binding for {request_id}, saw {[s.name for s in found]}"
        return copy.deepcopy(found[0])

    def present(self, request_id: RequestId | str) -> bool:
        with self._lock:
            return any(s.request_id == request_id and s.gone_at is None and s.spans for s in self.sightings.values())

    def wait_gone(self, request_id: RequestId | str, timeout: float) -> Sighting:
        wait_until(lambda: self._gone(request_id), timeout, f"the binding of {request_id} to be removed")
        return self.of(request_id)

    def _gone(self, request_id: RequestId | str) -> bool:
        with self._lock:
            found = [s for s in self.sightings.values() if s.request_id == request_id]
            return bool(found) and all(s.gone_at is not None for s in found)

    def assert_ended_on_time(
        self, request_id: RequestId | str, duration: timedelta, late_by_at_most: timedelta, *, early_ok: bool = False
    ) -> Sighting:
        """The binding appeared once, its expiry was never pushed past ``duration`` from the moment it was
        in place, and it was gone within ``late_by_at_most`` of that expiry (and, unless ``early_ok``,
        not before it, give or take the revoke's one-second tolerance)."""
        seen = self.of(request_id)
        assert len(seen.spans) == 1, f"{seen.name} came back after it was removed: spans {seen.spans}"
        assert seen.gone_at is not None, f"{seen.name} is still there"
        assert seen.expiries, f"{seen.name} never carried an expiry annotation"
        # The duration counts from the moment the binding is in place (the contract): moving the
        # annotation to "in place + duration" is right, anything later hands out time nobody approved.
        # The annotation is whole seconds, rounded down, so it can only read earlier than that.
        promised = seen.first_seen + duration.total_seconds()
        latest = max(e.timestamp() for e in seen.expiries)
        assert latest <= promised + 0.5, (
            f"{seen.name}'s expiry was pushed to {latest - seen.first_seen:.1f}s after it appeared, "
            f"for a {duration.total_seconds():.0f}s grant: {seen.expiries}"
        )
        expiry = seen.expiries[-1].timestamp()
        late = seen.gone_at - expiry
        print(
            f"{seen.name}: present {seen.gone_at - seen.first_seen:.2f}s, gone {late:+.2f}s after its expiry annotation"
        )
        assert late <= late_by_at_most.total_seconds(), (
            f"{seen.name} outlived its expiry by {late:.2f}s (allowed {late_by_at_most.total_seconds():.0f}s)"
        )
        if not early_ok:
            assert seen.spans[-1][1] >= expiry - 1.5, f"{seen.name} was removed {expiry - seen.spans[-1][1]:.2f}s early"
        return seen
