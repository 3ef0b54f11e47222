"""The roster's trust rules: protected namespaces only by exact name, one kube_user per person, no
system identities, and a roster file that cannot be read is always a RosterError."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain import policy
from bot.domain.ids import SlackUserId
from bot.domain.roster import RosterError, load_roster_file, parse_roster
from bot.roster_source import RosterFile
from tests.conftest import EXAMPLE_ROSTER
from tests.fakes import ALICE, BOB, CAROL, access_request, example_roster_data, roster_from

EXAMPLE = EXAMPLE_ROSTER.read_text(encoding="utf-8")


def ask(requester: str, cluster: str, namespace: str, role: str = "view") -> policy.Ask:
    return policy.Ask(SlackUserId(requester), cluster, namespace, role, timedelta(minutes=30))


def problems(text: str) -> list[str]:
    with pytest.raises(RosterError) as raised:
        parse_roster(text)
    return [str(p) for p in raised.value.problems]


# --- finding 2: protected namespaces ------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "ops-bot"])
def test_an_entitlement_without_namespaces_does_not_reach_protected_ones(namespace: str) -> None:
    data = example_roster_data()
    data["bot_namespace"] = "ops-bot"
    roster = roster_from(data)
    # sre's entitlement names no namespaces: any namespace, but not these.
    assert policy.evaluate_request(roster, ask(BOB, "prod", "checkout"))
    refused = policy.evaluate_request(roster, ask(BOB, "prod", namespace))
    assert not refused
    assert "not entitled" in refused.reason


def test_the_bot_namespace_defaults_to_breakglass_system() -> None:
    data = example_roster_data()
    del data["bot_namespace"]  # the example shows it at its default
    roster = roster_from(data)
    assert roster.bot_namespace == "breakglass-system"
    assert not policy.evaluate_request(roster, ask(BOB, "prod", "breakglass-system"))


def test_a_glob_does_not_reach_a_protected_namespace_but_its_exact_name_does() -> None:
    data = example_roster_data()
    data["entitlements"][0]["namespaces"] = ["*", "kube-sys*"]
    assert not policy.evaluate_request(roster_from(data), ask(ALICE, "prod", "kube-system"))
    data["entitlements"][0]["namespaces"] = ["payments", "kube-system"]
    assert policy.evaluate_request(roster_from(data), ask(ALICE, "prod", "kube-system"))


def test_the_token_namespace_is_protected_in_every_process(tmp_path: Path) -> None:
    roster_file = tmp_path / "roster.yaml"
    roster_file.write_text(EXAMPLE)
    roster = RosterFile(roster_file, token_namespace="bg-tokens")()
    assert roster.is_protected("bg-tokens")
    assert not policy.evaluate_request(roster, ask(BOB, "prod", "bg-tokens"))
    assert policy.evaluate_request(roster, ask(BOB, "prod", "bg-tokenz"))


def test_roster_check_warns_about_entitlements_that_would_reach_protected_namespaces() -> None:
    data = example_roster_data()
    data["entitlements"][0]["namespaces"] = ["payments", "kube-*", "breakglass-*"]
    import yaml

    roster = parse_roster(yaml.safe_dump(data, sort_keys=False))
    warnings = [(w.place, w.message) for w in roster.warnings]
    assert (
        "entitlements[0].namespaces[1]",
        "'kube-*' matches protected namespaces (kube-system, kube-public, kube-node-lease), "
        "which only their exact name grants",
    ) in warnings
    assert (
        "entitlements[0].namespaces[2]",
        "'breakglass-*' matches protected namespaces (breakglass-system), which only their exact name grants",
    ) in warnings
    assert any(place == "entitlements[1]" and "no namespaces" in message for place, message in warnings)


def test_a_bot_namespace_must_be_a_namespace_name() -> None:
    assert problems(EXAMPLE.replace("bot_namespace: breakglass-system", "bot_namespace: Not_A_Namespace")) == [
        "line 56: bot_namespace: 'Not_A_Namespace' is not a namespace name"
    ]


# --- findings 3 and 13: one kube_user per person, no system identities ---------------------------


def test_roster_check_refuses_two_people_with_one_kube_user() -> None:
    text = EXAMPLE.replace("U00000CAROL: {kube_user: carol@example.com", "U00000CAROL: {kube_user: bob@example.com")
    assert problems(text) == [
        "line 42: people.U00000CAROL.kube_user: 'bob@example.com' is also U0000000BOB's kube_user"
    ]


@pytest.mark.parametrize("kube_user", ["system:admin", "system:serviceaccount:kube-system:default", "system:node:n1"])
def test_roster_check_refuses_system_kube_users(kube_user: str) -> None:
    text = EXAMPLE.replace("{kube_user: alice@example.com}", f"{{kube_user: '{kube_user}'}}")
    assert problems(text) == [
        f"line 40: people.U000000ALICE.kube_user: '{kube_user}' is a Kubernetes system identity (system:…)"
    ]


def test_an_approver_with_the_requesters_kube_user_is_never_eligible() -> None:
    # Built past the check (which refuses it), as a roster edited in place would be.
    roster = roster_from(example_roster_data())
    people = dict(roster.people)
    people[SlackUserId(BOB)] = people[SlackUserId(BOB)].__class__(SlackUserId(BOB), "carol@example.com")
    twin = roster.__class__(**{**roster.__dict__, "people": people})
    request = access_request(requester=CAROL, role="view", namespace="payments")
    assert SlackUserId(BOB) not in policy.approvers_for(twin, request)
    assert not policy.may_decide(twin, request, SlackUserId(BOB), request.created_at)


# --- finding 6: every failure to read the roster is a RosterError --------------------------------

UNREADABLE = {
    "int-tag": EXAMPLE.replace("approvals: 2\n", "approvals: !!int two\n", 1),
    "float-tag": EXAMPLE.replace("approvals: 2\n", "approvals: !!float two\n", 1),
    "binary-tag": EXAMPLE.replace("approvals: 2\n", "approvals: !!binary '%%%'\n", 1),
    "timestamp-tag": EXAMPLE.replace("approvals: 2\n", "approvals: !!timestamp 2026-13-45\n", 1),
}


@pytest.mark.parametrize("text", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_value_pyyaml_cannot_construct_is_a_roster_problem_with_its_line(text: str) -> None:
    (problem,) = problems(text)
    assert problem.startswith("line 27: ")


def test_a_latin1_byte_is_a_roster_problem(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_bytes(EXAMPLE.replace("alice@example.com", "al\xefce@example.com").encode("latin-1"))
    with pytest.raises(RosterError):
        load_roster_file(path)


def test_a_bad_edit_keeps_the_last_good_roster(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(EXAMPLE)
    source = RosterFile(path)
    good = source()
    for text in UNREADABLE.values():
        path.write_text(text + "# edited\n" * len(text))  # a new size: the change is seen
        with caplog.at_level(logging.ERROR):
            assert source() is good
