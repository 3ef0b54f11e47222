"""Two extensions of one grant applied at the same moment, by two threads on real Redis (whose WATCH
the store's compare-and-set relies on): both count, or the one that no longer fits is refused, and the
binding's expiry annotation always ends equal to the expiry Redis holds."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from bot.domain.audit import Event
from bot.domain.grants import BindingSpec
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.store import AuditLog, RequestStore
from tests.conftest import CHAIN_KEY, FakeClock
from tests.fakes import ALICE, BOB, FakeCluster, RecordingJobs, RecordingNotifier, example_roster
from tests.services.conftest import Flows


class MeetingCluster(FakeCluster):
    """Once armed, each thread's first ``set_expiry`` waits for the other's: both extensions have read
    the same expiry before either writes, which is the interleaving that used to lose one."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.barrier: threading.Barrier | None = None
        self.met: set[int] = set()

    def set_expiry(self, spec: BindingSpec) -> None:
        barrier = self.barrier
        if barrier is not None and threading.get_ident() not in self.met:
            self.met.add(threading.get_ident())
            barrier.wait()
        super().set_expiry(spec)


@pytest.fixture
def store(real_redis: redis.Redis, clock: FakeClock) -> RequestStore:
    return RequestStore(real_redis, AuditLog(real_redis, clock, out=io.StringIO(), key=CHAIN_KEY))


@pytest.fixture
def cluster(clock: FakeClock) -> MeetingCluster:
    return MeetingCluster(clock)


@pytest.fixture
def flows(store: RequestStore, cluster: MeetingCluster, clock: FakeClock) -> Flows:
    roster = FixedRoster(example_roster())
    jobs = RecordingJobs()
    return Flows(
        AccessService(store, roster, jobs, clock),
        GrantService(store, roster, cluster, jobs, RecordingNotifier(), clock),
    )


def at_once(cluster: MeetingCluster, *calls: Callable[[], AccessRequest | None]) -> list[AccessRequest | None]:
    cluster.barrier = threading.Barrier(len(calls), timeout=10)
    results: list[AccessRequest | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], AccessRequest | None]) -> None:
        try:
            results[index] = call()
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


def extension(flows: Flows, grant: AccessRequest, minutes: int) -> AccessRequest:
    asked = flows.access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=minutes), "INC-4411 still rolling back")
    flows.access.approve(asked.id, SlackUserId(BOB))
    return asked


def test_two_extensions_applied_at_once_both_count(flows: Flows, store: RequestStore, cluster: MeetingCluster) -> None:
    grant = flows.granted()  # view: 1h of a 4h maximum
    assert grant.expires_at is not None
    first, second = extension(flows, grant, 20), extension(flows, grant, 30)

    results = at_once(cluster, lambda: flows.grants.grant(first.id), lambda: flows.grants.grant(second.id))

    assert [r.state if r else None for r in results] == [State.ACTIVE, State.ACTIVE]
    final = store.get(grant.id)
    assert final is not None
    assert final.expires_at == grant.expires_at + timedelta(minutes=50)
    assert set(final.extensions) == {first.id, second.id}
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    assert binding.expires_at == final.expires_at
    extended = [e for e in store.audit.for_request(grant.id) if e.event == Event.EXTENDED]
    assert len(extended) == 2
    assert len({e.details["expires_at"] for e in extended}) == 2  # each counted from the other's expiry


def test_of_two_extensions_at_once_the_one_that_no_longer_fits_is_refused_and_the_annotation_follows_redis(
    flows: Flows, store: RequestStore, cluster: MeetingCluster
) -> None:
    grant = flows.granted(duration=timedelta(hours=3))  # 1h of room left under the 4h maximum
    assert grant.expires_at is not None
    first, second = extension(flows, grant, 40), extension(flows, grant, 50)

    results = at_once(cluster, lambda: flows.grants.grant(first.id), lambda: flows.grants.grant(second.id))

    states = sorted(str(r.state) for r in results if r is not None)
    assert states == ["active", "failed"]
    (refused,) = [r for r in results if r is not None and r.state is State.FAILED]
    assert refused.note in ("only 20m of the role's maximum is left", "only 10m of the role's maximum is left")
    (applied,) = [r for r in results if r is not None and r.state is State.ACTIVE]
    final = store.get(grant.id)
    assert final is not None
    assert final.extensions == (applied.id,)
    assert final.expires_at == grant.expires_at + flows.access.store.get(applied.id).duration  # type: ignore[union-attr]
    assert final.granted_at is not None
    assert final.expires_at - final.granted_at <= timedelta(hours=4)
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    assert binding.expires_at == final.expires_at  # the loser's early write was taken back
