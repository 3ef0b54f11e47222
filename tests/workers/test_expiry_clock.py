"""The expiry clock's timing: it looks again at once after revoking, sleeps until the next expiry
when that is near, and never longer than LOOK_EVERY (a grant made meanwhile may end sooner)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any, cast

import fakeredis

from bot.domain.lifecycle import State
from bot.store import AuditLog, RequestStore
from tests.conftest import CHAIN_KEY, FakeClock
from tests.fakes import access_request
from workers.context import WorkerContext
from workers.expiry import LOOK_EVERY, ExpiryClock


class _Reconciler:
    """Stands in for the Reconciler: says how many grants each look took, and what it was asked."""

    def __init__(self, took: list[int]) -> None:
        self.took = took
        self.asked: list[timedelta] = []

    def revoke_overdue(self, late_by: timedelta) -> int:
        self.asked.append(late_by)
        return self.took.pop(0)


def _clock(store: RequestStore, clock: FakeClock, reconciler: _Reconciler) -> ExpiryClock:
    core = type("Core", (), {"store": store, "now": clock})()
    context: Any = type("Context", (), {"core": core, "reconciler": reconciler})()
    return ExpiryClock(cast(WorkerContext, context))


def _store(clock: FakeClock) -> RequestStore:
    client = fakeredis.FakeRedis(decode_responses=True)
    return RequestStore(client, AuditLog(client, clock, out=io.StringIO(), key=CHAIN_KEY))


def _active(store: RequestStore, clock: FakeClock, ends_in: timedelta) -> None:
    request = access_request(state=State.ACTIVE, expires_at=clock() + ends_in)
    store.create(request, [])


def test_after_revoking_it_looks_again_at_once(clock: FakeClock) -> None:
    reconciler = _Reconciler(took=[3])
    assert _clock(_store(clock), clock, reconciler).tick() == 0.0
    assert reconciler.asked == [timedelta(0)]  # due at the expiry itself, not later


def test_it_sleeps_until_a_near_expiry(clock: FakeClock) -> None:
    store = _store(clock)
    _active(store, clock, timedelta(milliseconds=120))
    assert _clock(store, clock, _Reconciler(took=[0])).tick() == 0.12


def test_it_never_sleeps_longer_than_look_every(clock: FakeClock) -> None:
    store = _store(clock)
    assert _clock(store, clock, _Reconciler(took=[0])).tick() == LOOK_EVERY  # nothing active
    _active(store, clock, timedelta(minutes=30))
    assert _clock(store, clock, _Reconciler(took=[0])).tick() == LOOK_EVERY
