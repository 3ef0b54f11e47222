"""The sweep that makes clusters and Redis agree: whatever was lost, no binding outlives its time."""

from __future__ import annotations

from datetime import timedelta

import fakeredis

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.end_reasons import end_sentence
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import State
from bot.ports import ClusterUnavailable
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.services.reconcile import OVERDUE, UNWARRANTED, Reconciler, SweepReport
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import ALICE, BOB, FakeCluster, RecordingJobs
from tests.services.conftest import Flows


def events(store: RequestStore, request_id: str) -> list[str]:
    return [e.event for e in store.audit.for_request(request_id)]


def test_active_grant_within_its_time_is_left_alone(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    report = reconciler.sweep()
    assert cluster.binding("prod", grant.id) is not None
    assert store.get(grant.id) == grant
    assert report.deleted == []
    assert report.expired == []
    assert report.rescheduled == []  # its revoke job is waiting already
    assert report.corrections == 0


def test_binding_past_its_expiry_is_ended(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    clock.advance(hours=1, minutes=5)  # the revoke job was lost
    report = reconciler.sweep()
    assert cluster.bindings == {}
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert grant.id in report.expired
    deleted = store.audit.for_request(grant.id)[-1]
    assert deleted.event == Event.BINDING_DELETED
    assert deleted.details["late_by_seconds"] == 300.0


def test_a_hand_made_binding_of_a_request_unknown_to_redis_is_deleted(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock
) -> None:
    stray = cluster.plant("staging", "BG-222222", "payments", clock() + timedelta(hours=1), warranted=False)
    report = reconciler.sweep()
    assert cluster.bindings == {}
    assert report.deleted == [stray.name]
    entry = store.audit.for_request("BG-222222")[-1]
    assert (entry.event, entry.actor) == (Event.SWEEP_DELETED, SYSTEM_ACTOR)
    assert entry.details["code"] == "unwarranted"
    assert end_sentence(entry.details) == UNWARRANTED.sentence()
    assert entry.details["cluster"] == "staging"


def test_binding_without_a_readable_expiry_is_deleted(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore
) -> None:
    cluster.plant("prod", "BG-333333", None, None)
    reconciler.sweep()
    assert cluster.bindings == {}
    assert store.audit.for_request("BG-333333")[-1].details["code"] == "unwarranted"  # no expiry: nothing signed


def test_binding_of_an_ended_request_is_deleted(
    reconciler: Reconciler,
    access: AccessService,
    jobs: RecordingJobs,
    cluster: FakeCluster,
    store: RequestStore,
    flows: Flows,
) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))
    jobs.lose()  # the revoke job never ran
    report = reconciler.sweep()
    assert cluster.bindings == {}
    assert report.deleted == [f"breakglass-{grant.id.lower()}"]
    entry = store.audit.for_request(grant.id)[-1]
    assert entry.event == Event.SWEEP_DELETED
    assert (entry.details["code"], entry.details["state"]) == ("request_ended", "revoked")
    assert end_sentence(entry.details) == "its request is revoked"
    assert jobs.queued("publish", grant.id)


def test_a_just_revoked_grants_binding_is_left_to_its_revoke_job_under_way(
    reconciler: Reconciler, access: AccessService, cluster: FakeCluster, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))  # its revoke job is queued, not yet run
    report = reconciler.sweep()
    assert cluster.binding("prod", grant.id) is not None, "the revoke job removes it and records that"
    assert report.deleted == []
    assert Event.SWEEP_DELETED not in events(store, grant.id)


def test_a_revoked_grants_binding_is_deleted_once_its_revoke_job_has_had_its_grace(
    reconciler: Reconciler,
    access: AccessService,
    cluster: FakeCluster,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))
    clock.advance(seconds=61)  # the job still waits (a stuck worker): the sweep stops waiting for it
    report = reconciler.sweep()
    assert cluster.binding("prod", grant.id) is None
    assert report.deleted == [f"breakglass-{grant.id.lower()}"]
    assert events(store, grant.id)[-1] == Event.SWEEP_DELETED


