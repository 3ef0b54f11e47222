"""Every action of the sweep goes to the audit log, is counted by kind, and one failing cluster costs
the sweep one failed call, not one per binding."""

from __future__ import annotations

from datetime import timedelta

import fakeredis

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.end_reasons import end_sentence
from bot.domain.grants import EXPIRES_AT_ANNOTATION, format_instant
from bot.domain.lifecycle import State
from bot.metrics import Metrics
from bot.ports import ClusterUnavailable
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.services.reconcile import UNWARRANTED, Reconciler
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import FakeCluster, RecordingJobs
from tests.services.conftest import Flows


def events(store: RequestStore, request_id: str) -> list[str]:
    return [e.event for e in store.audit.for_request(request_id)]


def corrections(redis_client: fakeredis.FakeRedis) -> dict[str, float]:
    raw = redis_client.hgetall("breakglass:metrics:breakglass_sweep_corrections_total")
    return {str(k): float(v) for k, v in raw.items()}


def test_a_lost_grant_job_queued_again_is_audited(
    reconciler: Reconciler, jobs: RecordingJobs, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    jobs.lose()
    clock.advance(seconds=61)
    assert reconciler.sweep().regranted == [request.id]
    entry = store.audit.for_request(request.id)[-1]
    assert (entry.event, entry.actor) == (Event.SWEEP_GRANT_REQUEUED, SYSTEM_ACTOR)
    assert entry.details["approved_seconds_ago"] == 61.0


def test_a_revoke_rescheduled_from_redis_alone_is_audited(
    reconciler: Reconciler, jobs: RecordingJobs, cluster: FakeCluster, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    jobs.lose()
    cluster.fail_next(100, ClusterUnavailable, cluster="prod")  # its binding cannot be read this sweep
    report = reconciler.sweep()
    assert report.rescheduled == [grant.id]
    entry = store.audit.for_request(grant.id)[-1]
    assert entry.event == Event.SWEEP_RESCHEDULED
    assert entry.details == {"job": "revoke", "found": "redis"}


def test_an_overdue_grant_the_sweep_ends_is_audited_as_the_sweeps_doing(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    clock.advance(hours=1, seconds=30)  # its revoke job was lost
    reconciler.sweep()
    assert cluster.bindings == {}
    story = events(store, grant.id)
    assert story[-3:] == [Event.SWEEP_REVOKED_OVERDUE, Event.EXPIRED, Event.BINDING_DELETED]
    overdue = store.audit.for_request(grant.id)[-3]
    assert overdue.details["code"] == "revoke_overdue"
    assert end_sentence(overdue.details) == "its expiry has passed and its revoke had not run"


def test_every_sweep_correction_is_counted_by_kind(
    redis_client: fakeredis.FakeRedis,
    reconciler: Reconciler,
    jobs: RecordingJobs,
    cluster: FakeCluster,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
) -> None:
    metrics = Metrics(redis_client)
    store.audit.observers.append(metrics.record_entries)
    overdue = flows.granted(duration=timedelta(minutes=5))
    running = flows.granted(target="staging/payments")
    lost = flows.approved(target="prod/payments-api")
    adopted = flows.approved(target="staging/payments-web")
    cluster.plant("staging", adopted.id, "payments-web", clock() + timedelta(hours=1), subject="alice@example.com")
    cluster.plant("prod", "BG-222222", "payments", clock() + timedelta(hours=1), warranted=False)  # hand-made
    cluster.plant_service_account("prod", "BG-333333")  # orphaned, its request unknown
    pending = flows.submit()
    jobs.lose()
    clock.advance(minutes=31)

    report = reconciler.sweep()

    assert report.expired == [overdue.id]
    assert report.rescheduled == [running.id]
    assert report.regranted == [lost.id]
    assert report.adopted == [adopted.id]
    assert report.timed_out == [pending.id]
    assert corrections(redis_client) == {
        'kind="revoked_overdue"': 1,
        'kind="revoke_rescheduled"': 1,
        'kind="grant_requeued"': 1,
        'kind="adopted"': 1,
        'kind="deleted"': 1,
        'kind="service_account_deleted"': 1,
        'kind="timed_out"': 1,
    }


def test_a_binding_whose_expiry_annotation_passed_ends_the_grant_redis_thinks_is_running(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    binding.annotations[EXPIRES_AT_ANNOTATION] = format_instant(clock() + timedelta(minutes=10))
    binding.sign()  # an expiry breakglass itself wrote and signed (an unsigned edit is deleted at once)
    clock.advance(minutes=11)  # the cluster says it ended a minute ago; Redis says 49 minutes to go

    report = reconciler.sweep()

    assert report.expired == [grant.id]
    assert cluster.binding("prod", grant.id) is None
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    story = store.audit.for_request(grant.id)
    assert [e.event for e in story[-3:]] == [Event.SWEEP_REVOKED_OVERDUE, Event.EXPIRED, Event.BINDING_DELETED]
    passed = format_instant(clock() - timedelta(minutes=1))
    assert end_sentence(story[-3].details) == f"its binding's expiry {passed} has passed"
    assert story[-3].details["binding_expires_at"] == passed
    assert end_sentence(story[-1].details) == end_sentence(story[-3].details)
    assert ended.note == end_sentence(story[-3].details)


def test_a_binding_without_an_expiry_annotation_ends_the_grant_redis_thinks_is_running(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    del binding.annotations[EXPIRES_AT_ANNOTATION]

    reconciler.sweep()

    assert cluster.binding("prod", grant.id) is None
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert ended.note == UNWARRANTED.sentence()  # its warrant signed an expiry the binding no longer carries


def test_a_failing_cluster_is_left_after_its_first_failed_call_and_the_others_are_swept(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    on_prod = [flows.granted(duration=timedelta(minutes=5)) for _ in range(3)]
    on_staging = flows.granted(target="staging/payments", duration=timedelta(minutes=5))
    clock.advance(minutes=6)  # every revoke job was lost
    cluster.fail_next(100, ClusterUnavailable, cluster="prod", operations=["remove_grant"])

    report = reconciler.sweep()

    assert report.unreachable == ["prod"]
    assert [op for op, c in cluster.calls if c == "prod"].count("remove_grant") == 1  # one timeout, not three
    assert cluster.binding("staging", on_staging.id) is None
    for grant in on_prod:  # recorded as ended; their bindings go at the first sweep that reaches prod
        assert store.get(grant.id).state is State.EXPIRED  # type: ignore[union-attr]
    cluster.recover()
    reconciler.sweep()
    assert cluster.bindings == {}


def test_a_cluster_that_takes_too_long_is_cut_short_and_finished_by_the_next_sweep(
    store: RequestStore,
    roster: FixedRoster,
    cluster: FakeCluster,
    jobs: RecordingJobs,
    grants: GrantService,
    access: AccessService,
    clock: FakeClock,
) -> None:
    ticks = iter(range(0, 10_000, 10))  # every look at the stopwatch: ten more seconds gone
    reconciler = Reconciler(
        store,
        roster,
        cluster,
        jobs,
        grants,
        access,
        clock,
        cluster_budget=timedelta(seconds=25),
        monotonic=lambda: float(next(ticks)),
    )
    for n in range(5):
        cluster.plant("prod", f"BG-22222{n}", "payments", clock() - timedelta(minutes=1))

    first = reconciler.sweep()
    assert first.cut_short == ["prod"]
    assert 0 < len(first.deleted) < 5
    while cluster.bindings:
        reconciler.sweep()
    assert len([e for e in store.audit.entries() if e.event == Event.SWEEP_DELETED]) == 5
