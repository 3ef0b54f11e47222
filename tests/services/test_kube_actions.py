"""Actions done under a grant, recorded reliably: once each whatever the API server retries, including
events that come between the binding's creation and the grant's commit; long-running sessions tracked;
the thread told in digests and a summary; storage per grant bounded."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.domain.audit import Event
from bot.domain.end_reasons import end_sentence
from bot.domain.grants import format_instant
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import State
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.services.kube_actions import ActionRecorder
from bot.slack.wording import event_text, review_prefill
from bot.store import RequestStore
from bot.store import kube_actions as ledger
from tests.conftest import FakeClock
from tests.fakes import CAROL, FakeCluster, RecordingJobs
from tests.services.conftest import Flows


def event(
    audit_id: str,
    at: datetime,
    verb: str = "delete",
    name: str = "web-1",
    stage: str = "ResponseComplete",
    subresource: str | None = None,
    user: str = "alice@example.com",
    namespace: str = "payments",
) -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": "pods", "namespace": namespace, "name": name, "apiVersion": "v1"}
    if subresource:
        ref["subresource"] = subresource
    return {
        "auditID": audit_id,
        "stage": stage,
        "verb": verb,
        "user": {"username": user},
        "objectRef": ref,
        "requestReceivedTimestamp": format_instant(at),
        "stageTimestamp": format_instant(at),
        "responseStatus": {"code": 200},
    }


def batch(*items: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(items)}


@pytest.fixture
def recorder(store: RequestStore, roster: FixedRoster, clock: FakeClock, jobs: RecordingJobs) -> ActionRecorder:
    return ActionRecorder(store, roster, clock, jobs=jobs)


def recorded(store: RequestStore, request_id: str) -> list[str]:
    """Every recorded action's auditID, as ``audit export --request`` would print them."""
    return [
        action["audit_id"]
        for entry in store.audit.for_request(request_id)
        if entry.event == Event.ACTIONS_RECORDED
        for action in entry.details["actions"]
    ]


def entries_of(store: RequestStore, request_id: str, event: Event) -> list[dict[str, Any]]:
    return [dict(e.details) for e in store.audit.for_request(request_id) if e.event == event]


