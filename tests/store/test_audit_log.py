"""The audit log in real Redis: an intact chain verifies; editing or deleting an entry in Redis is
found and named; every entry also goes to standard output as one JSON line."""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from bot.domain.audit import AuditEntry, Event
from bot.store import AuditLog, Draft
from tests.conftest import FakeClock

ENTRIES = 8


def fill(audit: AuditLog, count: int = ENTRIES) -> list[AuditEntry]:
    written = []
    for i in range(count):
        written += audit.append(Draft(Event.REFUSED, "U0000000BOB", f"BG-{'2345678A'[i % 8]}22222", {"n": i}))
    return written


def rewrite_stream(client: redis.Redis, audit: AuditLog, entries: list[dict[str, Any]]) -> None:
    """Replace the stream with ``entries`` as they are (someone with write access to Redis)."""
    client.delete(audit.stream_key)
    for entry in entries:
        client.xadd(audit.stream_key, {"entry": json.dumps(entry)}, id=f"{entry['seq']}-0")


def stored(client: redis.Redis, audit: AuditLog) -> list[dict[str, Any]]:
    return [json.loads(fields["entry"]) for _, fields in client.xrange(audit.stream_key)]


def test_appended_entries_chain_and_verify(audit: AuditLog) -> None:
    written = fill(audit)
    assert [e.seq for e in written] == list(range(1, ENTRIES + 1))
    assert audit.head() == (ENTRIES, written[-1].hash)
    assert list(audit.entries()) == written
    verdict = audit.verify()
    assert verdict.ok
    assert verdict.checked == ENTRIES


def test_empty_log_verifies(audit: AuditLog) -> None:
    assert audit.verify().ok


def test_verify_reads_past_one_batch(audit: AuditLog) -> None:
    audit.append(*[Draft(Event.REFUSED, "U0000000BOB", None, {"n": i}) for i in range(1203)])
    verdict = audit.verify()
    assert (verdict.ok, verdict.checked) == (True, 1203)


@pytest.mark.parametrize(
    ("field", "value"),
    [("actor", "U00000CAROL"), ("event", "approved"), ("details", {"n": 99}), ("at", "2026-01-01T00:00:00.000000Z")],
)
def test_editing_one_entry_in_redis_is_found_at_its_seq(
    audit: AuditLog, real_redis: redis.Redis, field: str, value: Any
) -> None:
    fill(audit)
    entries = stored(real_redis, audit)
    entries[4][field] = value  # seq 5
    rewrite_stream(real_redis, audit, entries)
    verdict = audit.verify()
    assert not verdict.ok
    assert verdict.bad_seq == 5
    assert verdict.problem == "entry 5 was altered (its hash does not match)"


def test_rewriting_the_stream_unchanged_still_verifies(audit: AuditLog, real_redis: redis.Redis) -> None:
    # The edit tests above fail because of the edit, not because of the rewrite.
    fill(audit)
    rewrite_stream(real_redis, audit, stored(real_redis, audit))
    assert audit.verify().ok


@pytest.mark.parametrize("seq", [1, 4, ENTRIES - 1])
def test_deleting_one_entry_is_found_at_its_seq(audit: AuditLog, real_redis: redis.Redis, seq: int) -> None:
    fill(audit)
    assert real_redis.xdel(audit.stream_key, f"{seq}-0") == 1
    verdict = audit.verify()
    assert not verdict.ok
    assert verdict.bad_seq == seq
    assert verdict.problem == f"entry {seq} is missing (found {seq + 1} next)"


def test_deleting_the_last_entry_is_found_through_the_head(audit: AuditLog, real_redis: redis.Redis) -> None:
    fill(audit)
    real_redis.xdel(audit.stream_key, f"{ENTRIES}-0")
    verdict = audit.verify()
    assert not verdict.ok
    assert verdict.bad_seq == ENTRIES
    assert verdict.problem == f"entries after {ENTRIES - 1} are missing (the head is at {ENTRIES})"


def test_deleting_the_whole_stream_is_found_through_the_head(audit: AuditLog, real_redis: redis.Redis) -> None:
    fill(audit)
    real_redis.delete(audit.stream_key)
    verdict = audit.verify()
    assert (verdict.ok, verdict.bad_seq) == (False, 1)


