"""The stand-ins' private ``redis-server``: one that does not answer in time leaves nothing behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import redis

import bot.standins.stack as stack_module
from bot.standins.stack import EmbeddedRedis, free_port

pytestmark = pytest.mark.slow  # real redis-server processes


def test_a_redis_server_that_never_answers_is_stopped_and_its_directory_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = free_port()
    monkeypatch.setattr(stack_module, "free_port", lambda: port)
    monkeypatch.setattr(stack_module, "_redis_answers", lambda url: False)  # as if it hung at start
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    with pytest.raises(TimeoutError, match="the embedded redis-server"):
        EmbeddedRedis(start_timeout=0.5)

    assert list(tmp_path.glob("breakglass-redis-*")) == []
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=0.5).ping()


def test_a_redis_server_that_answers_is_usable_and_stop_removes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = EmbeddedRedis()
    try:
        assert redis.Redis.from_url(server.url).ping()
        assert len(list(tmp_path.glob("breakglass-redis-*"))) == 1
    finally:
        server.stop()
    assert list(tmp_path.glob("breakglass-redis-*")) == []