def test_missing_revoke_job_is_scheduled_again_once(
    reconciler: Reconciler, jobs: RecordingJobs, cluster: FakeCluster, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    jobs.lose()  # the queue's Redis was flushed
    report = reconciler.sweep()
    assert report.rescheduled == [grant.id]
    assert [c.at for c in jobs.queued("revoke", grant.id)][-1] == grant.expires_at
    assert events(store, grant.id)[-1] == Event.SWEEP_RESCHEDULED
    assert cluster.binding("prod", grant.id) is not None
    assert reconciler.sweep().rescheduled == []


def test_an_active_grant_whose_cluster_fails_has_its_lost_revoke_job_scheduled_again_from_redis(
    reconciler: Reconciler, jobs: RecordingJobs, cluster: FakeCluster, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    other = flows.granted(requester=BOB)
    jobs.lose()
    assert grant.expires_at is not None
    jobs.revoke(other.id, at=other.expires_at)  # this one's job is still waiting
    cluster.fail_next(100, ClusterUnavailable, cluster="prod")  # the bindings cannot be read this time
    asked = len(jobs.of("revoke", other.id))
    report = reconciler.sweep()
    assert report.rescheduled == [grant.id]
    assert [c.at for c in jobs.queued("revoke", grant.id)][-1] == grant.expires_at
    entry = store.audit.for_request(grant.id)[-1]
    assert (entry.event, entry.details["found"]) == (Event.SWEEP_RESCHEDULED, "redis")
    assert len(jobs.of("revoke", other.id)) == asked  # not asked for again: its job was seen waiting
    assert reconciler.sweep().rescheduled == []


def test_stale_pending_request_times_out(
    reconciler: Reconciler, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    fresh_enough = flows.submit()
    clock.advance(minutes=10)
    younger = flows.submit()
    clock.advance(minutes=20)
    report = reconciler.sweep()
    assert report.timed_out == [fresh_enough.id]
    assert store.get(fresh_enough.id).state is State.TIMED_OUT  # type: ignore[union-attr]
    assert store.get(younger.id).state is State.PENDING  # type: ignore[union-attr]


def test_stale_approved_request_has_its_grant_queued_again(
    reconciler: Reconciler, jobs: RecordingJobs, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    assert reconciler.sweep().regranted == []  # within the grace: its grant job is at work
    jobs.lose()
    assert reconciler.sweep().regranted == []  # lost, but still within the grace
    clock.advance(seconds=61)
    assert reconciler.sweep().regranted == [request.id]
    assert len(jobs.queued("grant", request.id)) == 2


def test_approved_binding_being_made_is_left_alone(
    reconciler: Reconciler, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    cluster.plant("prod", request.id, "payments", clock() + timedelta(hours=1))  # made, not yet recorded
    reconciler.sweep()
    assert cluster.binding("prod", request.id) is not None


def test_an_unreachable_cluster_does_not_stop_the_sweep(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    stray = cluster.plant("staging", "BG-222222", "payments", clock() - timedelta(minutes=1))
    pending = flows.submit()
    clock.advance(minutes=31)
    cluster.fail_next(100, ClusterUnavailable, cluster="prod")
    report = reconciler.sweep()
    assert report.unreachable == ["prod"]
    assert report.deleted == [stray.name]  # the other cluster was swept
    assert report.timed_out == [pending.id]  # and Redis was too
    assert cluster.bindings == {}


def test_an_expired_grant_on_an_unreachable_cluster_does_not_stop_the_sweep(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    on_prod = flows.granted()
    on_staging = flows.granted(target="staging/payments", duration=timedelta(hours=1, minutes=1))
    clock.advance(hours=2)
    cluster.fail_next(100, ClusterUnavailable, cluster="prod")
    report = reconciler.sweep()
    assert "prod" in report.unreachable
    assert cluster.binding("staging", on_staging.id) is None
    assert cluster.binding("prod", on_prod.id) is not None  # still there: prod cannot be reached
    assert store.get(on_prod.id).state is State.EXPIRED  # type: ignore[union-attr]

    cluster.recover()  # prod is back
    reconciler.sweep()
    assert cluster.bindings == {}
    assert events(store, on_prod.id)[-1] == Event.SWEEP_DELETED


def test_grant_past_its_expiry_ends_even_while_the_audit_log_refuses_writes(
    reconciler: Reconciler,
    cluster: FakeCluster,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
    redis_client: fakeredis.FakeRedis,
) -> None:
    grant = flows.granted()
    redis_client.delete(store.audit.head_key)  # the log now refuses every append until repaired
    clock.advance(hours=1, minutes=5)
    reconciler.sweep()
    assert cluster.bindings == {}  # access ends: the one thing that must not wait for a repair
    still = store.get(grant.id)
    assert still is not None
    assert still.state is State.ACTIVE  # nothing was recorded as done without its audit entry


def test_revoke_at_expiry_deletes_the_binding_while_the_audit_log_refuses_writes(
    grants: GrantService,
    cluster: FakeCluster,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
    redis_client: fakeredis.FakeRedis,
) -> None:
    grant = flows.granted()
    redis_client.delete(store.audit.head_key)
    clock.advance(hours=1)
    grants.revoke(grant.id)
    assert cluster.binding("prod", grant.id) is None


def test_a_running_grant_is_left_alone_while_the_audit_log_refuses_writes(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, flows: Flows, redis_client: fakeredis.FakeRedis
) -> None:
    grant = flows.granted()
    redis_client.delete(store.audit.head_key)
    reconciler.sweep()
    assert cluster.binding("prod", grant.id) is not None


def test_an_extension_whose_grant_was_extended_again_is_not_ended_by_the_sweep(
    reconciler: Reconciler,
    access: AccessService,
    grants: GrantService,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
) -> None:
    grant = flows.granted()  # view: 1h of a 4h maximum
    first = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), "INC-4411 still rolling back")
    access.approve(first.id, SlackUserId(BOB))
    grants.grant(first.id)
    clock.advance(minutes=80)
    second = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), "INC-4411 still rolling back")
    access.approve(second.id, SlackUserId(BOB))
    grants.grant(second.id)
    clock.advance(minutes=15)  # past the expiry the first extension set, before the one the second set
    reconciler.sweep()
    running = store.get(grant.id)
    assert running is not None
    assert running.state is State.ACTIVE
    kept = store.get(first.id)
    assert kept is not None
    assert kept.state is State.ACTIVE  # it ends with its grant, not on its own
    assert Event.SWEEP_REVOKED_OVERDUE not in events(store, first.id)
    assert Event.SWEEP_REVOKED_OVERDUE not in events(store, grant.id)


def test_the_sweep_records_no_overdue_revoke_when_the_revoke_job_ended_the_grant_first(
    reconciler: Reconciler, grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    clock.advance(hours=1)
    stale = store.get(grant.id)  # what the sweep read as still active
    assert stale is not None
    grants.revoke(grant.id)  # the on-time revoke gets there a moment before the sweep acts
    reconciler._end_overdue(stale, OVERDUE, SweepReport())
    assert Event.SWEEP_REVOKED_OVERDUE not in events(store, grant.id)


def test_a_pending_request_the_sweep_cannot_time_out_does_not_stop_it(
    reconciler: Reconciler,
    cluster: FakeCluster,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
    redis_client: fakeredis.FakeRedis,
) -> None:
    flows.submit(role="admin")  # pending: two approvals owed
    flows.granted()
    clock.advance(hours=1, minutes=5)  # past both the request timeout and the grant's expiry
    redis_client.delete(store.audit.head_key)
    reconciler.sweep()  # raises nothing: the pending request is left for the next sweep
    assert cluster.bindings == {}


def test_a_grant_rq_has_not_revoked_two_seconds_after_expiry_is_revoked_by_the_sweep_clock(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    assert grant.expires_at is not None
    clock.advance(seconds=(grant.expires_at - clock()).total_seconds() + 1)
    assert reconciler.revoke_overdue() == 0  # RQ's scheduler still has time to run it
    assert cluster.binding("prod", grant.id) is not None

    clock.advance(seconds=2)  # as when the worker holding RQ's scheduler has died
    assert reconciler.revoke_overdue() == 1
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert cluster.bindings == {}


def test_an_overdue_grant_is_revoked_by_one_process_only(
    reconciler: Reconciler, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    assert grant.expires_at is not None
    clock.advance(seconds=(grant.expires_at - clock()).total_seconds() + 3)
    assert store.claim(store.keys.revoking(grant.id), timedelta(seconds=30))  # another worker took it
    assert reconciler.revoke_overdue() == 0
    still = store.get(grant.id)
    assert still is not None
    assert still.state is State.ACTIVE


def test_the_expiry_clocks_look_revokes_a_grant_at_its_expiry_and_not_before(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    assert grant.expires_at is not None
    clock.advance(seconds=(grant.expires_at - clock()).total_seconds() - 0.01)
    assert reconciler.revoke_overdue(late_by=timedelta(0)) == 0
    assert cluster.binding("prod", grant.id) is not None

    clock.advance(seconds=0.01)
    assert reconciler.revoke_overdue(late_by=timedelta(0)) == 1
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert cluster.bindings == {}
    assert Event.SWEEP_REVOKED_OVERDUE not in events(store, grant.id)  # an on-time revoke, recorded as one


def test_grants_due_together_are_shared_by_the_processes_that_look(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grants = [flows.granted(requester=person) for person in (ALICE, BOB)]
    clock.advance(hours=2)
    # Another worker's clock has claimed one of them; this process takes the other.
    assert store.claim(store.keys.revoking(grants[0].id), timedelta(seconds=30))
    assert reconciler.revoke_overdue(late_by=timedelta(0)) == 1
    states = [store.get(g.id) for g in grants]
    assert [s.state if s else None for s in states] == [State.ACTIVE, State.EXPIRED]


def test_the_next_expiry_is_the_soonest_active_grant_after_the_instant_asked(
    store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    assert store.next_expiry(after=clock()) is None
    short = flows.granted(duration=timedelta(minutes=30))
    flows.granted(requester=BOB, duration=timedelta(hours=1))
    assert short.expires_at is not None
    assert store.next_expiry(after=clock()) == short.expires_at
    assert store.next_expiry(after=short.expires_at) == short.expires_at + timedelta(minutes=30)
