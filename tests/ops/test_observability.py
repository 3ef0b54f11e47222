"""What an operator watches, after a real request went through the stack's web and worker processes:
``/metrics`` (histograms, counters by outcome, the active-grants gauge), ``/readyz`` (503 when Redis
is gone) and the process logs (JSON lines carrying the request id, never a token)."""

from __future__ import annotations

import re

import pytest

from bot.domain.grants import REQUEST_ID_LABEL
from bot.standins.slack_api import DEFAULT_BOT_TOKEN
from bot.standins.stack import (
    ADMIN_TOKEN,
    ALICE,
    AUDIT_WEBHOOK_TOKEN,
    INCIDENT_CHANNEL,
    SIGNING_SECRET,
    EmbeddedRedis,
    local_stack,
    wait_until,
)
from tests.ops.conftest import get, json_lines

pytestmark = pytest.mark.slow  # a private redis-server and a real `breakglass web` (gunicorn)

HISTOGRAMS = (
    "breakglass_approval_latency_seconds",
    "breakglass_grant_latency_seconds",
    "breakglass_revoke_lateness_seconds",
)


def _scrape(base: str) -> dict[str, float]:
    status, body = get(f"{base}/metrics")
    assert status == 200
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_metrics_readiness_and_logs_after_a_break_glass_grant_runs_out() -> None:
    redis_server = EmbeddedRedis()  # ours, so the test can stop it
    try:
        with local_stack(redis_url=redis_server.url) as stack:
            web = stack.start_web()
            stack.start_worker()
            stack.wait_for_workers(1)
            base = stack.web_url(web)
            assert get(f"{base}/readyz")[0] == 200
            # One failed post on the way, so the logs also hold an error path (a retried job).
            stack.slack.fail("chat.postMessage", "internal_error")

            reply = stack.sender(web).slash_command(
                ALICE, "prod/payments emergency 5s INC-4411 restart the consumer", channel_id=INCIDENT_CHANNEL
            )
            assert reply.status == 200
            binding = wait_until(lambda: stack.bindings("prod"), 60, "the binding")[0]
            request_id = binding["metadata"]["labels"][REQUEST_ID_LABEL]
            # The binding lands first, then the request is marked active: the gauge follows within moments.
            wait_until(lambda: _scrape(base)["breakglass_active_grants"] == 1, 60, "one active grant in /metrics")

            # The grant runs out by itself; the counters and histograms follow.
            def ended() -> bool:
                counted = _scrape(base)
                return (
                    not stack.bindings("prod")
                    and counted.get('breakglass_requests_total{outcome="expired"}', 0) > 0
                    and counted.get("breakglass_revoke_lateness_seconds_count", 0) > 0
                )

            wait_until(ended, 60, "the grant to expire and its binding to be deleted")
            metrics = _scrape(base)
            assert metrics["breakglass_active_grants"] == 0
            for outcome in ("requested", "granted", "expired"):
                assert metrics[f'breakglass_requests_total{{outcome="{outcome}"}}'] == 1, outcome
            for histogram in HISTOGRAMS:
                assert metrics[f"{histogram}_count"] >= 1, histogram
                assert metrics[f'{histogram}_bucket{{le="+Inf"}}'] == metrics[f"{histogram}_count"]
            assert metrics["breakglass_grant_latency_seconds_sum"] > 0

            # Every line of both processes is one JSON object; the grant's lines carry its id.
            wait_until(lambda: stack.slack.thread(INCIDENT_CHANNEL, stack.slack.messages(INCIDENT_CHANNEL)[0].ts)
                       if stack.slack.messages(INCIDENT_CHANNEL) else None, 20, "the thread")  # fmt: skip
            lines = [line for process in stack.processes for line in json_lines(process.output())]
            mentioning = [line for line in lines if request_id in str(line.get("message", ""))]
            assert mentioning, "no log line names the request"
            assert all(line.get("request_id") == request_id for line in mentioning), mentioning
            audit = [line for line in lines if line.get("log") == "audit"]
            assert {line["event"] for line in audit} >= {"requested", "granted", "expired"}
            assert all(line["request_id"] == request_id for line in audit)
            assert any(line.get("level") == "error" for line in lines), "the failed post was not logged"

            # Redis gone: not ready.
            redis_server.stop()
            wait_until(lambda: get(f"{base}/readyz")[0] == 503, 60, "/readyz to answer 503")
            status, body = get(f"{base}/readyz")
            assert status == 503
            assert "redis" in body
            # /metrics says why in one plain-text line instead of failing with a 500.
            status, body = get(f"{base}/metrics")
            assert status == 503
            assert body.startswith("metrics unavailable: redis: ")
            assert body.count("\n") == 1

            logs = "\n".join(process.output() for process in stack.processes)
            secrets = [DEFAULT_BOT_TOKEN, SIGNING_SECRET, ADMIN_TOKEN, AUDIT_WEBHOOK_TOKEN]
            secrets += [server.admin_token for server in stack.clusters.values()]
            for secret in secrets:
                assert secret not in logs
            assert not re.search(r"xox[bp]-", logs)
    finally:
        redis_server.stop()
