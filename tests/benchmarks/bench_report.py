"""How long ``breakglass report`` takes over an audit log of 10,000 entries.

    .venv/bin/python -m tests.benchmarks.bench_report --redis-url redis://127.0.0.1:6379/8 [--entries 10000]

Not collected by pytest. It writes ``--entries`` audit entries (requests with approvals, grants,
recorded actions, endings and reviews, as the services write them) through the product's AuditLog
under a key prefix of its own in the Redis named, runs the real command as a subprocess — the period
report as Markdown and as HTML, and one request's report (which still verifies the whole chain) —
and prints each one's wall time as JSON. The prefix's keys are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from bot.domain.ids import new_request_id
from bot.domain.keys import Purpose, SigningKey
from bot.store import AuditLog, Draft

PREFIX = "bg-bench-report"


def _one_request(rid: str, i: int) -> list[Draft]:
    person = ("U000000ALICE", "U0000000BOB", "U00000CAROL")[i % 3]
    actions = [
        {
            "at": "2026-11-02T09:10:00Z",
            "verb": verb,
            "resource": "pods",
            "namespace": "payments",
            "name": f"p{n}",
            "code": 200,
            "audit_id": f"{rid}-{n}",
        }
        for n, verb in enumerate(("get", "list", "delete", "patch", "create") * 4)
    ]
    return [
        Draft(
            "requested",
            person,
            rid,
            {
                "cluster": "prod",
                "namespace": "payments",
                "role": ("view", "admin")[i % 2],
                "duration": "1h",
                "reason": f"INC-{i} checkout",
                "channel": "C0000INCIDENT",
                "approvals_required": 1,
            },
        ),
        Draft("approved", "U0000000BOB", rid, {"count": 1, "required": 1}),
        Draft(
            "granted",
            "system",
            rid,
            {
                "cluster": "prod",
                "namespace": "payments",
                "binding": rid.lower(),
                "cluster_role": "admin",
                "subject": "alice@example.com",
                "expires_at": "2026-11-02T10:00:00Z",
            },
        ),
        Draft("actions_recorded", "system", rid, {"cluster": "prod", "count": len(actions), "actions": actions}),
        Draft("reminder_sent", "system", rid, {"expires_at": "2026-11-02T10:00:00Z"}),
        Draft("expired", "system", rid, {"expires_at": "2026-11-02T10:00:00Z"}),
        Draft("binding_deleted", "system", rid, {"cluster": "prod", "namespace": "payments", "binding": rid.lower()}),
        Draft("review_written", person, rid, {"review": "Restarted the checkout pods; nothing else."}),
    ]


def fill(client: redis.Redis, entries: int, chain_key: bytes) -> str:
    at = [datetime.now(UTC) - timedelta(days=20)]
    log = AuditLog(client, lambda: at[0], prefix=PREFIX, out=open(os.devnull, "w"), key=chain_key)  # noqa: SIM115
    written, i, last = 0, 0, ""
    while written < entries:
        last = new_request_id()
        drafts = _one_request(last, i)[: entries - written]
        log.append(*drafts)
        written += len(drafts)
        at[0] += timedelta(minutes=3)
        i += 1
    return last


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    env = {
        **os.environ,
        "BREAKGLASS_REDIS_URL": args.redis_url,
        "BREAKGLASS_KEY_PREFIX": PREFIX,
        "BREAKGLASS_SIGNING_KEY": "bench-report-signing-key-not-a-secret",
    }
    try:
        start = time.perf_counter()
        last = fill(client, args.entries, SigningKey(env["BREAKGLASS_SIGNING_KEY"]).derive(Purpose.AUDIT_CHAIN))
        filled = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as scratch:
            page = str(Path(scratch) / "report.html")
            results = {
                "entries": args.entries,
                "fill_seconds": round(filled, 2),
                "period_markdown_seconds": round(timed(["report", "--since", "30d"], env), 2),
                "period_html_seconds": round(timed(["report", "--since", "30d", "--html", page], env), 2),
                "one_request_seconds": round(timed(["report", last], env), 2),
                "verify_only_seconds": round(timed(["audit", "verify"], env), 2),
            }
    finally:
        keys = list(client.scan_iter(f"{PREFIX}:*"))
        for chunk in range(0, len(keys), 500):
            client.delete(*keys[chunk : chunk + 500])
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
