"""``KubeClusters`` over real HTTP against the Kubernetes API double.

The bot authenticates as its own ServiceAccount holding exactly the production RBAC that
``bot/deploy_rbac.py`` renders (``bind`` only on the roster's roles), so every grant here also passes the API
server's escalation check the way it must in a real cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client import ApiException

import workers.kube
from bot.deploy_rbac import bot_rbac_manifests
from bot.domain.grants import (
    EXPIRES_AT_ANNOTATION,
    INSTALLATION_LABEL,
    MANAGED_BY_LABEL,
    REQUEST_ID_LABEL,
    SERVICE_ACCOUNT_ANNOTATION,
    THREAD_ANNOTATION,
    BindingSpec,
    Credentials,
    ManagedBinding,
    RequestThread,
    format_instant,
)
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.warrant import WARRANT_ANNOTATION, Subject, Warranted, sign_warrant
from bot.ports import (
    AccessCheck,
    BindingConflict,
    BindingNotFound,
    BreakglassError,
    ClusterRefused,
    ClusterUnavailable,
    CredentialsRejected,
    PermanentError,
    TemporaryError,
    UnknownCluster,
)
from bot.standins.kube import ContextEntry, KubeApiServer, write_kubeconfig
from tests.conftest import WARRANT_KEY, FakeClock
from workers.kube import ClusterTarget, KubeClusters, translate

RBAC = "rbac.authorization.k8s.io"
ROSTER_ROLES = ["view", "admin", "cluster-admin"]
TIMEOUT = (1.0, 1.0)


@pytest.fixture
def kube(clock: FakeClock) -> Iterator[KubeApiServer]:
    with KubeApiServer(now=clock, namespaces=["payments", "staging", "breakglass-system"]) as server:
        for manifest in bot_rbac_manifests(ROSTER_ROLES):
            server.seed(manifest)
        server.seed(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "breakglass", "namespace": "breakglass-system"},
            }
        )
        server.seed(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "checkout-1", "namespace": "payments"},
                "spec": {"containers": [{"name": "app", "image": "checkout:1"}]},
            }
        )
        yield server


@pytest.fixture
def bot_token(kube: KubeApiServer) -> str:
    return kube.issue_token("breakglass-system", "breakglass", seconds=30 * 24 * 3600)


@pytest.fixture
def kubeconfig(kube: KubeApiServer, bot_token: str, tmp_path: Path) -> Path:
    return write_kubeconfig(
        tmp_path / "kubeconfig",
        {"prod": ContextEntry(kube, bot_token), "admin": kube.context()},
        current_context="prod",
    )


@pytest.fixture
def clusters(kubeconfig: Path, clock: FakeClock) -> Iterator[KubeClusters]:
    gateway = KubeClusters(
        {"prod": ClusterTarget("prod", "user"), "prod-token": ClusterTarget("prod", "token")},
        kubeconfig=kubeconfig,
        now=clock,
        request_timeout=TIMEOUT,
        warrant_key=WARRANT_KEY,
    )
    yield gateway
    gateway.close()


@pytest.fixture
def admin(kubeconfig: Path) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(config.new_client_from_config(str(kubeconfig), "admin", persist_config=False))


def grant(
    clock: FakeClock,
    request_id: str = "BG-7K2QXM",
    *,
    namespace: str | None = "payments",
    role: str = "view",
    credentials: Credentials = "user",
    minutes: float = 30,
) -> BindingSpec:
    return BindingSpec(
        request_id=RequestId(request_id),
        cluster="prod-token" if credentials == "token" else "prod",
        namespace=namespace,
        cluster_role=role,
        credentials=credentials,
        kube_user="alice@example.com",
        requester=SlackUserId("U000000ALICE"),
        approvers=(SlackUserId("U0000000BOB"),),
        reason="INC-4411 checkout pods crash-looping",
        expires_at=clock() + timedelta(minutes=minutes),
    )


def alice_may(clusters: KubeClusters, verb: str, resource: str, namespace: str | None = "payments") -> bool:
    return clusters.review_access(
        "prod", AccessCheck(user="alice@example.com", verb=verb, resource=resource, namespace=namespace)
    )


def texts(exc: BaseException) -> str:
    """Everything an exception could put in a log: its text, repr and its causes' texts."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


# --- user-mode grants ----------------------------------------------------------------------------------


