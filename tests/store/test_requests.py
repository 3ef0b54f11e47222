"""Requests in real Redis: created once, changed only through ``apply`` together with their audit
entries, and decided exactly once however many people click at the same instant."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import fakeredis
import pytest
import redis

from bot.domain.audit import Event
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import AccessRequest, IllegalTransition, State, transition
from bot.domain.policy import Ask
from bot.roster_source import FixedRoster, RosterFile
from bot.services.access import AccessService
from bot.services.errors import Refused
from bot.store import AuditLog, Change, Draft, RequestStore
from bot.store.requests import Applied, RequestExists
from tests.conftest import CHAIN_KEY, EXAMPLE_ROSTER, FakeClock
from tests.fakes import ALICE, BOB, CAROL, T0, RecordingJobs, access_request, example_roster

T = TypeVar("T")
THREADS = 8


def requested(request: AccessRequest) -> list[Draft]:
    return [Draft(Event.REQUESTED, request.requester, request.id, {"role": request.role})]


# --- create and get --------------------------------------------------------------------------


def test_create_then_get_returns_the_same_request(store: RequestStore) -> None:
    request = access_request()
    applied = store.create(request, requested(request))
    assert applied.request == request
    assert store.get(request.id) == request
    assert [e.event for e in applied.entries] == [Event.REQUESTED]
    assert store.pending() == [request]
    assert store.ids() == [request.id]


def test_get_unknown_request_is_none(store: RequestStore) -> None:
    assert store.get("BG-222222") is None


def test_create_twice_with_one_id_is_refused_and_writes_nothing(store: RequestStore) -> None:
    request = access_request()
    store.create(request, requested(request))
    with pytest.raises(RequestExists):
        store.create(request.model_copy(update={"role": "admin"}), requested(request))
    assert store.get(request.id) == request
    assert store.audit.head()[0] == 1


# --- apply ---------------------------------------------------------------------------------------


def test_apply_writes_the_request_and_its_audit_entries_together(store: RequestStore) -> None:
    request = access_request()
    store.create(request, requested(request))

    def approve(current: AccessRequest | None) -> Change[str]:
        assert current is not None
        return Change(
            transition(current, State.APPROVED, T0 + timedelta(minutes=1)),
            [Draft(Event.APPROVED, BOB, current.id, {"count": 1}), Draft(Event.REFUSED, CAROL, current.id)],
            result="done",
        )

    applied = store.apply(request.id, approve)
    assert applied.result == "done"
    assert applied.request is not None
    assert applied.request.state is State.APPROVED
    assert store.get(request.id) == applied.request
    assert [(e.seq, e.event) for e in applied.entries] == [(2, Event.APPROVED), (3, Event.REFUSED)]
    assert [e.seq for e in store.audit.for_request(request.id)] == [1, 2, 3]
    # The indexes follow the state: out of pending, into approved.
    assert store.pending() == []
    assert [r.id for r in store.approved()] == [request.id]


def test_apply_that_refuses_by_raising_writes_nothing(store: RequestStore) -> None:
    request = access_request(state=State.DENIED)
    store.create(request, requested(request))

    def approve(current: AccessRequest | None) -> Change[None]:
        assert current is not None
        return Change(transition(current, State.APPROVED, T0), [Draft(Event.APPROVED, BOB, current.id)])

    with pytest.raises(IllegalTransition):
        store.apply(request.id, approve)
    assert store.get(request.id) == request
    assert store.audit.head()[0] == 1


def test_apply_with_no_change_writes_only_its_entries(store: RequestStore) -> None:
    request = access_request()
    store.create(request, requested(request))
    applied = store.apply(request.id, lambda _: Change(None, [Draft(Event.REFUSED, ALICE, request.id)]))
    assert applied.request == request  # the current record is handed back
    assert store.get(request.id) == request
    assert [e.event for e in store.audit.for_request(request.id)] == [Event.REQUESTED, Event.REFUSED]


def test_apply_retries_decide_when_another_writer_got_there_first(store: RequestStore, real_redis: redis.Redis) -> None:
    request = access_request()
    store.create(request, requested(request))
    seen: list[int] = []

    def decide(current: AccessRequest | None) -> Change[None]:
        assert current is not None
        seen.append(current.version)
        if len(seen) == 1:  # someone else writes between our read and our write
            store.apply(request.id, lambda c: Change(c.changed(T0, note="other") if c else None))
        return Change(current.changed(T0, note="mine"), [Draft(Event.REFUSED, ALICE, request.id)])

    applied = store.apply(request.id, decide)
    assert seen == [0, 1]  # ran again on the newer record
    assert applied.request is not None
    assert applied.request.version == 2
    assert store.get(request.id) == applied.request


def test_active_index_is_ordered_by_expiry(store: RequestStore) -> None:
    later = access_request(id=RequestId("BG-333333"), state=State.ACTIVE, expires_at=T0 + timedelta(hours=2))
    sooner = access_request(id=RequestId("BG-444444"), state=State.ACTIVE, expires_at=T0 + timedelta(hours=1))
    for r in (later, sooner):
        store.create(r, requested(r))
    assert [r.id for r in store.active()] == [sooner.id, later.id]


# --- concurrent decisions ----------------------------------------------------------------------


def race(workers: list[Callable[[], T]]) -> list[T | Refused]:
    """Run every worker at once (they start together at a barrier); each result or its Refused."""
    barrier = threading.Barrier(len(workers))

    def run(work: Callable[[], T]) -> T | Refused:
        barrier.wait()
        try:
            return work()
        except Refused as refused:
            return refused

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        return list(pool.map(run, workers))


class ReadTogetherStore(RequestStore):
    """Once armed, the next ``parties`` calls to ``apply`` all read the record before any may write:
    the worst interleaving, every run, instead of whatever the thread scheduler happens to give.
    Only a caller's first decision waits; its retries (after another writer won) run freely."""

    gate: threading.Barrier | None = None

    def arm(self, parties: int) -> None:
        self.gate = threading.Barrier(parties)

    def apply(self, request_id: str, decide: Callable[[AccessRequest | None], Change[T]]) -> Applied[T]:
        gate, waited = self.gate, False

        def together(current: AccessRequest | None) -> Change[T]:
            nonlocal waited
            change = decide(current)
            if gate is not None and not waited:
                waited = True
                gate.wait(timeout=10)
            return change

        return super().apply(request_id, together)


