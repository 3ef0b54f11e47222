"""The sweep and the warrants on bindings: a binding whose warrant verifies survives the loss of Redis
until its signed expiry, and a managed binding whose warrant is missing or does not verify goes at
once, by its own name and namespace."""

from __future__ import annotations

from datetime import timedelta

import fakeredis

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.grants import EXPIRES_AT_ANNOTATION, REQUEST_ID_LABEL, THREAD_ANNOTATION, format_instant
from bot.domain.lifecycle import State
from bot.services.publishing import Publisher
from bot.services.reconcile import UNWARRANTED, Reconciler
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import FakeCluster, RecordingJobs, RecordingNotifier
from tests.services.conftest import Flows


def test_a_warranted_binding_outlives_the_loss_of_redis_until_its_signed_expiry(
    reconciler: Reconciler,
    cluster: FakeCluster,
    store: RequestStore,
    redis_client: fakeredis.FakeRedis,
    clock: FakeClock,
    flows: Flows,
) -> None:
    grant = flows.granted(duration=timedelta(hours=1))
    redis_client.flushall()  # a cache restarted mid-incident
    clock.advance(minutes=10)

    first = reconciler.sweep()
    assert cluster.binding("prod", grant.id) is not None, "the responder keeps access"
    assert first.recovered == [grant.id]
    assert first.deleted == []
    (recovered,) = store.audit.for_request(grant.id)
    assert (recovered.event, recovered.actor) == (Event.SWEEP_RECOVERED, SYSTEM_ACTOR)
    assert recovered.details["expires_at"] == format_instant(grant.expires_at)  # type: ignore[arg-type]

    assert reconciler.sweep().recovered == [], "recorded once"
    assert len(store.audit.for_request(grant.id)) == 1

    clock.advance(minutes=51)  # past the signed expiry
    last = reconciler.sweep()
    assert cluster.binding("prod", grant.id) is None, "and never a moment past its expiry"
    assert last.deleted == [f"breakglass-{grant.id.lower()}"]
    assert store.audit.for_request(grant.id)[-1].details["code"] == "expiry_passed"