def test_namespaced_user_grant_lets_the_person_act_there_until_removed(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    spec = grant(clock)
    assert clusters.apply_grant(spec) is None
    assert alice_may(clusters, "list", "pods")
    assert not alice_may(clusters, "list", "pods", namespace="staging")
    assert not alice_may(clusters, "get", "secrets")

    stored = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    assert stored is not None
    assert stored["metadata"]["labels"] == {
        MANAGED_BY_LABEL: "breakglass",
        REQUEST_ID_LABEL: "BG-7K2QXM",
        INSTALLATION_LABEL: "default",
    }
    assert stored["metadata"]["annotations"] == {**spec.annotations(), WARRANT_ANNOTATION: warrant_of(spec)}
    assert stored["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"}
    assert stored["subjects"] == [{"apiGroup": RBAC, "kind": "User", "name": "alice@example.com"}]

    assert clusters.remove_grant("prod", spec.request_id, "payments") is True
    assert not alice_may(clusters, "list", "pods")
    assert kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments") is None


def test_cluster_user_grant_is_a_cluster_role_binding_that_applies_everywhere(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    spec = grant(clock, namespace=None, role="cluster-admin")
    clusters.apply_grant(spec)
    assert kube.get_object("clusterrolebindings", "breakglass-bg-7k2qxm") is not None
    assert alice_may(clusters, "delete", "nodes", namespace=None)
    assert alice_may(clusters, "get", "secrets", namespace="staging")
    assert clusters.remove_grant("prod", spec.request_id, None) is True
    assert not alice_may(clusters, "get", "secrets", namespace="staging")


def test_applying_the_same_grant_again_adopts_it_and_moves_its_expiry(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    clusters.apply_grant(grant(clock, minutes=30))
    first = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    later = grant(clock, minutes=45)
    assert clusters.apply_grant(later) is None
    after = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    assert first is not None
    assert after is not None
    assert after["metadata"]["uid"] == first["metadata"]["uid"]
    assert after["metadata"]["annotations"][EXPIRES_AT_ANNOTATION] == format_instant(later.expires_at)


def test_a_foreign_binding_of_the_same_name_is_a_conflict_and_is_left_alone(
    clusters: KubeClusters, kube: KubeApiServer, admin: client.RbacAuthorizationV1Api, clock: FakeClock
) -> None:
    foreign = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="breakglass-bg-7k2qxm"),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name="view"),
        subjects=[client.RbacV1Subject(api_group=RBAC, kind="User", name="mallory@example.com")],
    )
    admin.create_namespaced_role_binding("payments", foreign)
    with pytest.raises(BindingConflict, match="was not made for BG-7K2QXM"):
        clusters.apply_grant(grant(clock))
    stored = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    assert stored is not None
    assert stored["subjects"][0]["name"] == "mallory@example.com"
    assert "annotations" not in stored["metadata"]


def test_our_label_on_a_binding_to_another_role_is_still_a_conflict(clusters: KubeClusters, clock: FakeClock) -> None:
    clusters.apply_grant(grant(clock, role="view"))
    with pytest.raises(BindingConflict):
        clusters.apply_grant(grant(clock, role="admin"))


def test_removing_a_grant_already_gone_is_success(clusters: KubeClusters) -> None:
    assert clusters.remove_grant("prod", RequestId("BG-7K2QXM"), "payments") is False
    assert clusters.remove_grant("prod", RequestId("BG-7K2QXM"), None) is False


