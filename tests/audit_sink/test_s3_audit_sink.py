"""The audit log's durable copy on S3 (moto's server mode over HTTP): every entry copied in order and
in batches, each object locked in compliance mode; a sink that is down loses nothing; after a FLUSHDB
the copy alone proves the history; a truncated Redis, an altered object and a deleted one are named."""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from bot.cli import EXIT_PROBLEM, main
from bot.doctor import Checklist, _check_audit_sink
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.integrations.s3_audit_sink import S3AuditSink
from bot.metrics import Metrics
from bot.ports import SinkUnavailable
from bot.services.audit_sink import AuditShipper, RedisLogProblem, verify_sink
from bot.settings import Process, load_settings
from bot.store import AuditLog, Draft
from bot.store.audit_sink import SinkProgressStore
from tests.audit_sink.conftest import RETENTION
from tests.conftest import CHAIN_KEY, TEST_SIGNING_KEY, FakeClock
from workers.audit_sink import SinkClock

PREFIX = "breakglass/prod"


def append(audit: AuditLog, count: int, event: Event = Event.REQUESTED) -> None:
    audit.append(*(Draft(event, SYSTEM_ACTOR, f"BG-{i:06d}", {"n": i}) for i in range(count)))


def objects(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def batches(s3: Any, bucket: str) -> list[str]:
    return [key.rsplit("/", 1)[1] for key in objects(s3, bucket) if key.endswith(".jsonl")]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, redis_url: str, bucket: str, moto_url: str) -> None:
    for name in list(os.environ):
        if name.startswith("BREAKGLASS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BREAKGLASS_REDIS_URL", redis_url)
    monkeypatch.setenv("BREAKGLASS_SIGNING_KEY", TEST_SIGNING_KEY)
    monkeypatch.setenv("BREAKGLASS_AUDIT_SINK", f"s3://{bucket}/{PREFIX}")
    monkeypatch.setenv("BREAKGLASS_S3_ENDPOINT_URL", moto_url)


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["audit", "verify", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_every_entry_is_copied_in_order_in_batches_each_locked_in_compliance_mode(
    audit: AuditLog, shipper: AuditShipper, s3: Any, bucket: str, clock: FakeClock
) -> None:
    append(audit, 250)
    report = shipper.ship()
    assert (report.copied, report.behind) == (250, 0)
    assert batches(s3, bucket) == [
        "000000000001-000000000100.jsonl",
        "000000000101-000000000200.jsonl",
        "000000000201-000000000250.jsonl",
    ]
    copied = [
        line
        for key in objects(s3, bucket)
        if key.endswith(".jsonl")
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    ]
    assert copied == [entry.to_json() for entry in audit.entries()]

    retain_until = (clock() + RETENTION).replace(microsecond=0)
    for key in objects(s3, bucket):  # the batches and the head record alike
        answer = s3.head_object(Bucket=bucket, Key=key)
        assert answer["ObjectLockMode"] == "COMPLIANCE"
        assert answer["ObjectLockRetainUntilDate"].replace(microsecond=0) == retain_until
    first = objects(s3, bucket)[0]
    with pytest.raises(ClientError, match="AccessDenied"):  # compliance mode: nobody may delete it
        s3.delete_object(Bucket=bucket, Key=first, VersionId=s3.head_object(Bucket=bucket, Key=first)["VersionId"])

    head = json.loads(s3.get_object(Bucket=bucket, Key=f"{PREFIX}/head.json")["Body"].read())
    assert (head["seq"], head["hash"]) == audit.head()

    append(audit, 5)
    assert shipper.ship().copied == 5
    assert batches(s3, bucket)[-1] == "000000000251-000000000255.jsonl"
    assert shipper.ship().copied == 0  # nothing new: nothing written


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def restartable_s3() -> Iterator[tuple[ThreadedMotoServer, str]]:
    """A moto server of this test's own on a fixed port, to stop (the sink is down) and start again."""
    server = ThreadedMotoServer("127.0.0.1", _free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield server, f"http://{host}:{port}"
    finally:
        server.stop()


def test_a_sink_that_is_down_loses_nothing_and_gets_every_entry_once_it_is_back(
    audit: AuditLog,
    real_redis: redis.Redis,
    clock: FakeClock,
    restartable_s3: tuple[ThreadedMotoServer, str],
    bucket: str,
) -> None:
    server, url = restartable_s3
    sink = S3AuditSink(bucket, PREFIX, url, connect_timeout=1, read_timeout=2)
    shipper = AuditShipper(audit, sink, CHAIN_KEY, clock, RETENTION, batch_entries=100)
    progress = SinkProgressStore(real_redis)
    metrics = Metrics(real_redis)
    loop = SinkClock(shipper, progress, metrics, real_redis, "breakglass")
    append(audit, 30)
    assert loop.tick() == loop.every
    assert (progress.read() or pytest.fail("no progress")).seq == 30

    server.stop()  # the store goes away; the bot goes on writing
    append(audit, 120)
    with pytest.raises(SinkUnavailable, match="cannot reach the store"):
        shipper.ship()
    assert loop.tick() > 0  # a failed round: retried after a pause
    assert loop.tick() > loop.every  # ... growing while it keeps failing
    state = progress.read()
    assert state is not None
    assert (state.failing, state.behind) == (True, 120)
    assert "cannot reach the store" in state.error
    exposition = metrics.exposition()[0].decode()
    assert 'breakglass_audit_sink_failures_total{kind="unavailable"} 2.0' in exposition
    assert "breakglass_audit_sink_failing 1.0" in exposition
    assert "breakglass_audit_sink_behind_entries 120.0" in exposition

    server.start()  # back, same address
    assert loop.tick() == loop.every
    state = progress.read()
    assert state is not None
    assert (state.failing, state.seq, state.behind) == (False, 150, 0)
    assert "breakglass_audit_sink_copied_entries_total 150.0" in metrics.exposition()[0].decode()
    verdict = verify_sink(sink, CHAIN_KEY)
    assert (verdict.ok, verdict.checked) == (True, 150)


@pytest.mark.usefixtures("cli_env")
def test_after_flushdb_the_sink_alone_proves_the_whole_history(
    audit: AuditLog,
    shipper: AuditShipper,
    real_redis: redis.Redis,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    append(audit, 120)
    shipper.ship()
    assert verify(capsys) == (
        0,
        f"audit log intact: 120 entries verified; the sink ({shipper.sink.describe()}) agrees up to entry 120\n",
    )

    real_redis.flushdb()
    code, out = verify(capsys, "--sink")
    assert code == 0
    assert "120 entries verified" in out
    code, out = verify(capsys)  # Redis against the sink: the loss is named
    assert code == EXIT_PROBLEM
    assert "Redis holds no audit log but the sink holds entries up to 120" in out
    with pytest.raises(RedisLogProblem):
        shipper.ship()  # nor does the shipper write anything over it

    # The bot goes on: Redis begins a new chain; the sink keeps both, the second following the first.
    clock.advance(minutes=5)
    append(audit, 3, Event.GRANTED)
    assert shipper.ship().copied == 3
    code, out = verify(capsys, "--sink")
    assert code == 0
    assert "123 entries verified in 2 chains" in out
    assert "the log began again" in out
    assert "after entry 120 of" in out
    code, out = verify(capsys)
    assert code == 0
    assert "agrees up to entry 3" in out


@pytest.mark.usefixtures("cli_env")
def test_a_redis_log_truncated_behind_the_sink_is_detected(
    audit: AuditLog, shipper: AuditShipper, real_redis: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    append(audit, 20)
    shipper.ship()
    # Someone with Redis access removes the last five entries and sets the head back: Redis's own
    # chain still verifies, so only the sink can tell.
    for seq in range(16, 21):
        real_redis.xdel(audit.stream_key, f"{seq}-0")
    entry_15 = audit.entry(15)
    assert entry_15 is not None
    real_redis.hset(audit.head_key, mapping={"seq": 15, "hash": entry_15.hash})
    assert audit.verify().ok

    code, out = verify(capsys)
    assert code == EXIT_PROBLEM
    assert "Redis's audit log ends at entry 15 but the sink holds entries up to 20" in out
    shipper.forget()
    with pytest.raises(RedisLogProblem, match="ends at entry 15"):
        shipper.ship()


def _rewrite(s3: Any, bucket: str, key: str, change: Any) -> None:
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    entries = [json.loads(line) for line in lines]
    change(entries)
    body = "".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in entries).encode()
    # A new version over the locked one (Object Lock allows that; it cannot remove the old one).
    s3.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.mark.usefixtures("cli_env")
def test_an_altered_object_in_the_sink_is_named(
    audit: AuditLog, shipper: AuditShipper, s3: Any, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(audit, 250)
    shipper.ship()
    middle = next(key for key in objects(s3, bucket) if key.endswith("000000000101-000000000200.jsonl"))

    def reword(entries: list[dict[str, Any]]) -> None:
        entries[49]["actor"] = "U00000CAROL"  # entry 150

    _rewrite(s3, bucket, middle, reword)
    code, out = verify(capsys, "--sink")
    assert code == EXIT_PROBLEM
    assert "entry 150 was altered or written without this signing key" in out


@pytest.mark.usefixtures("cli_env")
def test_a_deleted_object_in_the_sink_is_named(
    audit: AuditLog, shipper: AuditShipper, s3: Any, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(audit, 250)
    shipper.ship()
    keys = [key for key in objects(s3, bucket) if key.endswith(".jsonl")]
    marker = s3.delete_object(Bucket=bucket, Key=keys[1])  # a delete marker: the locked version stays, hidden
    code, out = verify(capsys, "--sink")
    assert code == EXIT_PROBLEM
    assert "entries 101–200 are missing" in out

    s3.delete_object(Bucket=bucket, Key=keys[1], VersionId=marker["VersionId"])  # the marker removed: back
    assert verify(capsys, "--sink")[0] == 0

    s3.delete_object(Bucket=bucket, Key=keys[2])  # the newest object hidden: only the head record tells
    code, out = verify(capsys, "--sink")
    assert code == EXIT_PROBLEM
    assert "the head record names entry 250" in out
    assert "the sink's objects end at entry 200" in out


def test_an_entry_altered_in_redis_is_not_copied(
    audit: AuditLog, shipper: AuditShipper, real_redis: redis.Redis, s3: Any, bucket: str
) -> None:
    append(audit, 10)
    shipper.ship()
    append(audit, 5)
    # Someone with Redis access rewrites entry 12 (without the key its hash is stale): the stream is
    # written again with it in place.
    rows = [entry.to_dict() for entry in audit.entries()]
    rows[11]["actor"] = "U00000CAROL"
    real_redis.delete(audit.stream_key)
    for row in rows:
        real_redis.xadd(audit.stream_key, {"entry": json.dumps(row)}, id=f"{row['seq']}-0")
    with pytest.raises(RedisLogProblem, match="entry 12 does not verify"):
        shipper.ship()
    assert batches(s3, bucket) == ["000000000001-000000000010.jsonl"]


def test_overlapping_objects_from_two_copiers_still_verify(
    audit: AuditLog, sink: S3AuditSink, clock: FakeClock
) -> None:
    """A copier that stalled past its lock's lease may write a range another already wrote."""
    append(audit, 30)
    AuditShipper(audit, sink, CHAIN_KEY, clock, RETENTION, batch_entries=20).ship()
    late = AuditShipper(audit, sink, CHAIN_KEY, clock, RETENTION, batch_entries=30)
    late._head, late._known = None, True  # it read the head before the first copier wrote
    late.ship()
    verdict = verify_sink(sink, CHAIN_KEY)
    assert (verdict.ok, verdict.checked) == (True, 30), verdict.problem


def test_retention_is_a_setting_in_days_or_years() -> None:
    from bot.settings import SettingsError, load_audit_settings

    assert load_audit_settings({"BREAKGLASS_AUDIT_SINK_RETENTION": "7y"}).audit_sink_retention == timedelta(days=2555)
    assert load_audit_settings({}).audit_sink_retention == timedelta(days=365)
    with pytest.raises(SettingsError, match="BREAKGLASS_AUDIT_SINK_RETENTION: must be a number of days or years"):
        load_audit_settings({"BREAKGLASS_AUDIT_SINK_RETENTION": "1h"})
    with pytest.raises(SettingsError, match="BREAKGLASS_AUDIT_SINK: must be s3://bucket or s3://bucket/prefix"):
        load_audit_settings({"BREAKGLASS_AUDIT_SINK": "https://bucket.s3.amazonaws.com/x"})


def _doctor(settings_env: dict[str, str], process: Process = "worker") -> str:
    out = io.StringIO()
    _check_audit_sink(Checklist(out), load_settings(settings_env, "worker"), process)
    return out.getvalue()


@pytest.fixture
def worker_env(redis_url: str, bucket: str, moto_url: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY,
        "BREAKGLASS_REDIS_URL": redis_url,
        "BREAKGLASS_AUDIT_SINK": f"s3://{bucket}/{PREFIX}",
        "BREAKGLASS_S3_ENDPOINT_URL": moto_url,
    }


def test_doctor_checks_the_buckets_lock_and_reports_how_copying_goes(
    worker_env: dict[str, str], audit: AuditLog, shipper: AuditShipper, real_redis: redis.Redis, clock: FakeClock
) -> None:
    out = _doctor(worker_env)
    assert "✓ the bucket has Object Lock; each object is locked in compliance mode" in out
    assert "for 365 days" in out
    assert "! no worker has copied the audit log to the sink yet" in out

    append(audit, 7)
    SinkProgressStore(real_redis).copied(shipper.ship().head, 0, clock())
    assert "✓ the sink holds entries up to 7" in _doctor(worker_env)

    SinkProgressStore(real_redis).failed("audit sink s3://b: cannot reach the store (ConnectTimeoutError)", 3, clock())
    out = _doctor(worker_env)
    assert "✗ copying to the sink has failed since" in out
    assert "cannot reach the store (ConnectTimeoutError); 3 entries wait in Redis" in out
    assert "the bucket is checked where the worker runs" in _doctor(worker_env, "web")


def test_doctor_fails_a_bucket_without_object_lock(worker_env: dict[str, str], s3: Any) -> None:
    s3.create_bucket(Bucket="no-lock-here")
    out = _doctor({**worker_env, "BREAKGLASS_AUDIT_SINK": "s3://no-lock-here/x"})
    assert "✗ audit sink s3://no-lock-here/x" in out
    assert "ObjectLockConfigurationNotFoundError" in out
