"""What the workers do to clusters: grant, revoke at expiry, extend, remind (GrantService with a
FakeCluster that keeps real binding objects)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.end_reasons import EndCode, EndReason, end_sentence
from bot.domain.grant_failures import failure_sentence
from bot.domain.grants import (
    APPROVERS_ANNOTATION,
    EXPIRES_AT_ANNOTATION,
    MANAGED_BY_LABEL,
    REASON_ANNOTATION,
    REQUEST_ID_LABEL,
    REQUESTER_ANNOTATION,
    BindingSpec,
    IssuedCredentials,
    format_instant,
)
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import State
from bot.domain.warrant import WARRANT_ANNOTATION
from bot.ports import AccessCheck, ClusterRefused, ClusterUnavailable
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.errors import Refused
from bot.services.grants import GrantService
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import (
    ALICE,
    BOB,
    CAROL,
    FakeCluster,
    RecordingJobs,
    RecordingNotifier,
    example_roster_data,
    roster_from,
    roster_with,
)
from tests.services.conftest import REASON, Flows


def events(store: RequestStore, request_id: str) -> list[str]:
    return [e.event for e in store.audit.for_request(request_id)]


def may(cluster: FakeCluster, user: str, verb: str, namespace: str | None, where: str = "prod") -> bool:
    return cluster.review_access(where, AccessCheck(user=user, verb=verb, resource="pods", namespace=namespace))


# --- grant ---------------------------------------------------------------------------------------


def test_grant_creates_the_contract_binding(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, jobs: RecordingJobs, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved("admin", duration=timedelta(minutes=45))
    clock.advance(seconds=20)
    active = grants.grant(request.id)

    assert active is not None
    assert active.state is State.ACTIVE
    assert active.granted_at == clock()
    assert active.expires_at == clock() + timedelta(minutes=45)
    assert store.get(request.id) == active
    binding = cluster.binding("prod", request.id)
    assert binding is not None
    assert binding.name == f"breakglass-{request.id.lower()}"
    assert binding.kind == "RoleBinding"
    assert binding.namespace == "payments"
    assert binding.cluster_role == "breakglass-admin"  # the example roster's admin role
    assert (binding.subject_kind, binding.subject) == ("User", "alice@example.com")
    assert binding.labels == {MANAGED_BY_LABEL: "breakglass", REQUEST_ID_LABEL: request.id}
    assert binding.annotations == {
        REQUESTER_ANNOTATION: ALICE,
        APPROVERS_ANNOTATION: f"{BOB},{CAROL}",
        REASON_ANNOTATION: REASON,
        EXPIRES_AT_ANNOTATION: format_instant(active.expires_at),
        WARRANT_ANNOTATION: binding.annotations[WARRANT_ANNOTATION],
    }
    assert binding.warranted
    assert binding.expires_at == active.expires_at
    granted = store.audit.for_request(request.id)[-1]
    assert (granted.event, granted.actor) == (Event.GRANTED, SYSTEM_ACTOR)
    assert granted.details["binding"] == binding.name
    assert granted.details["expires_at"] == format_instant(active.expires_at)
    # The end is scheduled: revoke at expiry, reminder reminder_before it.
    assert [c.at for c in jobs.of("revoke", request.id)] == [active.expires_at]
    assert [c.at for c in jobs.of("remind", request.id)] == [active.expires_at - timedelta(minutes=10)]


def test_cluster_wide_role_becomes_a_cluster_role_binding(
    store: RequestStore, jobs: RecordingJobs, notifier: RecordingNotifier, cluster: FakeCluster, clock: FakeClock
) -> None:
    # In the example roster an sre member can never get cluster-admin: it needs two approvals and
    # only one other sre member exists. One approval here, so Bob (sre) can have it.
    roster = FixedRoster(roster_with(roles={"cluster-admin": {"approvals": 1}}))
    grants = GrantService(store, roster, cluster, jobs, notifier, clock)
    flows = Flows(AccessService(store, roster, jobs, clock), grants)
    active = flows.granted("cluster-admin", target="prod", duration=timedelta(minutes=30), requester=BOB)
    binding = cluster.binding("prod", active.id)
    assert binding is not None
    assert binding.kind == "ClusterRoleBinding"
    assert binding.namespace is None
    assert binding.subject == "bob@example.com"
    assert binding.annotations[APPROVERS_ANNOTATION] == CAROL


def test_granted_user_may_act_only_where_granted_and_only_until_revoked(
    grants: GrantService, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    assert not may(cluster, "alice@example.com", "delete", "payments")
    active = flows.granted("admin", duration=timedelta(minutes=30))
    assert may(cluster, "alice@example.com", "delete", "payments")
    assert not may(cluster, "alice@example.com", "delete", "payments-eu")
    assert not may(cluster, "alice@example.com", "delete", "payments", where="staging")
    assert not may(cluster, "bob@example.com", "delete", "payments")
    clock.advance(minutes=30)
    grants.revoke(active.id)
    assert not may(cluster, "alice@example.com", "delete", "payments")


def test_duration_counts_from_when_the_binding_is_in_place(
    store: RequestStore, roster: FixedRoster, jobs: RecordingJobs, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    slow = FakeCluster(clock=clock, slow_by=timedelta(seconds=40))  # the API server takes 40s to answer
    grants = GrantService(store, roster, slow, jobs, notifier, clock)
    request = Flows(AccessService(store, roster, jobs, clock), grants).approved()
    asked_at = clock()
    active = grants.grant(request.id)
    assert active is not None
    assert active.granted_at == asked_at + timedelta(seconds=40)
    assert active.expires_at == asked_at + timedelta(seconds=40) + timedelta(hours=1)
    binding = slow.binding("prod", request.id)
    assert binding is not None
    assert binding.expires_at == active.expires_at


def test_grant_twice_makes_one_binding(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, flows: Flows
) -> None:
    request = flows.approved()
    first = grants.grant(request.id)
    again = grants.grant(request.id)
    assert again == first
    assert len(cluster.bindings) == 1
    assert events(store, request.id).count(Event.GRANTED) == 1


def test_person_removed_from_the_roster_since_approval_gets_nothing(
    grants: GrantService,
    roster: FixedRoster,
    store: RequestStore,
    cluster: FakeCluster,
    jobs: RecordingJobs,
    flows: Flows,
) -> None:
    request = flows.approved()
    roster.roster = roster_with(people={ALICE: None}, groups={"payments-devs": []})
    failed = grants.grant(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == "no longer allowed: You are not in the breakglass roster; ask your platform team to add you."
    assert cluster.bindings == {}
    assert ("apply_grant", "prod") not in cluster.calls
    last = store.audit.for_request(request.id)[-1]
    assert (last.event, last.actor) == (Event.GRANT_FAILED, SYSTEM_ACTOR)
    # The audit entry records the failure's code and facts, not the sentence; the note is its sentence.
    assert last.details == {
        "code": "no_longer_allowed",
        "reason": "You are not in the breakglass roster; ask your platform team to add you.",
    }
    assert failure_sentence(last.details) == failed.note
    assert jobs.queued("publish", request.id)  # reported in the thread


def test_approval_from_someone_who_left_the_approvers_no_longer_counts(
    grants: GrantService, roster: FixedRoster, cluster: FakeCluster, flows: Flows
) -> None:
    request = flows.approved()  # approved by Bob
    data = example_roster_data()
    data["groups"]["sre"] = [CAROL]
    for role in ("admin", "cluster-admin"):
        data["roles"][role]["approvals"] = 1
    roster.roster = roster_from(data)
    failed = grants.grant(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == "its approvals no longer suffice: an approver has left the approver groups"
    assert cluster.bindings == {}


def test_a_self_service_request_is_not_granted_once_its_role_needs_approvals(
    grants: GrantService, roster: FixedRoster, cluster: FakeCluster, flows: Flows
) -> None:
    # Finding 22: the stored self-service flag says how the request was made, not what the role
    # asks for now.
    roster.roster = roster_with(roles={"view": {"approvals": 0}})
    request = flows.approved("view")
    assert request.self_service
    roster.roster = roster_with(roles={"view": {"approvals": 2}})
    failed = grants.grant(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == "'view' now needs 2 approvals; ask again"
    assert cluster.bindings == {}


def test_permanent_cluster_error_fails_the_grant_and_reports_it(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, jobs: RecordingJobs, flows: Flows
) -> None:
    request = flows.approved()
    cluster.fail_next(1, ClusterRefused, operations=["apply_grant"])
    failed = grants.grant(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == "the cluster refused the binding: fake apply_grant on prod failed"
    assert events(store, request.id)[-1] == Event.GRANT_FAILED
    assert jobs.queued("publish", request.id)
    assert [c.at for c in jobs.of("revoke", request.id)] == [None]  # whatever half-made binding, remove it
    assert cluster.bindings == {}


def test_binding_name_taken_by_something_else_fails_the_grant(
    grants: GrantService, cluster: FakeCluster, flows: Flows
) -> None:
    request = flows.approved()
    cluster.plant("prod", "BG-999999", "payments", None, name=f"breakglass-{request.id.lower()}")
    failed = grants.grant(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note is not None
    assert failed.note.startswith("the cluster refused the binding:")


def test_temporary_cluster_error_propagates_so_the_job_is_retried(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, flows: Flows
) -> None:
    request = flows.approved()
    cluster.fail_next(1, ClusterUnavailable)
    with pytest.raises(ClusterUnavailable):
        grants.grant(request.id)
    assert store.get(request.id) == request  # still approved, nothing recorded
    assert cluster.bindings == {}
    active = grants.grant(request.id)  # the retry
    assert active is not None
    assert active.state is State.ACTIVE
    assert cluster.binding("prod", request.id) is not None


def test_token_credentials_are_delivered_to_the_holder(
    store: RequestStore, jobs: RecordingJobs, notifier: RecordingNotifier, cluster: FakeCluster, clock: FakeClock
) -> None:
    roster = FixedRoster(roster_with(clusters={"prod": {"credentials": "token"}}))
    grants = GrantService(store, roster, cluster, jobs, notifier, clock)
    active = Flows(AccessService(store, roster, jobs, clock), grants).granted()
    binding = cluster.binding("prod", active.id)
    assert binding is not None
    assert binding.subject_kind == "ServiceAccount"
    assert [(rid, type(c)) for rid, c in notifier.credentials] == [(active.id, IssuedCredentials)]
    assert store.audit.for_request(active.id)[-1].details["subject"] == f"serviceaccount/{binding.name}"


def test_revoked_while_the_binding_was_being_made_takes_it_away_again(
    store: RequestStore,
    roster: FixedRoster,
    jobs: RecordingJobs,
    notifier: RecordingNotifier,
    clock: FakeClock,
) -> None:
    access = AccessService(store, roster, jobs, clock)

    class RevokedMeanwhile(FakeCluster):
        def apply_grant(self, spec: BindingSpec) -> IssuedCredentials | None:
            made = super().apply_grant(spec)
            access.revoke(spec.request_id, SlackUserId(ALICE))  # the holder gives it back at once
            return made

    cluster = RevokedMeanwhile(clock=clock)
    grants = GrantService(store, roster, cluster, jobs, notifier, clock)
    request = Flows(access, grants).approved()
    result = grants.grant(request.id)
    assert result is not None
    assert result.state is State.REVOKED
    assert Event.GRANTED not in events(store, request.id)
    assert [c.at for c in jobs.of("revoke", request.id)] == [None, None]  # the revoke and the grant both ask
    grants.revoke(request.id)  # the job runs
    assert cluster.bindings == {}


# --- revoke ----------------------------------------------------------------------------------


def test_revoke_before_expiry_changes_nothing(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    active = flows.granted()
    clock.advance(minutes=59)
    assert grants.revoke(active.id) == active
    assert store.get(active.id) == active
    assert cluster.binding("prod", active.id) is not None


def test_revoke_before_expiry_for_the_sweeps_reason_ends_the_grant_now_and_records_why(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    active = flows.granted()
    clock.advance(minutes=10)
    why = EndReason(EndCode.BINDING_EXPIRY_UNREADABLE)
    ended = grants.revoke(active.id, by_sweep=why, before_expiry=True)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert ended.note == "its binding carries no readable expiry"
    assert cluster.binding("prod", active.id) is None
    tail = store.audit.for_request(active.id)[-3:]
    assert [e.event for e in tail] == [Event.SWEEP_REVOKED_OVERDUE, Event.EXPIRED, Event.BINDING_DELETED]
    assert tail[1].details["code"] == "binding_expiry_unreadable"
    assert end_sentence(tail[1].details) == ended.note


def test_revoke_before_expiry_without_a_reason_is_refused_and_changes_nothing(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, flows: Flows
) -> None:
    active = flows.granted()
    with pytest.raises(ValueError, match="needs the sweep's reason"):
        grants.revoke(active.id, before_expiry=True)
    assert store.get(active.id) == active
    assert cluster.binding("prod", active.id) is not None


def test_revoke_at_expiry_ends_the_grant_and_deletes_the_binding(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    active = flows.granted()
    assert active.expires_at is not None
    clock.at = active.expires_at + timedelta(seconds=3)  # the worker ran a little late
    expired = grants.revoke(active.id)
    assert expired is not None
    assert expired.state is State.EXPIRED
    assert store.get(active.id) == expired
    assert cluster.binding("prod", active.id) is None
    tail = store.audit.for_request(active.id)[-2:]
    assert [(e.event, e.actor) for e in tail] == [(Event.EXPIRED, SYSTEM_ACTOR), (Event.BINDING_DELETED, SYSTEM_ACTOR)]
    assert tail[1].details["late_by_seconds"] == 3.0
    assert tail[1].details["binding"] == f"breakglass-{active.id.lower()}"


def test_revoke_a_scheduler_second_early_waits_for_the_expiry_then_ends_the_grant(
    grants: GrantService, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    active = flows.granted()
    assert active.expires_at is not None
    clock.at = active.expires_at - timedelta(milliseconds=500)
    expired = grants.revoke(active.id)
    assert expired is not None
    assert expired.state is State.EXPIRED
    assert cluster.bindings == {}
    assert clock() >= active.expires_at  # not ended before its time


def test_revoke_when_binding_already_gone_is_success(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    active = flows.granted()
    cluster.bindings.clear()  # someone deleted it by hand
    clock.advance(hours=1)
    expired = grants.revoke(active.id)
    assert expired is not None
    assert expired.state is State.EXPIRED
    assert Event.BINDING_DELETED not in events(store, active.id)  # nothing was deleted now


def test_early_revoke_by_a_person_then_the_job_deletes_the_binding(
    grants: GrantService, access: AccessService, store: RequestStore, cluster: FakeCluster, flows: Flows
) -> None:
    active = flows.granted()
    access.revoke(active.id, SlackUserId(CAROL))
    revoked = grants.revoke(active.id)
    assert revoked is not None
    assert revoked.state is State.REVOKED
    assert cluster.bindings == {}
    deleted = store.audit.for_request(active.id)[-1]
    assert deleted.event == Event.BINDING_DELETED
    assert "late_by_seconds" not in deleted.details  # an early revoke has no expiry to be late for
    assert deleted.details["after_revoke_seconds"] == 0.0


def test_revoke_with_the_cluster_down_propagates_and_a_retry_finishes(
    grants: GrantService, store: RequestStore, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    active = flows.granted()
    clock.advance(hours=1)
    cluster.fail_next(1, ClusterUnavailable, operations=["remove_grant"])
    with pytest.raises(ClusterUnavailable):
        grants.revoke(active.id)
    assert store.get(active.id).state is State.EXPIRED  # type: ignore[union-attr]  # the state moved first
    grants.revoke(active.id)
    assert cluster.bindings == {}


# --- extend ------------------------------------------------------------------------------------


def test_extension_is_approved_like_a_request_and_moves_the_expiry(
    grants: GrantService,
    access: AccessService,
    store: RequestStore,
    cluster: FakeCluster,
    jobs: RecordingJobs,
    clock: FakeClock,
    flows: Flows,
) -> None:
    grant = flows.granted()
    assert grant.expires_at is not None
    clock.advance(minutes=40)
    extension = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), "INC-4411 still rolling back")
    assert extension.state is State.PENDING
    assert extension.extends == grant.id
    assert Event.EXTENSION_REQUESTED in events(store, grant.id)
    assert jobs.of("grant", extension.id) == []  # waits for an approver

    access.approve(extension.id, SlackUserId(CAROL))
    assert [c.request_id for c in jobs.of("grant", extension.id)] == [extension.id]
    applied = grants.grant(extension.id)

    new_expiry = grant.expires_at + timedelta(minutes=30)
    assert applied is not None
    assert applied.state is State.ACTIVE
    extended = store.get(grant.id)
    assert extended is not None
    assert extended.expires_at == new_expiry
    assert extended.granted_at == grant.granted_at  # still counted from the first grant
    assert extended.extensions == (extension.id,)
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    assert binding.expires_at == new_expiry
    assert len(cluster.bindings) == 1  # an extension owns no binding of its own
    assert events(store, grant.id)[-1] == Event.EXTENDED
    assert new_expiry in [c.at for c in jobs.of("revoke", grant.id)]

    # The revoke scheduled for the old expiry comes and goes; the grant runs on.
    clock.at = grant.expires_at
    assert grants.revoke(grant.id) == extended
    clock.at = new_expiry
    ended = grants.revoke(grant.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    assert cluster.bindings == {}
    ext = store.get(extension.id)
    assert ext is not None
    assert ext.state is State.EXPIRED


def test_extension_past_max_duration_is_refused_when_asked(
    access: AccessService, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted(duration=timedelta(hours=3))
    with pytest.raises(Refused) as raised:
        access.extend(grant.id, SlackUserId(ALICE), timedelta(hours=2), "INC-4411 still rolling back")
    assert raised.value.reason == f"{grant.id} can be extended by at most 1h (the role's maximum in all)."
    assert store.ids() == [grant.id]


def test_extensions_approved_together_never_pass_max_duration(
    grants: GrantService, access: AccessService, store: RequestStore, cluster: FakeCluster, flows: Flows
) -> None:
    grant = flows.granted(duration=timedelta(hours=3))  # view: 4h at most, so 1h of room
    assert grant.expires_at is not None
    first = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=45), "INC-4411 still rolling back")
    second = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=45), "INC-4411 and the database too")
    for ext in (first, second):
        access.approve(ext.id, SlackUserId(BOB))
    assert grants.grant(first.id).state is State.ACTIVE  # type: ignore[union-attr]
    refused = grants.grant(second.id)
    assert refused is not None
    assert refused.state is State.FAILED
    assert refused.note == "only 15m of the role's maximum is left"
    final = store.get(grant.id)
    assert final is not None
    assert final.expires_at == grant.expires_at + timedelta(minutes=45)
    assert final.granted_at is not None
    assert final.expires_at - final.granted_at <= timedelta(hours=4)
    binding = cluster.binding("prod", grant.id)
    assert binding is not None
    assert binding.expires_at == final.expires_at


def test_extension_of_a_grant_that_ended_meanwhile_fails(
    grants: GrantService, access: AccessService, cluster: FakeCluster, flows: Flows
) -> None:
    grant = flows.granted()
    extension = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), "INC-4411 still rolling back")
    access.approve(extension.id, SlackUserId(BOB))
    access.revoke(grant.id, SlackUserId(ALICE))
    failed = grants.grant(extension.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note == f"{grant.id} is no longer active"


# --- remind --------------------------------------------------------------------------------------


def test_reminder_is_sent_once_per_expiry(
    grants: GrantService, access: AccessService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    assert grant.expires_at is not None
    clock.advance(minutes=45)  # 15 minutes left: too early
    grants.remind(grant.id)
    assert Event.REMINDER_SENT not in events(store, grant.id)
    clock.at = grant.expires_at - timedelta(minutes=10)
    grants.remind(grant.id)
    grants.remind(grant.id)  # the job ran twice
    assert events(store, grant.id).count(Event.REMINDER_SENT) == 1

    extension = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), "INC-4411 still rolling back")
    access.approve(extension.id, SlackUserId(BOB))
    grants.grant(extension.id)
    grants.remind(grant.id)  # the old reminder job again: 40 minutes left now
    assert events(store, grant.id).count(Event.REMINDER_SENT) == 1
    clock.at = grant.expires_at + timedelta(minutes=20)
    grants.remind(grant.id)
    assert events(store, grant.id).count(Event.REMINDER_SENT) == 2


def test_a_reminder_is_sent_under_steady_audit_traffic_on_a_grant_with_many_recorded_actions(
    grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    """The reminder must not re-read the grant's audit entries in a transaction every other audit
    write restarts: with 2,000 action entries and writes arriving all the time it never finished."""
    import threading

    from bot.store import Draft

    grant = flows.granted()
    assert grant.expires_at is not None
    store.audit.append(
        *[Draft(Event.ACTIONS_RECORDED, SYSTEM_ACTOR, grant.id, {"count": 1, "actions": []}) for _ in range(2000)]
    )
    clock.at = grant.expires_at - timedelta(minutes=10)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            store.audit.append(Draft(Event.REFUSED, SYSTEM_ACTOR, None, {"action": "status", "reason": "busy"}))

    writer = threading.Thread(target=traffic, daemon=True)
    writer.start()
    reminder = threading.Thread(target=grants.remind, args=(grant.id,), daemon=True)
    try:
        reminder.start()
        reminder.join(timeout=60)
        assert not reminder.is_alive(), "the reminder never completed under audit traffic"
    finally:
        stop.set()
        writer.join(timeout=10)
    assert events(store, grant.id).count(Event.REMINDER_SENT) == 1


def test_no_reminder_after_the_grant_ended(
    grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    clock.advance(hours=1)
    grants.revoke(grant.id)
    grants.remind(grant.id)
    assert Event.REMINDER_SENT not in events(store, grant.id)


def test_unknown_or_unapproved_requests_are_left_alone(
    grants: GrantService, cluster: FakeCluster, flows: Flows
) -> None:
    assert grants.grant(RequestId("BG-222222")) is None
    assert grants.revoke(RequestId("BG-222222")) is None
    pending = flows.submit()
    assert grants.grant(pending.id) == pending
    assert cluster.calls == []