def test_set_expiry_moves_the_annotation_and_only_that(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    spec = grant(clock)
    clusters.apply_grant(spec)
    extended = grant(clock, minutes=90)
    clusters.set_expiry(extended)
    stored = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    assert stored is not None
    # The new expiry is signed anew: an extension re-signs the warrant.
    assert stored["metadata"]["annotations"] == {**extended.annotations(), WARRANT_ANNOTATION: warrant_of(extended)}
    assert stored["subjects"][0]["name"] == "alice@example.com"
    (listed,) = clusters.list_managed("prod")
    assert listed.warranted


def test_a_binding_names_its_thread_once_known_and_reads_it_back(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    # Made before the request message was posted: no thread. Set later (the sweep, or an extension)
    # with the same expiry: the thread is written, the warrant still verifies, and listing reads it.
    clusters.apply_grant(grant(clock))
    (before,) = clusters.list_managed("prod")
    assert before.thread is None
    named = replace(grant(clock), thread=RequestThread("C0000INCIDENT", "1790000000.000100"))
    clusters.set_expiry(named)
    stored = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    assert stored is not None
    assert stored["metadata"]["annotations"][THREAD_ANNOTATION] == "C0000INCIDENT/1790000000.000100"
    (after,) = clusters.list_managed("prod")
    assert after.thread == RequestThread("C0000INCIDENT", "1790000000.000100")
    assert after.warranted


@pytest.mark.parametrize("text", ["", "C0000INCIDENT", "general/1790000000.1", "C0000INCIDENT/now", "C0X/1.2/3"])
def test_an_unreadable_thread_annotation_names_no_thread(text: str) -> None:
    assert RequestThread.parse(text) is None


def test_binding_exists_answers_for_any_binding_by_name_as_the_api_server_does(
    clusters: KubeClusters, clock: FakeClock
) -> None:
    # What a grant's end asks of a RoleBinding its holder made: there or not (a 404 is "not").
    clusters.apply_grant(grant(clock))
    assert clusters.binding_exists("prod", "payments", "breakglass-bg-7k2qxm")
    assert not clusters.binding_exists("prod", "payments", "alice-forever")
    assert not clusters.binding_exists("prod", None, "alice-forever")


def warrant_of(spec: BindingSpec) -> str:
    subject = Subject("User", spec.kube_user)
    what = Warranted(spec.request_id, spec.cluster, spec.namespace, spec.cluster_role, subject, spec.expires_at)
    return sign_warrant(WARRANT_KEY, what)


TAMPERINGS = {
    "expiry-moved": lambda b: b.metadata.annotations.update({EXPIRES_AT_ANNOTATION: "2030-01-01T00:00:00Z"}),
    "relabelled": lambda b: b.metadata.labels.update({REQUEST_ID_LABEL: "BG-9PQRST"}),
    "subject-added": lambda b: b.subjects.append(client.RbacV1Subject(api_group=RBAC, kind="User", name="mallory")),
    "warrant-removed": lambda b: b.metadata.annotations.pop(WARRANT_ANNOTATION),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_binding_changed_behind_breakglass_reads_back_unwarranted(
    clusters: KubeClusters, admin: client.RbacAuthorizationV1Api, clock: FakeClock, tamper: Any
) -> None:
    clusters.apply_grant(grant(clock))
    stored = admin.read_namespaced_role_binding("breakglass-bg-7k2qxm", "payments")
    tamper(stored)
    admin.replace_namespaced_role_binding("breakglass-bg-7k2qxm", "payments", stored)
    (listed,) = clusters.list_managed("prod")
    assert not listed.warranted


def test_a_binding_signed_under_another_key_reads_back_unwarranted(
    clusters: KubeClusters, kubeconfig: Path, clock: FakeClock
) -> None:
    other = KubeClusters({"prod": ClusterTarget("prod", "user")}, kubeconfig=kubeconfig, warrant_key=b"o" * 32)
    other.apply_grant(grant(clock))
    (listed,) = clusters.list_managed("prod")
    assert not listed.warranted
    other.close()


def test_bindings_carry_the_installation_label_and_another_installations_are_left_alone(
    clusters: KubeClusters, kubeconfig: Path, admin: client.RbacAuthorizationV1Api, clock: FakeClock
) -> None:
    clusters.apply_grant(grant(clock))
    stored = admin.read_namespaced_role_binding("breakglass-bg-7k2qxm", "payments")
    assert stored.metadata.labels[INSTALLATION_LABEL] == "default"
    other = KubeClusters(
        {"prod": ClusterTarget("prod", "user")}, kubeconfig=kubeconfig, warrant_key=b"o" * 32, installation="eu"
    )
    other.apply_grant(grant(clock, "BG-2222AA"))
    # Each installation sees its own: the other's warrant would not verify here, and its sweep
    # would otherwise delete it.
    assert [b.name for b in clusters.list_managed("prod")] == ["breakglass-bg-7k2qxm"]
    assert [b.name for b in other.list_managed("prod")] == ["breakglass-bg-2222aa"]
    other.close()


def test_remove_binding_deletes_what_was_listed_by_its_own_name(
    clusters: KubeClusters, admin: client.RbacAuthorizationV1Api, clock: FakeClock
) -> None:
    clusters.apply_grant(grant(clock))
    stored = admin.read_namespaced_role_binding("breakglass-bg-7k2qxm", "payments")
    stored.metadata.labels[REQUEST_ID_LABEL] = "BG-9PQRST"  # relabelled: its label names another request
    admin.replace_namespaced_role_binding("breakglass-bg-7k2qxm", "payments", stored)
    (listed,) = clusters.list_managed("prod")
    assert clusters.remove_binding(listed) is True
    assert clusters.list_managed("prod") == []


def test_set_expiry_of_a_binding_that_is_gone_is_binding_not_found(clusters: KubeClusters, clock: FakeClock) -> None:
    with pytest.raises(BindingNotFound):
        clusters.set_expiry(grant(clock))


def test_list_managed_finds_grants_everywhere_and_reads_their_expiry(
    clusters: KubeClusters, admin: client.RbacAuthorizationV1Api, clock: FakeClock
) -> None:
    namespaced, cluster_wide = (
        grant(clock, "BG-2222AA"),
        grant(clock, "BG-3333BB", namespace=None, role="cluster-admin"),
    )
    clusters.apply_grant(namespaced)
    clusters.apply_grant(cluster_wide)
    broken = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(
            name="breakglass-bg-4444cc",
            labels={MANAGED_BY_LABEL: "breakglass", REQUEST_ID_LABEL: "not-an-id"},
            annotations={EXPIRES_AT_ANNOTATION: "next tuesday"},
        ),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name="view"),
        subjects=[],
    )
    admin.create_namespaced_role_binding("staging", broken)
    unmanaged = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="someone-elses"),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name="view"),
    )
    admin.create_namespaced_role_binding("payments", unmanaged)

    found = sorted(clusters.list_managed("prod"), key=lambda b: b.name)
    assert found == [
        ManagedBinding(
            "prod", "breakglass-bg-2222aa", "payments", RequestId("BG-2222AA"), namespaced.expires_at, warranted=True
        ),
        ManagedBinding(
            "prod", "breakglass-bg-3333bb", None, RequestId("BG-3333BB"), cluster_wide.expires_at, warranted=True
        ),
        ManagedBinding("prod", "breakglass-bg-4444cc", "staging", None, None),
    ]


