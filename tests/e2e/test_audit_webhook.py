"""The audit webhook on the real web process: an action done between the binding's creation and the
grant's commit, and the API server's retry of its batch, are each recorded exactly once; the held
action is recorded by the worker's clock, with no further batch from the cluster."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.audit import Event
from bot.domain.grants import format_instant
from bot.domain.lifecycle import State
from bot.domain.webhook import cluster_webhook_token
from bot.standins.stack import LocalStack, wait_until
from bot.wiring import Core
from tests.e2e.conftest import grant_now

pytestmark = pytest.mark.slow


def _post(url: str, token: str, items: list[dict[str, Any]]) -> int:
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode()
    request = urllib.request.Request(  # noqa: S310  (the loopback web process this test started)
        url, data=body, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        return int(json.loads(reply.read())["recorded"])


def _deletion(audit_id: str) -> dict[str, Any]:
    at = format_instant(datetime.now(UTC))
    return {
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "verb": "delete",
        "user": {"username": "alice@example.com"},
        "objectRef": {"resource": "pods", "namespace": "payments", "name": "web-1", "apiVersion": "v1"},
        "requestReceivedTimestamp": at,
        "stageTimestamp": at,
        "responseStatus": {"code": 200},
    }


def test_an_action_before_the_commit_and_a_retried_batch_are_recorded_once(stack: LocalStack, core: Core) -> None:
    web = stack.start_web()
    url = f"{stack.web_url(web)}/k8s/audit/prod"
    token = cluster_webhook_token(stack.env()["BREAKGLASS_AUDIT_WEBHOOK_TOKEN"], "prod")
    request = grant_now(core, 600)  # self-service: approved at once; no worker yet, so not granted
    assert request.state is State.APPROVED

    early = [_deletion("early-1")]
    assert _post(url, token, early) == 0  # the grant is not active in Redis yet: held, not lost
    assert _post(url, token, early) == 0  # the API server retries: still one held

    stack.start_worker()
    wait_until(lambda: (core.store.get(request.id) or request).state is State.ACTIVE, 30, "the grant")
    # No further batch comes: the worker's clock matches what was held once the grant is committed.
    wait_until(lambda: _recorded(core, request.id) == ["early-1"], 60, "the held action recorded by the worker")
    assert _post(url, token, []) == 0  # the next batch finds nothing left to match
    assert _post(url, token, early) == 0  # and a late retry of the first batch changes nothing
    assert _recorded(core, request.id) == ["early-1"]


def _recorded(core: Core, request_id: str) -> list[str]:
    return [
        action["audit_id"]
        for entry in core.store.audit.for_request(request_id)
        if entry.event == Event.ACTIONS_RECORDED
        for action in entry.details["actions"]
    ]
