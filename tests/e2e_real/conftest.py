"""The opt-in end-to-end suite against a real Kubernetes cluster (kind, minikube, a staging cluster).

It runs only when ``BREAKGLASS_E2E_KUBECONFIG`` names a kubeconfig whose user may create namespaces,
RoleBindings, ClusterRoleBindings, ServiceAccounts, TokenRequests and SubjectAccessReviews (the
cluster admin of a kind cluster will do); ``BREAKGLASS_E2E_CONTEXT`` picks a context (default: the
file's current one). Everything it makes lives in a fresh ``breakglass-e2e-…`` namespace, or is a
ClusterRoleBinding named after a fresh request id, and is removed at the end.

Without the variable the test files here are not collected at all (rather than skipped one by one,
so the default run carries no skips), and the run's summary says why. With it, they still run only
when asked for by marker (``-m e2e``), so a variable left exported cannot send a plain ``pytest`` to
a real cluster.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.conftest import WARRANT_KEY
from workers.kube import ClusterTarget, KubeClusters

KUBECONFIG_VARIABLE = "BREAKGLASS_E2E_KUBECONFIG"
CONTEXT_VARIABLE = "BREAKGLASS_E2E_CONTEXT"
CLUSTER = "e2e"  # the roster name the adapter is given for the cluster under test
HERE = Path(__file__).resolve().parent


def _kubeconfig() -> Path | None:
    value = os.environ.get(KUBECONFIG_VARIABLE, "").strip()
    return Path(value).expanduser() if value else None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if _kubeconfig() is None and collection_path.parent == HERE and collection_path.name.startswith("test_"):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A variable left exported in a shell must not send a plain ``pytest`` to a real cluster: the
    # suite also has to be asked for by marker (``-m e2e``).
    if "e2e" in (config.option.markexpr or ""):
        return
    deselected = [item for item in items if item.get_closest_marker("e2e") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.get_closest_marker("e2e") is None]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    command = f"{KUBECONFIG_VARIABLE}=~/.kube/config .venv/bin/pytest -m e2e tests/e2e_real"
    if _kubeconfig() is None:
        terminalreporter.write_line(
            f"tests/e2e_real not collected: {KUBECONFIG_VARIABLE} is unset. It is the opt-in suite against a "
            f"real cluster; run it with {command}"
        )
    elif "e2e" not in (config.option.markexpr or ""):
        terminalreporter.write_line(f"tests/e2e_real deselected: ask for it by marker too: {command}")


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    path = _kubeconfig()
    assert path is not None  # collected only when set
    if not path.is_file():
        pytest.fail(f"{KUBECONFIG_VARIABLE}={path} is not a file")
    return path


@pytest.fixture(scope="session")
def context(kubeconfig: Path) -> str:
    chosen = os.environ.get(CONTEXT_VARIABLE, "").strip()
    if chosen:
        return chosen
    _, current = config.list_kube_config_contexts(config_file=str(kubeconfig))
    return str(current["name"])


@pytest.fixture(scope="session")
def admin(kubeconfig: Path, context: str) -> Iterator[client.ApiClient]:
    """The official client as the kubeconfig's user: makes and removes the test's namespace."""
    api = config.new_client_from_config(config_file=str(kubeconfig), context=context, persist_config=False)
    yield api
    api.close()


@pytest.fixture
def namespace(admin: client.ApiClient) -> Iterator[str]:
    name = f"breakglass-e2e-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def cluster(kubeconfig: Path, context: str, namespace: str) -> Iterator[KubeClusters]:
    """The adapter the worker uses, on the cluster under test in ``credentials: user`` mode."""
    adapter = KubeClusters(
        {CLUSTER: ClusterTarget(context, "user")},
        kubeconfig=kubeconfig,
        token_namespace=namespace,
        warrant_key=WARRANT_KEY,
    )
    yield adapter
    adapter.close()


@pytest.fixture
def token_cluster(kubeconfig: Path, context: str, namespace: str) -> Iterator[KubeClusters]:
    """The same cluster in ``credentials: token`` mode; per-grant ServiceAccounts go in the test namespace."""
    adapter = KubeClusters(
        {CLUSTER: ClusterTarget(context, "token")},
        kubeconfig=kubeconfig,
        token_namespace=namespace,
        warrant_key=WARRANT_KEY,
    )
    yield adapter
    adapter.close()