def test_list_managed_follows_continue_tokens(
    clusters: KubeClusters, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers.kube, "_LIST_PAGE", 2)
    ids = ["BG-2222AA", "BG-3333BB", "BG-4444CC", "BG-5555DD", "BG-6666EE"]
    for request_id in ids:
        clusters.apply_grant(grant(clock, request_id))
    assert sorted(b.request_id or "" for b in clusters.list_managed("prod")) == ids


# --- token-mode grants ----------------------------------------------------------------------------------


def holder_api(credentials_kubeconfig: str) -> client.ApiClient:
    document = yaml.safe_load(credentials_kubeconfig)
    configuration = client.Configuration()
    configuration.retries = False
    return config.new_client_from_config_dict(document, persist_config=False, client_configuration=configuration)


def test_token_grant_hands_out_a_kubeconfig_that_works_until_removed(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    spec = grant(clock, credentials="token", minutes=60)
    issued = clusters.apply_grant(spec)
    assert issued is not None
    assert issued.token_expires_at == spec.expires_at.replace(microsecond=0)
    assert issued.outlives_grant is False

    document = yaml.safe_load(issued.kubeconfig)
    assert document["clusters"][0]["cluster"]["server"] == kube.url
    (context,) = document["contexts"]
    assert context["context"]["namespace"] == "payments"
    assert document["current-context"] == context["name"]

    holder = client.CoreV1Api(holder_api(issued.kubeconfig))
    assert [p.metadata.name for p in holder.list_namespaced_pod("payments").items if p.metadata] == ["checkout-1"]
    with pytest.raises(ApiException) as caught:
        holder.list_namespaced_pod("staging")
    assert caught.value.status == 403

    service_account = kube.get_object("serviceaccounts", "breakglass-bg-7k2qxm", "breakglass-system")
    assert service_account is not None
    assert service_account["metadata"]["labels"][REQUEST_ID_LABEL] == "BG-7K2QXM"
    assert service_account["automountServiceAccountToken"] is False
    binding = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    assert binding is not None
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "breakglass-bg-7k2qxm", "namespace": "breakglass-system"}
    ]
    assert binding["metadata"]["annotations"][SERVICE_ACCOUNT_ANNOTATION] == "breakglass-system/breakglass-bg-7k2qxm"
    (managed,) = clusters.list_managed("prod-token")
    assert managed.service_account == ("breakglass-system", "breakglass-bg-7k2qxm")

    assert clusters.remove_grant("prod-token", spec.request_id, "payments") is True
    assert kube.get_object("serviceaccounts", "breakglass-bg-7k2qxm", "breakglass-system") is None
    with pytest.raises(ApiException) as caught:
        holder.list_namespaced_pod("payments")
    assert caught.value.status == 401


