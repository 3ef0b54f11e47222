"""Generated hostile input at every parser and service a person or a cluster can reach, asserting that
nothing is ever accepted beyond what the roster allows.

Each test draws many inputs (``EXAMPLES`` says how many; 1,000 in all) built from the words the
parsers know mixed with what an attacker would try: Slack control sequences, protected namespaces,
``system:`` names, ids that look real, values of the wrong type, deep nesting, huge strings. The
property is always the same shape: the input is refused (a typed error, never another exception), or
what it made is something the roster allows.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from typing import Any

import fakeredis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import policy
from bot.domain.grants import parse_instant
from bot.domain.ids import RequestId, SlackUserId, parse_request_id
from bot.domain.lifecycle import State
from bot.domain.roster import Roster, RosterError, parse_roster
from bot.kube_audit_events import MalformedEventList, read_event_list
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.services.errors import Refused
from bot.services.kube_actions import ActionRecorder, InvalidEventList
from bot.slack.forms import read_request_form
from bot.slack.slash_grammar import Ask, CommandError, parse_command
from bot.slack.text import unescape
from bot.store import AuditLog, RequestStore
from tests.conftest import CHAIN_KEY, FakeClock
from tests.fakes import ALICE, BOB, CAROL, RecordingJobs, example_roster, example_roster_data

EXAMPLES = {
    "command": 250,
    "button": 150,
    "form": 150,
    "roster": 200,
    "audit": 150,
    "annotation": 100,
}  # 1,000 generated inputs in all

ROSTER = example_roster()
STRANGER = "U0STRANGER1"
PEOPLE = [ALICE, BOB, CAROL, STRANGER, "", "system:admin", "U000000ALICE "]

HOSTILE_WORDS = [
    "prod", "staging", "dev", "prod/payments", "prod/payments-eu", "prod/kube-system", "prod/breakglass-system",
    "prod/default", "prod/", "/payments", "prod//payments", "prod/payments/x", "prod/PAYMENTS", "prod/*",
    "prod/payments-*", "prod/..", "view", "admin", "cluster-admin", "emergency", "root", "system:masters",
    "1h", "4h", "5h", "0s", "-1h", "99999h", "1h30m", "90s", "1d", "60min", "PT1H", "1e9s",
    "list", "status", "cancel", "revoke", "extend", "help", "BG-7K2QXM", "bg-7k2qxm", "BG-000000", "BG-",
    "<!channel>", "<!here>", "<@U0000000BOB>", "<http://evil.example|runbook>", "&lt;!channel&gt;", "&amp;",
    "INC-4411", "`rm -rf /`", "\u202e", "\x00", "\n", "\t", "a" * 600, "ünïcödé", "💥",
]  # fmt: skip


def _service() -> tuple[AccessService, RequestStore]:
    client = fakeredis.FakeRedis(decode_responses=True)
    clock = FakeClock()
    store = RequestStore(client, AuditLog(client, clock, out=io.StringIO(), key=CHAIN_KEY))
    return AccessService(store, FixedRoster(ROSTER), RecordingJobs(), clock), store


def _allowed_by_roster(roster: Roster, requester: str, cluster: str, namespace: str | None, role: str,
                       duration: timedelta) -> bool:  # fmt: skip
    ask = policy.Ask(SlackUserId(requester), cluster, namespace, role, duration)
    return bool(policy.evaluate_request(roster, ask))


def _assert_only_allowed_requests(store: RequestStore) -> None:
    for request in store.recent():
        assert _allowed_by_roster(
            ROSTER, request.requester, request.cluster, request.namespace, request.role, request.duration
        ), request
        assert request.state is State.PENDING or request.self_service
        assert request.channel == ROSTER.incident_channel or request.channel in ROSTER.request_channels


hostile_text = st.one_of(
    st.lists(st.sampled_from(HOSTILE_WORDS), min_size=0, max_size=8).map(" ".join),
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(HOSTILE_WORDS), st.text(max_size=12)), max_size=8).map(" ".join),
)
# No example database: nothing is written into the checkout, and every run draws afresh.
_RELAXED = settings(
    deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def budget(kind: str) -> settings:
    return settings(_RELAXED, max_examples=EXAMPLES[kind])


# --- command text ---------------------------------------------------------------------------------


@budget("command")
@given(text=hostile_text, person=st.sampled_from(PEOPLE))
def test_no_command_text_makes_a_request_the_roster_does_not_allow(text: str, person: str) -> None:
    try:
        command = parse_command(unescape(text), ROSTER.clusters)
    except CommandError:
        return
    if not isinstance(command, Ask):
        return
    access, store = _service()
    with contextlib.suppress(Refused):
        access.submit(command.by(SlackUserId(person)))
    _assert_only_allowed_requests(store)


# --- button values --------------------------------------------------------------------------------


@budget("button")
@given(
    value=st.one_of(hostile_text, st.sampled_from(["BG-7K2QXM", "bg-7k2qxm"])),
    person=st.sampled_from(PEOPLE),
    approve=st.booleans(),
    use_real_id=st.booleans(),
)
def test_no_button_value_decides_a_request_for_someone_who_may_not(
    value: str, person: str, approve: bool, use_real_id: bool
) -> None:
    access, store = _service()
    request = access.submit(
        policy.Ask(SlackUserId(ALICE), "prod", "payments", "admin", timedelta(hours=1), "INC-4411 pods down")
    )
    request_id = RequestId(request.id) if use_real_id else parse_request_id(value)
    if request_id is None:
        return  # the listener answers "That button names no request" and changes nothing
    try:
        outcome = (access.approve if approve else access.deny)(request_id, SlackUserId(person))
    except Refused:
        after = store.get(request.id)
        assert after is not None
        assert (after.state, after.approvals) == (State.PENDING, ())
        return
    assert outcome.request.id == request.id
    assert person in policy.approvers_for(ROSTER, request)  # only an eligible approver got here
    assert person != ALICE


# --- view submissions -----------------------------------------------------------------------------

FORM_BLOCKS = ["cluster", "namespace", "namespace_other", "role", "duration", "reason", "channel"]


form_leaf = st.one_of(
    st.sampled_from(HOSTILE_WORDS),
    st.text(max_size=40),
    st.none(),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=3),
)
form_value = st.one_of(
    form_leaf,
    st.fixed_dictionaries({"value": form_leaf}),
    st.fixed_dictionaries({"selected_option": st.one_of(form_leaf, st.fixed_dictionaries({"value": form_leaf}))}),
    st.fixed_dictionaries({"selected_conversation": st.sampled_from(["C0000INCIDENT", "C0000MYOWN", "D0000000001"])}),
)


@budget("form")
@given(
    answers=st.dictionaries(st.sampled_from(FORM_BLOCKS), form_value, max_size=len(FORM_BLOCKS)),
    person=st.sampled_from(PEOPLE),
)
def test_no_view_submission_makes_a_request_the_roster_does_not_allow(answers: dict[str, Any], person: str) -> None:
    values = {block: {block: value} for block, value in answers.items()}
    try:
        form = read_request_form(values, ROSTER, SlackUserId(person))
    except (ValueError, TypeError, AttributeError) as exc:  # pragma: no cover - would be a finding
        raise AssertionError(f"the form reader raised {type(exc).__name__} instead of field errors") from exc
    if isinstance(form, dict):
        return  # field errors: the form stays open
    access, store = _service()
    with contextlib.suppress(Refused):
        access.submit(
            policy.Ask(
                SlackUserId(person), form.cluster, form.namespace, form.role, form.duration, form.reason, form.channel
            )
        )
    _assert_only_allowed_requests(store)


# --- roster documents -----------------------------------------------------------------------------

roster_leaf = st.one_of(
    st.sampled_from(HOSTILE_WORDS),
    st.sampled_from(["system:admin", "system:serviceaccount:kube-system:default", "*", "kube-*", "", "0", "-1"]),
    st.integers(min_value=-5, max_value=10**6),
    st.booleans(),
    st.none(),
    st.lists(st.sampled_from(["sre", "payments-devs", "nobody", "*", "kube-system"]), max_size=3),
    st.dictionaries(st.sampled_from(["kube_user", "approvals", "namespaces", "x"]), st.text(max_size=8), max_size=2),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


@budget("roster")
@given(data=st.data())
def test_a_hostile_roster_is_refused_or_holds_the_rosters_invariants(data: st.DataObject) -> None:
    document = example_roster_data()
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        path = data.draw(st.sampled_from(_paths(document)))
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = data.draw(roster_leaf)
    text = data.draw(st.one_of(st.just(yaml.safe_dump(document)), st.text(max_size=300)))
    try:
        roster = parse_roster(text)
    except RosterError:
        return
    for user_id, person in roster.people.items():
        assert isinstance(person.kube_user, str), user_id
        assert person.kube_user, user_id
    for group, members in roster.groups.items():
        assert all(member in roster.people for member in members), group
    for role in roster.roles.values():
        assert role.approvals >= 0
        assert role.min_duration <= role.max_duration
        assert all(group in roster.groups for group in role.approvers)
    for entitlement in roster.entitlements:
        assert entitlement.group in roster.groups
        assert all(r in roster.roles for r in entitlement.roles)
        assert all(c in roster.clusters for c in entitlement.clusters)
    assert 1 <= roster.max_pending_requests <= 100
    assert 1 <= roster.max_pending_extensions <= 100


# --- audit events ---------------------------------------------------------------------------------

json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children,
                                                                               max_size=4)),
    max_leaves=12,
)  # fmt: skip
audit_event = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {
            "stage": st.sampled_from(["ResponseComplete", "ResponseStarted", "Panic", "RequestReceived", 7]),
            "user": st.one_of(
                json_value,
                st.fixed_dictionaries(
                    {"username": st.sampled_from(["alice@example.com", "bob@example.com", "system:admin", 5, None])}
                ),
            ),
            "objectRef": st.one_of(
                json_value,
                st.fixed_dictionaries(
                    {"namespace": st.sampled_from(["payments", "kube-system", None, 3]), "resource": json_value}
                ),
            ),
            "verb": json_value,
            "auditID": st.one_of(st.text(max_size=40), json_value),
            "requestReceivedTimestamp": st.one_of(
                st.sampled_from(["2026-11-27T09:30:00Z", "9999-12-31T23:59:59Z", "not a time", ""]), json_value
            ),
        }
    ),
)


@budget("audit")
@given(
    items=st.lists(audit_event, max_size=8),
    envelope=st.sampled_from(["ok", "kind", "items"]),
    raw=st.one_of(st.none(), st.text(max_size=60)),
)
def test_no_audit_batch_records_an_action_outside_a_grant_or_fails_otherwise(
    items: list[Any], envelope: str, raw: str | None
) -> None:
    batch: Any = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
    if envelope == "kind":
        batch["kind"] = "Secret"
    elif envelope == "items":
        batch["items"] = {"0": items}
    text = raw if raw is not None else json.dumps(batch)
    try:
        body = read_event_list(text)
    except MalformedEventList:
        return
    client = fakeredis.FakeRedis(decode_responses=True)
    clock = FakeClock()
    store = RequestStore(client, AuditLog(client, clock, out=io.StringIO(), key=CHAIN_KEY))
    recorder = ActionRecorder(store, FixedRoster(ROSTER), clock)
    try:
        recorded = recorder.record("prod", body)
    except InvalidEventList:
        return
    assert recorded == 0  # no grant exists, so nothing may be recorded, whoever the events name


# --- binding annotations --------------------------------------------------------------------------


@budget("annotation")
@given(expiry=st.one_of(st.text(max_size=40), st.sampled_from(["2026-11-27T10:00:00Z", "2026-11-27T10:00:00",
                                                                "+275760-09-13T00:00:00Z", "2026-13-01T00:00:00Z",
                                                                "2026-11-27T10:00:00+14:00", "0001-01-01T00:00:00Z"])),
       label=hostile_text)  # fmt: skip
def test_a_hostile_binding_annotation_or_label_is_read_strictly(expiry: str, label: str) -> None:
    try:
        at = parse_instant(expiry)
    except ValueError:
        pass
    else:
        assert at.tzinfo is not None
        assert at.utcoffset() == timedelta(0)
    request_id = parse_request_id(label)
    assert request_id is None or (request_id.startswith("BG-") and len(request_id) == 9 and request_id.isupper())
