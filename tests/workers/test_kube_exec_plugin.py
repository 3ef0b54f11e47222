"""Managed clusters: the bot reaches a remote cluster with a kubeconfig whose user is an ``exec:``
plugin (EKS ``aws eks get-token``, GKE ``gke-gcloud-auth-plugin``, AKS ``kubelogin get-token``), so no
long-lived ServiceAccount token is kept for it.

The real kubernetes client, through ``KubeClusters``, runs a stand-in plugin (a script written into
tmp_path under the real tool's name) and presents the token it prints to the Kubernetes API double,
which accepts only that token, as the cloud identity the provider maps it to. That identity holds the
bot's ClusterRole through a binding, as on a managed cluster (deploy/README.md, "Managed clusters").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.deploy_rbac import bot_rbac_manifests
from bot.domain.grants import BindingSpec
from bot.domain.ids import RequestId, SlackUserId
from bot.ports import AccessCheck, CredentialsRejected
from bot.standins.kube import KubeApiServer
from tests.conftest import WARRANT_KEY, FakeClock
from workers.kube import ClusterTarget, KubeClusters

# Each test runs the stand-in plugin as a real process, several times.
pytestmark = pytest.mark.slow

# Each provider's plugin as its docs configure it: the command, its arguments, and the cloud
# identity its token stands for (what the provider maps it to in Kubernetes).
PROVIDERS = {
    "eks": (
        "aws",
        ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod", "--output", "json"],
        "arn:aws:iam::111122223333:role/breakglass-bot",
    ),
    "gke": ("gke-gcloud-auth-plugin", [], "breakglass-bot@example-project.iam.gserviceaccount.com"),
    "aks": (
        "kubelogin",
        ["get-token", "--login", "workloadidentity", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"],
        "3b5a4c2e-0000-4000-8000-00000000b07a",
    ),
}

# The plugin: prints the next token of its list as an ExecCredential and notes each run (its argv).
PLUGIN = """#!{python}
import json, pathlib, sys
state = pathlib.Path({state!r})
data = json.loads(state.read_text())
token = data["tokens"][min(data["runs"], len(data["tokens"]) - 1)]
data["runs"] += 1
data["argv"].append(sys.argv[1:])
state.write_text(json.dumps(data))
print(json.dumps({{
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "kind": "ExecCredential",
    "status": {{"token": token, "expirationTimestamp": data["expires"]}},
}}))
"""


class Plugin:
    def __init__(self, directory: Path, command: str, tokens: list[str], expires: datetime) -> None:
        self.path = directory / command
        self.state = directory / f"{command}.state.json"
        self.state.write_text(
            json.dumps({"tokens": tokens, "runs": 0, "argv": [], "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})
        )
        self.path.write_text(PLUGIN.format(python=sys.executable, state=str(self.state)))
        self.path.chmod(0o755)

    @property
    def runs(self) -> list[list[str]]:
        return json.loads(self.state.read_text())["argv"]


def exec_kubeconfig(path: Path, server: KubeApiServer, plugin: Plugin, args: list[str]) -> Path:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {"server": server.url}}],
        "users": [
            {
                "name": "breakglass-bot",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": str(plugin.path),
                        "args": args,
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "breakglass-bot"}}],
        "current-context": "prod",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def kube(clock: FakeClock) -> Iterator[KubeApiServer]:
    with KubeApiServer(now=clock, namespaces=["payments"]) as server:
        for manifest in bot_rbac_manifests(["view", "admin"], service_account_tokens=False):
            server.seed(manifest)
        yield server


def bind_cloud_identity(kube: KubeApiServer, identity: str) -> None:
    # On a managed cluster the bot's ClusterRole is bound to the identity the provider maps the
    # plugin's token to (an EKS access entry, a Google service account, an Entra object id).
    kube.seed(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "breakglass-cloud-identity"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "breakglass"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": identity}],
        }
    )


def spec(clock: FakeClock) -> BindingSpec:
    return BindingSpec(
        request_id=RequestId("BG-7K2QXM"),
        cluster="prod",
        namespace="payments",
        cluster_role="view",
        credentials="user",
        kube_user="alice@example.com",
        requester=SlackUserId("U000000ALICE"),
        approvers=(SlackUserId("U0000000BOB"),),
        reason="INC-4411 checkout pods crash-looping",
        expires_at=clock() + timedelta(minutes=30),
    )


def gateway(kubeconfig: Path, clock: FakeClock) -> KubeClusters:
    return KubeClusters(
        {"prod": ClusterTarget("prod", "user")},
        kubeconfig=kubeconfig,
        now=clock,
        request_timeout=(2.0, 5.0),
        warrant_key=WARRANT_KEY,
    )


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_grant_on_a_managed_cluster_uses_the_token_its_exec_plugin_prints(
    provider: str, kube: KubeApiServer, clock: FakeClock, tmp_path: Path
) -> None:
    command, args, identity = PROVIDERS[provider]
    kube.add_identity("cloud-token-1", identity)
    bind_cloud_identity(kube, identity)
    plugin = Plugin(tmp_path, command, ["cloud-token-1"], datetime.now(UTC) + timedelta(hours=1))
    clusters = gateway(exec_kubeconfig(tmp_path / "kubeconfig", kube, plugin, args), clock)
    try:
        clusters.apply_grant(spec(clock))
        assert clusters.review_access(
            "prod", AccessCheck(user="alice@example.com", verb="list", resource="pods", namespace="payments")
        )
    finally:
        clusters.close()
    binding = kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments")
    assert binding is not None
    assert binding["roleRef"]["name"] == "view"
    assert plugin.runs[0] == args, "the plugin is run as the provider's docs configure it"


def test_an_expired_plugin_token_is_fetched_again_before_the_next_call(
    kube: KubeApiServer, clock: FakeClock, tmp_path: Path
) -> None:
    command, args, identity = PROVIDERS["eks"]
    kube.add_identity("cloud-token-1", identity)
    kube.add_identity("cloud-token-2", identity)
    bind_cloud_identity(kube, identity)
    # EKS tokens live 15 minutes; the client renews any that expires within its skew (5 minutes).
    plugin = Plugin(tmp_path, command, ["cloud-token-1", "cloud-token-2"], datetime.now(UTC) + timedelta(minutes=1))
    clusters = gateway(exec_kubeconfig(tmp_path / "kubeconfig", kube, plugin, args), clock)
    try:
        clusters.apply_grant(spec(clock))
        kube.remove_identity("cloud-token-1")  # the first token is no longer accepted
        clusters.remove_grant("prod", RequestId("BG-7K2QXM"), "payments")
    finally:
        clusters.close()
    assert len(plugin.runs) >= 2
    assert kube.get_object("rolebindings", "breakglass-bg-7k2qxm", "payments") is None


def test_a_plugin_token_the_cluster_refuses_is_a_credentials_error_naming_the_cluster(
    kube: KubeApiServer, clock: FakeClock, tmp_path: Path
) -> None:
    command, args, _ = PROVIDERS["gke"]
    plugin = Plugin(tmp_path, command, ["a-token-nobody-accepts"], datetime.now(UTC) + timedelta(hours=1))
    clusters = gateway(exec_kubeconfig(tmp_path / "kubeconfig", kube, plugin, args), clock)
    try:
        with pytest.raises(CredentialsRejected) as refused:
            clusters.apply_grant(spec(clock))
    finally:
        clusters.close()
    assert "prod" in str(refused.value)
    assert "a-token-nobody-accepts" not in str(refused.value)