def test_a_binding_whose_expiry_was_moved_by_hand_goes_at_once_and_its_grant_ends(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted(duration=timedelta(hours=1))
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    binding.annotations[EXPIRES_AT_ANNOTATION] = format_instant(clock() + timedelta(days=30))

    report = reconciler.sweep()

    assert cluster.binding("prod", grant.id) is None
    assert report.expired == [grant.id]
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert ended.note == UNWARRANTED.sentence()


def test_a_relabelled_binding_is_deleted_by_its_own_name_and_the_named_grant_is_untouched(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, flows: Flows
) -> None:
    # Finding 9: the sweep deleted breakglass-<label id>, so relabelling one binding to another
    # grant's id removed that grant's binding and kept the relabelled one.
    mine = flows.granted()
    other = flows.granted(target="prod/payments-eu")
    binding = cluster.binding("prod", mine.id)
    assert binding is not None
    binding.labels[REQUEST_ID_LABEL] = other.id

    reconciler.sweep()

    assert cluster.binding("prod", mine.id) is None
    assert cluster.binding("prod", other.id) is not None
    still = store.get(other.id)
    assert still is not None
    assert still.state is State.ACTIVE
    # Filed in the trail of the grant whose binding was tampered with, naming the forged label; the
    # grant the label names hears nothing of it. The tampered grant has lost its access: it is over.
    assert [e.event for e in store.audit.for_request(other.id)].count(Event.SWEEP_DELETED) == 0
    (deleted,) = [e for e in store.audit.for_request(mine.id) if e.event == Event.SWEEP_DELETED]
    assert deleted.details["labelled"] == other.id
    assert deleted.details["binding"] == f"breakglass-{mine.id.lower()}"
    ended = store.get(mine.id)
    assert ended is not None
    assert ended.state.terminal


def test_a_hand_made_copy_under_another_name_is_deleted(
    reconciler: Reconciler, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    original = cluster.binding("prod", grant.id)
    assert original is not None
    copy = cluster.plant("prod", grant.id, "payments", original.expires_at, name="breakglass-copy")
    copy.annotations = dict(original.annotations)  # its warrant too: signed for another name

    reconciler.sweep()

    assert ("prod", "breakglass-copy") not in cluster.bindings
    assert cluster.binding("prod", grant.id) is not None


def test_an_approved_request_never_adopts_an_unsigned_binding_and_its_far_expiry(
    reconciler: Reconciler, cluster: FakeCluster, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    # Finding 10: a lost grant job's binding is adopted with the expiry it carries; one written by
    # someone else could carry any expiry at all.
    request = flows.approved()
    clock.advance(minutes=5)
    cluster.plant(
        "prod", request.id, "payments", clock() + timedelta(days=30), subject="alice@example.com", warranted=False
    )

    report = reconciler.sweep()

    assert report.adopted == []
    assert cluster.binding("prod", request.id) is None
    after = store.get(request.id)
    assert after is not None
    assert after.state is State.APPROVED  # its grant job (queued again) makes a binding of its own


def test_an_extension_re_signs_the_binding(
    reconciler: Reconciler, cluster: FakeCluster, flows: Flows, jobs: RecordingJobs
) -> None:
    grant = flows.granted(duration=timedelta(minutes=30))
    extension = flows.access.extend(grant.id, grant.requester, timedelta(minutes=30), "INC-4411 still crash-looping")
    for approver in ("U0000000BOB",):
        flows.access.approve(extension.id, approver)  # type: ignore[arg-type]
    flows.grants.grant(extension.id)
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    assert grant.expires_at is not None
    assert binding.expires_at == grant.expires_at + timedelta(minutes=30)
    assert binding.warranted
    reconciler.sweep()
    assert cluster.binding("prod", grant.id) is not None


# --- a recovered grant is told in its thread (the binding names it) ----------------------------------


def test_a_grant_recovered_after_redis_lost_it_is_told_in_its_thread_and_so_is_its_end(
    reconciler: Reconciler,
    publisher: Publisher,
    notifier: RecordingNotifier,
    cluster: FakeCluster,
    store: RequestStore,
    redis_client: fakeredis.FakeRedis,
    jobs: RecordingJobs,
    clock: FakeClock,
    flows: Flows,
) -> None:
    # Main recorded the recovery in the audit log only: the request (and with it its thread) was gone,
    # so the people in the incident thread never heard why the responder still had access.
    grant = flows.granted(duration=timedelta(hours=1))
    publisher.publish(grant.id)  # the request message is posted: its thread exists
    posted = store.get(grant.id)
    assert posted is not None
    assert posted.message_ts is not None
    reconciler.sweep()  # names the thread on a binding made before the message was posted
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    thread = f"{posted.channel}/{posted.message_ts}"
    assert binding.annotations[THREAD_ANNOTATION] == thread
    assert binding.warranted, "naming the thread re-signs the same warrant"

    redis_client.flushall()
    clock.advance(minutes=10)
    assert reconciler.sweep().recovered == [grant.id]
    (recovered,) = store.audit.for_request(grant.id)
    assert recovered.details["thread"] == thread
    assert jobs.queued("publish", grant.id)
    publisher.publish(grant.id)
    assert [e.event for e in notifier.told[thread]] == [Event.SWEEP_RECOVERED]

    clock.advance(minutes=51)
    reconciler.sweep()
    publisher.publish(grant.id)
    assert [e.event for e in notifier.told[thread]] == [Event.SWEEP_RECOVERED, Event.SWEEP_DELETED]
    assert store.outbox.owed() == []


def test_a_thread_named_in_a_channel_the_roster_does_not_allow_is_never_told(
    reconciler: Reconciler,
    publisher: Publisher,
    notifier: RecordingNotifier,
    cluster: FakeCluster,
    store: RequestStore,
    redis_client: fakeredis.FakeRedis,
    clock: FakeClock,
    flows: Flows,
) -> None:
    # The thread annotation is not signed: someone who may edit bindings could point it anywhere.
    grant = flows.granted(duration=timedelta(hours=1))
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    binding.annotations[THREAD_ANNOTATION] = "C0OUTSIDERS/1790000000.000001"
    redis_client.flushall()
    assert reconciler.sweep().recovered == [grant.id]
    (recovered,) = store.audit.for_request(grant.id)
    assert "thread" not in recovered.details
    publisher.publish(grant.id)
    assert notifier.told == {}