@pytest.fixture
def gated_store(real_redis: redis.Redis, audit: AuditLog) -> ReadTogetherStore:
    return ReadTogetherStore(real_redis, audit)


@pytest.fixture
def jobs() -> RecordingJobs:
    return RecordingJobs()


@pytest.fixture
def access(gated_store: ReadTogetherStore, jobs: RecordingJobs, clock: FakeClock) -> AccessService:
    return AccessService(gated_store, RosterFile(EXAMPLE_ROSTER), jobs, clock)


def submit(access: AccessService, role: str) -> AccessRequest:
    return access.submit(
        Ask(SlackUserId(ALICE), "prod", "payments", role, timedelta(minutes=30), "INC-4411 checkout down")
    )


@pytest.mark.parametrize(("role", "needed"), [("view", 1), ("admin", 2)], ids=["one-approval", "two-approvals"])
def test_concurrent_approvals_give_exactly_one_transition(
    access: AccessService, gated_store: ReadTogetherStore, jobs: RecordingJobs, role: str, needed: int
) -> None:
    store = gated_store
    request = submit(access, role)
    store.arm(THREADS)
    approvers = [SlackUserId(BOB), SlackUserId(CAROL)] * (THREADS // 2)
    results = race([lambda who=who: access.approve(request.id, who) for who in approvers])

    accepted = [r for r in results if not isinstance(r, Refused)]
    assert len(accepted) == needed
    assert [r.request.state for r in accepted].count(State.APPROVED) == 1
    final = store.get(request.id)
    assert final is not None
    assert final.state is State.APPROVED
    assert len(final.approvals) == needed
    assert len(set(final.approved_by)) == needed
    entries = store.audit.for_request(request.id)
    assert [e.event for e in entries] == [Event.REQUESTED] + [Event.APPROVED] * needed
    assert [e.details["count"] for e in entries[1:]] == list(range(1, needed + 1))
    assert len(jobs.of("grant", request.id)) == 1
    assert store.audit.verify().ok


@pytest.mark.parametrize("round_", range(3))
def test_a_denier_racing_an_approver_gives_one_decision(
    access: AccessService, gated_store: ReadTogetherStore, jobs: RecordingJobs, round_: int
) -> None:
    store = gated_store
    request = submit(access, "view")
    store.arm(THREADS)
    workers = [
        (lambda: access.approve(request.id, SlackUserId(BOB))) if i % 2 else (lambda: access.deny(request.id, SlackUserId(CAROL)))
        for i in range(THREADS)
    ]  # fmt: skip
    results = race(workers)

    assert len([r for r in results if not isinstance(r, Refused)]) == 1
    final = store.get(request.id)
    assert final is not None
    decisions = [e.event for e in store.audit.for_request(request.id) if e.event != Event.REQUESTED]
    assert decisions in ([Event.APPROVED], [Event.DENIED])
    if decisions == [Event.APPROVED]:
        assert final.state is State.APPROVED
        assert final.approved_by == (BOB,)
        assert len(jobs.of("grant", request.id)) == 1
    else:
        assert final.state is State.DENIED
        assert final.decided_by == CAROL
        assert final.approvals == ()
        assert jobs.of("grant", request.id) == []


def test_concurrent_writes_leave_a_gapless_verifiable_chain(
    access: AccessService, gated_store: ReadTogetherStore
) -> None:
    store = gated_store
    requests = [submit(access, "admin") for _ in range(3)]  # the roster's default pending quota
    store.arm(3 * 3)  # the approvals; the stray appends race them ungated
    work: list[Callable[[], object]] = []
    for request in requests:
        work += [lambda r=request: access.approve(r.id, SlackUserId(BOB))]
        work += [lambda r=request: access.approve(r.id, SlackUserId(CAROL))]
        work += [lambda r=request: access.approve(r.id, SlackUserId(ALICE))]  # refused: writes nothing
        # ... and recorded by the listener that called, as a refused attempt, beside the transactions.
        work += [lambda r=request: access.refuse(r.id, SlackUserId(ALICE), "approve", "own request")]
        work += [lambda: store.audit.append(Draft(Event.REFUSED, "U0000MALLORY", None))]
    race(work)

    seqs = [e.seq for e in store.audit.entries()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) == 3 + 3 * 2 + 3 + 3  # requested, two approvals, own-request refusal, stray refusal
    assert store.audit.verify().ok
    assert store.audit.head() == (len(seqs), list(store.audit.entries())[-1].hash)
    assert all(store.get(r.id).state is State.APPROVED for r in requests)  # type: ignore[union-attr]


def test_fixed_roster_serves_the_same_roster(store: RequestStore, jobs: RecordingJobs, clock: FakeClock) -> None:
    access = AccessService(store, FixedRoster(example_roster()), jobs, clock)
    request = submit(access, "view")
    assert access.approve(request.id, SlackUserId(BOB)).decided


def test_fakeredis_supports_the_same_transactions(clock: FakeClock) -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    store = RequestStore(client, AuditLog(client, clock, out=io.StringIO(), key=CHAIN_KEY))
    access = AccessService(store, FixedRoster(example_roster()), RecordingJobs(), clock)
    request = submit(access, "admin")
    access.approve(request.id, SlackUserId(BOB))
    outcome = access.approve(request.id, SlackUserId(CAROL))
    assert outcome.request.state is State.APPROVED
    assert store.audit.verify().ok
