"""How fast the audit sink copies the audit log to S3, and how long ``audit verify --sink`` takes.

    .venv/bin/python -m tests.benchmarks.bench_audit_sink --redis-url redis://127.0.0.1:6379/8 [--entries 10000]

Not collected by pytest. It starts moto's S3 server as a process of its own (``moto_server``, a real S3
HTTP API with Object Lock) and a bucket with Object Lock, writes ``--entries`` audit entries (the
report benchmark's mix: requests, approvals, grants, recorded actions, endings, reviews) through the
product's AuditLog under a key prefix of its own, then copies them with the product's shipper and S3
adapter as a worker does: the backlog at once (batches of 1,000, each locked in compliance mode, and
the head record after each), then one entry per round, as in steady use. It prints entries per second,
the steady round's latency, and the wall time of ``breakglass audit verify --sink`` over the copy.
moto keeps objects in memory and answers from one Python process: a real store's numbers differ
(network round trips, but no GIL-bound server), so read them as the shipper's own cost plus a local store.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from statistics import median

import boto3
import redis

from bot.domain.audit import SYSTEM_ACTOR
from bot.domain.keys import Purpose, SigningKey
from bot.integrations.s3_audit_sink import S3AuditSink
from bot.services.audit_sink import AuditShipper
from bot.store import AuditLog, Draft
from bot.wiring import utcnow
from tests.benchmarks.bench_report import PREFIX, fill

SIGNING_KEY = "bench-sink-signing-key-not-a-secret"
BUCKET = "bench-audit-sink"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("moto_server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--steady-rounds", type=int, default=50)
    args = parser.parse_args()
    os.environ.update(AWS)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    key = SigningKey(SIGNING_KEY).derive(Purpose.AUDIT_CHAIN)
    try:
        _wait_for(port)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        fill(client, args.entries, key)
        log = AuditLog(client, utcnow, prefix=PREFIX, out=open(os.devnull, "w"), key=key)  # noqa: SIM115
        sink = S3AuditSink(BUCKET, "bench", endpoint)
        shipper = AuditShipper(log, sink, key, utcnow, timedelta(days=1))
        start = time.perf_counter()
        copied = 0
        while True:
            report = shipper.ship()
            copied += report.copied
            if not report.behind:
                break
        backlog = time.perf_counter() - start
        rounds = []
        for i in range(args.steady_rounds):
            log.append(Draft("reminder_sent", SYSTEM_ACTOR, f"BG-STEADY{i}", {"n": i}))
            began = time.perf_counter()
            copied += shipper.ship().copied
            rounds.append(time.perf_counter() - began)
        env = {
            **os.environ,
            "BREAKGLASS_SIGNING_KEY": SIGNING_KEY,
            "BREAKGLASS_AUDIT_SINK": f"s3://{BUCKET}/bench",
            "BREAKGLASS_S3_ENDPOINT_URL": endpoint,
        }
        began = time.perf_counter()
        verified = subprocess.run(
            [sys.executable, "-m", "bot.cli", "audit", "verify", "--sink"], env=env, capture_output=True, text=True
        )
        verify_seconds = time.perf_counter() - began
        if verified.returncode != 0:
            raise SystemExit(f"audit verify --sink failed: {verified.stdout}{verified.stderr}")
        results = {
            "entries": args.entries,
            "backlog_seconds": round(backlog, 2),
            "backlog_entries_per_second": round(args.entries / backlog),
            "steady_round_median_ms": round(median(rounds) * 1000, 1),
            "steady_round_max_ms": round(max(rounds) * 1000, 1),
            "copied": copied,
            "verify_sink_seconds": round(verify_seconds, 2),
            "verify_sink_says": verified.stdout.strip(),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
        keys = list(client.scan_iter(f"{PREFIX}:*"))
        for chunk in range(0, len(keys), 500):
            client.delete(*keys[chunk : chunk + 500])
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