def test_short_token_grant_gets_the_ten_minute_minimum_and_says_it_outlives_the_grant(
    clusters: KubeClusters, clock: FakeClock
) -> None:
    issued = clusters.apply_grant(grant(clock, credentials="token", minutes=5))
    assert issued is not None
    assert issued.token_expires_at == clock() + timedelta(minutes=10)
    assert issued.outlives_grant is True


def test_token_grant_refuses_a_foreign_service_account_of_that_name(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    kube.seed(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "breakglass-bg-7k2qxm", "namespace": "breakglass-system"},
        }
    )
    with pytest.raises(BindingConflict):
        clusters.apply_grant(grant(clock, credentials="token"))
    assert kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments") is None  # nothing was bound to it


def test_token_grant_retried_adopts_its_service_account_and_binding(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    first = clusters.apply_grant(grant(clock, credentials="token"))
    again = clusters.apply_grant(grant(clock, credentials="token"))
    assert first is not None
    assert again is not None
    assert len(kube.snapshot("breakglass.dev/request-id=BG-7K2QXM")["serviceaccounts"]) == 1


def test_revoking_after_the_cluster_left_token_mode_still_deletes_the_service_account(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    clusters.apply_grant(grant(clock, credentials="token"))
    assert clusters.remove_grant("prod", RequestId("BG-7K2QXM"), "payments") is True  # "prod" is user mode
    assert kube.get_object("serviceaccounts", "breakglass-bg-7k2qxm", "breakglass-system") is None


# --- doctor and readiness -------------------------------------------------------------------------------


def test_self_review_reports_the_bots_own_least_privilege(clusters: KubeClusters) -> None:
    assert clusters.self_review("prod", "create", "rolebindings", "payments", api_group=RBAC)
    assert clusters.self_review("prod", "bind", "clusterroles", api_group=RBAC, name="cluster-admin")
    assert not clusters.self_review("prod", "bind", "clusterroles", api_group=RBAC, name="edit")
    assert clusters.self_review("prod", "create", "serviceaccounts/token", "breakglass-system")
    assert not clusters.self_review("prod", "create", "serviceaccounts/token", "payments")
    assert not clusters.self_review("prod", "update", "rolebindings", "payments", api_group=RBAC)


def test_ping_answers_the_server_version(clusters: KubeClusters) -> None:
    assert clusters.ping("prod") == "v1.31.0"


def test_nothing_touches_a_cluster_before_first_use(kube: KubeApiServer, tmp_path: Path) -> None:
    before = len(kube.requests)
    gateway = KubeClusters({"prod": ClusterTarget("prod")}, kubeconfig=tmp_path / "does-not-exist")
    assert gateway.clusters() == ("prod",)
    assert len(kube.requests) == before
    with pytest.raises(UnknownCluster, match="cannot load context 'prod'"):
        gateway.ping("prod")


def test_unknown_cluster_and_missing_context_are_unknown_cluster(kubeconfig: Path) -> None:
    gateway = KubeClusters({"prod": ClusterTarget("prod"), "eu": ClusterTarget("eu")}, kubeconfig=kubeconfig)
    with pytest.raises(UnknownCluster, match="'mars' is not configured"):
        gateway.ping("mars")
    with pytest.raises(UnknownCluster, match="'eu'"):
        gateway.ping("eu")


def test_in_cluster_outside_a_pod_is_unknown_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UnknownCluster, match="in-cluster"):
        KubeClusters({"here": ClusterTarget("in-cluster")}).ping("here")


def test_clients_are_built_once_and_shared_by_threads(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    ids = ["BG-2222AA", "BG-3333BB", "BG-4444CC", "BG-5555DD", "BG-6666EE", "BG-7777FF"]
    errors: list[BaseException] = []

    def work(request_id: str) -> None:
        try:
            clusters.apply_grant(grant(clock, request_id))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert len(kube.snapshot("app.kubernetes.io/managed-by=breakglass")["rolebindings"]) == len(ids)


# --- error translation ----------------------------------------------------------------------------------


def test_503_is_cluster_unavailable(clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock) -> None:
    kube.fail_requests(503)
    with pytest.raises(ClusterUnavailable, match="HTTP 503 ServiceUnavailable"):
        clusters.apply_grant(grant(clock))
    with pytest.raises(ClusterUnavailable):
        clusters.list_managed("prod")
    with pytest.raises(ClusterUnavailable):
        clusters.remove_grant("prod", RequestId("BG-7K2QXM"), "payments")


def test_429_is_cluster_unavailable_with_the_retry_after_delay(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    kube.fail_requests(429, retry_after=120, times=1)
    started = time.monotonic()
    with pytest.raises(ClusterUnavailable) as caught:
        clusters.apply_grant(grant(clock))
    assert caught.value.delay == 120.0
    # Our retry policy waits (120 s), not urllib3 inside the call: a bound no loaded machine reaches.
    assert time.monotonic() - started < 120


def test_a_hung_api_server_is_cluster_unavailable_within_the_timeout(
    clusters: KubeClusters, kube: KubeApiServer, clock: FakeClock
) -> None:
    kube.hang_requests(300)
    started = time.monotonic()
    with pytest.raises(ClusterUnavailable, match="ReadTimeoutError"):
        clusters.apply_grant(grant(clock))
    assert time.monotonic() - started < 300  # the read timeout ended it, not the hang
    kube.clear_faults()


def test_a_cluster_that_went_away_is_cluster_unavailable(clusters: KubeClusters, kube: KubeApiServer) -> None:
    assert clusters.ping("prod")
    kube.stop()
    with pytest.raises(ClusterUnavailable):
        clusters.ping("prod")


def test_a_bot_without_permissions_is_refused(kube: KubeApiServer, tmp_path: Path, clock: FakeClock) -> None:
    kube.add_identity("powerless-token", "powerless-bot")
    path = write_kubeconfig(tmp_path / "config", {"prod": ContextEntry(kube, "powerless-token")})
    gateway = KubeClusters(
        {"prod": ClusterTarget("prod")}, kubeconfig=path, now=clock, request_timeout=TIMEOUT, warrant_key=WARRANT_KEY
    )
    with pytest.raises(
        ClusterRefused, match=r'HTTP 403 Forbidden: .*User "powerless-bot" cannot create resource "rolebindings"'
    ):
        gateway.apply_grant(grant(clock))
    with pytest.raises(ClusterRefused):
        gateway.list_managed("prod")


def test_refused_credentials_are_transient_and_reloaded_on_the_next_call(
    clusters: KubeClusters, kube: KubeApiServer, kubeconfig: Path, admin: client.RbacAuthorizationV1Api
) -> None:
    assert clusters.ping("prod")
    core = client.CoreV1Api(admin.api_client)
    core.delete_namespaced_service_account("breakglass", "breakglass-system")  # the bot's token dies with it
    with pytest.raises(CredentialsRejected, match="HTTP 401 Unauthorized") as caught:
        clusters.ping("prod")
    # Mid-rotation a retry succeeds, so the job retries (within its budget) instead of failing for good.
    assert isinstance(caught.value, TemporaryError)
    assert not isinstance(caught.value, PermanentError)
    kube.add_identity("rotated-token", "breakglass-bot")
    write_kubeconfig(kubeconfig, {"prod": ContextEntry(kube, "rotated-token")})  # an operator rotates it
    assert clusters.ping("prod") == "v1.31.0"


def test_a_bot_without_bind_cannot_grant_a_role_it_does_not_hold(
    kube: KubeApiServer, admin: client.RbacAuthorizationV1Api, tmp_path: Path, clock: FakeClock
) -> None:
    kube.add_identity("binder-token", "binder-bot")
    writer = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name="binder"),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name="breakglass"),
        subjects=[client.RbacV1Subject(api_group=RBAC, kind="User", name="binder-bot")],
    )
    admin.create_cluster_role_binding(writer)  # binder-bot holds the bot's ClusterRole...
    role = admin.read_cluster_role("breakglass")
    role.rules = [rule for rule in role.rules or [] if "bind" not in rule.verbs]  # ...minus its `bind` rule
    admin.replace_cluster_role("breakglass", role)
    path = write_kubeconfig(tmp_path / "config", {"prod": ContextEntry(kube, "binder-token")})
    gateway = KubeClusters(
        {"prod": ClusterTarget("prod")}, kubeconfig=path, now=clock, request_timeout=TIMEOUT, warrant_key=WARRANT_KEY
    )
    with pytest.raises(ClusterRefused, match="attempting to grant RBAC permissions not currently held"):
        gateway.apply_grant(grant(clock))


