"""``breakglass_api_errors_total``: the Slack and Kubernetes adapters count the errors they translate,
by API and kind, into the metrics store ``/metrics`` exposes. Real HTTP against both doubles, real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from bot import metrics as metrics_module
from bot.domain.ids import RequestId
from bot.metrics import Metrics
from bot.ports import ClusterUnavailable
from bot.slack.client import SlackApi, SlackError, SlackUnavailable
from bot.standins.kube import KubeApiServer, write_kubeconfig
from bot.standins.slack_api import SlackApiDouble
from tests.conftest import FakeClock
from workers.kube import ClusterTarget, KubeClusters

CHANNEL = "C0000INCIDENT"


def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
def metrics(real_redis: redis.Redis) -> Iterator[Metrics]:
    store = Metrics(real_redis, "bg-test")
    metrics_module.install(store)
    yield store
    metrics_module.install(None)


@pytest.fixture
def clusters(clock: FakeClock, tmp_path: Path) -> Iterator[tuple[KubeApiServer, KubeClusters]]:
    with KubeApiServer(now=clock, namespaces=["payments"]) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"prod": server.context()}, current_context="prod")
        gateway = KubeClusters({"prod": ClusterTarget("prod", "user")}, kubeconfig=kubeconfig, request_timeout=(1, 1))
        yield server, gateway
        gateway.close()


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[tuple[SlackApiDouble, SlackApi]]:
    double = SlackApiDouble(clock=clock)
    double.add_channel(CHANNEL, "incidents")
    with double:
        yield double, SlackApi.connect(SecretStr(double.bot_token), double.api_url, sleep=_no_sleep)


def _errors(metrics: Metrics) -> dict[str, float]:
    """The ``breakglass_api_errors_total`` samples of the exposition ``/metrics`` serves."""
    samples = {}
    for line in metrics.exposition()[0].decode().splitlines():
        if line.startswith("breakglass_api_errors_total{"):
            name, _, value = line.rpartition(" ")
            samples[name.removeprefix("breakglass_api_errors_total")] = float(value)
    return samples


def test_kubernetes_503_answers_are_counted_by_reason(
    metrics: Metrics, clusters: tuple[KubeApiServer, KubeClusters]
) -> None:
    server, gateway = clusters
    server.fail_requests(503, times=2)
    for _ in range(2):
        with pytest.raises(ClusterUnavailable):
            gateway.list_managed("prod")

    assert _errors(metrics) == {'{kind="ServiceUnavailable",system="kubernetes"}': 2}


def test_revoking_an_already_gone_binding_counts_no_error(
    metrics: Metrics, clusters: tuple[KubeApiServer, KubeClusters]
) -> None:
    _, gateway = clusters
    # The 404 is the expected answer, absorbed by the adapter: the revoke succeeds, nothing failed.
    assert gateway.remove_grant("prod", RequestId("BG-7K2QXM"), "payments") is False

    assert _errors(metrics) == {}


def test_unreachable_cluster_is_counted_as_unreachable(metrics: Metrics, clock: FakeClock, tmp_path: Path) -> None:
    with KubeApiServer(now=clock) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"prod": server.context()}, current_context="prod")
    # The double has stopped: its port refuses connections.
    gateway = KubeClusters({"prod": ClusterTarget("prod", "user")}, kubeconfig=kubeconfig, request_timeout=(1, 1))
    with pytest.raises(ClusterUnavailable):
        gateway.list_managed("prod")
    gateway.close()

    assert _errors(metrics) == {'{kind="unreachable",system="kubernetes"}': 1}


def test_slack_errors_and_rate_limits_are_counted_by_slack_error_name(
    metrics: Metrics, slack: tuple[SlackApiDouble, SlackApi]
) -> None:
    double, api = slack
    double.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackError):
        api.post_message(CHANNEL, "hello")
    # A Retry-After too long to sleep through in-process reaches the caller as ratelimited.
    double.rate_limit("chat.postMessage", retry_after=60)
    with pytest.raises(SlackUnavailable):
        api.post_message(CHANNEL, "hello")
    api.post_message(CHANNEL, "hello")  # a success counts nothing

    assert _errors(metrics) == {
        '{kind="channel_not_found",system="slack"}': 1,
        '{kind="ratelimited",system="slack"}': 1,
    }


def test_the_hash_conflict_a_guarded_view_update_expects_is_not_counted(
    metrics: Metrics, slack: tuple[SlackApiDouble, SlackApi]
) -> None:
    double, api = slack
    # The forms guard views.update by hash in order to hear hash_conflict (Slack applied the ack
    # first) and absorb it: routine on most submissions, not trouble.
    double.fail("views.update", "hash_conflict")
    with pytest.raises(SlackError):
        api.update_view("V0000000001", {"type": "modal"}, view_hash="1.abc")
    double.fail("views.update", "view_not_found")
    with pytest.raises(SlackError):
        api.update_view("V0000000001", {"type": "modal"}, view_hash="1.abc")  # a guard expects only the conflict

    assert _errors(metrics) == {'{kind="view_not_found",system="slack"}': 1}
