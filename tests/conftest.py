"""Shared fixtures. Real Redis lives at BREAKGLASS_TEST_REDIS_URL (default: database 15 on the local
server). When nothing answers there and no URL was given, the session starts its own
``redis-server`` on a free port, so the README's test command works on a fresh machine; each test
gets the database empty. Under pytest-xdist (``-n auto``) each worker takes its own database on that
server, counting down from the URL's (gw0 the URL's own, gw1 one below, …), so parallel workers never
flush or read each other's keys."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import fakeredis
import pytest
import redis

from bot.domain.keys import Purpose, SigningKey

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ROSTER = ROOT / "deploy" / "roster.example.yaml"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
# The tests' BREAKGLASS_SIGNING_KEY, and the audit chain key derived from it.
TEST_SIGNING_KEY = "test-signing-key-not-secret-0123456789"
CHAIN_KEY = SigningKey(TEST_SIGNING_KEY).derive(Purpose.AUDIT_CHAIN)
WARRANT_KEY = SigningKey(TEST_SIGNING_KEY).derive(Purpose.WARRANT)


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


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def for_this_worker(url: str, worker: str | None) -> str:
    """``url`` with the database of the xdist ``worker`` (``gwN``): the URL's own minus N, so workers
    sharing one server never share a database. Without a worker (a serial run) ``url`` as it is."""
    if not worker:
        return url
    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or 0)
    number = int(worker.removeprefix("gw"))
    if base - number < 0:
        pytest.fail(
            f"xdist worker {worker} would need Redis database {base - number}: the test URL's database {base} "
            f"leaves room for {base + 1} workers; run fewer (-n {base + 1}) or name a higher database"
        )
    return urlunsplit(parts._replace(path=f"/{base - number}"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    given = os.environ.get("BREAKGLASS_TEST_REDIS_URL")
    if given or _answers(DEFAULT_TEST_REDIS_URL):
        yield for_this_worker(given or DEFAULT_TEST_REDIS_URL, worker)
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "no Redis answers on 127.0.0.1:6379 and redis-server is not installed (apt-get install redis-server)"
        )
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="breakglass-test-redis-")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/15"
    deadline = time.monotonic() + 10
    while not _answers(url):
        if time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    try:
        yield for_this_worker(url, worker)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


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
