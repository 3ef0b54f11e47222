"""The sweep lock on a real Redis: one sweep at a time cluster-wide, kept by a slow sweep, lost by a
dead holder within its TTL, and never released or extended by anyone but its holder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import redis

from bot.services.reconcile import SweepReport
from workers.context import WorkerContext
from workers.sweeper import SweepLock, sweep_once

PREFIX = "breakglass-test"
TTL = timedelta(milliseconds=400)
RENEW = timedelta(milliseconds=100)


class _Reconciler:
    """Stands in for the Reconciler: counts sweeps, and holds each one until ``release`` is set."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()
        self.runs = 0
        self.saw_keep_going: list[bool] = []

    def sweep(self, keep_going: Callable[[], bool] = lambda: True) -> SweepReport:
        self.runs += 1
        self.entered.set()
        if self.hold:
            time.sleep(self.hold)
        else:
            self.release.wait(5)
        self.saw_keep_going.append(keep_going())
        return SweepReport()


class _Core:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.settings = type("S", (), {"key_prefix": PREFIX})()


def _context(client: redis.Redis, reconciler: _Reconciler) -> WorkerContext:
    stand_in: Any = type("Context", (), {"core": _Core(client), "reconciler": reconciler})()
    return cast(WorkerContext, stand_in)


def _lock(client: redis.Redis) -> SweepLock:
    return SweepLock(client, PREFIX, ttl=TTL, renew_every=RENEW)


def test_of_two_sweeps_started_at_once_only_one_runs(real_redis: redis.Redis) -> None:
    first, second = _Reconciler(), _Reconciler()
    results: list[SweepReport | None] = []
    running = threading.Thread(
        target=lambda: results.append(sweep_once(_context(real_redis, first), _lock(real_redis)))
    )
    running.start()
    assert first.entered.wait(5)

    assert sweep_once(_context(real_redis, second), _lock(real_redis)) is None
    assert second.runs == 0
    first.release.set()
    running.join(5)
    assert first.runs == 1
    assert results
    assert results[0] is not None
    assert real_redis.exists(f"{PREFIX}:sweep:running") == 0  # released when done


def test_a_sweep_longer_than_the_lock_ttl_keeps_its_lock(real_redis: redis.Redis) -> None:
    # A TTL fifteen renewals long: the lock lapses only if its renewing thread is not scheduled for
    # 1.5 s, which a loaded machine did to the 400 ms TTL the other tests use (four renewals).
    ttl = timedelta(milliseconds=1500)
    slow = _Reconciler(hold=ttl.total_seconds() * 2)
    held = SweepLock(real_redis, PREFIX, ttl=ttl, renew_every=RENEW)
    running = threading.Thread(target=lambda: sweep_once(_context(real_redis, slow), held))
    running.start()
    assert slow.entered.wait(5)
    others_got_it = []
    while running.is_alive():
        other = _lock(real_redis)
        others_got_it.append(other.acquire())
        if others_got_it[-1]:
            other.release()
        time.sleep(0.05)
    assert others_got_it
    assert not any(others_got_it)
    assert slow.saw_keep_going == [True]  # it never lost the lock, so it was never told to stop


def test_a_holder_that_dies_loses_the_lock_within_its_ttl(real_redis: redis.Redis) -> None:
    dead = _lock(real_redis)
    assert dead.acquire()  # and never renewed again, as after a SIGKILL
    taken_at = time.monotonic()
    successor = _lock(real_redis)
    assert not successor.acquire()
    while not successor.acquire():
        assert time.monotonic() - taken_at < TTL.total_seconds() + 60, "the dead holder's lock never lapsed"
        time.sleep(0.02)
    assert time.monotonic() - taken_at >= TTL.total_seconds() - 0.05


def test_a_lapsed_holder_neither_releases_nor_renews_the_new_holders_lock(real_redis: redis.Redis) -> None:
    stalled = _lock(real_redis)
    assert stalled.acquire()
    real_redis.delete(stalled.key)  # its TTL ran out while it stalled
    current = _lock(real_redis)
    assert current.acquire()

    assert stalled.renew() is False
    assert stalled.release() is False
    assert real_redis.get(current.key) == current.token
    assert current.release() is True
    assert real_redis.exists(current.key) == 0


def test_a_sweep_whose_lock_was_taken_over_is_told_to_stop(real_redis: redis.Redis) -> None:
    sweeping = _Reconciler()
    lock = _lock(real_redis)
    running = threading.Thread(target=lambda: sweep_once(_context(real_redis, sweeping), lock))
    running.start()
    assert sweeping.entered.wait(5)
    real_redis.set(lock.key, "someone-else", px=5000)  # as if it had stalled past its TTL
    assert lock.lost.wait(2)
    sweeping.release.set()
    running.join(5)
    assert sweeping.saw_keep_going == [False]
    assert real_redis.get(lock.key) == "someone-else"  # not deleted on the way out