def test_the_production_bot_may_only_grant_the_roster_roles(clusters: KubeClusters, clock: FakeClock) -> None:
    with pytest.raises(ClusterRefused, match="HTTP 403 Forbidden"):
        clusters.apply_grant(grant(clock, role="edit"))


def test_a_grant_in_a_missing_namespace_is_refused_not_retried(clusters: KubeClusters, clock: FakeClock) -> None:
    with pytest.raises(ClusterRefused, match='namespaces "checkout" not found'):
        clusters.apply_grant(grant(clock, namespace="checkout"))


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (400, "BadRequest", ClusterRefused),
        (401, "Unauthorized", CredentialsRejected),
        (403, "Forbidden", ClusterRefused),
        (404, "NotFound", BindingNotFound),
        (409, "AlreadyExists", BindingConflict),
        (409, "Conflict", TemporaryError),
        (422, "Invalid", ClusterRefused),
        (429, "TooManyRequests", ClusterUnavailable),
        (500, "InternalError", ClusterUnavailable),
        (503, "ServiceUnavailable", ClusterUnavailable),
        (504, "Timeout", ClusterUnavailable),
    ],
)
def test_api_errors_translate_by_code_and_reason(code: int, reason: str, expected: type[BreakglassError]) -> None:
    body = f'{{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"{reason}","message":"m","code":{code}}}'
    answer = urllib3.HTTPResponse(body=body.encode(), status=code, reason=reason, preload_content=True)
    error = translate("prod", "do a thing", ApiException(http_resp=answer))
    assert type(error) is expected
    assert str(error) == f"cluster prod: do a thing: HTTP {code} {reason}: m"


