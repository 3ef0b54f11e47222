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
from bot.store import AuditLog, AuditLogBroken, Draft, RequestStore, UnreadableEntry
from tests.conftest import CHAIN_KEY, FakeClock
from tests.fakes import access_request

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
    assert verdict.problem == "entry 5 was altered or written without this signing key (its hash does not match)"


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


def test_deleting_the_head_record_is_found(audit: AuditLog, real_redis: redis.Redis) -> None:
    fill(audit)
    real_redis.delete(audit.head_key)
    verdict = audit.verify()
    assert (verdict.ok, verdict.bad_seq, verdict.checked) == (False, None, ENTRIES)
    assert (
        verdict.problem
        == f"the head record breakglass:audit:head is missing but the stream holds entries up to {ENTRIES}"
    )


def test_setting_the_head_back_is_found_at_the_first_entry_past_it(audit: AuditLog, real_redis: redis.Redis) -> None:
    written = fill(audit)
    real_redis.hset(audit.head_key, mapping={"seq": 5, "hash": written[4].hash})
    verdict = audit.verify()
    assert (verdict.ok, verdict.bad_seq) == (False, 6)
    assert (
        verdict.problem
        == f"the head record breakglass:audit:head is at entry 5 but the stream holds entries up to {ENTRIES}"
    )


def test_an_altered_entry_is_named_before_a_missing_head(audit: AuditLog, real_redis: redis.Redis) -> None:
    fill(audit)
    entries = stored(real_redis, audit)
    entries[2]["actor"] = "U00000CAROL"  # seq 3
    rewrite_stream(real_redis, audit, entries)
    real_redis.delete(audit.head_key)
    verdict = audit.verify()
    assert (verdict.ok, verdict.bad_seq) == (False, 3)
    assert verdict.problem == "entry 3 was altered or written without this signing key (its hash does not match)"


def test_append_without_a_head_over_a_non_empty_stream_is_refused_and_writes_nothing(
    audit: AuditLog, real_redis: redis.Redis, audit_out: io.StringIO
) -> None:
    fill(audit)
    real_redis.delete(audit.head_key)
    before = stored(real_redis, audit)
    printed = audit_out.getvalue()
    with pytest.raises(AuditLogBroken, match=r"audit head breakglass:audit:head is missing .* entries up to 8"):
        audit.append(Draft(Event.REFUSED, "U0000MALLORY", None))
    assert stored(real_redis, audit) == before
    assert not real_redis.exists(audit.head_key)
    assert audit_out.getvalue() == printed  # nothing published either


def test_append_behind_the_stream_is_refused(audit: AuditLog, real_redis: redis.Redis) -> None:
    written = fill(audit)
    real_redis.hset(audit.head_key, mapping={"seq": 5, "hash": written[4].hash})
    with pytest.raises(AuditLogBroken, match="is at entry 5 but the stream holds entries up to 8"):
        audit.append(Draft(Event.REFUSED, "U0000MALLORY", None))
    assert len(stored(real_redis, audit)) == ENTRIES


def test_a_request_change_is_not_written_when_its_audit_entry_cannot_be(
    store: RequestStore, real_redis: redis.Redis
) -> None:
    """Redis does not roll back EXEC: the refusal must come before MULTI, or the request would land
    while its XADD failed."""
    fill(store.audit)
    real_redis.delete(store.audit.head_key)
    request = access_request()
    with pytest.raises(AuditLogBroken):
        store.create(request, [Draft(Event.REQUESTED, request.requester, request.id)])
    assert store.get(request.id) is None
    assert len(stored(real_redis, store.audit)) == ENTRIES


def test_append_after_the_newest_entries_were_deleted_continues_the_chain_and_verify_names_the_gap(
    audit: AuditLog, real_redis: redis.Redis
) -> None:
    # A head ahead of the stream is not refused: appending cannot make the chain worse, and refusing
    # would stop every expiry and revocation until Redis is repaired.
    fill(audit)
    real_redis.xdel(audit.stream_key, f"{ENTRIES}-0")
    [entry] = audit.append(Draft(Event.REFUSED, "U0000MALLORY", None))
    assert entry.seq == ENTRIES + 1
    verdict = audit.verify()
    assert (verdict.ok, verdict.bad_seq) == (False, ENTRIES)
    assert verdict.problem == f"entry {ENTRIES} is missing (found {ENTRIES + 1} next)"


