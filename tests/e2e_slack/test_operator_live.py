"""When Slack is down: ``breakglass grant`` and ``breakglass revoke`` run where the bot runs, against
real Redis, a real worker and the Kubernetes double, with the Slack double failing and then back."""

from __future__ import annotations

import re
import subprocess

import pytest

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.grants import binding_name
from bot.domain.lifecycle import State
from bot.standins.stack import ALICE, INCIDENT_CHANNEL, wait_until
from tests.e2e_slack.conftest import DEADLINE, Live
from tests.e2e_slack.test_done_when import run_cli

pytestmark = pytest.mark.slow  # the live stack: real `breakglass web` and `breakglass worker` processes

SLACK_DOWN = ("chat.postMessage", "chat.update", "chat.postEphemeral", "conversations.open", "users.info")


@pytest.fixture(autouse=True)
def nothing_went_wrong_on_our_side() -> None:
    """Overrides the package's check: with Slack down, RQ logs each failed publish attempt as an error,
    which is the outage, not a bug."""


@pytest.fixture
def slack_down(live: Live) -> None:
    for method in SLACK_DOWN:
        live.slack.fail(method, "service_unavailable", times=100_000, status=503)


def granted_id(done: subprocess.CompletedProcess[str]) -> str:
    """The request id the command names (its standard output also carries the audit entries, as every
    process's does)."""
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"^(BG-[A-Z0-9]{6}): ", done.stdout, re.MULTILINE)
    assert found, done.stdout
    return found.group(1)


def test_a_grant_made_while_slack_is_down_binds_at_once_and_is_posted_when_slack_answers(
    live: Live, slack_down: None
) -> None:
    done = run_cli(
        live, "grant", "prod/payments", "admin", "30m", "--for", ALICE, "--reason", "INC-9 Slack is down too",
        "--operator", "ops-oncall",
    )  # fmt: skip
    request_id = granted_id(done)
    assert "granted; the binding ends" in done.stdout

    assert f"prod:payments/{binding_name(request_id)}" in live.binding_names()
    entries = live.entries(request_id)
    assert [(e.event, e.actor) for e in entries[:3]] == [
        (Event.REQUESTED, ALICE),
        (Event.APPROVED, SYSTEM_ACTOR),
        (Event.GRANTED, SYSTEM_ACTOR),
    ]
    assert entries[0].details["operator"] == entries[1].details["operator"] == "ops-oncall"
    assert entries[0].details["reason"] == "INC-9 Slack is down too"
    assert live.request(request_id).message_ts is None  # nothing reached Slack

    live.slack.clear_faults()
    live.wait_published(request_id)
    root = live.root(request_id)
    thread = "\n".join(live.seen(m) for m in live.thread(root))
    assert "Requested for @alice by operator *ops-oncall* from the command line" in thread
    assert "Granted at once by operator *ops-oncall* from the command line" in thread
    assert root in live.slack.messages(INCIDENT_CHANNEL)


def test_a_revoke_while_slack_is_down_removes_the_binding_and_names_the_operator(live: Live) -> None:
    request_id = granted_id(
        run_cli(
            live, "grant", "prod/payments", "view", "1h", "--for", ALICE, "--reason", "INC-10 look", "--operator", "ops"
        )
    )
    for method in SLACK_DOWN:
        live.slack.fail(method, "service_unavailable", times=100_000, status=503)
    try:
        done = run_cli(live, "revoke", request_id, "--reason", "incident over", "--operator", "ops-oncall")
        assert done.returncode == 0, done.stdout + done.stderr
        wait_until(
            lambda: binding_name(request_id) not in str(live.binding_names()) or None, DEADLINE, "the binding gone"
        )
        revoked = live.wait_for_event(request_id, Event.REVOKED)
        assert (revoked.actor, revoked.details["operator"], revoked.details["why"]) == (
            SYSTEM_ACTOR,
            "ops-oncall",
            "incident over",
        )
        assert live.request(request_id).state is State.REVOKED
    finally:
        live.slack.clear_faults()
    live.wait_published(request_id)
    thread = "\n".join(live.seen(m) for m in live.thread(live.root(request_id)))
    assert "Revoked early by operator *ops-oncall* from the command line: incident over" in thread


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["prod/payments", "cluster-admin", "30m"], "refused"),  # Alice is not entitled to it
        (["prod/payments", "admin", "9h"], "refused"),  # over the role's max_duration
        (["prod/payments", "admin", "soon"], "is not a duration"),
    ],
)
def test_the_operator_path_keeps_the_roster_and_its_limits(live: Live, args: list[str], says: str) -> None:
    before = live.binding_names()
    done = run_cli(live, "grant", *args, "--for", ALICE, "--reason", "INC-11 try", "--operator", "ops")
    assert done.returncode != 0
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert live.binding_names() == before


def test_a_grant_without_a_reason_is_refused_by_the_command_line(live: Live) -> None:
    done = run_cli(live, "grant", "prod/payments", "admin", "30m", "--for", ALICE, "--operator", "ops")
    assert done.returncode == 2
    assert "--reason" in done.stderr
