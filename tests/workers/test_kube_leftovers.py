"""``KubeClusters`` for the sweep's leftovers, over real HTTP against the Kubernetes API double: a
grant's ServiceAccount found by label and deleted on its own, and clusters that follow the roster."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.grants import MANAGED_BY_LABEL, REQUEST_ID_LABEL, ManagedServiceAccount
from bot.ports import UnknownCluster
from bot.standins.kube import KubeApiServer
from tests.conftest import WARRANT_KEY, FakeClock
from tests.workers.test_kube_adapter import TIMEOUT, bot_token, clusters, grant, kube, kubeconfig  # noqa: F401
from workers.kube import ClusterTarget, KubeClusters

SA_PATH = "/api/v1/namespaces/breakglass-system/serviceaccounts"


def test_managed_service_accounts_are_listed_by_label_and_deleted_alone(
    clusters: KubeClusters,  # noqa: F811
    kube: KubeApiServer,  # noqa: F811
    clock: FakeClock,
) -> None:
    spec = grant(clock, credentials="token")
    clusters.apply_grant(spec)
    kube.seed(  # someone else's ServiceAccount in the same namespace, not ours
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "ci-deployer", "namespace": "breakglass-system", "labels": {"team": "ci"}},
        }
    )

    listed = clusters.list_managed_service_accounts("prod-token")

    assert listed == [ManagedServiceAccount("prod-token", spec.name, "breakglass-system", spec.request_id)]
    asked = [r for r in kube.requests if r.method == "GET" and r.path == SA_PATH]
    assert asked, "the list went to the token namespace's serviceaccounts"
    assert clusters.remove_service_account("prod-token", spec.request_id) is True
    assert clusters.remove_service_account("prod-token", spec.request_id) is False  # already gone
    assert clusters.list_managed_service_accounts("prod-token") == []
    assert kube.get_object("serviceaccounts", "ci-deployer", "breakglass-system") is not None
    (binding,) = clusters.list_managed("prod-token")  # the binding is left to its own revoke
    assert binding.request_id == spec.request_id
    labels = kube.get_object("rolebindings", spec.name, "payments")["metadata"]["labels"]  # type: ignore[index]
    assert labels[MANAGED_BY_LABEL] == "breakglass"
    assert labels[REQUEST_ID_LABEL] == spec.request_id


def test_clusters_follow_the_roster_added_at_once_and_kept_when_removed(
    kubeconfig: Path,  # noqa: F811
    clock: FakeClock,
) -> None:
    targets = {"prod": ClusterTarget("prod", "user")}
    gateway = KubeClusters(
        dict(targets),
        kubeconfig=kubeconfig,
        now=clock,
        request_timeout=TIMEOUT,
        follow=lambda: targets,
        warrant_key=WARRANT_KEY,
    )
    try:
        with pytest.raises(UnknownCluster):
            gateway.list_managed("added")
        targets["added"] = ClusterTarget("prod", "user")  # the roster file gained a cluster
        assert gateway.list_managed("added") == []
        assert set(gateway.clusters()) == {"prod", "added"}
        spec = grant(clock)
        gateway.apply_grant(spec)

        del targets["prod"]  # and lost one: what it holds must still be reachable for the sweep
        assert set(gateway.clusters()) == {"prod", "added"}
        assert [b.name for b in gateway.list_managed("prod")] == [spec.name]
        assert gateway.remove_grant("prod", spec.request_id, "payments") is True
    finally:
        gateway.close()
