"""Grants made and removed by the Kubernetes adapter on a real cluster, judged by its own authorizer
(SubjectAccessReview) and authenticator: what the doubles promise, checked against the real thing."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client import ApiException

from bot.domain.grants import BindingSpec, Credentials, format_instant
from bot.domain.ids import SlackUserId, new_request_id
from bot.ports import AccessCheck
from bot.standins.stack import wait_until
from tests.e2e_real.conftest import CLUSTER
from workers.kube import KubeClusters

pytestmark = pytest.mark.e2e

# A token the API server has just accepted may be served from its authentication cache for a while
# (ten seconds by default) after its ServiceAccount is deleted.
TOKEN_CACHE = 30.0


def _spec(namespace: str | None, credentials: Credentials = "user") -> BindingSpec:
    request_id = new_request_id()
    return BindingSpec(
        request_id=request_id,
        cluster=CLUSTER,
        namespace=namespace,
        cluster_role="view",  # a default ClusterRole on every cluster
        credentials=credentials,
        kube_user=f"breakglass-e2e-{secrets.token_hex(4)}@example.com",
        requester=SlackUserId("U000000ALICE"),
        approvers=(SlackUserId("U0000000BOB"),),
        reason="breakglass end-to-end suite",
        expires_at=datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10),
    )


@pytest.fixture
def removed_after(cluster: KubeClusters) -> Iterator[Callable[[BindingSpec], BindingSpec]]:
    """Register a spec so its grant is removed even when the test fails half-way."""
    made: list[BindingSpec] = []

    def register(spec: BindingSpec) -> BindingSpec:
        made.append(spec)
        return spec

    yield register
    for spec in made:
        cluster.remove_grant(spec.cluster, spec.request_id, spec.namespace)


def _refused(call: Callable[[], object]) -> int | None:
    """The HTTP status the API server refused ``call`` with, or None when it answered."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status or 0)
    return None


def _may_list_pods(cluster: KubeClusters, user: str, namespace: str) -> bool:
    return cluster.review_access(CLUSTER, AccessCheck(user=user, verb="list", resource="pods", namespace=namespace))


def test_namespaced_grant_is_honoured_until_removed(
    cluster: KubeClusters, namespace: str, removed_after: Callable[[BindingSpec], BindingSpec]
) -> None:
    spec = removed_after(_spec(namespace))
    assert not _may_list_pods(cluster, spec.kube_user, namespace), "the test user must start with no access"

    assert cluster.apply_grant(spec) is None
    assert _may_list_pods(cluster, spec.kube_user, namespace)
    assert not _may_list_pods(cluster, spec.kube_user, "kube-system"), "a namespaced grant reaches one namespace"
    assert cluster.apply_grant(spec) is None, "applying the same grant again adopts it"
    (listed,) = [b for b in cluster.list_managed(CLUSTER) if b.request_id == spec.request_id]
    assert (listed.name, listed.namespace) == (spec.name, namespace)
    assert listed.expires_at is not None
    assert format_instant(listed.expires_at) == format_instant(spec.expires_at)

    assert cluster.remove_grant(CLUSTER, spec.request_id, namespace) is True
    assert not _may_list_pods(cluster, spec.kube_user, namespace)
    assert cluster.remove_grant(CLUSTER, spec.request_id, namespace) is False, "already gone counts as removed"
    assert all(b.request_id != spec.request_id for b in cluster.list_managed(CLUSTER))


def test_cluster_scoped_grant_is_honoured_everywhere_until_removed(
    cluster: KubeClusters, namespace: str, removed_after: Callable[[BindingSpec], BindingSpec]
) -> None:
    spec = removed_after(_spec(None))
    cluster.apply_grant(spec)
    assert _may_list_pods(cluster, spec.kube_user, namespace)
    assert _may_list_pods(cluster, spec.kube_user, "kube-system")
    assert cluster.remove_grant(CLUSTER, spec.request_id, None) is True
    assert not _may_list_pods(cluster, spec.kube_user, "kube-system")


def test_token_grant_authenticates_until_removed_and_not_after(
    token_cluster: KubeClusters, namespace: str, tmp_path: Path
) -> None:
    spec = _spec(namespace, credentials="token")
    try:
        issued = token_cluster.apply_grant(spec)
        assert issued is not None
        holder = tmp_path / "holder-kubeconfig.yaml"
        holder.write_text(issued.kubeconfig)
        context = yaml.safe_load(issued.kubeconfig)["current-context"]
        api = config.new_client_from_config(config_file=str(holder), context=context, persist_config=False)
        pods = client.CoreV1Api(api)
        assert pods.list_namespaced_pod(namespace).items == []  # the token authenticates and is authorized
        with pytest.raises(ApiException) as elsewhere:
            pods.list_namespaced_pod("kube-system")
        assert elsewhere.value.status == 403

        assert token_cluster.remove_grant(CLUSTER, spec.request_id, namespace) is True
        refused = wait_until(lambda: _refused(lambda: pods.list_namespaced_pod(namespace)), TOKEN_CACHE, "refusal")
        assert refused in (401, 403), "the token must stop working (or lose its access) with its grant"
        api.close()
    finally:
        token_cluster.remove_grant(CLUSTER, spec.request_id, namespace)
