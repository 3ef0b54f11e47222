"""Grants that cannot be completed end in a terminal state, once, and leave nothing live behind: a
kubeconfig that cannot be DMed, an extension of a grant whose binding is gone, and an approval too
old to act on by the time the grant job finally runs."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest

from bot.domain.audit import Event
from bot.domain.grants import BindingSpec, IssuedCredentials
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.ports import BindingNotFound, PermanentError
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.services.reconcile import Reconciler
from bot.store import AuditLogBroken, RequestStore
from tests.conftest import FakeClock
from tests.fakes import ALICE, BOB, FakeCluster, RecordingJobs, RecordingNotifier, roster_with
from tests.services.conftest import Flows


def events(store: RequestStore, request_id: str) -> list[str]:
    return [e.event for e in store.audit.for_request(request_id)]


class DmsClosed(RecordingNotifier):
    """Slack refuses, for good, to DM the holder (DMs with apps turned off, a deactivated account)."""

    def deliver_credentials(self, request: AccessRequest, credentials: IssuedCredentials) -> str | None:
        raise PermanentError("Slack said cannot_dm_bot for conversations.open")


# --- a kubeconfig that cannot be delivered --------------------------------------------------------


@pytest.fixture
def token_roster() -> FixedRoster:
    return FixedRoster(roster_with(clusters={"prod": {"credentials": "token"}}))


@pytest.fixture
def undeliverable(
    store: RequestStore, token_roster: FixedRoster, cluster: FakeCluster, jobs: RecordingJobs, clock: FakeClock
) -> tuple[GrantService, Flows]:
    grants = GrantService(store, token_roster, cluster, jobs, DmsClosed(), clock)
    return grants, Flows(AccessService(store, token_roster, jobs, clock), grants)


def test_a_kubeconfig_that_cannot_be_dmed_fails_the_grant_and_removes_binding_and_service_account(
    undeliverable: tuple[GrantService, Flows], store: RequestStore, cluster: FakeCluster, jobs: RecordingJobs
) -> None:
    grants, flows = undeliverable
    request = flows.approved()
    failed = grants.grant(request.id)

    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == (
        "your kubeconfig could not be sent to you by DM (Slack said cannot_dm_bot for conversations.open), "
        "so the grant was withdrawn"
    )
    assert cluster.bindings == {}
    assert cluster.service_accounts == set()  # the token dies with it
    assert events(store, request.id)[-2:] == [Event.GRANT_FAILED, Event.BINDING_DELETED]
    assert jobs.queued("publish", request.id)  # the thread hears it
    assert jobs.of("revoke", request.id)  # and a revoke job finishes the removal if this could not
    assert store.active() == []
    assert store.approved() == []


def test_a_sweep_after_an_undeliverable_kubeconfig_mints_no_new_token(
    undeliverable: tuple[GrantService, Flows],
    store: RequestStore,
    token_roster: FixedRoster,
    cluster: FakeCluster,
    jobs: RecordingJobs,
    clock: FakeClock,
) -> None:
    grants, flows = undeliverable
    request = flows.approved()
    grants.grant(request.id)
    reconciler = Reconciler(store, token_roster, cluster, jobs, grants, flows.access, clock)
    for _ in range(3):
        clock.advance(minutes=2)
        reconciler.sweep()
    assert cluster.calls.count(("apply_grant", "prod")) == 1
    assert cluster.bindings == {}
    assert events(store, request.id).count(Event.GRANT_FAILED) == 1


# --- an extension of a grant that is already over ----------------------------------------------------


def test_extending_a_grant_whose_binding_is_gone_fails_once_and_ends_the_grant(
    grants: GrantService,
    access: AccessService,
    store: RequestStore,
    cluster: FakeCluster,
    jobs: RecordingJobs,
    clock: FakeClock,
    flows: Flows,
) -> None:
    grant = flows.granted()
    extension = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), "INC-4411 still rolling back")
    access.approve(extension.id, SlackUserId(BOB))
    cluster.bindings.clear()  # someone ran `kubectl delete rolebinding` meanwhile

    failed = grants.grant(extension.id)  # no exception: nothing for RQ to retry

    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == (
        f"{grant.id} has already ended: its binding is no longer in prod: it was removed outside breakglass"
    )
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.REVOKED
    assert ended.expires_at == grant.expires_at  # never extended
    assert events(store, grant.id)[-1] == Event.REVOKED
    assert jobs.of("revoke", grant.id)[-1].at is None  # the revoke job removes whatever is left (a token SA)
    assert jobs.queued("publish", grant.id)
    assert jobs.queued("publish", extension.id)

    # Asked again (the job re-run, the sweep), it is settled: nothing more is written.
    entries = len(list(store.audit.entries()))
    assert grants.grant(extension.id) == failed
    assert len(list(store.audit.entries())) == entries
    assert store.approved() == []  # the sweep has nothing to queue again


# --- an approval too old to act on ------------------------------------------------------------------


def test_a_grant_job_running_after_the_request_timeout_refuses_the_old_approval(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, jobs: RecordingJobs, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    clock.advance(minutes=30, seconds=1)  # the example roster's request_timeout is 30m
    failed = grants.grant(request.id)

    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == (
        "it was approved 30m1s ago, longer than the request timeout (30m), so that approval is too old to act on; "
        "ask again"
    )
    assert ("apply_grant", "prod") not in cluster.calls
    assert cluster.bindings == {}
    assert events(store, request.id)[-1] == Event.GRANT_FAILED
    assert jobs.queued("publish", request.id)


def test_a_grant_job_late_but_within_the_request_timeout_still_grants(
    grants: GrantService, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    clock.advance(minutes=30)
    active = grants.grant(request.id)
    assert active is not None
    assert active.state is State.ACTIVE
    assert active.expires_at == clock() + timedelta(hours=1)  # counted from the binding, as always


def test_a_binding_the_sweep_finds_for_an_old_approval_is_recorded_not_refused(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    # The grant job made the binding and was killed before recording it; the sweep finds it late.
    cluster.plant("prod", request.id, "payments", clock() + timedelta(hours=1), subject="alice@example.com")
    clock.advance(minutes=45)
    adopted = grants.grant(request.id, expires_at=clock() + timedelta(minutes=15))
    assert adopted is not None
    assert adopted.state is State.ACTIVE  # it was granted in time; refusing now would lose the record


def test_the_last_approval_starts_the_clock_not_the_first(
    grants: GrantService, access: AccessService, clock: FakeClock, flows: Flows
) -> None:
    request = flows.submit("admin")  # two approvals needed
    access.approve(request.id, SlackUserId(BOB))
    clock.advance(minutes=20)
    access.approve(request.id, SlackUserId("U00000CAROL"))
    clock.advance(minutes=20)  # 40 minutes after the first approval, 20 after the second
    active = grants.grant(request.id)
    assert active is not None
    assert active.state is State.ACTIVE


def test_a_grant_creates_nothing_while_the_audit_log_refuses_writes(
    grants: GrantService, cluster: FakeCluster, store: RequestStore, flows: Flows, redis_client: fakeredis.FakeRedis
) -> None:
    request = flows.approved()
    redis_client.delete(store.audit.head_key)
    with pytest.raises(AuditLogBroken):
        grants.grant(request.id)
    assert cluster.bindings == {}
    still = store.get(request.id)
    assert still is not None
    assert still.state is State.APPROVED  # the retry, or the sweep, grants it once the log is repaired


def test_a_grant_the_log_breaks_under_is_taken_away_again(
    grants: GrantService,
    cluster: FakeCluster,
    store: RequestStore,
    flows: Flows,
    redis_client: fakeredis.FakeRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = flows.approved()
    real_apply = cluster.apply_grant

    def apply_then_break(spec: BindingSpec) -> object:
        made = real_apply(spec)
        redis_client.delete(store.audit.head_key)  # between the binding and the record of it
        return made

    monkeypatch.setattr(cluster, "apply_grant", apply_then_break)
    with pytest.raises(AuditLogBroken):
        grants.grant(request.id)
    assert cluster.bindings == {}


def test_an_extension_racing_the_grants_own_expiry_says_it_expired_not_that_it_was_removed_outside(
    grants: GrantService,
    access: AccessService,
    store: RequestStore,
    cluster: FakeCluster,
    clock: FakeClock,
    flows: Flows,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grant = flows.granted()
    clock.advance(minutes=50)
    extension = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), "INC-4411 still rolling back")
    access.approve(extension.id, SlackUserId(BOB))
    clock.advance(minutes=10)  # the grant's expiry: its revoke is due

    def expired_meanwhile(spec: BindingSpec) -> None:
        grants.revoke(grant.id)  # the scheduled revoke runs between the read and the new expiry
        raise BindingNotFound(f"binding {spec.name} is gone")

    monkeypatch.setattr(cluster, "set_expiry", expired_meanwhile)
    failed = grants.grant(extension.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == f"{grant.id} has already ended (it is expired)"
