"""The audit sink through the real processes: a ``breakglass worker`` copies what a grant's life writes
to S3 (moto's server mode, started here), and after a FLUSHDB ``breakglass audit verify --sink`` proves
it all; a sink that hangs never holds up a revoke; a sink that is down is reported by ``/readyz`` and
``/metrics``, and gets every entry once it is back."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import redis
from moto.server import ThreadedMotoServer

from bot.domain.lifecycle import State
from bot.integrations.s3_audit_sink import S3AuditSink
from bot.settings import load_settings
from bot.standins.stack import LocalStack, free_port, local_stack, wait_until
from bot.store.audit_sink import SinkProgressStore
from bot.wiring import Core, build_core
from tests.audit_sink.conftest import AWS_ENV
from tests.e2e.conftest import E2E_ROSTER, grant_now
from tests.ops.conftest import get

pytestmark = pytest.mark.slow

PREFIX = "breakglass/live"


def sink_env(bucket: str, endpoint: str) -> dict[str, str]:
    return {
        **AWS_ENV,
        "BREAKGLASS_AUDIT_SINK": f"s3://{bucket}/{PREFIX}",
        "BREAKGLASS_S3_ENDPOINT_URL": endpoint,
        "BREAKGLASS_AUDIT_SINK_RETENTION": "2d",
    }


def a_stack(redis_url: str, env: dict[str, str]) -> Any:
    return local_stack(redis_url=redis_url, roster=E2E_ROSTER, sweep_interval="2s", extra_env=env)


def core_of(stack: LocalStack) -> Core:
    return build_core(load_settings(stack.env()))


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=stack.env(), capture_output=True, text=True, timeout=120
    )


def ended(core: Core, request_id: str) -> bool:
    request = core.store.get(request_id)
    return request is not None and request.state in (State.EXPIRED, State.REVOKED)


def test_what_a_grant_writes_reaches_the_sink_and_proves_its_history_after_flushdb(
    real_redis: redis.Redis, redis_url: str, moto_url: str, bucket: str
) -> None:
    with a_stack(redis_url, sink_env(bucket, moto_url)) as stack:
        stack.start_worker()
        core = core_of(stack)
        request = grant_now(core, 5)
        wait_until(lambda: ended(core, request.id), 90, "the grant to expire and be revoked")
        sink = S3AuditSink(bucket, PREFIX, moto_url)

        def copied() -> bool:
            head = sink.read_head()
            return head is not None and (head.seq, head.hash) == core.audit.head()

        wait_until(copied, 90, "the worker to copy every entry to the sink")
        entries = core.audit.head()[0]
        assert entries >= 4  # requested, approved, granted, expired (and what else the grant wrote)
        for process in stack.processes:
            process.stop()

        real_redis.flushdb()
        checked = cli(stack, "audit", "verify", "--sink")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"audit log intact in the sink (s3://{bucket}/{PREFIX} at {moto_url}): {entries} entries verified" in (
            checked.stdout
        )
        against = cli(stack, "audit", "verify")
        assert against.returncode == 1, against.stdout + against.stderr
        assert f"Redis holds no audit log but the sink holds entries up to {entries}" in against.stdout


class HangingServer:
    """Accepts connections and never answers: a store that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(connection)
            self.accepted.set()

    def close(self) -> None:
        for connection in self.held:
            connection.close()
        self.sock.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def test_a_hanging_sink_never_holds_up_a_revoke(
    real_redis: redis.Redis, redis_url: str, hanging: HangingServer
) -> None:
    with a_stack(redis_url, sink_env("audit-hangs", hanging.url)) as stack:
        stack.start_worker()
        core = core_of(stack)
        assert hanging.accepted.wait(60), "the worker never tried the sink"
        request = grant_now(core, 5)
        wait_until(lambda: ended(core, request.id), 90, "the grant to expire and be revoked")
        wait_until(lambda: not stack.bindings("prod"), 30, "the binding to be deleted")
        # The revoke is done while the sink's first request is still unanswered: it never waited on it.
        progress = SinkProgressStore(real_redis).read()
        assert progress is None or progress.copied_at is None


def test_a_sink_that_is_down_is_reported_and_gets_every_entry_once_it_is_back(
    real_redis: redis.Redis, redis_url: str
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with a_stack(redis_url, sink_env("audit-comes-back", endpoint)) as stack:
        web = stack.start_web()
        stack.start_worker()
        core = core_of(stack)
        request = grant_now(core, 600)
        wait_until(lambda: (core.store.get(request.id) or request).state is State.ACTIVE, 60, "the grant")

        def failing() -> bool:
            progress = SinkProgressStore(real_redis).read()
            return progress is not None and progress.failing

        wait_until(failing, 60, "the worker to report the sink failing")
        status, body = get(f"{stack.web_url(web)}/readyz")
        assert status == 200  # the web process serves on; the sink's state is detail
        assert '"audit_sink": {"state": "failing"' in body
        status, metrics = get(f"{stack.web_url(web)}/metrics")
        assert 'breakglass_audit_sink_failures_total{kind="unavailable"}' in metrics
        assert "breakglass_audit_sink_failing 1.0" in metrics

        server = ThreadedMotoServer("127.0.0.1", port, verbose=False)  # the store comes back
        server.start()
        try:
            boto3.client("s3", endpoint_url=endpoint, **_credentials()).create_bucket(
                Bucket="audit-comes-back", ObjectLockEnabledForBucket=True
            )
            sink = S3AuditSink("audit-comes-back", PREFIX, endpoint)

            def caught_up() -> bool:
                head = sink.read_head()
                return head is not None and (head.seq, head.hash) == core.audit.head()

            wait_until(caught_up, 120, "the worker to copy everything written while the sink was down")
            wait_until(lambda: not failing(), 30, "the failure to clear")
            assert '"state": "ok"' in get(f"{stack.web_url(web)}/readyz")[1]
            checked = cli(stack, "audit", "verify")
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert "agrees up to entry" in checked.stdout
        finally:
            server.stop()


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }
