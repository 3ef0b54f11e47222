"""Service fixtures: fakeredis for state, the fakes from ``tests.fakes`` at every port, the FakeClock,
and the contract's example roster (swappable mid-test through ``roster.roster``)."""

from __future__ import annotations

import io
from datetime import timedelta

import fakeredis
import pytest

from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest
from bot.domain.policy import Ask
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.services.publishing import Publisher
from bot.services.reconcile import Reconciler
from bot.store import AuditLog, RequestStore
from tests.conftest import CHAIN_KEY, FakeClock
from tests.fakes import ALICE, BOB, CAROL, FakeCluster, RecordingJobs, RecordingNotifier, example_roster

REASON = "INC-4411 checkout pods crash-looping"


@pytest.fixture
def redis_client(fake_redis: fakeredis.FakeRedis) -> fakeredis.FakeRedis:
    return fake_redis


@pytest.fixture
def store(redis_client: fakeredis.FakeRedis, clock: FakeClock) -> RequestStore:
    return RequestStore(redis_client, AuditLog(redis_client, clock, out=io.StringIO(), key=CHAIN_KEY))


@pytest.fixture
def roster() -> FixedRoster:
    return FixedRoster(example_roster())


@pytest.fixture
def jobs() -> RecordingJobs:
    return RecordingJobs()


@pytest.fixture
def cluster(clock: FakeClock) -> FakeCluster:
    return FakeCluster(clock=clock)


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def access(store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, clock: FakeClock) -> AccessService:
    return AccessService(store, roster, jobs, clock)


@pytest.fixture
def grants(
    store: RequestStore,
    roster: FixedRoster,
    cluster: FakeCluster,
    jobs: RecordingJobs,
    notifier: RecordingNotifier,
    clock: FakeClock,
) -> GrantService:
    return GrantService(store, roster, cluster, jobs, notifier, clock, wait=lambda s: clock.advance(seconds=s))


@pytest.fixture
def publisher(store: RequestStore, notifier: RecordingNotifier) -> Publisher:
    return Publisher(store, notifier)


@pytest.fixture
def reconciler(
    store: RequestStore,
    roster: FixedRoster,
    cluster: FakeCluster,
    jobs: RecordingJobs,
    grants: GrantService,
    access: AccessService,
    clock: FakeClock,
) -> Reconciler:
    return Reconciler(store, roster, cluster, jobs, grants, access, clock)


class Flows:
    """The usual ways a request gets somewhere, through the services themselves."""

    def __init__(self, access: AccessService, grants: GrantService) -> None:
        self.access = access
        self.grants = grants

    def submit(
        self,
        role: str = "view",
        target: str = "prod/payments",
        duration: timedelta = timedelta(hours=1),
        requester: str = ALICE,
    ) -> AccessRequest:
        cluster, _, namespace = target.partition("/")
        return self.access.submit(Ask(SlackUserId(requester), cluster, namespace or None, role, duration, REASON))

    def approved(self, role: str = "view", **kwargs: object) -> AccessRequest:
        request = self.submit(role, **kwargs)  # type: ignore[arg-type]
        if request.self_service:
            return request  # approved by the system as it was made
        approvers = [a for a in (BOB, CAROL) if a != request.requester]
        outcome = None
        for approver in approvers[: request.approvals_required]:
            outcome = self.access.approve(request.id, SlackUserId(approver))
        assert outcome is not None
        assert outcome.decided
        return outcome.request

    def granted(self, role: str = "view", **kwargs: object) -> AccessRequest:
        request = self.approved(role, **kwargs)
        active = self.grants.grant(request.id)
        assert active is not None
        return active


@pytest.fixture
def flows(access: AccessService, grants: GrantService) -> Flows:
    return Flows(access, grants)
