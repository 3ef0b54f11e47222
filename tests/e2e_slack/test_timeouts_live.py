"""A pending request that nobody decides lapses, through the real web and worker processes: the
worker's sweep times it out, the root message loses its buttons, the thread says so, and an approver
arriving afterwards is refused.

This module runs its own stack with a roster whose ``request_timeout`` is a few seconds, so the
lapse happens while the test waits for it (the processes have no injectable clock).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.lifecycle import State
from bot.slack import blocks
from bot.standins.slack_api import find_button
from bot.standins.stack import ALICE, BOB, DEMO_ROSTER, wait_until
from tests.e2e_slack.conftest import Live, refusal_sentence, running_live

pytestmark = pytest.mark.slow

TIMEOUT_SECONDS = 3
ROSTER: dict[str, Any] = {**DEMO_ROSTER, "request_timeout": f"{TIMEOUT_SECONDS}s"}
ASK_ADMIN = "prod/payments admin 30m INC-5200 payments api returning 502s"


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from running_live(redis_url, tmp_path_factory.mktemp("e2e-slack-timeouts"), ROSTER, sweep_interval="1s")


def test_an_undecided_request_times_out_its_buttons_go_and_the_thread_says_so(live: Live) -> None:
    request_id, root = live.ask(ALICE, ASK_ADMIN)
    assert find_button(root.blocks, blocks.APPROVE_ACTION, request_id) is not None

    # Nobody clicks: the worker's sweep (every second here) times it out once the deadline passes.
    entry = live.wait_for_event(request_id, Event.TIMED_OUT)
    live.wait_published(request_id)

    assert (entry.actor, entry.details) == (SYSTEM_ACTOR, {"after": f"{TIMEOUT_SECONDS}s"})
    assert live.request(request_id).state is State.TIMED_OUT
    lapsed_root = live.root(request_id)
    assert find_button(lapsed_root.blocks, blocks.APPROVE_ACTION) is None
    assert find_button(lapsed_root.blocks, blocks.DENY_ACTION) is None
    assert "timed out" in live.seen(lapsed_root)
    thread = [live.seen(reply) for reply in live.thread(lapsed_root)]
    assert f"Timed out: nobody decided within {TIMEOUT_SECONDS}s." in thread[-1]
    lapsed_dm = wait_until(
        lambda: next((m for m in live.slack.dm(ALICE) if request_id in m.text and "lapsed" in m.text), None),
        20.0,
        "the requester's DM that the request lapsed",
    )
    assert "Ask again if you still need it." in live.seen(lapsed_dm)


def test_approving_a_request_that_timed_out_is_refused_and_changes_nothing(live: Live) -> None:
    request_id, root = live.ask(ALICE, ASK_ADMIN)
    live.wait_for_event(request_id, Event.TIMED_OUT)
    live.wait_published(request_id)
    before, head = live.world(), live.head()

    answer = live.click(BOB, "approve", request_id, root, stale=True)  # a screen from before the lapse

    assert refusal_sentence(answer) == f"{request_id} is already timed out; there is nothing left to decide."
    assert live.world() == before
    assert [(e.event, e.actor, e.request_id) for e in live.entries_after(head)] == [(Event.REFUSED, BOB, request_id)]
    assert live.request(request_id).state is State.TIMED_OUT
    assert f"breakglass-{request_id.lower()}" not in " ".join(live.binding_names())
