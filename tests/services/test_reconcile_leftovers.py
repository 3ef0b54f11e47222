"""What a grant can leave behind where the bindings' sweep alone would not look: a ServiceAccount
whose binding is gone (token mode), and the bindings of a cluster that has left the roster."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.end_reasons import end_sentence
from bot.domain.lifecycle import State
from bot.ports import ClusterRefused, UnknownCluster
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.services.reconcile import NOT_IN_ROSTER, Reconciler
from bot.store import Change, RequestStore
from tests.conftest import FakeClock
from tests.fakes import FakeCluster, RecordingJobs, RecordingNotifier
from tests.services.conftest import Flows


class WithLegacy:
    """A gateway that still reaches "legacy", a cluster edited out of the roster since this worker
    started, with a sweep that tells which clusters it has cleared."""

    def __init__(
        self,
        store: RequestStore,
        roster: FixedRoster,
        jobs: RecordingJobs,
        notifier: RecordingNotifier,
        access: AccessService,
        clock: FakeClock,
    ) -> None:
        self.cluster = FakeCluster(("prod", "staging", "legacy"), clock=clock)
        grants = GrantService(
            store, roster, self.cluster, jobs, notifier, clock, wait=lambda s: clock.advance(seconds=s)
        )
        self.cleared: list[str] = []
        self.reconciler = Reconciler(
            store, roster, self.cluster, jobs, grants, access, clock, on_cleared=self.cleared.append
        )

    def next_sweep_leaves_it_alone(self) -> bool:
        calls = len(self.cluster.calls)
        self.reconciler.sweep()
        return all(name != "legacy" for _, name in self.cluster.calls[calls:])


@pytest.fixture
def legacy(
    store: RequestStore,
    roster: FixedRoster,
    jobs: RecordingJobs,
    notifier: RecordingNotifier,
    access: AccessService,
    clock: FakeClock,
) -> WithLegacy:
    return WithLegacy(store, roster, jobs, notifier, access, clock)


def test_an_orphaned_service_account_of_an_unknown_request_is_deleted_and_audited(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore
) -> None:
    cluster.plant_service_account("prod", "BG-333333")  # its binding deleted, then Redis flushed
    report = reconciler.sweep()
    assert cluster.service_accounts == set()
    assert report.service_accounts_deleted == ["breakglass-bg-333333"]
    entry = store.audit.for_request("BG-333333")[-1]
    assert (entry.event, entry.actor) == (Event.SWEEP_SERVICE_ACCOUNT_DELETED, SYSTEM_ACTOR)
    assert entry.details == {
        "cluster": "prod",
        "service_account": "breakglass-system/breakglass-bg-333333",
        "code": "request_unknown",
    }
    assert end_sentence(entry.details) == "its request is unknown to Redis"


def test_an_orphaned_service_account_of_an_ended_grant_is_deleted(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    clock.advance(hours=2)
    reconciler.sweep()  # ends it: the binding goes
    cluster.plant_service_account("prod", grant.id)  # a worker killed before its ServiceAccount went
    reconciler.sweep()
    assert cluster.service_accounts == set()
    assert end_sentence(store.audit.for_request(grant.id)[-1].details) == "its request is expired"


def test_service_accounts_of_grants_being_made_or_running_are_left_alone(
    reconciler: Reconciler, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    being_made = flows.approved()  # the grant job makes the ServiceAccount before the binding
    cluster.plant_service_account("prod", being_made.id)
    running = flows.granted(target="staging/payments")
    cluster.plant_service_account("staging", running.id)
    clock.advance(seconds=30)
    report = reconciler.sweep()
    assert report.service_accounts_deleted == []
    assert len(cluster.service_accounts) == 2


def test_bindings_of_a_cluster_no_longer_in_the_roster_are_deleted_and_the_grants_ended(
    legacy: WithLegacy, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    cluster, reconciler, cleared = legacy.cluster, legacy.reconciler, legacy.cleared
    grant = flows.granted()
    # Recorded as made there (the flows grant on prod; the cluster name is all that differs).
    store.apply(grant.id, lambda current: Change(current.changed(clock(), cluster="legacy") if current else None))
    cluster.bindings.clear()
    cluster.plant("legacy", grant.id, "payments", clock() + timedelta(minutes=50), subject="alice@example.com")
    cluster.plant("legacy", "BG-222222", None, clock() + timedelta(minutes=50))  # unknown to Redis
    cluster.plant_service_account("legacy", "BG-444444")  # a token grant's leftover, its binding gone

    report = reconciler.sweep()

    assert [b for (c, _), b in cluster.bindings.items() if c == "legacy"] == []
    assert cluster.service_accounts == set()
    assert report.expired == [grant.id]
    assert report.deleted == ["breakglass-bg-222222"]
    assert report.service_accounts_deleted == ["breakglass-bg-444444"]
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert ended.note == "its cluster is no longer in the roster"
    for stray in ("BG-222222", "BG-444444"):
        assert [e.details["code"] for e in store.audit.for_request(stray)] == [NOT_IN_ROSTER.code.value]
    assert end_sentence(store.audit.for_request(grant.id)[-1].details) == NOT_IN_ROSTER.sentence()

    # Nothing of ours is left there: later sweeps stop asking.
    assert cleared == []
    reconciler.sweep()
    assert cleared == ["legacy"]
    assert legacy.next_sweep_leaves_it_alone()


def test_a_removed_cluster_whose_context_is_gone_is_left_by_this_process_but_stays_remembered(
    legacy: WithLegacy, clock: FakeClock
) -> None:
    cluster, reconciler, cleared = legacy.cluster, legacy.reconciler, legacy.cleared
    cluster.plant("legacy", "BG-222222", None, clock() + timedelta(minutes=50))
    cluster.fail_next(1, UnknownCluster, cluster="legacy")  # its kubeconfig context was removed too
    assert reconciler.sweep().unreachable == []
    assert cleared == []  # a kubeconfig unreadable for a moment must not make it forgotten for good
    assert legacy.next_sweep_leaves_it_alone()


def test_a_removed_cluster_whose_serviceaccounts_cannot_be_listed_is_not_forgotten(
    legacy: WithLegacy, clock: FakeClock
) -> None:
    cluster, reconciler, cleared = legacy.cluster, legacy.reconciler, legacy.cleared
    cluster.fail_next(1, ClusterRefused, cluster="legacy", operations=["list_managed_service_accounts"])
    reconciler.sweep()
    assert cleared == []  # no binding was seen, but its ServiceAccounts were not: nothing is known gone
    reconciler.sweep()
    assert cleared == ["legacy"]
