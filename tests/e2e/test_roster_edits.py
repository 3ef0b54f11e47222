"""What an operator's roster edit does to real processes: a broken edit is refused and revocation goes
on (finding 6); an edit that makes a role need approvals stops a self-service grant already queued
(finding 22)."""

from __future__ import annotations

import copy
import time
from datetime import timedelta
from typing import Any

import pytest
import yaml

from bot.domain.audit import Event
from bot.domain.grant_failures import FailureCode
from bot.domain.lifecycle import State
from bot.standins.stack import ALICE, INCIDENT_CHANNEL, LocalStack, wait_until
from bot.wiring import Core
from tests.e2e.conftest import REASON, SLACK, SWEEP, BindingWatch, events, grant_now, may_edit
from workers.kube import KubeClusters

pytestmark = pytest.mark.slow

KEPT = "keeping the last good one"  # what RosterFile logs when it refuses an edit


def _constructor_error(good: dict[str, Any]) -> bytes:
    # PyYAML's int constructor raises ValueError, not a YAMLError: it used to escape the reload.
    text = yaml.safe_dump(good, sort_keys=False)
    assert "request_timeout: 30m\n" in text
    return text.replace("request_timeout: 30m\n", "request_timeout: !!int one\n").encode()


def _fails_validation(good: dict[str, Any]) -> bytes:
    edited = copy.deepcopy(good)
    edited["roles"]["emergency"]["approvers"] = ["no-such-group"]
    return yaml.safe_dump(edited, sort_keys=False).encode()


@pytest.mark.parametrize("broken", [_constructor_error, _fails_validation], ids=["bad-yaml", "fails-validation"])
def test_a_broken_roster_edit_keeps_the_last_good_roster_and_grants_still_end(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch, broken: Any
) -> None:
    """Finding 6: a reload that raised anything but RosterError left every roster() call raising, so
    revoke jobs and the sweep failed and bindings outlived their expiry."""
    web = stack.start_web()
    worker = stack.start_worker()
    stack.wait_for_workers(1)
    slack = stack.sender(web)
    expiring = grant_now(core, 40)
    revoked_early = grant_now(core, 600)
    wait_until(lambda: watch.present(expiring.id) and watch.present(revoked_early.id), 60, "both bindings")

    stack.roster_path.write_bytes(broken(dict(stack.roster)))
    # The worker's sweep follows the roster: it has met the edit once it says it refused it.
    wait_until(lambda: KEPT in worker.output(), 60, "the worker to refuse the edit")
    assert watch.present(expiring.id), "the expiry came before the worker met the edit: the test proves nothing"

    # The web process, on the last good roster, still takes a revoke and a new request...
    assert slack.slash_command(ALICE, f"revoke {revoked_early.id}").status == 200
    watch.wait_gone(revoked_early.id, timeout=60)
    asked = slack.slash_command(ALICE, f"prod/payments emergency 5s {REASON}", channel_id=INCIDENT_CHANNEL)
    assert asked.status == 200
    (new,) = wait_until(
        lambda: [r for r in core.store.recent() if r.id not in (expiring.id, revoked_early.id)], 60, "the new request"
    )
    # ... and the worker, on the last good roster, grants it (its grant job reads the roster again).
    wait_until(lambda: watch.present(new.id), 60, "the new request's binding")
    assert KEPT in web.output(), "the web process must have refused the edit too"

    watch.wait_gone(expiring.id, timeout=40 + 60)
    watch.assert_ended_on_time(expiring.id, timedelta(seconds=40), SWEEP + SLACK)
    watch.wait_gone(new.id, timeout=60)
    assert not may_edit(kube)
    assert worker.alive()
    assert web.alive()
    for grant, end in ((expiring, State.EXPIRED), (revoked_early, State.REVOKED), (new, State.EXPIRED)):
        ended = core.store.get(grant.id)
        assert ended is not None
        assert ended.state is end
        assert Event.BINDING_DELETED in events(core, grant.id)
    assert core.audit.verify().ok


def test_a_queued_self_service_grant_is_refused_once_its_role_needs_approvals(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch
) -> None:
    """Finding 22: the grant job trusted the self-service flag stored with the request, so a role
    changed to need approvals still granted a self-service request made before the change."""
    request = grant_now(core, 600)  # queued: no worker runs yet
    assert request.self_service
    edited = copy.deepcopy(dict(stack.roster))
    edited["roles"]["emergency"]["approvals"] = 2
    stack.roster_path.write_text(yaml.safe_dump(edited, sort_keys=False))

    worker = stack.start_worker()
    stack.wait_for_workers(1)
    failed = wait_until(
        lambda: (r := core.store.get(request.id)) is not None and r.state is State.FAILED and r, 60, "the grant job"
    )
    assert failed.note == "'emergency' now needs 2 approvals; ask again"
    story = core.audit.for_request(request.id)
    (refusal,) = [e for e in story if e.event == Event.GRANT_FAILED]
    assert refusal.details["code"] == FailureCode.ROLE_NEEDS_APPROVALS.value
    assert (refusal.details["role"], refusal.details["approvals"]) == ("emergency", "2")
    assert Event.GRANTED not in [e.event for e in story]

    # Two sweeps later still nothing: no binding was ever made, on any cluster.
    after = time.time() + 2 * SWEEP.total_seconds()
    wait_until(lambda: time.time() >= after, 2 * SWEEP.total_seconds() + 5, "two sweeps")
    assert watch.sightings == {}
    assert stack.bindings("prod") == []
    assert not may_edit(kube)
    assert worker.alive()
    assert core.audit.verify().ok
