"""Two worker processes on one Redis: an approval that arrives twice and grant and revoke jobs asked
for again and again while the first is still talking to a slow API server make one binding, one
GRANTED entry, one deletion, and nothing that runs twice does harm."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from rq.registry import StartedJobRegistry

from bot.domain.audit import Event
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import State
from bot.domain.policy import Ask
from bot.services.errors import Refused
from bot.standins.stack import ALICE, BOB, CAROL, LocalStack, wait_until
from bot.wiring import Core
from tests.e2e.conftest import BINDINGS_PATH, REASON, BindingWatch, events, may_edit, spy_requests
from workers.kube import KubeClusters

pytestmark = pytest.mark.slow


def _all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` on threads released together; each result, or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _cluster_jobs_idle(core: Core) -> bool:
    queue = core.jobs.cluster
    started = StartedJobRegistry(queue.name, connection=core.rq_redis)
    return queue.count == 0 and started.count == 0


def test_two_workers_grant_and_revoke_once_however_often_asked(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch
) -> None:
    server = stack.clusters["prod"]
    stack.start_worker("worker-a")
    stack.start_worker("worker-b")
    stack.wait_for_workers(2)
    request = core.access.submit(Ask(SlackUserId(ALICE), "prod", "payments", "admin", timedelta(minutes=10), REASON))
    rid = RequestId(request.id)

    # The second approval arrives twice at once (a double click, or two web copies), alongside a
    # repeat from the first approver: exactly one of them counts.
    core.access.approve(rid, SlackUserId(BOB))
    creating = spy_requests(server, "POST", BINDINGS_PATH)
    server.add_latency(1.5, path_prefix=BINDINGS_PATH, method="POST", times=1)
    outcomes = _all_at_once(
        [
            lambda: core.access.approve(rid, SlackUserId(CAROL)),
            lambda: core.access.approve(rid, SlackUserId(CAROL)),
            lambda: core.access.approve(rid, SlackUserId(BOB)),
        ]
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, Refused) for o in outcomes if isinstance(o, Exception)), outcomes

    # While the first create is held up in the API server, the grant is asked for again and again:
    # the other worker picks up the follow-up and races it.
    assert creating.wait(15), "no grant job sent a create"
    _all_at_once([lambda: core.jobs.grant(rid) for _ in range(4)])
    wait_until(lambda: watch.present(rid), 60, "the binding")
    wait_until(lambda: core.store.get(rid).state is State.ACTIVE, 60, "the grant to be recorded")  # type: ignore[union-attr]
    wait_until(lambda: _cluster_jobs_idle(core), 60, "every grant job to finish")
    assert may_edit(kube)

    created = [r for r in server.requests if r.method == "POST" and r.path.startswith(BINDINGS_PATH)]
    assert [r.code for r in created].count(201) == 1, created
    assert len(stack.bindings("prod")) == 1
    story = events(core, rid)
    assert story.count(Event.APPROVED) == 2
    assert story.count(Event.GRANTED) == 1
    active = core.store.get(rid)
    assert active is not None
    assert active.expires_at is not None
    (binding,) = stack.bindings("prod")
    annotation = binding["metadata"]["annotations"]["breakglass.dev/expires-at"]
    assert abs(watch.of(rid).expiries[-1].timestamp() - active.expires_at.timestamp()) < 1, (
        f"the cluster says {annotation}, Redis {active.expires_at}: they must agree on when it ends"
    )

    # The revoke, likewise: ended by its holder while the same removal is queued again from elsewhere.
    deleting = spy_requests(server, "DELETE", BINDINGS_PATH)
    server.add_latency(1.5, path_prefix=BINDINGS_PATH, method="DELETE", times=1)
    core.access.revoke(rid, SlackUserId(ALICE))
    assert deleting.wait(15), "no revoke job sent a delete"
    _all_at_once([lambda: core.jobs.revoke(rid) for _ in range(4)])
    watch.wait_gone(rid, timeout=15)
    wait_until(lambda: _cluster_jobs_idle(core), 60, "every revoke job to finish")
    assert not may_edit(kube)

    deleted = [r for r in server.requests if r.method == "DELETE" and r.path.startswith(BINDINGS_PATH)]
    assert [r.code for r in deleted].count(200) == 1, deleted
    story = events(core, rid)
    assert story.count(Event.REVOKED) == 1
    assert story.count(Event.BINDING_DELETED) == 1
    assert Event.SWEEP_DELETED not in story
    assert core.store.get(rid).state is State.REVOKED  # type: ignore[union-attr]
    assert core.audit.verify().ok
