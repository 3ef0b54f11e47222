"""Who may approve, as the request card and the requester's reply name them, and the roles whose
approver groups are short: decided here, from the roster as resolved now, never by a renderer."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from bot.domain import policy
from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import AccessRequest, Approval
from bot.domain.roster import Roster
from tests.fakes import ALICE, BOB, CAROL, roster_with

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SRE = [f"U0000SRE{i:02d}" for i in range(9)]


def _roster() -> Roster:
    return roster_with(
        groups={"sre": SRE},
        people={u: {"kube_user": f"{u.lower()}@example.com"} for u in SRE},
    )


def _request(**fields: object) -> AccessRequest:
    base: dict[str, object] = {
        "id": RequestId("BG-7K2QXM"), "requester": SlackUserId(ALICE), "cluster": "prod", "namespace": "payments",
        "role": "admin", "duration": timedelta(hours=1), "reason": "INC-1 checkout is down", "channel": "C0000INCIDENT",
        "created_at": NOW, "updated_at": NOW, "approvals_required": 2,
    }  # fmt: skip
    base.update(fields)
    return AccessRequest(**base)  # type: ignore[arg-type]


def test_a_handful_are_named_then_the_rest_are_counted() -> None:
    named = policy.approvers_to_name(_roster(), _request(), lambda _: True)
    assert named.shown == tuple(SRE[:5])
    assert named.more == 4


def test_someone_who_left_slack_is_skipped_and_the_next_named() -> None:
    gone = {SRE[1], SRE[3]}
    named = policy.approvers_to_name(_roster(), _request(), lambda p: p not in gone)
    assert named.shown == (SRE[0], SRE[2], SRE[4], SRE[5], SRE[6])
    assert named.more == 2


def test_presence_is_asked_only_until_the_handful_is_found() -> None:
    asked: list[str] = []
    policy.approvers_to_name(_roster(), _request(), lambda p: asked.append(p) or True)
    assert asked == SRE[:5]


def test_those_who_approved_already_and_the_requester_are_not_named() -> None:
    roster = roster_with(groups={"sre": [BOB, CAROL, ALICE]})
    request = _request(approvals=(Approval(by=SlackUserId(BOB), at=NOW),))
    named = policy.approvers_to_name(roster, request, lambda _: True)
    assert named == policy.NamedApprovers((SlackUserId(CAROL),), 0)


def test_everyone_gone_names_nobody_without_an_error() -> None:
    assert policy.approvers_to_name(_roster(), _request(), lambda _: False) == policy.NamedApprovers((), 0)


def test_no_role_is_short_in_a_roster_that_passes_its_check() -> None:
    assert policy.approver_shortfalls(roster_with()) == []


def test_a_group_that_resolves_short_of_a_roles_approvals_is_a_shortfall() -> None:
    resolved = dataclasses.replace(roster_with(), groups={**roster_with().groups, "sre": (SlackUserId(BOB),)})
    shortfalls = {s.role: s for s in policy.approver_shortfalls(resolved)}
    assert set(shortfalls) == {"admin", "cluster-admin"}
    assert str(shortfalls["admin"]) == (
        "admin needs 2 approvals but its approver groups (sre) hold 1 person now, "
        "so nothing asked for it can be approved."
    )


def test_a_self_service_role_with_nobody_to_review_is_a_shortfall() -> None:
    roster = roster_with(roles={"emergency": {"cluster_role": "admin", "scope": "namespace", "max_duration": "1h",
                                              "approvals": 0, "approvers": ["sre"]}})  # fmt: skip
    resolved = dataclasses.replace(roster, groups={**roster.groups, "sre": ()})
    shortfalls = {s.role: str(s) for s in policy.approver_shortfalls(resolved)}
    assert (
        shortfalls["emergency"]
        == "emergency is self-service, but its approver groups (sre) hold nobody to review it now."
    )


def test_members_without_a_kube_user_do_not_count() -> None:
    roster = roster_with(identity={"kube_user_from": "email"}, groups={"sre": [BOB, "U0NOPERSON"]})
    resolved = dataclasses.replace(roster, people={k: v for k, v in roster.people.items() if k != BOB})
    assert {s.role for s in policy.approver_shortfalls(resolved)} >= {"admin"}
