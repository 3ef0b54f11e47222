"""The request form offers only what the person is entitled to, and a submission is checked again
against that offer and the policy: anything edited outside the form is refused field by field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.domain.ids import SlackUserId
from bot.domain.roster import Roster
from bot.slack import blocks
from bot.slack.forms import (
    CHANNEL_INPUT,
    CLUSTER_INPUT,
    DURATION_INPUT,
    NAMESPACE_INPUT,
    NAMESPACE_TEXT_INPUT,
    REASON_INPUT,
    ROLE_INPUT,
    FormState,
    RequestForm,
    extension_choices,
    extension_field_problems,
    options_for,
    read_request_form,
    read_review_form,
)
from tests.fakes import ALICE, BOB, roster_with

ALICE_ID = SlackUserId(ALICE)


def values(**answers: Any) -> dict[str, Any]:
    """Slack's view state for the request form, from plain answers (None: left empty)."""
    fields = {
        CLUSTER_INPUT: ("static_select", "prod"),
        NAMESPACE_INPUT: ("static_select", "payments"),
        NAMESPACE_TEXT_INPUT: ("plain_text_input", None),
        ROLE_INPUT: ("static_select", "admin"),
        DURATION_INPUT: ("static_select", "1h"),
        REASON_INPUT: ("plain_text_input", "INC-4411 checkout pods crash-looping"),
        CHANNEL_INPUT: ("conversations_select", "C0000INCIDENT"),
    }
    state: dict[str, Any] = {}
    for block, (kind, default) in fields.items():
        answer = answers.get(block, default)
        if kind == "static_select":
            shaped = {"type": kind, "selected_option": None if answer is None else {"value": answer}}
        elif kind == "conversations_select":
            shaped = {"type": kind, "selected_conversation": answer}
        else:
            shaped = {"type": kind, "value": answer}
        state[block] = {block: shaped}
    return state


def test_alice_is_offered_only_her_entitlements(roster: Roster) -> None:
    options = options_for(roster, ALICE_ID)
    assert options.clusters == ("prod", "staging")
    assert options.roles == ("admin", "view")  # not cluster-admin: her entitlement names namespaces
    assert options.namespaces == ("payments",)
    assert options.namespace_patterns == ("payments-*",)
    assert not options.any_namespace
    assert max(options.durations) == timedelta(hours=4)  # view's maximum; admin's 1h is on offer too
    assert timedelta(hours=1) in options.durations
    assert min(options.durations) == timedelta(minutes=5)


def test_sre_may_type_any_namespace(roster: Roster) -> None:
    options = options_for(roster, SlackUserId(BOB))
    assert options.any_namespace
    assert "cluster-admin" in options.roles


def test_a_stranger_is_offered_nothing(roster: Roster) -> None:
    assert not options_for(roster, SlackUserId("U0STRANGER")).entitled


def test_a_good_submission_reads_back_as_a_request_form(roster: Roster) -> None:
    form = read_request_form(values(), roster, ALICE_ID)
    assert form == RequestForm(
        "prod", "payments", "admin", timedelta(hours=1), "INC-4411 checkout pods crash-looping", "C0000INCIDENT"
    )


def test_a_typed_namespace_matching_a_glob_is_accepted(roster: Roster) -> None:
    form = read_request_form(values(namespace=None, namespace_other="payments-eu"), roster, ALICE_ID)
    assert isinstance(form, RequestForm)
    assert form.namespace == "payments-eu"


@pytest.mark.parametrize(
    ("answers", "block", "says"),
    [
        ({CLUSTER_INPUT: "kube-system-cluster"}, CLUSTER_INPUT, "Choose one of the clusters offered."),
        ({ROLE_INPUT: "cluster-admin"}, ROLE_INPUT, "Choose one of the roles offered."),
        ({NAMESPACE_INPUT: "kube-system"}, NAMESPACE_INPUT, "Choose one of the namespaces offered."),
        (
            {NAMESPACE_INPUT: None, NAMESPACE_TEXT_INPUT: "kube-system"},
            NAMESPACE_TEXT_INPUT,
            "not entitled to 'admin' on prod/kube-system",
        ),
        (
            {NAMESPACE_INPUT: None, NAMESPACE_TEXT_INPUT: "Payments_EU"},
            NAMESPACE_TEXT_INPUT,
            "not a Kubernetes namespace name",
        ),
        ({NAMESPACE_TEXT_INPUT: "payments-eu"}, NAMESPACE_TEXT_INPUT, "not both"),
        ({NAMESPACE_INPUT: None}, NAMESPACE_INPUT, "granted in one namespace"),
        ({DURATION_INPUT: "99h"}, DURATION_INPUT, "Choose one of the durations offered."),
        ({DURATION_INPUT: "4h"}, DURATION_INPUT, "'admin' may be granted for at most 1h; ask for 1h or less."),
        ({REASON_INPUT: "short"}, REASON_INPUT, "too short"),
        ({REASON_INPUT: "x" * 501}, REASON_INPUT, "too long"),
        ({CHANNEL_INPUT: "D0000000001"}, CHANNEL_INPUT, "Choose a channel"),
    ],
)
def test_values_edited_outside_the_form_are_refused_on_their_field(
    roster: Roster, answers: dict[str, Any], block: str, says: str
) -> None:
    errors = read_request_form(values(**answers), roster, ALICE_ID)
    assert isinstance(errors, dict)
    assert says in errors[block]


