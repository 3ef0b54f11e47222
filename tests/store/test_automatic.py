"""Each person's automatic approvals in the last 24 hours, on real Redis: the count a rule's
``max_per_day`` caps, claimed atomically, idempotent by request, and never kept past its window."""

from __future__ import annotations

import threading
from datetime import timedelta

import redis

from bot.store.automatic import AutomaticApprovals
from bot.store.keys import Keys
from tests.conftest import FakeClock

ALICE = "U000000ALICE"


def test_a_claim_counts_once_per_request_and_stops_at_the_cap(real_redis: redis.Redis, clock: FakeClock) -> None:
    ledger = AutomaticApprovals(real_redis)
    assert ledger.claim(ALICE, "BG-AAAAAA", clock(), 2)
    assert ledger.claim(ALICE, "BG-AAAAAA", clock(), 2), "the same request again keeps its place"
    assert ledger.count(ALICE, clock()) == 1
    assert ledger.claim(ALICE, "BG-BBBBBB", clock(), 2)
    assert not ledger.claim(ALICE, "BG-CCCCCC", clock(), 2)
    assert ledger.count(ALICE, clock()) == 2
    assert ledger.claim(ALICE, "BG-CCCCCC", clock(), None), "a rule without a cap still counts it"
    assert ledger.count(ALICE, clock()) == 3


def test_the_window_rolls_and_the_key_expires_with_it(real_redis: redis.Redis, clock: FakeClock) -> None:
    ledger = AutomaticApprovals(real_redis)
    ledger.claim(ALICE, "BG-AAAAAA", clock(), 1)
    ttl = real_redis.ttl(Keys().automatic_approvals(ALICE))
    assert 0 < int(ttl) <= int(timedelta(hours=24).total_seconds())  # type: ignore[arg-type]
    later = clock() + timedelta(hours=24, seconds=1)
    assert ledger.count(ALICE, later) == 0
    assert ledger.place(ALICE, "BG-AAAAAA", later) is None
    assert ledger.claim(ALICE, "BG-BBBBBB", later, 1)
    assert ledger.place(ALICE, "BG-BBBBBB", later) == 1


def test_release_gives_the_place_back(real_redis: redis.Redis, clock: FakeClock) -> None:
    ledger = AutomaticApprovals(real_redis)
    ledger.claim(ALICE, "BG-AAAAAA", clock(), 1)
    ledger.release(ALICE, "BG-AAAAAA")
    assert ledger.claim(ALICE, "BG-BBBBBB", clock(), 1)


def test_racing_claims_never_pass_the_cap(real_redis: redis.Redis, clock: FakeClock) -> None:
    ledger = AutomaticApprovals(real_redis)
    won: list[str] = []
    lock = threading.Lock()

    def claim(request_id: str) -> None:
        if AutomaticApprovals(redis.Redis(connection_pool=real_redis.connection_pool)).claim(
            ALICE, request_id, clock(), 3
        ):
            with lock:
                won.append(request_id)

    threads = [threading.Thread(target=claim, args=(f"BG-{i:06d}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 3
    assert ledger.count(ALICE, clock()) == 3
