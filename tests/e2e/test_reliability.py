"""Access disappears on time, always: workers SIGKILLed in the middle of a grant or a revoke, Redis
flushed under live grants, the Kubernetes API answering 503 or hanging around the moment of expiry.

Each test asserts on the cluster (what the watch saw the double hold, and when) and on the audit log
(its chain still verifies, and it tells what happened). The bound is the product's promise under
faults: no binding outlives its expiry by more than one sweep interval plus five seconds, and none
is ever pushed past its approved duration or comes back once removed.
"""

from __future__ import annotations

import copy
import time
from datetime import timedelta

import pytest
import yaml
from kubernetes import client, config

from bot.domain.audit import Event
from bot.domain.end_reasons import end_sentence
from bot.domain.grants import EXPIRES_AT_ANNOTATION, REQUEST_ID_LABEL
from bot.domain.lifecycle import State
from bot.standins.stack import DAVE, LocalStack, wait_until
from bot.wiring import Core
from tests.e2e.conftest import (
    BINDINGS_PATH,
    SLACK,
    SWEEP,
    BindingWatch,
    events,
    grant_now,
    may_edit,
    spy_requests,
    start_worker_as,
)
from workers.kube import KubeClusters
from workers.sweeper import LOCK_TTL

pytestmark = pytest.mark.slow

# A worker killed mid-sweep holds the sweep lock until its TTL lapses; the next sweep comes after that.
LATE = SWEEP + SLACK + LOCK_TTL


def _until(epoch: float) -> None:
    """Wait for a wall-clock instant (real processes act on the real clock)."""
    wait_until(lambda: time.time() >= epoch, max(epoch - time.time(), 0) + 5, "a moment on the clock")


# A lost grant job is queued again after two sweep intervals, at least ten seconds (workers/context.py).
LOST_JOB_GRACE = max(2 * SWEEP.total_seconds(), 10)