def test_a_duration_under_the_roles_minimum_is_refused(roster: Roster) -> None:
    strict = roster_with(roles={"admin": {"min_duration": "15m"}})
    errors = read_request_form(values(duration="10m"), strict, ALICE_ID)
    assert errors == {DURATION_INPUT: "'admin' is granted for at least 15m; ask for 15m or more."}


def test_garbage_state_is_refused_not_crashed_on(roster: Roster) -> None:
    errors = read_request_form({"cluster": "prod", "role": {"role": 7}, 3: None}, roster, ALICE_ID)
    assert isinstance(errors, dict)
    assert {CLUSTER_INPUT, ROLE_INPUT, DURATION_INPUT, REASON_INPUT, CHANNEL_INPUT} <= errors.keys()


def test_extension_choices_never_exceed_the_room_left() -> None:
    assert extension_choices(timedelta(0)) == ()
    assert extension_choices(timedelta(minutes=20)) == (
        timedelta(minutes=5),
        timedelta(minutes=10),
        timedelta(minutes=15),
        timedelta(minutes=20),
    )


def test_a_review_names_its_request_and_has_a_sensible_length() -> None:
    good = {
        "review": {"review": {"type": "plain_text_input", "value": "restarted the payments pods, crash loop stopped"}}
    }
    assert not isinstance(read_review_form(good, "bg-7k2qxm"), dict)
    assert "names no request" in read_review_form(good, "nonsense")["review"]  # type: ignore[index]
    short = {"review": {"review": {"type": "plain_text_input", "value": "done"}}}
    assert "20 to 3000 characters" in read_review_form(short, "BG-7K2QXM")["review"]  # type: ignore[index]


# --- the form follows the cluster and role chosen in it ------------------------------------------------


def split_roster() -> Roster:
    """Alice may have admin only on prod (in payments), and view only on staging (in payments-*)."""
    return roster_with(
        entitlements=[
            {"group": "payments-devs", "roles": ["view", "admin"], "clusters": ["prod"], "namespaces": ["payments"]},
            {"group": "payments-devs", "roles": ["view"], "clusters": ["staging"], "namespaces": ["payments-*"]},
            {"group": "sre", "roles": ["view", "admin", "cluster-admin"], "clusters": ["prod", "staging"]},
        ],
        roles={"cluster-admin": {"min_duration": "15m"}},
    )


def test_the_roles_offered_follow_the_chosen_cluster() -> None:
    roster = split_roster()
    assert options_for(roster, ALICE_ID).roles == ("admin", "view")
    assert options_for(roster, ALICE_ID, "staging").roles == ("view",)
    assert options_for(roster, ALICE_ID, "prod").roles == ("admin", "view")


def test_the_namespaces_offered_follow_the_chosen_cluster_and_role() -> None:
    roster = split_roster()
    on_staging = options_for(roster, ALICE_ID, "staging", "view")
    assert (on_staging.namespaces, on_staging.namespace_patterns) == ((), ("payments-*",))
    on_prod = options_for(roster, ALICE_ID, "prod", "admin")
    assert (on_prod.namespaces, on_prod.namespace_patterns, on_prod.any_namespace) == (("payments",), (), False)
    assert not on_prod.typed_namespace_allowed


def test_a_role_not_entitled_on_the_chosen_cluster_is_dropped_from_the_choice() -> None:
    options = options_for(split_roster(), ALICE_ID, "staging", "admin")
    assert (options.cluster, options.role) == ("staging", None)


