"""Shared fixtures. Real Redis lives at BREAKGLASS_TEST_REDIS_URL (default: database 15 on the local
server, which .ci/run starts when nothing answers); each test gets it empty."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ROSTER = ROOT / "deploy" / "roster.example.yaml"
TEST_REDIS_URL = os.environ.get("BREAKGLASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class FakeClock:
    """An injected clock: tests move time, nothing sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> datetime:
        self.at += timedelta(**kwargs)
        return self.at


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # fail, never skip: CI must start Redis
        pytest.fail(f"no Redis at {redis_url} ({exc}); start redis-server or set BREAKGLASS_TEST_REDIS_URL")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def fake_redis() -> redis.Redis:
    return fakeredis.FakeRedis(decode_responses=True)