@pytest.mark.parametrize(
    ("seconds", "create_lands"),
    [
        # The create lands after its worker died: the binding exists, Redis still says "approved",
        # and no revoke is scheduled. Either it expires before the lost job is noticed...
        pytest.param(6, True, id="create-lands-binding-expires-before-the-lost-job-is-noticed"),
        # ... or it is still running when the lost job is noticed.
        pytest.param(16, True, id="create-lands-binding-outlives-the-grace-for-a-lost-job"),
        # The create never takes effect (the API server held it and dropped it): nothing was granted.
        pytest.param(5, False, id="create-never-lands"),
    ],
)
def test_worker_killed_while_creating_the_binding(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch, seconds: int, create_lands: bool
) -> None:
    server = stack.clusters["prod"]
    in_flight = spy_requests(server, "POST", BINDINGS_PATH)
    if create_lands:
        server.add_latency(2, path_prefix=BINDINGS_PATH, method="POST", times=1)
    else:
        server.hang_requests(60, path_prefix=BINDINGS_PATH, method="POST", times=1)
    worker = stack.start_worker()
    stack.wait_for_workers(1)

    request = grant_now(core, seconds)
    assert in_flight.wait(15), "the grant job never sent its create"
    worker.kill()
    stack.start_worker()

    wait_until(lambda: watch.present(request.id), LOST_JOB_GRACE + 15, "the binding")
    assert may_edit(kube)
    gone = watch.wait_gone(request.id, timeout=LOST_JOB_GRACE + seconds + 20)
    assert not may_edit(kube)
    # Nothing may grant it again: wait past the moment a lost grant job is queued again, and two more
    # sweeps, before judging.
    assert gone.gone_at is not None
    _until(max(request.updated_at.timestamp() + LOST_JOB_GRACE, gone.gone_at) + 2 * SWEEP.total_seconds())
    watch.assert_ended_on_time(request.id, timedelta(seconds=seconds), LATE)

    ended = core.store.get(request.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    story = events(core, request.id)
    assert story.count(Event.GRANTED) == 1, "the grant that happened is recorded, once"
    assert story.index(Event.GRANTED) < story.index(Event.EXPIRED) < story.index(Event.BINDING_DELETED)
    assert core.audit.verify().ok


def test_worker_killed_while_deleting_the_binding(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch
) -> None:
    # Two workers, as in production. The revoke's DELETE hangs and never takes effect; the worker
    # running it is SIGKILLed waiting for the answer, and the other one must finish the job.
    server = stack.clusters["prod"]
    in_flight = spy_requests(server, "DELETE", BINDINGS_PATH)
    workers = {}  # Authorization header -> the worker process that sends it
    for name in ("worker-a", "worker-b"):
        process, authorization = start_worker_as(stack, name)
        workers[authorization] = process
    stack.wait_for_workers(2)
    request = grant_now(core, 5)
    wait_until(lambda: watch.present(request.id), 60, "the binding")
    # Every DELETE hangs until the binding has been seen to survive the kill: the revoke's, and any the
    # other worker's clock or sweep sends meanwhile (with only the first held, the other worker could
    # remove the binding before the check, and the test would race it).
    server.hang_requests(60, path_prefix=BINDINGS_PATH, method="DELETE")

    assert in_flight.wait(60), "the revoke never sent its delete"
    workers[in_flight.authorization or ""].kill()  # the one waiting on the hung delete, whichever it is
    assert watch.present(request.id), "the hung delete must not have removed the binding"
    server.clear_faults()  # the other worker's calls now go through; it must finish the job

    watch.wait_gone(request.id, timeout=60)
    watch.assert_ended_on_time(request.id, timedelta(seconds=5), LATE)
    assert not may_edit(kube)
    ended = core.store.get(request.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    story = events(core, request.id)
    assert Event.EXPIRED in story
    assert Event.BINDING_DELETED in story or Event.SWEEP_DELETED in story
    assert core.audit.verify().ok


def test_redis_flushed_while_grants_are_active(stack: LocalStack, core: Core, watch: BindingWatch) -> None:
    # Each binding carries its warrant: losing Redis (a cache restarted mid-incident) neither cuts
    # a valid grant short nor lets it outlive its signed expiry.
    stack.start_worker()
    stack.wait_for_workers(1)
    duration = 20
    grants = [grant_now(core, duration), grant_now(core, duration), grant_now(core, duration, cluster="staging")]
    wait_until(lambda: all(watch.present(g.id) for g in grants), 60, "three bindings")

    stack.redis_client().flushdb()

    recovered = lambda: {e.request_id for e in core.audit.entries() if e.event == Event.SWEEP_RECOVERED}  # noqa: E731
    wait_until(lambda: recovered() == {g.id for g in grants}, 60, "every grant recorded as recovered")
    assert all(watch.present(g.id) for g in grants), "a flush must not cut a valid grant short"

    for grant in grants:
        watch.wait_gone(grant.id, timeout=duration + LATE.total_seconds() + 5)
        watch.assert_ended_on_time(grant.id, timedelta(seconds=duration), LATE)
    wait_until(  # deleted after the binding, by the same revoke's next call
        lambda: stack.clusters["staging"].snapshot("app.kubernetes.io/managed-by=breakglass")["serviceaccounts"] == [],
        60,
        "staging's ServiceAccount to be deleted",
    )
    # A fresh chain after the flush, and it tells why each binding was kept and then went.
    deleted = [e for e in core.audit.entries() if e.event == Event.SWEEP_DELETED]
    assert sorted(e.request_id or "" for e in deleted) == sorted(g.id for g in grants)
    assert all(end_sentence(e.details) == "its expiry has passed" for e in deleted)
    assert core.audit.verify().ok

    # The worker outlived the flush: a new grant is made and ends on time.
    after = grant_now(core, 5)
    wait_until(lambda: watch.present(after.id), 60, "a grant made after the flush")
    watch.wait_gone(after.id, timeout=20)
    watch.assert_ended_on_time(after.id, timedelta(seconds=5), LATE)


def test_a_binding_whose_expiry_is_moved_behind_breakglass_goes_at_once(
    stack: LocalStack, core: Core, watch: BindingWatch
) -> None:
    stack.start_worker()
    stack.wait_for_workers(1)
    grant = grant_now(core, 600)
    wait_until(lambda: watch.present(grant.id), 60, "the binding")
    # Once its grant job is done: that job's own expiry update would otherwise sign over the edit.
    wait_until(lambda: (r := core.store.get(grant.id)) is not None and r.state is State.ACTIVE, 60, "the grant")
    rbac = client.RbacAuthorizationV1Api(
        config.new_client_from_config(str(stack.kubeconfig_path), stack.roster["clusters"]["prod"]["context"])
    )
    moved = {"metadata": {"annotations": {EXPIRES_AT_ANNOTATION: "2030-01-01T00:00:00Z"}}}
    edited_at = time.time()
    rbac.patch_namespaced_role_binding(f"breakglass-{grant.id.lower()}", "payments", moved)

    seen = watch.wait_gone(grant.id, timeout=LATE.total_seconds() + 5)
    assert seen.gone_at is not None
    assert seen.gone_at - edited_at <= LATE.total_seconds()
    wait_until(lambda: (r := core.store.get(grant.id)) is not None and r.state is State.EXPIRED, 60, "the grant ended")
    assert core.audit.verify().ok


def test_a_relabelled_binding_goes_by_its_own_name_and_the_grant_it_names_keeps_its_binding(
    stack: LocalStack, core: Core, watch: BindingWatch
) -> None:
    """Finding 9: the sweep deleted ``breakglass-<label id>``, so a binding whose request-id label was
    edited to name another live grant survived, and that grant's binding went in its place."""
    stack.start_worker()
    stack.wait_for_workers(1)
    mine = grant_now(core, 600)
    other = grant_now(core, 600, requester=DAVE, namespace="payments-eu")
    for grant in (mine, other):
        wait_until(lambda g=grant: watch.present(g.id), 60, "the binding")
        # Once its grant job is done: that job's own expiry update would otherwise sign over the edit.
        wait_until(lambda g=grant: (r := core.store.get(g.id)) is not None and r.state is State.ACTIVE, 60, "a grant")
    rbac = client.RbacAuthorizationV1Api(
        config.new_client_from_config(str(stack.kubeconfig_path), stack.roster["clusters"]["prod"]["context"])
    )
    mine_name, other_name = f"breakglass-{mine.id.lower()}", f"breakglass-{other.id.lower()}"
    relabelled = {"metadata": {"labels": {REQUEST_ID_LABEL: other.id}}}
    rbac.patch_namespaced_role_binding(mine_name, "payments", relabelled)

    seen = watch.wait_gone(mine.id, timeout=90)  # the watch knows it by its first label
    assert seen.name == mine_name
    deleted = wait_until(
        lambda: [
            e for e in core.audit.entries() if e.event == Event.SWEEP_DELETED and e.details.get("binding") == mine_name
        ],
        60,
        "the sweep's record of the deletion",
    )
    assert deleted[0].details["namespace"] == "payments"
    # In the tampered grant's own trail, naming the forged label; that grant, its access gone, is over.
    assert (deleted[0].request_id, deleted[0].details["labelled"]) == (mine.id, other.id)
    wait_until(lambda: core.store.get(mine.id).state.terminal, 60, "the tampered grant to end")  # type: ignore[union-attr]
    # Sweeps after it: the named grant's binding stays, once, and the relabelled one does not come back.
    _until(time.time() + 3 * SWEEP.total_seconds())
    assert [b["metadata"]["name"] for b in stack.bindings()] == [other_name]
    assert len(watch.of(other.id).spans) == 1
    assert watch.of(other.id).gone_at is None
    assert len(watch.of(mine.id).spans) == 1
    still = core.store.get(other.id)
    assert still is not None
    assert still.state is State.ACTIVE
    assert Event.SWEEP_DELETED not in [e.event for e in core.audit.for_request(other.id)]
    assert core.audit.verify().ok


# The workers' BREAKGLASS_KUBE_TIMEOUT in the outage test: a hung call costs them this, not the default 10 s.
KUBE_TIMEOUT = 2
# Longer than one sweep interval, so sweeps meet the outage too (several of them), not only the revoke.
OUTAGE = 3 * SWEEP.total_seconds()
# A hung request is held past the client's read timeout: the timeout, not the server, ends the call.
HANG = 2 * KUBE_TIMEOUT


@pytest.mark.parametrize("fault", ["503", "hang"])
def test_api_failing_when_the_revoke_comes(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch, fault: str
) -> None:
    server = stack.clusters["prod"]
    stack.extra_env = {**stack.extra_env, "BREAKGLASS_KUBE_TIMEOUT": f"{KUBE_TIMEOUT}s"}
    stack.start_worker()
    stack.wait_for_workers(1)
    on_prod = [grant_now(core, 6), grant_now(core, 6)]
    on_staging = grant_now(core, 6, cluster="staging")
    grants = [*on_prod, on_staging]
    wait_until(
        lambda: all(core.store.get(g.id).state is State.ACTIVE for g in grants),  # type: ignore[union-attr]
        60,
        "the grants",
    )

    # From the first revoke's first call, for longer than a sweep interval, every request to prod's API
    # server (the revokes', the sweeps') fails: answered 503 at once, or held past the client's timeout
    # and dropped unanswered. Staging stays up.
    outage: dict[str, float] = {}

    def start_outage() -> None:
        outage["from"] = time.time()
        if fault == "503":
            server.fail_requests(503, for_seconds=OUTAGE)
        else:
            server.hang_requests(HANG, for_seconds=OUTAGE)

    own_path = f"{BINDINGS_PATH}/breakglass-{on_prod[0].id.lower()}"
    seen_before = len(server.requests)  # the grant job's own calls came before
    revoking = spy_requests(server, None, own_path, then=start_outage)

    for grant in grants:
        watch.wait_gone(grant.id, timeout=6 + OUTAGE + LATE.total_seconds() + 10)
    assert revoking.is_set(), "the bindings went without the revoke meeting the outage"
    revoke_calls = [r.code for r in server.requests[seen_before:] if r.path == own_path]
    assert revoke_calls[0] == (503 if fault == "503" else 0), revoke_calls
    api_back = outage["from"] + OUTAGE

    for grant in on_prod:
        # Never pushed past its duration, never back once gone; late only by the outage, and once the API
        # answers again, gone within one sweep interval plus five seconds.
        seen = watch.assert_ended_on_time(grant.id, timedelta(seconds=6), timedelta(seconds=OUTAGE) + LATE)
        assert seen.gone_at is not None
        after_recovery = seen.gone_at - max(seen.expiries[-1].timestamp(), api_back)
        assert after_recovery <= LATE.total_seconds(), (
            f"{seen.name} outlived the outage by {after_recovery:.1f}s (allowed {LATE.total_seconds():.0f}s)"
        )
    # A hung prod does not hold up staging's revoke or its sweep.
    watch.assert_ended_on_time(on_staging.id, timedelta(seconds=6), LATE)
    assert not may_edit(kube)
    assert not may_edit(kube, cluster="staging")
    for grant in grants:
        ended = core.store.get(grant.id)
        assert ended is not None
        assert ended.state is State.EXPIRED
        story = events(core, grant.id)
        assert Event.BINDING_DELETED in story or Event.SWEEP_DELETED in story
    assert core.audit.verify().ok


@pytest.mark.parametrize("restarted", [False, True], ids=["edited-while-the-worker-runs", "edited-while-none-runs"])
def test_a_cluster_edited_out_of_the_roster_loses_its_grants_at_the_next_sweep(
    stack: LocalStack, core: Core, watch: BindingWatch, restarted: bool
) -> None:
    worker = stack.start_worker()
    stack.wait_for_workers(1)
    on_staging = grant_now(core, 600, cluster="staging")  # token mode: a binding and a ServiceAccount
    on_prod = grant_now(core, 600)
    wait_until(lambda: watch.present(on_staging.id) and watch.present(on_prod.id), 60, "both bindings")
    staging = stack.clusters["staging"]
    assert staging.snapshot("app.kubernetes.io/managed-by=breakglass")["serviceaccounts"]

    # The operator removes staging from the roster; its kubeconfig context stays. Either the worker
    # runs on and reloads the roster, or it is down meanwhile and a new one starts on the edited roster.
    if restarted:
        worker.kill()
    edited = copy.deepcopy(dict(stack.roster))
    del edited["clusters"]["staging"]
    for entitlement in edited["entitlements"]:
        entitlement["clusters"] = [c for c in entitlement["clusters"] if c != "staging"]
    stack.roster_path.write_text(yaml.safe_dump(edited, sort_keys=False))
    edited_at = time.time()
    if restarted:
        stack.start_worker()
        stack.wait_for_workers(1)
        edited_at = time.time()

    seen = watch.wait_gone(on_staging.id, timeout=LATE.total_seconds() + 5)
    assert seen.gone_at is not None
    assert seen.gone_at - edited_at <= LATE.total_seconds(), (
        f"staging's grant outlived the edit by {seen.gone_at - edited_at:.1f}s"
    )
    # Its ServiceAccount goes after the binding (the same revoke deletes it next, or the next sweep):
    # waited for, as on a loaded machine that next call can come well after the watch saw the binding go.
    wait_until(
        lambda: staging.snapshot("app.kubernetes.io/managed-by=breakglass")["serviceaccounts"] == [],
        60,
        "staging's ServiceAccount to be deleted",
    )
    ended = core.store.get(on_staging.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert ended.note == "its cluster is no longer in the roster"
    # The binding goes before its audit entry is written: wait for the entry, not for the cluster.
    wait_until(
        lambda: Event.BINDING_DELETED in events(core, on_staging.id), 60, "the binding's deletion in the audit log"
    )
    story = events(core, on_staging.id)
    assert story.index(Event.SWEEP_REVOKED_OVERDUE) < story.index(Event.EXPIRED) < story.index(Event.BINDING_DELETED)
    assert watch.present(on_prod.id), "a cluster still in the roster keeps its grants"
    assert core.audit.verify().ok