def test_durations_run_from_the_chosen_roles_minimum_to_its_maximum() -> None:
    roster = split_roster()
    admin = options_for(roster, ALICE_ID, "prod", "admin").durations
    assert (min(admin), max(admin)) == (timedelta(minutes=5), timedelta(hours=1))  # not view's 4h
    cluster_admin = options_for(roster, SlackUserId(BOB), "prod", "cluster-admin")
    assert cluster_admin.durations == tuple(timedelta(minutes=m) for m in (15, 30, 45, 60))
    assert cluster_admin.cluster_wide


def test_a_duration_the_chosen_role_does_not_allow_is_still_refused_on_submit() -> None:
    errors = read_request_form(values(duration="2h"), split_roster(), ALICE_ID)
    assert errors == {DURATION_INPUT: "'admin' may be granted for at most 1h; ask for 1h or less."}


def block(view: dict[str, Any], block_id: str) -> dict[str, Any] | None:
    return next((b for b in view["blocks"] if b.get("block_id") == block_id), None)


def test_cluster_and_role_selects_dispatch_their_choice_and_keep_it_when_rendered_again() -> None:
    roster = split_roster()
    state = FormState(cluster="prod", role="admin", duration="45m", reason="INC-1 payments down")
    view = blocks.request_modal(options_for(roster, ALICE_ID, "prod", "admin"), roster, state)
    for block_id, chosen in ((CLUSTER_INPUT, "prod"), (ROLE_INPUT, "admin"), (DURATION_INPUT, "45m")):
        found = block(view, block_id)
        assert found is not None
        assert found["element"]["initial_option"]["value"] == chosen
    assert block(view, CLUSTER_INPUT)["dispatch_action"] is True  # type: ignore[index]
    assert block(view, ROLE_INPUT)["dispatch_action"] is True  # type: ignore[index]
    assert block(view, REASON_INPUT)["element"]["initial_value"] == "INC-1 payments down"  # type: ignore[index]


def test_no_other_namespace_is_offered_when_only_listed_namespaces_are_allowed() -> None:
    roster = split_roster()
    view = blocks.request_modal(options_for(roster, ALICE_ID, "prod", "admin"), roster)
    assert block(view, NAMESPACE_TEXT_INPUT) is None
    assert [o["value"] for o in block(view, NAMESPACE_INPUT)["element"]["options"]] == ["payments"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("person", "cluster", "role", "hint"),
    [
        (ALICE_ID, "staging", "view", "A namespace matching payments-*."),
        (SlackUserId(BOB), "prod", "admin", "Any namespace: a valid Kubernetes name."),
    ],
)
def test_the_other_namespace_hint_says_what_may_actually_be_typed(
    person: SlackUserId, cluster: str, role: str, hint: str
) -> None:
    roster = split_roster()
    other = block(blocks.request_modal(options_for(roster, person, cluster, role), roster), NAMESPACE_TEXT_INPUT)
    assert other is not None
    assert other["hint"]["text"] == hint


def test_a_cluster_wide_role_asks_for_no_namespace() -> None:
    roster = split_roster()
    view = blocks.request_modal(options_for(roster, SlackUserId(BOB), "prod", "cluster-admin"), roster)
    assert block(view, NAMESPACE_INPUT) is None
    assert block(view, NAMESPACE_TEXT_INPUT) is None


def test_an_extension_form_is_checked_for_what_needs_no_lookup() -> None:
    good = {
        DURATION_INPUT: {DURATION_INPUT: {"type": "static_select", "selected_option": {"value": "30m"}}},
        REASON_INPUT: {REASON_INPUT: {"type": "plain_text_input", "value": "INC-4411 still mitigating"}},
    }
    assert extension_field_problems(good, "BG-7K2QXM") == {}
    assert REASON_INPUT in extension_field_problems(good, "nonsense")
    bad = {**good, DURATION_INPUT: {DURATION_INPUT: {"type": "static_select", "selected_option": {"value": "1x"}}}}
    assert extension_field_problems(bad, "BG-7K2QXM") == {DURATION_INPUT: "Choose one of the lengths offered."}


def test_a_review_carries_its_follow_ups_when_given() -> None:
    values = {
        "review": {"review": {"type": "plain_text_input", "value": "restarted the payments pods, crash loop stopped"}},
        "follow_ups": {"follow_ups": {"type": "plain_text_input", "value": "  INC-4412: fix the memory limit  "}},
    }
    form = read_review_form(values, "BG-7K2QXM")
    assert not isinstance(form, dict)
    assert form.follow_ups == "INC-4412: fix the memory limit"
    without = read_review_form({"review": values["review"]}, "BG-7K2QXM")
    assert not isinstance(without, dict)
    assert without.follow_ups == ""