def test_concurrent_appends_leave_no_gaps_or_duplicates(audit: AuditLog, real_redis: redis.Redis) -> None:
    barrier = threading.Barrier(8)

    def writer(n: int) -> list[int]:
        barrier.wait()
        seqs = []
        for i in range(10):
            seqs += [e.seq for e in audit.append(Draft(Event.REFUSED, "U0000000BOB", None, {"w": n, "i": i}))]
        return seqs

    with ThreadPoolExecutor(max_workers=8) as pool:
        returned = [seq for seqs in pool.map(writer, range(8)) for seq in seqs]
    assert sorted(returned) == list(range(1, 81))
    assert [e.seq for e in audit.entries()] == list(range(1, 81))
    assert audit.verify().ok


def test_verify_while_another_process_appends_is_not_a_false_alarm(real_redis: redis.Redis, clock: FakeClock) -> None:
    """``audit verify`` runs beside a working bot: entries appended while it reads must not look
    like entries missing after the head it read."""
    fill(AuditLog(real_redis, clock, out=io.StringIO()))
    other = AuditLog(real_redis, clock, out=io.StringIO())

    class AppendsDuringRead(redis.Redis):
        appended = False

        def xrange(self, *args: Any, **kwargs: Any) -> Any:
            if not self.appended:  # between the verifier's read of the head and of the stream
                self.appended = True
                other.append(Draft(Event.REFUSED, "U00000CAROL", None))
            return super().xrange(*args, **kwargs)

    pool = real_redis.connection_pool
    verifier = AuditLog(AppendsDuringRead(connection_pool=pool), clock, out=io.StringIO())
    verdict = verifier.verify()
    assert verdict.ok, verdict.problem
    assert AuditLog(real_redis, clock, out=io.StringIO()).verify().checked == ENTRIES + 1


def test_for_request_returns_that_requests_entries_in_order(audit: AuditLog, clock: FakeClock) -> None:
    audit.append(Draft(Event.REQUESTED, "U000000ALICE", "BG-222222"))
    audit.append(Draft(Event.REQUESTED, "U000000ALICE", "BG-333333"))
    clock.advance(minutes=1)
    audit.append(Draft(Event.APPROVED, "U0000000BOB", "BG-222222"), Draft(Event.REFUSED, "U0000MALLORY", None))
    audit.append(Draft(Event.GRANTED, "system", "BG-222222"))

    mine = audit.for_request("BG-222222")
    assert [(e.seq, e.event) for e in mine] == [(1, "requested"), (3, "approved"), (5, "granted")]
    assert [e.seq for e in audit.for_request("BG-222222", after_seq=3)] == [5]
    assert [e.seq for e in audit.for_request("BG-333333")] == [2]
    assert audit.for_request("BG-444444") == []
    assert [e.seq for e in audit.entries(request_id="BG-222222")] == [1, 3, 5]
    assert [e.seq for e in audit.entries(since=clock.at)] == [3, 4, 5]


def test_every_entry_is_written_to_stdout_as_one_json_line(audit: AuditLog, audit_out: io.StringIO) -> None:
    written = fill(audit, 3)
    written += audit.append(Draft(Event.REFUSED, "U0000MALLORY", None, {"reason": "line\nbreak ✓"}))
    lines = audit_out.getvalue().splitlines()
    assert len(lines) == len(written)
    for line, entry in zip(lines, written, strict=True):
        record = json.loads(line)
        assert record.pop("log") == "audit"
        assert record == entry.to_dict()
        assert set(record) == {"seq", "at", "request_id", "event", "actor", "details", "prev_hash", "hash"}


def test_stdout_is_the_default_copy(
    real_redis: redis.Redis, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = AuditLog(real_redis, clock).append(Draft(Event.REFUSED, "U0000MALLORY", None))[0]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert json.loads(out[0])["hash"] == entry.hash


def test_entry_at_is_rfc3339_utc(audit: AuditLog, clock: FakeClock) -> None:
    clock.advance(seconds=1.5)
    entry = audit.append(Draft(Event.REFUSED, "U0000MALLORY", None))[0]
    assert entry.at == "2026-11-27T09:00:01.500000Z"
