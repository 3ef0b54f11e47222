"""The audit webhook on the real web process: an action done between the binding's creation and the
grant's commit, and the API server's retry of its batch, are each recorded exactly once; the held
action is recorded by the worker's clock, with no further batch from the cluster, and the same clock
ends a grant whose holder has been idle for the role's idle_timeout."""

from __future__ import annotations

import copy
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from bot.domain.audit import Event
from bot.domain.end_reasons import end_sentence
from bot.domain.grants import format_instant
from bot.domain.lifecycle import State
from bot.domain.webhook import cluster_webhook_token
from bot.settings import load_settings
from bot.standins.stack import LocalStack, local_stack, wait_until
from bot.wiring import Core, build_core
from tests.e2e.conftest import E2E_ROSTER, grant_now

pytestmark = pytest.mark.slow


def _post(url: str, token: str, items: list[dict[str, Any]]) -> int:
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode()
    request = urllib.request.Request(  # noqa: S310  (the loopback web process this test started)
        url, data=body, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        return int(json.loads(reply.read())["recorded"])


def _web_and_worker(stack: LocalStack) -> tuple[str, str]:
    """Start ``web`` and a worker; prod's webhook URL and token."""
    web = stack.start_web()
    stack.start_worker()
    return f"{stack.web_url(web)}/k8s/audit/prod", cluster_webhook_token(
        stack.env()["BREAKGLASS_AUDIT_WEBHOOK_TOKEN"], "prod"
    )


def _deletion(audit_id: str, when: datetime | None = None) -> dict[str, Any]:
    at = format_instant(when or datetime.now(UTC))
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


def test_an_idle_grant_is_ended_by_the_worker_when_the_cluster_sends_nothing_more(
    real_redis: redis.Redis, redis_url: str
) -> None:
    roster = copy.deepcopy(E2E_ROSTER)
    roster["roles"]["emergency"]["idle_timeout"] = "8s"
    with local_stack(redis_url=redis_url, roster=roster, sweep_interval="2s") as stack:
        web = stack.start_web()
        stack.start_worker()
        core = build_core(load_settings(stack.env()))
        url = f"{stack.web_url(web)}/k8s/audit/prod"
        token = cluster_webhook_token(stack.env()["BREAKGLASS_AUDIT_WEBHOOK_TOKEN"], "prod")
        request = grant_now(core, 600)
        wait_until(lambda: (core.store.get(request.id) or request).state is State.ACTIVE, 60, "the grant")
        assert _post(url, token, [_deletion("busy-1")]) == 1  # the webhook works; then the holder stops

        # No further batch: the worker's clock sees the silence and ends the grant.
        wait_until(lambda: (core.store.get(request.id) or request).state is State.REVOKED, 90, "the idle revoke")
        revoked = [e for e in core.audit.for_request(request.id) if e.event == Event.REVOKED]
        assert revoked[-1].actor == "system"
        assert (revoked[-1].details["code"], revoked[-1].details["idle_timeout"]) == ("idle", "8s")
        assert str(end_sentence(revoked[-1].details)).startswith("idle for 8s: no action recorded on prod since ")
        wait_until(lambda: not stack.bindings("prod"), 60, "the binding to be deleted")


def test_an_ended_grant_of_the_same_person_does_not_blind_the_active_ones_record(stack: LocalStack, core: Core) -> None:
    # Finding 1 through the real processes: the webhook kept one grant per kube_user, so a grant of the
    # same person that had just ended took the place of the active one and every live event was dropped.
    url, token = _web_and_worker(stack)
    ended = grant_now(core, 6)
    first = wait_until(
        lambda: (r := core.store.get(ended.id)) is not None and r.state is State.EXPIRED and r, 90, "the first grant"
    )
    assert first.granted_at is not None
    during = _deletion("during-first", first.granted_at + timedelta(seconds=1))  # done while it held
    active = grant_now(core, 600)
    wait_until(lambda: (core.store.get(active.id) or active).state is State.ACTIVE, 60, "the second grant")

    assert _post(url, token, [during, _deletion("live-1"), _deletion("live-2")]) == 3
    assert _recorded(core, active.id) == ["live-1", "live-2"]
    assert _recorded(core, ended.id) == ["during-first"]


def _created_binding(audit_id: str, name: str) -> dict[str, Any]:
    made = _deletion(audit_id)
    made["verb"] = "create"
    made["objectRef"] = {"resource": "rolebindings", "namespace": "payments", "name": name,
                         "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"}  # fmt: skip
    made["responseStatus"] = {"code": 201}
    return made


def test_a_rolebinding_the_holder_made_and_left_is_flagged_in_the_thread_when_the_grant_ends(
    stack: LocalStack, core: Core
) -> None:
    # Finding 8 through the real processes: events at the webhook, the worker's revoke at the expiry,
    # a GET of each binding the holder made at the API server, and the summary in the thread.
    url, token = _web_and_worker(stack)
    request = grant_now(core, 15)
    wait_until(lambda: (core.store.get(request.id) or request).state is State.ACTIVE, 60, "the grant")
    stack.clusters["prod"].seed(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice-forever", "namespace": "payments"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.com"}],
        }
    )  # what the holder made; "gone-again" was made and deleted again before the end
    assert _post(url, token, [_created_binding("rb-1", "alice-forever"), _created_binding("rb-2", "gone-again")]) == 2

    def summary() -> dict[str, Any] | None:
        found = [e for e in core.store.audit.for_request(request.id) if e.event == Event.ACTIONS_SUMMARY]
        return found[-1].details if found else None

    details = wait_until(summary, 120, "the grant's end and its summary")
    assert [i["name"] for i in details["still_granting_access"]] == ["alice-forever"]

    def told() -> bool:
        current = core.store.get(request.id)
        if current is None or current.message_ts is None:
            return False
        replies = stack.slack.thread(current.channel, current.message_ts)
        return any("still granting access after it" in reply.text + json.dumps(reply.blocks) for reply in replies)

    wait_until(told, 120, "the thread to flag the RoleBinding left behind")
