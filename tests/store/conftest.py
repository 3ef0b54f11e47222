"""Store fixtures: the request store and audit log on real Redis (db 15), or on fakeredis where a
test says so. The structured-log copy of the audit goes to a StringIO the test can read."""

from __future__ import annotations

import io

import pytest
import redis

from bot.store import AuditLog, RequestStore
from tests.conftest import CHAIN_KEY, FakeClock


@pytest.fixture
def audit_out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def audit(real_redis: redis.Redis, clock: FakeClock, audit_out: io.StringIO) -> AuditLog:
    return AuditLog(real_redis, clock, out=audit_out, key=CHAIN_KEY)


@pytest.fixture
def store(real_redis: redis.Redis, audit: AuditLog) -> RequestStore:
    return RequestStore(real_redis, audit)
