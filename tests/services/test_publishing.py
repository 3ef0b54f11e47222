"""Keeping a request's Slack thread in step with its audit entries: in order, each exactly once,
and nothing lost when Slack fails for a while."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest

from bot.domain.audit import Event
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.policy import Ask
from bot.ports import TemporaryError
from bot.services.access import AccessService
from bot.services.publishing import Publisher
from bot.store import RequestStore
from tests.fakes import ALICE, BOB, CAROL, RecordingJobs, RecordingNotifier
from tests.services.conftest import Flows


def seqs(store: RequestStore, request_id: str) -> list[int]:
    return [e.seq for e in store.audit.for_request(request_id)]


def test_first_publish_posts_every_entry_in_order_and_remembers_the_message(
    publisher: Publisher, notifier: RecordingNotifier, store: RequestStore, flows: Flows
) -> None:
    request = flows.submit("admin", duration=timedelta(minutes=30))
    flows.access.approve(request.id, SlackUserId(BOB))
    assert publisher.publish(request.id) == 2
    assert notifier.posted(request.id) == seqs(store, request.id)
    stored = store.get(request.id)
    assert stored is not None
    assert stored.message_ts == notifier.threads[request.id].ts
    assert stored.version == 1  # remembering the message is not a change of state


def test_publishing_again_posts_only_what_is_new(
    publisher: Publisher, notifier: RecordingNotifier, store: RequestStore, flows: Flows
) -> None:
    request = flows.submit("admin", duration=timedelta(minutes=30))
    publisher.publish(request.id)
    assert publisher.publish(request.id) == 0
    assert notifier.attempts == 1  # nothing new and the message exists: Slack is not called
    flows.access.approve(request.id, SlackUserId(BOB))
    flows.access.approve(request.id, SlackUserId(CAROL))
    assert publisher.publish(request.id) == 2
    assert notifier.posted(request.id) == seqs(store, request.id)
    assert len(notifier.posted(request.id)) == 3
    assert notifier.threads[request.id].states == ["pending", "approved"]


def test_entries_of_other_requests_stay_out_of_the_thread(
    publisher: Publisher, notifier: RecordingNotifier, store: RequestStore, flows: Flows
) -> None:
    one = flows.submit()
    other = flows.submit()
    flows.access.approve(other.id, SlackUserId(BOB))
    publisher.publish(one.id)
    assert notifier.posted(one.id) == seqs(store, one.id) == [1]


def test_retry_after_slack_fails_posts_everything_exactly_once(
    publisher: Publisher, notifier: RecordingNotifier, store: RequestStore, flows: Flows
) -> None:
    request = flows.submit("admin", duration=timedelta(minutes=30))
    publisher.publish(request.id)
    flows.access.approve(request.id, SlackUserId(BOB))
    notifier.fail_next(2)
    for _ in range(2):
        with pytest.raises(TemporaryError):
            publisher.publish(request.id)
    flows.access.approve(request.id, SlackUserId(CAROL))  # more arrives while Slack is down
    assert publisher.publish(request.id) == 2
    assert notifier.posted(request.id) == seqs(store, request.id) == [1, 2, 3]


def test_first_publish_failing_leaves_no_message_behind(
    publisher: Publisher, notifier: RecordingNotifier, store: RequestStore, flows: Flows
) -> None:
    request = flows.submit()
    notifier.fail_next(1)
    with pytest.raises(TemporaryError):
        publisher.publish(request.id)
    stored = store.get(request.id)
    assert stored is not None
    assert stored.message_ts is None
    assert publisher.publish(request.id) == 1
    assert notifier.posted(request.id) == [1]


def test_a_second_publisher_waits_its_turn(
    publisher: Publisher, notifier: RecordingNotifier, redis_client: fakeredis.FakeRedis, flows: Flows
) -> None:
    request = flows.submit()
    redis_client.set(f"breakglass:publishing:{request.id}", "another-worker", ex=30)
    with pytest.raises(TemporaryError, match="being published by another worker"):
        publisher.publish(request.id)
    assert notifier.attempts == 0
    redis_client.delete(f"breakglass:publishing:{request.id}")
    assert publisher.publish(request.id) == 1


def test_the_lock_is_released_after_a_failure(
    publisher: Publisher, notifier: RecordingNotifier, redis_client: fakeredis.FakeRedis, flows: Flows
) -> None:
    request = flows.submit()
    notifier.fail_next(1)
    with pytest.raises(TemporaryError):
        publisher.publish(request.id)
    assert redis_client.get(f"breakglass:publishing:{request.id}") is None


def test_unknown_request_publishes_nothing(publisher: Publisher, notifier: RecordingNotifier) -> None:
    assert publisher.publish(RequestId("BG-222222")) == 0
    assert notifier.attempts == 0


def test_every_event_of_a_whole_life_reaches_the_thread_once(
    publisher: Publisher, notifier: RecordingNotifier, store: RequestStore, access: AccessService, flows: Flows
) -> None:
    grant = flows.granted()
    publisher.publish(grant.id)
    access.revoke(grant.id, SlackUserId(BOB))
    flows.grants.revoke(grant.id)
    publisher.publish(grant.id)
    publisher.publish(grant.id)
    posted = [e.event for e in notifier.threads[grant.id].entries]
    assert posted == [e.event for e in store.audit.for_request(grant.id)]
    assert posted == [
        Event.REQUESTED,
        Event.APPROVED,
        Event.GRANTED,
        Event.REVOKED,
        Event.BINDING_DELETED,
    ]


def test_an_operator_grant_stays_owed_to_slack_until_its_thread_has_caught_up(
    access: AccessService, publisher: Publisher, notifier: RecordingNotifier, jobs: RecordingJobs
) -> None:
    from bot.services.publishing import drain_outbox

    request = access.grant_by_operator(
        Ask(SlackUserId(ALICE), "prod", "payments", "view", timedelta(hours=1), "INC-1 Slack is down"), "ops"
    )
    outbox = publisher.store.outbox
    outbox.add(request.id)
    notifier.fail_next(20)  # the publish job retries and gives up: Slack is down for longer
    for _ in range(3):
        with pytest.raises(TemporaryError):
            publisher.publish(request.id)
    jobs.calls.clear()
    jobs.waiting.clear()

    assert drain_outbox(publisher.store, jobs) == 1  # each sweep hands it to a publish job again
    assert [(c.kind, c.request_id) for c in jobs.calls] == [("publish", request.id)]

    notifier.fail_next(0)  # Slack answers
    publisher.publish(request.id)
    assert [e.event for e in notifier.threads[request.id].entries][:2] == [Event.REQUESTED, Event.APPROVED]
    assert outbox.owed() == []


def test_a_change_landing_between_a_publishers_two_reads_still_reaches_the_root_message(
    publisher: Publisher,
    notifier: RecordingNotifier,
    store: RequestStore,
    flows: Flows,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bob approves while a publish job is between reading the request and reading its entries. His
    approval queues a follow-up publish (the job is running); once it has run, the root message must
    show the request as it is now, not as the first read saw it."""
    request = flows.submit("view")  # one approval: Bob's approves it
    publisher.publish(request.id)
    armed = [True]

    def approve_once(read: object) -> object:
        def reading(*args: object, **kwargs: object) -> object:
            found = read(*args, **kwargs)  # type: ignore[operator]
            if armed[0]:
                armed[0] = False
                flows.access.approve(request.id, SlackUserId(BOB))
            return found

        return reading

    monkeypatch.setattr(store, "get", approve_once(store.get))
    monkeypatch.setattr(store.audit, "for_request", approve_once(store.audit.for_request))
    publisher.publish(request.id)  # the job running when Bob approved
    monkeypatch.undo()
    publisher.publish(request.id)  # the follow-up his approval queued

    assert not armed[0], "the approval landed inside the publish"
    assert notifier.posted(request.id) == seqs(store, request.id) == [1, 2]
    assert notifier.threads[request.id].states[-1] == "approved"
