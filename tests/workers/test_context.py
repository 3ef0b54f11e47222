"""The worker's parts as ``build_worker_context`` wires them from the settings."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from bot.roster_source import FixedRoster
from bot.settings import SettingsError, load_settings
from tests.domain.test_settings import MINIMAL
from tests.fakes import example_roster, example_roster_data, roster_from
from workers.context import cluster_targets, kube_clusters, kube_request_timeout
from workers.known_clusters import KnownClusters, remembering
from workers.kube import ClusterTarget


def test_kube_calls_wait_ten_seconds_for_an_answer_unless_told() -> None:
    assert kube_request_timeout(load_settings(MINIMAL)) == (3.0, 10.0)


def test_a_short_kube_timeout_also_bounds_connecting() -> None:
    assert kube_request_timeout(load_settings({**MINIMAL, "BREAKGLASS_KUBE_TIMEOUT": "2s"})) == (2.0, 2.0)


def test_a_malformed_kube_timeout_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^BREAKGLASS_KUBE_TIMEOUT: "):
        load_settings({**MINIMAL, "BREAKGLASS_KUBE_TIMEOUT": "soon"})


def test_clusters_the_roster_named_are_remembered_across_a_restart_until_forgotten() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    roster = FixedRoster(example_roster())
    first_run = KnownClusters(client)
    targets = remembering(roster, first_run, cluster_targets)
    assert set(targets()) == {"prod", "staging"}

    roster.roster = roster_from(_without_staging(example_roster_data()))  # edited, then the worker restarts
    after_restart = KnownClusters(client)
    gateway = kube_clusters(load_settings(MINIMAL), roster, after_restart)
    assert set(gateway.clusters()) == {"prod", "staging"}  # staging still reachable, for the sweep
    assert after_restart.recall()["staging"] == ClusterTarget("staging", "user")

    after_restart.forget("staging")
    assert set(kube_clusters(load_settings(MINIMAL), roster, KnownClusters(client)).clusters()) == {"prod"}


def test_the_roster_is_written_down_only_when_it_changes() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    roster = FixedRoster(example_roster())
    targets = remembering(roster, KnownClusters(client), cluster_targets)
    targets()
    client.delete("breakglass:clusters:known")
    targets()  # the same roster object: nothing written again
    assert client.exists("breakglass:clusters:known") == 0
    roster.roster = example_roster()
    targets()
    assert set(client.hkeys("breakglass:clusters:known")) == {"prod", "staging"}


def _without_staging(data: dict[str, Any]) -> dict[str, Any]:
    del data["clusters"]["staging"]
    for entitlement in data["entitlements"]:
        entitlement["clusters"] = [c for c in entitlement["clusters"] if c != "staging"]
    return data
