"""The test Redis under pytest-xdist: each worker takes its own database on the server the tests were
given, counting down from the URL's, so parallel workers never flush each other's keys."""

from __future__ import annotations

import pytest

from tests.conftest import for_this_worker


def test_a_serial_run_uses_the_url_as_given() -> None:
    assert for_this_worker("redis://127.0.0.1:6381/15", None) == "redis://127.0.0.1:6381/15"


def test_each_worker_counts_down_from_the_urls_database_keeping_host_port_and_password() -> None:
    url = "redis://:pw@127.0.0.1:6381/15"
    databases = [for_this_worker(url, f"gw{n}") for n in range(4)]
    assert databases == [f"redis://:pw@127.0.0.1:6381/{db}" for db in (15, 14, 13, 12)]


def test_a_worker_that_would_need_a_database_below_zero_fails_saying_why() -> None:
    assert for_this_worker("redis://127.0.0.1:6381/1", "gw1") == "redis://127.0.0.1:6381/0"
    with pytest.raises(pytest.fail.Exception, match=r"gw2 would need Redis database -1.*-n 2"):
        for_this_worker("redis://127.0.0.1:6381/1", "gw2")
    with pytest.raises(pytest.fail.Exception, match=r"gw1 would need Redis database -1"):
        for_this_worker("redis://127.0.0.1:6381", "gw1")  # no database named: 0
