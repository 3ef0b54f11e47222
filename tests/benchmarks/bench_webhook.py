"""How many Kubernetes audit events per second the real web process records.

    .venv/bin/python -m tests.benchmarks.bench_webhook --redis-url redis://127.0.0.1:6379/8 \
        [--events 20000] [--batch 200] [--clients 4]

Not collected by pytest. It starts the local stand-ins and a real ``breakglass web`` (gunicorn) under
a key prefix of its own in the Redis named, makes active grants (one per ``MAX_ACTIONS_PER_GRANT`` events, so none drops any), then posts ``--events`` audit
events in EventLists of ``--batch`` from ``--clients`` concurrent clients (as an API server's webhook
backend does), every one matching a grant, half of them changes. It prints the events per second
the web process answered for, checks that every event was recorded exactly once (posting the first
batch again to show a retry adds nothing), and deletes the prefix's keys.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.audit import Event
from bot.domain.grants import format_instant
from bot.domain.ids import RequestId, SlackUserId, new_request_id
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.webhook import cluster_webhook_token
from bot.standins.stack import ALICE, AUDIT_WEBHOOK_TOKEN, INCIDENT_CHANNEL, local_stack
from bot.store import AuditLog, Draft, RequestStore
from bot.store.kube_actions import MAX_ACTIONS_PER_GRANT

PREFIX = "bg-bench-webhook"


def _grant(store: RequestStore, namespace: str) -> RequestId:
    now = datetime.now(UTC)
    request = AccessRequest(
        id=new_request_id(),
        requester=SlackUserId(ALICE),
        cluster="prod",
        namespace=namespace,
        role="view",
        duration=timedelta(hours=1),
        reason="webhook throughput",
        channel=INCIDENT_CHANNEL,
        state=State.ACTIVE,
        created_at=now - timedelta(seconds=5),
        updated_at=now,
        granted_at=now - timedelta(seconds=5),
        expires_at=now + timedelta(hours=1),
    )
    store.create(request, [Draft(Event.GRANTED, "system", request.id, {"cluster": "prod"})])
    return request.id


def _batch(start: int, size: int, kube_user: str) -> bytes:
    """Events ``start``… of the run; event n happens in namespace ``ns-<n // MAX_ACTIONS_PER_GRANT>``,
    the namespace of the grant it belongs to, so no grant passes its storage limit."""
    at = format_instant(datetime.now(UTC))
    items: list[dict[str, Any]] = [
        {
            "auditID": f"bench-{n}",
            "stage": "ResponseComplete",
            "verb": "delete" if n % 2 else "get",
            "user": {"username": kube_user, "groups": ["system:authenticated"]},
            "objectRef": {
                "resource": "pods",
                "namespace": f"ns-{n // MAX_ACTIONS_PER_GRANT}",
                "name": f"web-{n}",
                "apiVersion": "v1",
            },
            "requestReceivedTimestamp": at,
            "stageTimestamp": at,
            "responseStatus": {"code": 200},
        }
        for n in range(start, start + size)
    ]
    return json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode()


def _post(url: str, token: str, body: bytes) -> int:
    request = urllib.request.Request(  # noqa: S310  (a loopback URL we started)
        url, data=body, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as reply:  # noqa: S310
        return int(json.loads(reply.read())["recorded"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with local_stack(redis_url=args.redis_url, key_prefix=PREFIX) as stack:
        client = stack.redis_client()
        store = RequestStore(
            client,
            AuditLog(client, lambda: datetime.now(UTC), PREFIX, out=io.StringIO(), key=stack.chain_key()),
            PREFIX,
        )
        try:
            grants = [_grant(store, f"ns-{i}") for i in range(-(-args.events // MAX_ACTIONS_PER_GRANT))]
            web = stack.start_web()
            url = f"{stack.web_url(web)}/k8s/audit/prod"
            token = cluster_webhook_token(
                stack.env().get("BREAKGLASS_AUDIT_WEBHOOK_TOKEN", AUDIT_WEBHOOK_TOKEN), "prod"
            )
            bodies = [
                _batch(s, min(args.batch, args.events - s), "alice@example.com")
                for s in range(0, args.events, args.batch)
            ]
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                recorded = sum(pool.map(lambda body: _post(url, token, body), bodies))
            elapsed = time.perf_counter() - start
            retried = _post(url, token, bodies[0])
            kept = sum(store.actions.counts(grant)[0] for grant in grants)
            exported = sum(
                len(e.details.get("actions") or [])
                for grant in grants
                for e in store.audit.for_request(grant)
                if e.event == Event.ACTIONS_RECORDED
            )
            print(
                json.dumps(
                    {
                        "events": args.events,
                        "batch": args.batch,
                        "clients": args.clients,
                        "seconds": round(elapsed, 2),
                        "events_per_second": round(args.events / elapsed),
                        "recorded": recorded,
                        "recorded_by_a_retry": retried,
                        "kept": kept,
                        "exported": exported,
                    }
                )
            )
        finally:
            for key in list(client.scan_iter(f"{PREFIX}:*")):
                client.delete(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