def test_a_retried_batch_changes_nothing(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    sent = batch(event("a1", clock()), event("a2", clock(), verb="get"))

    assert recorder.record("prod", sent) == 2
    assert recorder.record("prod", sent) == 0
    assert recorder.record("prod", batch(event("a2", clock(), verb="get"), event("a3", clock()))) == 1
    assert recorded(store, grant.id) == ["a1", "a2", "a3"]


def test_every_action_of_a_large_batch_is_exported_once(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    assert recorder.record("prod", batch(*(event(f"a{i}", clock(), verb="get") for i in range(250)))) == 250

    assert recorded(store, grant.id) == [f"a{i}" for i in range(250)]
    assert [d["count"] for d in entries_of(store, grant.id, Event.ACTIONS_RECORDED)] == [100, 100, 50]


def test_events_before_the_grant_is_committed_are_held_and_recorded_once_it_is(
    recorder: ActionRecorder,
    grants: GrantService,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
) -> None:
    request = flows.approved()
    clock.advance(seconds=1)
    # The binding is in place and the holder acts; the grant job has not committed yet.
    early = event("early-1", clock())
    assert recorder.record("prod", batch(early)) == 0
    assert recorder.record("prod", batch(early)) == 0  # the API server's retry: held once

    clock.advance(seconds=1)
    assert grants.grant(request.id) is not None
    assert recorder.record("prod", batch(event("later-1", clock()))) == 2
    assert recorded(store, request.id) == ["early-1", "later-1"]
    assert recorder.record("prod", batch()) == 0


def test_held_events_of_a_grant_that_never_comes_are_forgotten(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    flows.approved()
    recorder.record("prod", batch(event("early-1", clock())))
    clock.advance(seconds=ledger.EARLY_SECONDS + 1)
    recorder.record("prod", batch())
    assert store.redis.llen(store.actions.early_key("prod")) == 0


def test_a_session_never_completed_is_listed_as_possibly_open_when_the_grant_ends(
    recorder: ActionRecorder, grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    started = clock()
    recorder.record(
        "prod",
        batch(
            event("exec-1", started, verb="create", name="checkout-7", stage="ResponseStarted", subresource="exec"),
            event("watch-1", started, verb="watch", name="", stage="ResponseStarted"),
            event("get-1", started, verb="get", stage="ResponseStarted"),  # not long-running: its completion counts
        ),
    )
    clock.advance(minutes=2)
    recorder.record(
        "prod", batch(event("watch-1", started, verb="watch", name=""), event("get-1", started, verb="get"))
    )
    assert recorded(store, grant.id) == ["exec-1", "watch-1", "get-1"]

    assert grant.expires_at is not None
    clock.at = grant.expires_at
    grants.revoke(grant.id)
    [summary] = entries_of(store, grant.id, Event.ACTIONS_SUMMARY)
    assert summary["open_sessions"] == [
        {
            "at": format_instant(started),
            "verb": "exec",
            "resource": "pods",
            "namespace": "payments",
            "name": "checkout-7",
        }
    ]
    entry = store.audit.for_request(grant.id)[-1]
    said = event_text(entry, grant)
    assert said is not None
    assert "removing the binding does not end a running exec" in said
    assert "payments/checkout-7" in said


def test_changes_reach_the_thread_as_one_digest_every_few_minutes(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows, jobs: RecordingJobs
) -> None:
    grant = flows.granted()
    recorder.record("prod", batch(event("d1", clock()), event("d2", clock()), event("g1", clock(), verb="get")))
    clock.advance(minutes=1)
    recorder.record("prod", batch(*(event(f"p{i}", clock(), verb="patch") for i in range(12))))
    digests = entries_of(store, grant.id, Event.ACTIONS_DIGEST)
    assert [d["count"] for d in digests] == [2]

    store.redis.delete(f"breakglass:actions:{grant.id}:digested")  # what five minutes do to its key
    recorder.record("prod", batch(event("d3", clock())))
    digests = entries_of(store, grant.id, Event.ACTIONS_DIGEST)
    assert [(d["count"], len(d["changes"]), d["more"]) for d in digests] == [(2, 2, 0), (13, 10, 3)]
    assert [c.request_id for c in jobs.calls if c.kind == "publish"][-1] == grant.id
    [entry] = [e for e in store.audit.for_request(grant.id) if e.event == Event.ACTIONS_RECORDED][:1]
    assert event_text(entry, grant) is None  # each batch stays in the log; the thread gets the digests


def test_the_summary_counts_by_verb_and_resource_and_lists_the_first_twenty_changes(
    recorder: ActionRecorder,
    access: AccessService,
    grants: GrantService,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
) -> None:
    grant = flows.granted()
    recorder.record("prod", batch(*(event(f"d{i}", clock(), name=f"web-{i}") for i in range(25))))
    recorder.record("prod", batch(event("g1", clock(), verb="get")))
    access.revoke(grant.id, SlackUserId(CAROL))
    grants.revoke(grant.id)

    [summary] = entries_of(store, grant.id, Event.ACTIONS_SUMMARY)
    assert summary["count"] == 26
    assert summary["by_verb_and_resource"] == [["delete", "pods", 25], ["get", "pods", 1]]
    assert [c["name"] for c in summary["changes"]] == [f"web-{i}" for i in range(20)]
    assert summary["more_changes"] == 5
    said = event_text(store.audit.for_request(grant.id)[-1], grant)
    assert said is not None
    assert "… and 5 more" in said


def test_storage_per_grant_is_bounded_and_what_was_dropped_is_counted(
    recorder: ActionRecorder,
    grants: GrantService,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger, "MAX_ACTIONS_PER_GRANT", 5)
    grant = flows.granted()
    assert recorder.record("prod", batch(*(event(f"a{i}", clock(), verb="get") for i in range(8)))) == 5
    assert recorder.record("prod", batch(*(event(f"a{i}", clock(), verb="get") for i in range(8)))) == 0
    assert store.actions.counts(grant.id) == (5, 3)

    assert grant.expires_at is not None
    clock.at = grant.expires_at
    grants.revoke(grant.id)
    [summary] = entries_of(store, grant.id, Event.ACTIONS_SUMMARY)
    assert summary["dropped"] == 3
    said = event_text(store.audit.for_request(grant.id)[-1], grant)
    assert said is not None
    assert "3 further action(s) were counted but not kept" in said


def test_a_grant_with_nothing_recorded_ends_without_a_summary(
    grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    assert grant.expires_at is not None
    clock.at = grant.expires_at + timedelta(seconds=1)
    grants.revoke(grant.id)
    assert entries_of(store, grant.id, Event.ACTIONS_SUMMARY) == []


@pytest.fixture
def idle_after_10m(roster: FixedRoster) -> FixedRoster:
    view = dataclasses.replace(roster.roster.roles["view"], idle_timeout=timedelta(minutes=10))
    roster.roster = dataclasses.replace(roster.roster, roles={**roster.roster.roles, "view": view})
    return roster


@pytest.mark.usefixtures("idle_after_10m")
def test_a_grant_idle_for_its_roles_idle_timeout_is_ended_and_the_thread_says_why(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows, jobs: RecordingJobs
) -> None:
    grant = flows.granted()

    def quiet(minutes: int) -> None:
        """The cluster goes on sending batches every minute (other users' events); the holder does nothing."""
        for _ in range(minutes):
            clock.advance(minutes=1)
            recorder.record("prod", batch())

    recorder.record("prod", batch(event("a1", clock(), verb="get")))
    quiet(6)
    busy_at = clock()
    recorder.record("prod", batch(event("a2", busy_at, verb="get")))  # busy: the idle clock starts again
    quiet(9)
    assert store.get(grant.id).state is State.ACTIVE  # type: ignore[union-attr]

    quiet(1)  # the cluster still sends: the holder is idle, not unheard
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.REVOKED
    revoked = store.audit.for_request(grant.id)[-1]
    # The entry records the reason's code and facts; the thread renders its sentence.
    assert revoked.details == {
        "code": "idle",
        "idle_timeout": "10m",
        "cluster": "prod",
        "last_action_at": format_instant(busy_at),
    }
    assert end_sentence(revoked.details) == f"idle for 10m: no action recorded on prod since {format_instant(busy_at)}"
    assert ended.note == end_sentence(revoked.details)
    assert "idle for 10m" in (event_text(revoked, ended) or "")
    assert ("revoke", grant.id) in [(c.kind, c.request_id) for c in jobs.calls]


@pytest.mark.usefixtures("idle_after_10m")
def test_no_idle_timeout_where_the_cluster_sends_no_audit_events(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    clock.advance(minutes=30)
    assert store.get(grant.id).state is State.ACTIVE  # type: ignore[union-attr]
    # The cluster's first batch after a silence: idleness counts from now, not from the grant.
    recorder.record("prod", batch())
    assert store.get(grant.id).state is State.ACTIVE  # type: ignore[union-attr]
    clock.advance(minutes=4)
    recorder.record("staging", batch())  # another cluster's batch says nothing of prod
    clock.advance(minutes=7)
    recorder.record("staging", batch())
    assert store.get(grant.id).state is State.ACTIVE  # type: ignore[union-attr]


def test_the_review_starts_from_the_summary_and_keeps_its_follow_ups(
    recorder: ActionRecorder,
    access: AccessService,
    grants: GrantService,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
) -> None:
    grant = flows.granted()
    recorder.record("prod", batch(event("d1", clock(), name="web-1")))
    access.revoke(grant.id, SlackUserId(CAROL))
    grants.revoke(grant.id)

    summary = access.actions_summary(grant.id)
    assert summary is not None
    assert summary["changes"][0]["name"] == "web-1"
    reviewed = access.write_review(
        grant.id, SlackUserId(CAROL), "Deleted web-1 to stop the crash loop.", follow_ups="INC-4412: memory limit"
    )
    assert reviewed.review is not None
    assert reviewed.review.follow_ups == "INC-4412: memory limit"
    entry = store.audit.for_request(grant.id)[-1]
    assert entry.details["follow_ups"] == "INC-4412: memory limit"
    assert "*Follow-ups:*\nINC-4412: memory limit" in (event_text(entry, reviewed) or "")


def test_an_action_between_the_binding_and_the_commit_delivered_after_the_commit_is_recorded(
    recorder: ActionRecorder, grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    clock.advance(seconds=1)
    between = clock()  # the binding is in place; granted_at is taken once its create has returned
    clock.advance(seconds=1)
    assert grants.grant(request.id) is not None
    assert recorder.record("prod", batch(event("between-1", between))) == 1
    assert recorded(store, request.id) == ["between-1"]


def test_an_ended_grant_of_the_same_person_never_blinds_the_active_one(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    # Finding 1: one grant per kube_user let an ended grant among the recent ones take the place of
    # the active one, and every live event was dropped (recorded: 0).
    ended = flows.granted(target="prod/payments-eu", duration=timedelta(minutes=10))
    flows.grants.revoke(ended.id)
    clock.advance(minutes=1)
    active = flows.granted(target="prod/payments")
    clock.advance(seconds=30)
    assert recorder.record("prod", batch(event("live-1", clock()), event("live-2", clock(), verb="get"))) == 2
    assert recorded(store, active.id) == ["live-1", "live-2"]
    assert recorded(store, ended.id) == []


def test_an_event_is_matched_to_the_grant_whose_namespace_and_window_contain_it(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    first = flows.granted(target="prod/payments")
    second = flows.granted(target="prod/payments-eu")
    clock.advance(seconds=10)
    recorder.record(
        "prod",
        batch(
            event("in-first", clock(), namespace="payments"),
            event("in-second", clock(), namespace="payments-eu"),
            event("in-neither", clock(), namespace="checkout"),
            event("before-both", clock() - timedelta(hours=1), namespace="payments"),
        ),
    )
    assert recorded(store, first.id) == ["in-first"]
    assert recorded(store, second.id) == ["in-second"]
    assert recorder.record("staging", batch(event("other-cluster", clock()))) == 0


def test_held_events_are_recorded_by_the_clock_without_another_batch(
    recorder: ActionRecorder, grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    request = flows.approved()
    clock.advance(seconds=1)
    assert recorder.record("prod", batch(event("early-1", clock()), event("early-2", clock(), verb="get"))) == 0
    assert recorder.tick() == 0  # the grant is not committed yet: still held
    assert recorded(store, request.id) == []

    clock.advance(seconds=1)
    assert grants.grant(request.id) is not None
    assert recorder.tick() == 2  # no batch came: the clock matched them
    assert recorded(store, request.id) == ["early-1", "early-2"]
    assert recorder.tick() == 0
    assert store.redis.llen(store.actions.early_key("prod")) == 0


@pytest.mark.usefixtures("idle_after_10m")
def test_the_clock_ends_an_idle_grant_when_the_cluster_sends_nothing_more(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows, jobs: RecordingJobs
) -> None:
    grant = flows.granted()
    acted_at = clock()
    recorder.record("prod", batch(event("a1", acted_at, verb="get")))  # the webhook works; then silence

    clock.advance(minutes=9, seconds=59)
    recorder.tick()
    assert store.get(grant.id).state is State.ACTIVE  # type: ignore[union-attr]

    clock.advance(seconds=1)
    recorder.tick()
    ended = store.get(grant.id)
    assert ended is not None
    assert ended.state is State.REVOKED
    revoked = store.audit.for_request(grant.id)[-1]
    assert end_sentence(revoked.details) == f"idle for 10m: no action recorded on prod since {format_instant(acted_at)}"
    assert ("revoke", grant.id) in [(c.kind, c.request_id) for c in jobs.calls]


@pytest.mark.usefixtures("idle_after_10m")
def test_the_clock_ends_no_grant_the_cluster_has_not_been_heard_from_since_it_began(
    recorder: ActionRecorder, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    recorder.record("prod", batch())  # heard once, before the grant; then the webhook stops
    clock.advance(minutes=1)
    grant = flows.granted()
    clock.advance(minutes=30)
    recorder.tick()
    assert store.get(grant.id).state is State.ACTIVE  # type: ignore[union-attr]


def created(audit_id: str, at: datetime, resource: str, name: str, group: str = "", code: int = 201) -> dict[str, Any]:
    """An audit event of the holder creating ``resource`` (``serviceaccounts/token``: a TokenRequest)."""
    made = event(audit_id, at, verb="create", name=name)
    resource, _, subresource = resource.partition("/")
    made["objectRef"] = {"resource": resource, "namespace": "payments", "name": name, "apiGroup": group}
    if subresource:
        made["objectRef"]["subresource"] = subresource
    made["responseStatus"] = {"code": code}
    return made


def test_what_the_holder_made_that_grants_access_and_outlives_the_grant_is_flagged_at_its_end(
    recorder: ActionRecorder,
    grants: GrantService,
    cluster: FakeCluster,
    store: RequestStore,
    clock: FakeClock,
    flows: Flows,
) -> None:
    # Finding 8: the revoke deletes the grant's binding, and nothing the holder made with it. Upstream
    # admin lets a holder bind themselves again, mint a token or leave a token Secret behind.
    grant = flows.granted()
    rbac = "rbac.authorization.k8s.io"
    recorder.record(
        "prod",
        batch(
            created("rb-1", clock(), "rolebindings", "alice-forever", rbac),
            created("rb-2", clock(), "rolebindings", "cleaned-up", rbac),
            created("rb-3", clock(), "rolebindings", "refused", rbac, code=403),
            created("tok-1", clock(), "serviceaccounts/token", "deployer"),
            created("sec-1", clock(), "secrets", "deployer-token"),
            created("cm-1", clock(), "configmaps", "settings"),
        ),
    )
    cluster.foreign_bindings.add(("prod", "payments", "alice-forever"))  # "cleaned-up" was deleted again
    assert grant.expires_at is not None
    clock.at = grant.expires_at
    grants.revoke(grant.id)

    [summary] = entries_of(store, grant.id, Event.ACTIONS_SUMMARY)
    flagged = [(item["resource"], item["name"]) for item in summary["still_granting_access"]]
    assert flagged == [("rolebindings", "alice-forever"), ("serviceaccounts/token", "deployer"), ("secrets", "deployer-token")]  # fmt: skip
    said = event_text(store.audit.for_request(grant.id)[-1], grant)
    assert said is not None
    flagged_part = said.partition("still granting access after it")[2].partition("The first changes")[0]
    assert "`payments/alice-forever`" in flagged_part
    assert "`payments/deployer-token`" in flagged_part
    assert "cleaned-up" not in flagged_part, "deleted again before the end: nothing to flag"
    # And the review starts from it.
    prefill = review_prefill(summary)
    assert "still granting access after it" in prefill
    assert "- rolebindings payments/alice-forever" in prefill


def test_a_grant_whose_holder_made_nothing_that_grants_access_flags_nothing(
    recorder: ActionRecorder, grants: GrantService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    grant = flows.granted()
    recorder.record("prod", batch(event("d1", clock()), created("cm-1", clock(), "configmaps", "settings")))
    assert grant.expires_at is not None
    clock.at = grant.expires_at
    grants.revoke(grant.id)
    [summary] = entries_of(store, grant.id, Event.ACTIONS_SUMMARY)
    assert "still_granting_access" not in summary
