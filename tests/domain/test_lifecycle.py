"""The request state machine, checked against the diagram in ``bot/domain/lifecycle.py``:

pending ──► approved ──► active ──► expired | revoked
   │            └──► failed | revoked
   └──► denied | cancelled | timed_out
"""

from datetime import timedelta
from itertools import product

import pytest

from bot.domain.lifecycle import (
    TERMINAL,
    AccessRequest,
    IllegalTransition,
    State,
    activate,
    expiry_for,
    extend_expiry,
    transition,
)
from tests.fakes import T0, access_request

# Written out from the diagram, not read from LEGAL, so the table is checked against the documentation.
DIAGRAM = {
    (State.PENDING, State.APPROVED),
    (State.PENDING, State.DENIED),
    (State.PENDING, State.CANCELLED),
    (State.PENDING, State.TIMED_OUT),
    (State.APPROVED, State.ACTIVE),
    (State.APPROVED, State.FAILED),
    (State.APPROVED, State.REVOKED),
    (State.ACTIVE, State.EXPIRED),
    (State.ACTIVE, State.REVOKED),
}
LATER = T0 + timedelta(minutes=3)


def in_state(state: State) -> AccessRequest:
    return access_request(state=state)


@pytest.mark.parametrize(("current", "target"), sorted(DIAGRAM), ids=lambda s: s.value)
def test_every_transition_in_the_diagram_succeeds(current: State, target: State) -> None:
    before = in_state(current)
    after = transition(before, target, LATER)
    assert after.state is target
    assert after.updated_at == LATER
    assert after.version == before.version + 1
    assert before.state is current  # records are immutable: the old one is unchanged


ILLEGAL = sorted(set(product(State, State)) - DIAGRAM)


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=lambda s: s.value)
def test_every_transition_outside_the_diagram_raises(current: State, target: State) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(in_state(current), target, LATER)
    assert raised.value.current is current
    assert raised.value.target is target
    assert str(raised.value) == f"BG-7K2QXM is {current.label}; it cannot become {target.label}"


def test_illegal_and_legal_cover_every_pair() -> None:
    assert len(DIAGRAM) + len(ILLEGAL) == len(State) ** 2


@pytest.mark.parametrize("state", sorted(TERMINAL), ids=lambda s: s.value)
def test_terminal_states_have_no_exits(state: State) -> None:
    assert state.terminal
    for target in State:
        with pytest.raises(IllegalTransition):
            transition(in_state(state), target, LATER)


def test_terminal_states_are_exactly_the_ends_of_the_diagram() -> None:
    ends = {target for _, target in DIAGRAM} - {current for current, _ in DIAGRAM}
    assert ends == TERMINAL
    assert {s for s in State if s.terminal} == TERMINAL


@pytest.mark.parametrize(("current", "target"), sorted(DIAGRAM), ids=lambda s: s.value)
def test_ended_at_is_set_exactly_when_the_request_ends(current: State, target: State) -> None:
    after = transition(in_state(current), target, LATER)
    assert after.ended_at == (LATER if target.terminal else None)


def test_transition_carries_extra_fields() -> None:
    denied = transition(in_state(State.PENDING), State.DENIED, LATER, decided_by="U0000000BOB")
    assert denied.decided_by == "U0000000BOB"


def test_activate_records_when_the_binding_landed_and_when_it_ends() -> None:
    approved = in_state(State.APPROVED)
    active = activate(approved, LATER, expiry_for(approved, LATER))
    assert active.state is State.ACTIVE
    assert active.granted_at == LATER
    assert active.expires_at == LATER + timedelta(hours=1)


def test_extend_expiry_moves_the_end_only() -> None:
    grant = activate(in_state(State.APPROVED), LATER, LATER + timedelta(hours=1))
    assert extend_expiry(grant, timedelta(minutes=30)) == LATER + timedelta(hours=1, minutes=30)


def test_time_left_counts_only_for_an_active_grant() -> None:
    grant = activate(in_state(State.APPROVED), T0, T0 + timedelta(hours=1))
    assert grant.time_left(T0 + timedelta(minutes=20)) == timedelta(minutes=40)
    assert grant.time_left(T0 + timedelta(hours=2)) == timedelta(0)
    expired = transition(grant, State.EXPIRED, T0 + timedelta(hours=1))
    assert expired.time_left(T0) == timedelta(0)


def test_requests_are_immutable() -> None:
    request = in_state(State.PENDING)
    with pytest.raises(ValueError, match="frozen"):
        request.state = State.APPROVED  # type: ignore[misc]


def test_state_label_reads_as_words() -> None:
    assert State.TIMED_OUT.label == "timed out"
