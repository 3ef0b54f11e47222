"""What people do with requests, through AccessService on fakeredis with recorded jobs."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest

from bot.domain import policy
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.durations import parse_duration
from bot.domain.ids import RequestId, SlackUserId, parse_request_id
from bot.domain.lifecycle import State
from bot.domain.policy import Ask
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.errors import Refused
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import ALICE, BOB, CAROL, JobCall, RecordingJobs, example_roster, roster_with
from tests.services.conftest import REASON, Flows

MALLORY = SlackUserId("U0000MALLORY")


def events(store: RequestStore, request_id: str) -> list[tuple[str, str]]:
    return [(e.event, e.actor) for e in store.audit.for_request(request_id)]


# --- submit ----------------------------------------------------------------------------------


def test_submit_stores_a_pending_request_and_announces_it(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, clock: FakeClock
) -> None:
    request = access.submit(
        Ask(SlackUserId(ALICE), "prod", "payments", "admin", timedelta(minutes=30), f"  {REASON}  ")
    )
    assert parse_request_id(request.id) == request.id
    assert request.state is State.PENDING
    assert request.reason == REASON
    assert request.channel == "C0000INCIDENT"  # the roster's incident channel
    assert request.approvals_required == 2
    assert request.created_at == clock()
    assert store.get(request.id) == request
    entries = store.audit.for_request(request.id)
    assert [(e.event, e.actor) for e in entries] == [(Event.REQUESTED, ALICE)]
    assert entries[0].details["role"] == "admin"
    assert entries[0].details["duration"] == "30m"
    assert entries[0].details["reason"] == REASON
    assert [c.kind for c in jobs.calls] == ["publish"]


def test_submit_to_a_chosen_channel_the_roster_lists(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock
) -> None:
    access = AccessService(store, FixedRoster(roster_with(request_channels=["C0OTHERROOM"])), jobs, clock)
    request = access.submit(
        Ask(SlackUserId(ALICE), "prod", "payments", "view", timedelta(hours=1), REASON, "C0OTHERROOM")
    )
    assert request.channel == "C0OTHERROOM"


def test_a_channel_the_roster_does_not_list_is_refused(access: AccessService, store: RequestStore) -> None:
    with pytest.raises(Refused, match="only in the incident channel or a channel the roster lists"):
        access.submit(Ask(SlackUserId(ALICE), "prod", "payments", "view", timedelta(hours=1), REASON, "C0MYOWNROOM"))
    assert store.recent() == []


def test_the_same_submission_delivered_twice_is_one_request(
    access: AccessService, store: RequestStore, jobs: RecordingJobs
) -> None:
    ask = Ask(SlackUserId(ALICE), "prod", "payments", "admin", timedelta(minutes=30), REASON)
    first = access.submit(ask, submission="V0FORM00001")
    again = access.submit(ask, submission="V0FORM00001")
    assert again.id == first.id
    assert [r.id for r in store.recent()] == [first.id]
    assert events(store, first.id) == [(Event.REQUESTED, ALICE)]
    assert [c.kind for c in jobs.calls] == ["publish"]
    other = access.submit(ask, submission="V0FORM00002")  # another form is another request
    assert other.id != first.id


def test_a_request_holding_a_submissions_id_by_chance_is_not_taken_for_it(
    access: AccessService, store: RequestStore
) -> None:
    from bot.domain.ids import request_id_for

    unrelated = access.submit(Ask(SlackUserId(BOB), "prod", "payments", "view", timedelta(hours=1), REASON))
    store.redis.rename(store.key(unrelated.id), store.key(request_id_for("V0FORM00003")))  # as if they collided
    mine = access.submit(Ask(SlackUserId(ALICE), "prod", "payments", "admin", timedelta(minutes=30), REASON), submission="V0FORM00003")  # fmt: skip
    assert mine.requester == ALICE
    assert mine.id != request_id_for("V0FORM00003")


REFUSALS = [
    ("stranger", MALLORY, "prod", "payments", "view", "1h", REASON,
     "You are not in the breakglass roster; ask your platform team to add you."),
    ("not-entitled-namespace", ALICE, "prod", "kube-system", "view", "1h", REASON,
     "You are not entitled to 'view' on prod/kube-system; see /breakglass help for what you may ask."),
    ("unknown-cluster", ALICE, "qa", "payments", "view", "1h", REASON,
     "There is no cluster 'qa'; known clusters: prod, staging."),
    ("unknown-role", ALICE, "prod", "payments", "owner", "1h", REASON,
     "There is no role 'owner'; known roles: admin, cluster-admin, view."),
    ("missing-namespace", ALICE, "prod", None, "view", "1h", REASON,
     "The role 'view' is granted in one namespace; write it as prod/<namespace>."),
    ("too-long", ALICE, "prod", "payments", "admin", "2h", REASON, "'admin' may be granted for at most 1h; ask for 1h or less."),
    ("too-short", ALICE, "prod", "payments", "view", "1m", REASON, "'view' is granted for at least 5m; ask for 5m or more."),
    ("reason-too-short", ALICE, "prod", "payments", "view", "1h", "fix",
     "The reason is too short (3 characters); say what is broken in at least 10."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("requester", "cluster_", "namespace", "role", "duration", "reason", "says"),
    [c[1:] for c in REFUSALS],
    ids=[c[0] for c in REFUSALS],
)
def test_refused_submit_says_why_and_changes_nothing(
    access: AccessService,
    redis_client: fakeredis.FakeRedis,
    jobs: RecordingJobs,
    requester: str,
    cluster_: str,
    namespace: str | None,
    role: str,
    duration: str,
    reason: str,
    says: str,
) -> None:
    with pytest.raises(Refused) as raised:
        access.submit(Ask(SlackUserId(requester), cluster_, namespace, role, parse_duration(duration), reason))
    assert raised.value.reason == says
    assert redis_client.keys("*") == []  # no request, no index, no audit entry
    assert jobs.calls == []


# --- approving ---------------------------------------------------------------------------------


def test_two_approvals_approve_and_enqueue_the_grant_once(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, flows: Flows
) -> None:
    request = flows.submit("admin", duration=timedelta(minutes=30))
    first = access.approve(request.id, SlackUserId(BOB))
    assert (first.decided, first.counted, first.required) == (False, 1, 2)
    assert jobs.of("grant") == []
    second = access.approve(request.id, SlackUserId(CAROL))
    assert (second.decided, second.counted) == (True, 2)
    assert second.request.state is State.APPROVED
    assert store.get(request.id) == second.request
    assert second.request.approved_by == (BOB, CAROL)
    assert events(store, request.id) == [(Event.REQUESTED, ALICE), (Event.APPROVED, BOB), (Event.APPROVED, CAROL)]
    assert [c.request_id for c in jobs.of("grant")] == [request.id]
    assert len(jobs.queued("publish", request.id)) == 1  # announced once; later publishes fold into that job


def test_self_service_role_is_approved_at_once_by_the_system(
    store: RequestStore, jobs: RecordingJobs, clock: FakeClock
) -> None:
    roster = FixedRoster(roster_with(roles={"view": {"approvals": 0}}))
    access = AccessService(store, roster, jobs, clock)
    request = access.submit(Ask(SlackUserId(ALICE), "prod", "payments", "view", timedelta(hours=1), REASON))
    assert request.state is State.APPROVED
    assert request.self_service
    entries = store.audit.for_request(request.id)
    assert [(e.event, e.actor) for e in entries] == [(Event.REQUESTED, ALICE), (Event.APPROVED, SYSTEM_ACTOR)]
    assert entries[1].details["self_service"] is True
    assert [c.request_id for c in jobs.of("grant")] == [request.id]


def test_deny_ends_the_request_without_a_grant(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, flows: Flows
) -> None:
    request = flows.submit()
    outcome = access.deny(request.id, SlackUserId(CAROL))
    assert outcome.request.state is State.DENIED
    assert outcome.request.decided_by == CAROL
    assert outcome.request.ended_at is not None
    assert store.get(request.id) == outcome.request
    assert events(store, request.id)[-1] == (Event.DENIED, CAROL)
    assert jobs.of("grant") == []
    with pytest.raises(Refused, match="already denied"):
        access.approve(request.id, SlackUserId(BOB))


# The listener that called writes every refused attempt to the audit log (tests/slack); the
# service only refuses, changing nothing.


def test_approving_your_own_request_is_refused_and_changes_nothing(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, flows: Flows
) -> None:
    request = flows.submit(requester=BOB, target="prod/ingress")
    with pytest.raises(Refused) as raised:
        access.approve(request.id, SlackUserId(BOB))
    assert raised.value.reason == "You cannot approve or deny your own request; another approver must."
    assert store.get(request.id) == request
    assert events(store, request.id) == [(Event.REQUESTED, BOB)]
    assert jobs.of("grant") == []


def test_non_approver_is_refused_and_changes_nothing(access: AccessService, store: RequestStore, flows: Flows) -> None:
    request = flows.submit()
    with pytest.raises(Refused, match="not in the breakglass roster"):
        access.approve(request.id, MALLORY)
    assert store.get(request.id) == request
    assert events(store, request.id) == [(Event.REQUESTED, ALICE)]


def test_approving_after_the_deadline_times_the_request_out_instead(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, clock: FakeClock, flows: Flows
) -> None:
    request = flows.submit()
    clock.advance(minutes=30)  # the deadline; the sweep has not run (workers down, or between runs)
    with pytest.raises(Refused) as raised:
        access.approve(request.id, SlackUserId(BOB))
    assert raised.value.reason == (
        f"{request.id} lapsed undecided after 30m; it can no longer be approved, so the requester must ask again."
    )
    stored = store.get(request.id)
    assert stored is not None
    assert (stored.state, stored.approved_by, stored.ended_at) == (State.TIMED_OUT, (), clock())
    # The same entry the sweep writes, so the thread and the root message say so.
    (timed_out,) = [e for e in store.audit.for_request(request.id) if e.event == Event.TIMED_OUT]
    assert (timed_out.actor, timed_out.details) == (SYSTEM_ACTOR, {"after": "30m"})
    assert events(store, request.id) == [(Event.REQUESTED, ALICE), (Event.TIMED_OUT, SYSTEM_ACTOR)]
    assert jobs.of("grant") == []
    assert len(jobs.queued("publish", request.id)) == 1
    assert access.time_out(request.id) is None  # the sweep, arriving later, finds nothing to do


def test_the_last_approval_after_the_deadline_grants_nothing(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, clock: FakeClock, flows: Flows
) -> None:
    request = flows.submit("admin", duration=timedelta(minutes=30))
    access.approve(request.id, SlackUserId(BOB))
    clock.advance(hours=3)
    with pytest.raises(Refused, match="lapsed undecided"):
        access.approve(request.id, SlackUserId(CAROL))
    stored = store.get(request.id)
    assert stored is not None
    assert (stored.state, stored.approved_by) == (State.TIMED_OUT, (BOB,))
    assert jobs.of("grant") == []


def test_denying_after_the_deadline_times_the_request_out(
    access: AccessService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    request = flows.submit()
    clock.advance(minutes=45)
    with pytest.raises(Refused, match="lapsed undecided"):
        access.deny(request.id, SlackUserId(CAROL))
    stored = store.get(request.id)
    assert stored is not None
    assert (stored.state, stored.decided_by) == (State.TIMED_OUT, None)


def test_approving_a_request_that_timed_out_is_refused(
    access: AccessService, store: RequestStore, clock: FakeClock, flows: Flows
) -> None:
    request = flows.submit()
    clock.advance(minutes=31)
    access.time_out(request.id)
    with pytest.raises(Refused) as raised:
        access.approve(request.id, SlackUserId(BOB))
    assert raised.value.reason == f"{request.id} is already timed out; there is nothing left to decide."
    assert events(store, request.id) == [(Event.REQUESTED, ALICE), (Event.TIMED_OUT, SYSTEM_ACTOR)]


def test_approving_an_active_grant_is_refused_and_changes_nothing(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, flows: Flows
) -> None:
    active = flows.granted()
    grants_before = len(jobs.of("grant"))
    with pytest.raises(Refused) as raised:
        access.approve(active.id, SlackUserId(CAROL))
    assert raised.value.reason == f"{active.id} is already active; there is nothing left to decide."
    assert store.get(active.id) == active
    assert len(jobs.of("grant")) == grants_before


def test_an_ask_too_few_approvers_could_approve_is_refused_at_once(
    access: AccessService, redis_client: fakeredis.FakeRedis, jobs: RecordingJobs
) -> None:
    # Bob is one of two sre members; cluster-admin needs two approvals and he cannot give his own.
    with pytest.raises(Refused) as raised:
        access.submit(Ask(SlackUserId(BOB), "prod", None, "cluster-admin", timedelta(minutes=30), REASON))
    assert raised.value.reason == (
        "'cluster-admin' needs 2 approvals but only 1 member of sre other than you may approve it, "
        "so it could only time out; ask your platform team to add approvers to sre."
    )
    assert redis_client.keys("*") == []
    assert jobs.calls == []


def test_a_self_service_ask_nobody_else_could_review_is_refused_at_once(
    access: AccessService, roster: FixedRoster, redis_client: fakeredis.FakeRedis, jobs: RecordingJobs
) -> None:
    # Bob is the only member of sre: self-service needs no approval, but only someone else's review
    # would ever close it.
    roster.roster = roster_with(groups={"sre": [BOB]}, roles={"view": {"approvals": 0}, "admin": {"approvals": 1},
                                                               "cluster-admin": {"approvals": 1}})  # fmt: skip
    with pytest.raises(Refused) as raised:
        access.submit(Ask(SlackUserId(BOB), "prod", "ingress", "view", timedelta(minutes=30), REASON))
    assert raised.value.reason == (
        "'view' is self-service, but nobody in sre other than you could review it afterwards; "
        "ask your platform team to add approvers to sre."
    )
    assert redis_client.keys("*") == []
    assert jobs.calls == []


def test_an_extension_too_few_approvers_could_approve_is_refused(
    access: AccessService, store: RequestStore, roster: FixedRoster, flows: Flows
) -> None:
    # Carol got admin while Erin was in sre too; Erin has left, so only Bob could approve more time.
    erin = "U00000000ERIN"
    roster.roster = roster_with(groups={"sre": [BOB, CAROL, erin]}, people={erin: {"kube_user": "erin@example.com"}})
    request = flows.submit("admin", duration=timedelta(minutes=30), requester=CAROL)
    access.approve(request.id, SlackUserId(BOB))
    access.approve(request.id, SlackUserId(erin))
    active = flows.grants.grant(request.id)
    assert active is not None
    roster.roster = example_roster()
    with pytest.raises(Refused, match="'admin' needs 2 approvals but only 1 member of sre other than you"):
        access.extend(active.id, SlackUserId(CAROL), timedelta(minutes=15), REASON)
    assert [r.id for r in store.recent()] == [active.id]


def test_approving_twice_is_refused_and_counts_once(access: AccessService, store: RequestStore, flows: Flows) -> None:
    request = flows.submit("admin", duration=timedelta(minutes=30))
    access.approve(request.id, SlackUserId(BOB))
    with pytest.raises(Refused, match="already approved"):
        access.approve(request.id, SlackUserId(BOB))
    stored = store.get(request.id)
    assert stored is not None
    assert stored.approved_by == (BOB,)
    assert events(store, request.id) == [(Event.REQUESTED, ALICE), (Event.APPROVED, BOB)]


def test_unknown_request_is_refused(access: AccessService) -> None:
    with pytest.raises(Refused) as raised:
        access.approve(RequestId("BG-222222"), SlackUserId(BOB))
    assert raised.value.reason == "There is no request BG-222222; /breakglass list shows yours."


# --- ending ------------------------------------------------------------------------------------


def test_cancel_by_the_requester(access: AccessService, store: RequestStore, flows: Flows) -> None:
    request = flows.submit()
    cancelled = access.cancel(request.id, SlackUserId(ALICE))
    assert cancelled.state is State.CANCELLED
    assert cancelled.decided_by == ALICE
    assert store.get(request.id) == cancelled
    assert events(store, request.id)[-1] == (Event.CANCELLED, ALICE)


def test_cancel_by_someone_else_is_refused_and_changes_nothing(
    access: AccessService, store: RequestStore, flows: Flows
) -> None:
    request = flows.submit()
    with pytest.raises(Refused, match="Only the requester may cancel"):
        access.cancel(request.id, SlackUserId(BOB))
    assert store.get(request.id) == request
    assert events(store, request.id) == [(Event.REQUESTED, ALICE)]


def test_revoke_changes_the_state_before_the_revoke_job_is_queued(
    store: RequestStore, roster: FixedRoster, clock: FakeClock, flows: Flows
) -> None:
    seen: list[State | None] = []

    def observe(call: JobCall) -> None:
        if call.kind == "revoke":
            current = store.get(call.request_id)
            seen.append(current.state if current else None)

    jobs = RecordingJobs(on_enqueue=observe)
    access = AccessService(store, roster, jobs, clock)
    request = Flows(access, flows.grants).approved()
    revoked = access.revoke(request.id, SlackUserId(BOB))
    assert revoked.state is State.REVOKED
    assert revoked.decided_by == BOB
    assert seen == [State.REVOKED]
    assert [(c.kind, c.at) for c in jobs.of("revoke")] == [("revoke", None)]  # now, not at expiry
    assert events(store, request.id)[-1] == (Event.REVOKED, BOB)


def test_revoke_by_someone_without_the_right_is_refused_as_if_there_were_no_such_request(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, flows: Flows
) -> None:
    request = flows.approved()
    with pytest.raises(Refused) as raised:
        access.revoke(request.id, MALLORY)
    assert raised.value.reason == f"There is no request {request.id}; /breakglass list shows yours."
    assert store.get(request.id) == request
    assert jobs.of("revoke") == []


def test_cancel_revoke_and_extend_answer_a_stranger_as_for_an_id_that_does_not_exist(
    access: AccessService, store: RequestStore, flows: Flows
) -> None:
    pending = flows.submit()
    grant = flows.granted()
    extension = access.extend(grant.id, SlackUserId(ALICE), timedelta(minutes=30), REASON)
    missing = RequestId("BG-222222")
    attempts = {
        "cancel": lambda rid: access.cancel(rid, MALLORY),
        "revoke": lambda rid: access.revoke(rid, MALLORY),
        "extend": lambda rid: access.extend(rid, MALLORY, timedelta(minutes=15), REASON),
        "status": lambda rid: access.get_visible(rid, MALLORY),
    }
    before = {r.id: r for r in store.recent()}
    for action, attempt in attempts.items():
        for request_id in (pending.id, grant.id, extension.id, missing):
            with pytest.raises(Refused) as raised:
                attempt(request_id)
            # Word for word the answer for an id nobody holds: neither the owner, the state nor
            # the grant an extension belongs to may show through.
            assert raised.value.reason == f"There is no request {request_id}; /breakglass list shows yours.", action
    assert {r.id: r for r in store.recent()} == before


def test_an_approver_who_may_see_a_request_is_told_why_they_cannot_cancel_it(
    access: AccessService, flows: Flows
) -> None:
    request = flows.submit()
    with pytest.raises(Refused) as raised:
        access.cancel(request.id, SlackUserId(BOB))
    assert raised.value.reason == f"Only the requester may cancel {request.id}."


def test_pending_request_times_out_after_request_timeout(
    access: AccessService, store: RequestStore, jobs: RecordingJobs, clock: FakeClock, flows: Flows
) -> None:
    request = flows.submit()
    clock.advance(minutes=29, seconds=59)
    assert access.time_out(request.id) is None
    assert store.get(request.id) == request
    clock.advance(seconds=1)
    timed_out = access.time_out(request.id)
    assert timed_out is not None
    assert timed_out.state is State.TIMED_OUT
    assert timed_out.ended_at == clock()
    assert events(store, request.id)[-1] == (Event.TIMED_OUT, SYSTEM_ACTOR)
    assert access.time_out(request.id) is None  # once


def test_decided_request_does_not_time_out(access: AccessService, clock: FakeClock, flows: Flows) -> None:
    request = flows.approved()
    clock.advance(hours=2)
    assert access.time_out(request.id) is None


# --- after ---------------------------------------------------------------------------------------


REVIEW = "Restarted the checkout pods; OOM from a bad config."


def test_review_by_the_holder_of_an_ended_approved_grant(
    access: AccessService, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))
    reviewed = access.write_review(grant.id, SlackUserId(ALICE), REVIEW)
    assert reviewed.review is not None
    assert reviewed.review.by == ALICE
    assert not reviewed.review_owed
    assert events(store, grant.id)[-1] == (Event.REVIEW_WRITTEN, ALICE)
    with pytest.raises(Refused, match="already has a review"):
        access.write_review(grant.id, SlackUserId(BOB), "A second review should not replace the first.")


def test_a_review_with_follow_ups_past_the_limit_is_refused_and_not_written(
    access: AccessService, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))
    with pytest.raises(Refused) as raised:
        access.write_review(grant.id, SlackUserId(ALICE), REVIEW, follow_ups="x" * (policy.FOLLOW_UPS_MAX + 1))
    assert raised.value.reason == f"Follow-ups are at most {policy.FOLLOW_UPS_MAX} characters."
    assert (Event.REVIEW_WRITTEN, ALICE) not in events(store, grant.id)


def test_an_approver_may_review_an_ended_approved_grant(access: AccessService, flows: Flows) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))
    reviewed = access.write_review(grant.id, SlackUserId(CAROL), REVIEW)
    assert reviewed.review is not None
    assert reviewed.review.by == CAROL


def test_a_review_while_the_grant_is_active_is_refused(
    access: AccessService, store: RequestStore, flows: Flows
) -> None:
    grant = flows.granted()
    with pytest.raises(Refused) as raised:
        access.write_review(grant.id, SlackUserId(ALICE), REVIEW)
    assert raised.value.reason == (
        f"{grant.id} is still active; a review is written once the grant has ended, "
        "so revoke it or wait until it expires."
    )
    assert store.get(grant.id) == grant


def test_review_of_a_request_never_granted_is_refused(access: AccessService, flows: Flows) -> None:
    request = flows.submit()
    with pytest.raises(Refused, match="never granted"):
        access.write_review(request.id, SlackUserId(ALICE), "Nothing happened here at all, really.")


def test_a_review_of_someone_elses_request_does_not_confirm_it_exists(access: AccessService, flows: Flows) -> None:
    grant = flows.granted()
    access.revoke(grant.id, SlackUserId(ALICE))
    with pytest.raises(Refused) as raised:
        access.write_review(grant.id, MALLORY, REVIEW)
    assert raised.value.reason == f"There is no request {grant.id}; /breakglass list shows yours."


@pytest.fixture
def self_service(roster: FixedRoster) -> FixedRoster:
    roster.roster = roster_with(roles={"view": {"approvals": 0}})
    return roster


@pytest.mark.usefixtures("self_service")
class TestSelfServiceReview:
    """Nobody checked a self-service grant before it was used, so an approver must check it after."""

    def ended(self, access: AccessService, flows: Flows) -> RequestId:
        grant = flows.granted()
        assert grant.self_service
        access.revoke(grant.id, SlackUserId(ALICE))
        return grant.id

    def test_the_holders_account_is_kept_but_the_review_stays_owed(
        self, access: AccessService, store: RequestStore, flows: Flows
    ) -> None:
        grant_id = self.ended(access, flows)
        written = access.write_review(grant_id, SlackUserId(ALICE), REVIEW)
        assert written.review is None
        assert written.review_owed
        assert written.holder_account is not None
        assert (written.holder_account.by, written.holder_account.text) == (ALICE, REVIEW)
        (entry,) = [e for e in store.audit.for_request(grant_id) if e.event == Event.REVIEW_WRITTEN]
        assert (entry.actor, entry.details) == (ALICE, {"review": REVIEW, "holder_account": True})
        with pytest.raises(Refused) as raised:
            access.write_review(grant_id, SlackUserId(ALICE), "Trying to close my own review after all.")
        assert raised.value.reason == (
            f"You have already written your account of {grant_id}; an approver of 'view' must now review it."
        )

    def test_an_approvers_review_closes_it(self, access: AccessService, store: RequestStore, flows: Flows) -> None:
        grant_id = self.ended(access, flows)
        access.write_review(grant_id, SlackUserId(ALICE), REVIEW)
        reviewed = access.write_review(grant_id, SlackUserId(BOB), "Warranted: INC-4411; only pods were restarted.")
        assert reviewed.review is not None
        assert reviewed.review.by == BOB
        assert not reviewed.review_owed
        assert reviewed.holder_account is not None  # the holder's account stays beside it
        assert events(store, grant_id)[-1] == (Event.REVIEW_WRITTEN, BOB)

    def test_an_approver_may_review_without_the_holders_account(self, access: AccessService, flows: Flows) -> None:
        grant_id = self.ended(access, flows)
        reviewed = access.write_review(grant_id, SlackUserId(CAROL), "Warranted: INC-4411; only pods were restarted.")
        assert reviewed.review is not None
        assert reviewed.review.by == CAROL

    def test_nobody_reviews_it_while_it_is_active(self, access: AccessService, flows: Flows) -> None:
        grant = flows.granted()
        with pytest.raises(Refused, match="is still active; a review is written once the grant has ended"):
            access.write_review(grant.id, SlackUserId(BOB), "Looks fine to me so far, honestly.")

    def test_reviews_owed_lists_it_for_approvers_and_for_the_holder_until_they_wrote(
        self, access: AccessService, flows: Flows
    ) -> None:
        active = flows.granted()
        assert access.reviews_owed(SlackUserId(BOB)) == []  # not before it ends
        access.revoke(active.id, SlackUserId(ALICE))
        assert [r.id for r in access.reviews_owed(SlackUserId(BOB))] == [active.id]
        assert [r.id for r in access.reviews_owed(SlackUserId(CAROL))] == [active.id]
        assert [r.id for r in access.reviews_owed(SlackUserId(ALICE))] == [active.id]
        assert access.reviews_owed(MALLORY) == []
        access.write_review(active.id, SlackUserId(ALICE), REVIEW)
        assert access.reviews_owed(SlackUserId(ALICE)) == []
        assert [r.id for r in access.reviews_owed(SlackUserId(BOB))] == [active.id]
        access.write_review(active.id, SlackUserId(BOB), "Warranted: INC-4411; only pods were restarted.")
        assert access.reviews_owed(SlackUserId(BOB)) == access.reviews_owed(SlackUserId(CAROL)) == []


def test_others_requests_are_invisible_to_strangers(access: AccessService, flows: Flows) -> None:
    request = flows.submit()
    assert access.get_visible(request.id, SlackUserId(ALICE)) == request
    assert access.get_visible(request.id, SlackUserId(BOB)) == request
    with pytest.raises(Refused) as raised:
        access.get_visible(request.id, MALLORY)
    assert raised.value.reason == f"There is no request {request.id}; /breakglass list shows yours."


def test_listing_shows_mine_and_those_awaiting_me(access: AccessService, flows: Flows) -> None:
    request = flows.submit("admin", duration=timedelta(minutes=30))
    assert access.listing(SlackUserId(ALICE)) == ([request], [])
    assert access.listing(SlackUserId(BOB)) == ([], [request])
    access.approve(request.id, SlackUserId(BOB))
    assert access.listing(SlackUserId(BOB))[1] == []  # already has Bob's approval
    assert [r.id for r in access.listing(SlackUserId(CAROL))[1]] == [request.id]


def test_a_lapsed_request_no_longer_waits_for_approvers(access: AccessService, clock: FakeClock, flows: Flows) -> None:
    request = flows.submit()
    assert [r.id for r in access.listing(SlackUserId(BOB))[1]] == [request.id]
    clock.advance(minutes=30)  # the deadline, before any sweep has timed it out
    assert access.listing(SlackUserId(BOB))[1] == []