def test_no_secret_reaches_an_exception(
    clusters: KubeClusters, kube: KubeApiServer, bot_token: str, clock: FakeClock
) -> None:
    issued = clusters.apply_grant(grant(clock, "BG-2222AA", credentials="token"))
    assert issued is not None
    holder_token = yaml.safe_load(issued.kubeconfig)["users"][0]["user"]["token"]
    failures: list[BaseException] = []

    def fails(call: Any) -> None:
        try:
            call()
        except BreakglassError as exc:
            failures.append(exc)
        else:
            pytest.fail("expected a failure")

    kube.fail_requests(
        500, path_prefix="/api/v1/namespaces/breakglass-system/serviceaccounts/breakglass-bg-2222aa/token"
    )
    fails(lambda: clusters.apply_grant(grant(clock, "BG-2222AA", credentials="token")))
    kube.clear_faults()
    kube.fail_requests(503, times=1)
    fails(lambda: clusters.list_managed("prod-token"))
    kube.hang_requests(30, times=1)
    fails(lambda: clusters.set_expiry(grant(clock, "BG-2222AA", credentials="token")))
    kube.clear_faults()
    fails(lambda: clusters.apply_grant(grant(clock, "BG-2222AA", role="admin", credentials="token")))
    fails(lambda: clusters.apply_grant(grant(clock, "BG-3333BB", role="edit", credentials="token")))
    assert len(failures) == 5
    for failure in failures:
        text = texts(failure)
        assert bot_token not in text
        assert holder_token not in text
        assert "BEGIN" not in text  # no kubeconfig or certificate material either


def test_expiry_instant_survives_a_round_trip_through_the_cluster(clusters: KubeClusters, clock: FakeClock) -> None:
    odd = grant(clock, minutes=17.25)  # not a whole second away: the annotation keeps whole seconds
    clusters.apply_grant(odd)
    (found,) = clusters.list_managed("prod")
    assert found.expires_at == odd.expires_at.replace(microsecond=0)
    assert isinstance(found.expires_at, datetime)