UNREADABLE = [
    ("not-json", {"entry": "{not json"}, "it is not JSON"),
    ("not-an-object", {"entry": "[1, 2]"}, "it is not a JSON object"),
    ("no-entry-field", {"other": "x"}, "it has no 'entry' field"),
    ("missing-field", None, "field 'actor' is missing"),
    ("wrong-type", None, "field 'seq' has the wrong type"),
    ("bad-instant", None, "field 'at' is not an RFC 3339 instant"),
]


def _unreadable_fields(case: str, fields: dict[str, str] | None, entry: dict[str, Any]) -> dict[str, str]:
    if fields is not None:
        return fields
    broken = dict(entry)
    if case == "missing-field":
        del broken["actor"]
    elif case == "wrong-type":
        broken["seq"] = "five"
    else:
        broken["at"] = "yesterday"
    return {"entry": json.dumps(broken)}


@pytest.mark.parametrize(("case", "fields", "reason"), UNREADABLE, ids=[c[0] for c in UNREADABLE])
def test_an_unreadable_entry_is_named_by_verify(
    audit: AuditLog, real_redis: redis.Redis, case: str, fields: dict[str, str] | None, reason: str
) -> None:
    fill(audit)
    entries = stored(real_redis, audit)
    real_redis.delete(audit.stream_key)
    for entry in entries:
        body = _unreadable_fields(case, fields, entry) if entry["seq"] == 5 else {"entry": json.dumps(entry)}
        real_redis.xadd(audit.stream_key, body, id=f"{entry['seq']}-0")
    verdict = audit.verify()
    assert (verdict.ok, verdict.bad_seq, verdict.checked) == (False, 5, 4)
    assert verdict.problem == f"entry 5 cannot be read ({reason})"


def test_entries_skip_an_unreadable_entry_only_when_told_where_to_report_it(
    audit: AuditLog, real_redis: redis.Redis
) -> None:
    fill(audit)
    entries = stored(real_redis, audit)
    real_redis.delete(audit.stream_key)
    for entry in entries:
        body = {"entry": "{oops"} if entry["seq"] == 3 else {"entry": json.dumps(entry)}
        real_redis.xadd(audit.stream_key, body, id=f"{entry['seq']}-0")
    with pytest.raises(UnreadableEntry, match=r"entry 3 cannot be read \(it is not JSON\)"):
        list(audit.entries())
    skipped: list[UnreadableEntry] = []
    assert [e.seq for e in audit.entries(unreadable=skipped.append)] == [1, 2, 4, 5, 6, 7, 8]
    assert [(u.seq, u.stream_id) for u in skipped] == [(3, "3-0")]


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
    fill(AuditLog(real_redis, clock, out=io.StringIO(), key=CHAIN_KEY))
    other = AuditLog(real_redis, clock, out=io.StringIO(), key=CHAIN_KEY)

    class AppendsDuringRead(redis.Redis):
        appended = False

        def xrange(self, *args: Any, **kwargs: Any) -> Any:
            if not self.appended:  # between the verifier's read of the head and of the stream
                self.appended = True
                other.append(Draft(Event.REFUSED, "U00000CAROL", None))
            return super().xrange(*args, **kwargs)

    pool = real_redis.connection_pool
    verifier = AuditLog(AppendsDuringRead(connection_pool=pool), clock, out=io.StringIO(), key=CHAIN_KEY)
    verdict = verifier.verify()
    assert verdict.ok, verdict.problem
    assert AuditLog(real_redis, clock, out=io.StringIO(), key=CHAIN_KEY).verify().checked == ENTRIES + 1


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
    entry = AuditLog(real_redis, clock, key=CHAIN_KEY).append(Draft(Event.REFUSED, "U0000MALLORY", None))[0]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert json.loads(out[0])["hash"] == entry.hash


def test_entry_at_is_rfc3339_utc(audit: AuditLog, clock: FakeClock) -> None:
    clock.advance(seconds=1.5)
    entry = audit.append(Draft(Event.REFUSED, "U0000MALLORY", None))[0]
    assert entry.at == "2026-11-27T09:00:01.500000Z"
