"""The sweep and a grant job lost after its binding landed (a worker SIGKILLed mid-create).

The binding is in the cluster with its expiry, Redis still says "approved", and no revoke is
scheduled. The cluster is the truth: the grant happened and ends at that expiry. Granting it afresh
would count the whole duration again, or, once the binding had expired and been removed, hand the
access out a second time (both seen end-to-end in ``tests/e2e/test_reliability.py``).
"""

from __future__ import annotations

from datetime import timedelta

from bot.domain.audit import Event
from bot.domain.grants import EXPIRES_AT_ANNOTATION, format_instant
from bot.domain.lifecycle import State
from bot.services.reconcile import Reconciler
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import FakeCluster, RecordingJobs
from tests.services.conftest import Flows


def test_binding_of_a_lost_grant_job_is_recorded_with_its_own_expiry(
    reconciler: Reconciler,
    cluster: FakeCluster,
    store: RequestStore,
    jobs: RecordingJobs,
    clock: FakeClock,
    flows: Flows,
) -> None:
    request = flows.approved()
    made = cluster.plant("prod", request.id, "payments", clock() + timedelta(hours=1), subject="alice@example.com")
    expiry = made.annotations[EXPIRES_AT_ANNOTATION]
    clock.advance(seconds=61)  # past the grace a grant job gets
    report = reconciler.sweep()

    assert report.adopted == [request.id]
    assert report.regranted == []
    assert jobs.queued("grant", request.id) == [jobs.of("grant", request.id)[0]]  # only the approval's
    active = store.get(request.id)
    assert active is not None
    assert active.state is State.ACTIVE
    assert active.expires_at is not None
    assert format_instant(active.expires_at) == expiry
    binding = cluster.binding("prod", request.id)
    assert binding is not None
    assert binding.annotations[EXPIRES_AT_ANNOTATION] == expiry
    assert [c.at for c in jobs.queued("revoke", request.id)] == [active.expires_at]
    granted = [e for e in store.audit.for_request(request.id) if e.event == Event.GRANTED]
    assert len(granted) == 1
    assert granted[0].details["found_by_sweep"] is True


def test_expired_binding_of_a_lost_grant_job_ends_the_request_and_is_never_granted_again(
    reconciler: Reconciler,
    cluster: FakeCluster,
    store: RequestStore,
    jobs: RecordingJobs,
    clock: FakeClock,
    flows: Flows,
) -> None:
    request = flows.approved()
    cluster.plant("prod", request.id, "payments", clock() + timedelta(seconds=30), subject="alice@example.com")
    clock.advance(seconds=45)  # expired before the grace for its lost job ran out
    reconciler.sweep()

    assert cluster.binding("prod", request.id) is None
    ended = store.get(request.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    story = [e.event for e in store.audit.for_request(request.id)]
    assert story[-3:] == [Event.GRANTED, Event.EXPIRED, Event.BINDING_DELETED]

    clock.advance(minutes=5)
    report = reconciler.sweep()
    assert report.regranted == []
    assert len(jobs.queued("grant", request.id)) == 1  # only the approval's
    assert cluster.bindings == {}
