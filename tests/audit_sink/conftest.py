"""The S3 audit sink's fixtures: moto's server mode (a real S3 HTTP API, Object Lock included),
started by the tests on a free loopback port, and a bucket with Object Lock per test."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import redis
from moto.server import ThreadedMotoServer

from bot.integrations.s3_audit_sink import S3AuditSink
from bot.services.audit_sink import AuditShipper
from bot.store import AuditLog
from tests.conftest import CHAIN_KEY, FakeClock

RETENTION = timedelta(days=30)
# moto accepts any credentials; boto3 needs some to sign with. Never real ones.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS_ENV.items():
            patch.setenv(name, value)
        server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3(moto_url: str) -> object:
    return boto3.client("s3", endpoint_url=moto_url)


@pytest.fixture
def bucket(s3: object) -> str:
    name = f"audit-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)  # type: ignore[attr-defined]
    return name


@pytest.fixture
def sink(bucket: str, moto_url: str) -> S3AuditSink:
    return S3AuditSink(bucket, "breakglass/prod", moto_url)


@pytest.fixture
def clock() -> FakeClock:
    # Object Lock refuses a retain-until date in the past: the sink's clock starts at the real now.
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def audit(real_redis: redis.Redis, clock: FakeClock) -> AuditLog:
    return AuditLog(real_redis, clock, out=io.StringIO(), key=CHAIN_KEY)


@pytest.fixture
def shipper(audit: AuditLog, sink: S3AuditSink, clock: FakeClock) -> AuditShipper:
    return AuditShipper(audit, sink, CHAIN_KEY, clock, RETENTION, batch_entries=100)
