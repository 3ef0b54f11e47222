"""The Slack issue's "Done when", through the real web and worker processes.

Alice (payments-devs) types ``/breakglass prod/payments admin 1h …`` in the incident channel; Bob
and Carol (sre) approve; the RoleBinding appears and the API server lets Alice delete pods in
``payments``; the thread tells every step; Alice is DMed; she revokes early, the binding goes and the
thread says so; the audit chain verifies and its export holds every step; ``/metrics`` counts it.

The story runs once, in three module fixtures (asked, granted, revoked), each recording what a person
would have seen at that moment; the tests then check one behaviour each against those records.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.audit import Event
from bot.ports import AccessCheck
from bot.standins.slack_api import Ephemeral, SlackMessage
from bot.standins.stack import ALICE, BOB, CAROL, INCIDENT_CHANNEL
from tests.e2e_slack.conftest import Live
from workers.kube import ClusterTarget, KubeClusters

pytestmark = pytest.mark.slow

REASON = "INC-4411 checkout pods crash-looping"
ASK = f"prod/payments admin 1h {REASON}"
UTC_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def may_delete_pods(live: Live, namespace: str) -> bool:
    """A SubjectAccessReview on the prod API server: may alice@example.com delete pods there?"""
    clusters = KubeClusters({"prod": ClusterTarget("prod")}, kubeconfig=live.stack.kubeconfig_path)
    try:
        return clusters.review_access(
            "prod", AccessCheck(user="alice@example.com", verb="delete", resource="pods", namespace=namespace)
        )
    finally:
        clusters.close()


def binding_named(live: Live, name: str) -> dict[str, Any] | None:
    return next((b for b in live.stack.bindings("prod") if b["metadata"]["name"] == name), None)


def buttons(message: SlackMessage) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Asked:
    request_id: str
    answer: Ephemeral
    root: SlackMessage
    bob_dms: list[SlackMessage]
    carol_dms: list[SlackMessage]
    may_delete_before: bool


@dataclass(frozen=True)
class Granted:
    bob_answer: Ephemeral
    root_after_bob: SlackMessage
    carol_answer: Ephemeral
    root: SlackMessage
    thread: list[SlackMessage]
    alice_dms: list[SlackMessage]
    binding: dict[str, Any]
    may_delete_in_payments: bool
    may_delete_in_checkout: bool
    metrics: str


@dataclass(frozen=True)
class Revoked:
    answer: Ephemeral
    root: SlackMessage
    thread: list[SlackMessage]
    alice_dms: list[SlackMessage]
    binding_left: dict[str, Any] | None
    may_delete_after: bool
    metrics: str


@pytest.fixture(scope="module")
def asked(live: Live) -> Asked:
    request_id, root = live.ask(ALICE, ASK)
    return Asked(
        request_id=request_id,
        answer=live.slack.ephemerals(ALICE)[-1],
        root=root,
        bob_dms=live.slack.dm(BOB),
        carol_dms=live.slack.dm(CAROL),
        may_delete_before=may_delete_pods(live, "payments"),
    )


@pytest.fixture(scope="module")
def granted(live: Live, asked: Asked) -> Granted:
    request_id = asked.request_id
    bob_answer = live.click(BOB, "approve", request_id, asked.root)
    live.wait_published(request_id)
    root_after_bob = live.root(request_id)
    carol_answer = live.click(CAROL, "approve", request_id, root_after_bob)
    live.wait_for_event(request_id, Event.GRANTED)
    live.wait_published(request_id)
    name = f"breakglass-{request_id.lower()}"
    binding = binding_named(live, name)
    assert binding is not None, f"no RoleBinding {name} after the grant"
    return Granted(
        bob_answer=bob_answer,
        root_after_bob=root_after_bob,
        carol_answer=carol_answer,
        root=live.root(request_id),
        thread=live.thread(asked.root),
        alice_dms=live.slack.dm(ALICE),
        binding=binding,
        may_delete_in_payments=may_delete_pods(live, "payments"),
        may_delete_in_checkout=may_delete_pods(live, "checkout"),
        metrics=live.metrics(),
    )


@pytest.fixture(scope="module")
def revoked(live: Live, asked: Asked, granted: Granted) -> Revoked:
    request_id = asked.request_id
    answer = live.command(ALICE, f"revoke {request_id.lower()}")  # ids match case-insensitively
    live.wait_for_event(request_id, Event.BINDING_DELETED)
    live.wait_published(request_id)
    return Revoked(
        answer=answer,
        root=live.root(request_id),
        thread=live.thread(asked.root),
        alice_dms=live.slack.dm(ALICE),
        binding_left=binding_named(live, f"breakglass-{request_id.lower()}"),
        may_delete_after=may_delete_pods(live, "payments"),
        metrics=live.metrics(),
    )


# --- asking --------------------------------------------------------------------------------------


def test_the_requester_is_told_privately_that_the_request_is_posted_and_needs_two_approvals(
    live: Live, asked: Asked
) -> None:
    seen = live.seen(asked.answer)
    assert asked.answer.via == "response_url"  # ephemeral: only Alice sees it
    assert asked.request_id in seen
    assert "admin on prod/payments for 1h" in seen.replace("*", "")
    assert "needs 2 approvals from sre" in seen


def test_the_root_message_shows_who_what_how_long_why_and_state_with_approve_and_deny(live: Live, asked: Asked) -> None:
    seen = live.seen(asked.root)
    assert asked.root.channel == INCIDENT_CHANNEL
    assert f"Access request {asked.request_id}" in seen
    assert "@alice asks for *admin* on *prod/payments* for *1h*." in seen
    # Each thing once: who, what and how long in that line, not again in fields.
    assert seen.count("@alice") == 1
    assert seen.count("prod/payments") == 1
    assert f"*Reason*\n{REASON}" in seen
    assert "*State*\n:hourglass_flowing_sand: pending" in seen
    assert "*Approvals*\n0 of 2" in seen
    assert "[Approve] [Deny]" in seen
    assert buttons(asked.root) == [("approve", asked.request_id), ("deny", asked.request_id)]


def test_each_approver_is_dmed_who_asks_for_what_and_why(live: Live, asked: Asked) -> None:
    for dms in (asked.bob_dms, asked.carol_dms):
        assert len(dms) == 1
        seen = live.seen(dms[0])
        assert "@alice asks for *admin* on *prod/payments* for *1h* and needs 2 approvals" in seen
        assert REASON in seen
        assert buttons(dms[0]) == []  # decisions are made in one visible place: the channel


# --- approving -----------------------------------------------------------------------------------


def test_the_first_approval_counts_one_of_two_and_keeps_the_buttons(live: Live, asked: Asked, granted: Granted) -> None:
    assert "You approved" in granted.bob_answer.text
    assert "(1 of 2); 1 more needed" in granted.bob_answer.text
    seen = live.seen(granted.root_after_bob)
    assert granted.root_after_bob.ts == asked.root.ts  # updated in place, not posted again
    assert "*Approvals*\n1 of 2: @bob" in seen
    assert buttons(granted.root_after_bob) == [("approve", asked.request_id), ("deny", asked.request_id)]


def test_the_second_approval_puts_the_contracts_rolebinding_in_payments(asked: Asked, granted: Granted) -> None:
    assert "(2 of 2); it is being granted" in granted.carol_answer.text
    binding = granted.binding
    meta = binding["metadata"]
    assert binding["kind"] == "RoleBinding"
    assert meta["name"] == f"breakglass-{asked.request_id.lower()}"
    assert meta["namespace"] == "payments"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.com"}
    ]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "breakglass"
    assert asked.request_id in meta["labels"].values()
    annotations = meta["annotations"]
    assert annotations["breakglass.dev/requester"] == ALICE
    assert set(annotations["breakglass.dev/approvers"].split(",")) == {BOB, CAROL}
    assert annotations["breakglass.dev/reason"] == REASON
    expires = annotations["breakglass.dev/expires-at"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", expires)  # RFC 3339, UTC
    # The hour counts from the moment the binding is in place.
    lasts = instant(expires) - instant(meta["creationTimestamp"])
    assert timedelta(minutes=59, seconds=58) <= lasts <= timedelta(hours=1, seconds=2)


def test_subject_access_review_lets_alice_delete_pods_in_payments_only_while_granted(
    asked: Asked, granted: Granted, revoked: Revoked
) -> None:
    assert asked.may_delete_before is False
    assert granted.may_delete_in_payments is True
    assert granted.may_delete_in_checkout is False  # a RoleBinding reaches its own namespace only
    assert revoked.may_delete_after is False


def test_the_root_message_is_updated_in_place_and_loses_its_buttons_once_decided(
    live: Live, asked: Asked, granted: Granted
) -> None:
    assert [m.ts for m in live.slack.messages(INCIDENT_CHANNEL)] == [asked.root.ts]
    seen = live.seen(granted.root)
    assert granted.root.ts == asked.root.ts
    assert granted.root.edited
    assert "active" in seen
    assert "2 of 2: @bob, @carol" in seen
    assert REASON in seen
    assert "[Approve]" not in seen
    assert "[Deny]" not in seen
    assert buttons(granted.root) == []


def test_the_thread_shows_requested_two_approvals_and_granted_in_order_with_timestamps(
    live: Live, asked: Asked, granted: Granted
) -> None:
    seen = [live.seen(reply) for reply in granted.thread]
    name = f"breakglass-{asked.request_id.lower()}"
    expected = [
        "Requested by @alice: *admin* on *prod/payments* for *1h*.",
        "Approved by @bob (1 of 2); 1 more needed.",
        "Approved by @carol (2 of 2); granting now.",
        f"Granted: `{name}` binds `alice@example.com`; ends",
    ]
    assert len(seen) == len(expected), "\n---\n".join(seen)
    for text, step in zip(seen, expected, strict=True):
        assert step in text
        assert UTC_STAMP.search(text), f"no time on the reply: {text}"
    timestamps = [float(reply.ts) for reply in granted.thread]
    assert timestamps == sorted(timestamps)
    assert len(set(timestamps)) == len(timestamps)
    numbers = [int(n) for text in seen for n in re.findall(r"audit #(\d+)", text)]
    assert numbers == sorted(numbers)
    assert len(numbers) == len(expected)


def test_alice_is_dmed_the_approval_and_then_the_grant_with_its_expiry(
    live: Live, asked: Asked, granted: Granted
) -> None:
    seen = [live.seen(dm) for dm in granted.alice_dms]
    assert len(seen) == 2, seen
    approved, grant = seen
    assert asked.request_id in approved
    assert "was approved by @bob, @carol" in approved
    expires = instant(granted.binding["metadata"]["annotations"]["breakglass.dev/expires-at"])
    assert asked.request_id in grant
    assert "You now have *admin* on *prod/payments* until" in grant
    # A Slack date token (each reader sees their own zone; the fallback is UTC), and how to use it.
    assert f"until {expires.strftime('%Y-%m-%d %H:%M')} UTC" in grant
    assert "Use it with `kubectl --context prod -n payments`." in grant
    assert "from now" not in grant


# --- revoking ------------------------------------------------------------------------------------


def test_revoke_by_alice_removes_the_binding_and_the_thread_says_it_ended_early(
    live: Live, asked: Asked, revoked: Revoked
) -> None:
    assert f"*{asked.request_id}* is revoked" in revoked.answer.text
    assert revoked.answer.via == "response_url"
    assert revoked.binding_left is None
    seen = [live.seen(reply) for reply in revoked.thread]
    assert len(seen) == 6, "\n---\n".join(seen)
    assert "Revoked early by @alice." in seen[4]
    assert f"Binding `breakglass-{asked.request_id.lower()}` removed" in seen[5]
    for text in seen[4:]:
        assert UTC_STAMP.search(text)


def test_the_root_message_says_revoked_by_alice_with_no_buttons(live: Live, asked: Asked, revoked: Revoked) -> None:
    seen = live.seen(revoked.root)
    assert revoked.root.ts == asked.root.ts
    assert "revoked" in seen
    assert "revoked by @alice" in seen
    assert buttons(revoked.root) == []
    assert [m.ts for m in live.slack.messages(INCIDENT_CHANNEL)] == [asked.root.ts]


def test_alice_is_dmed_that_her_access_was_revoked(live: Live, asked: Asked, revoked: Revoked) -> None:
    seen = [live.seen(dm) for dm in revoked.alice_dms]
    assert len(seen) == 3, seen
    assert asked.request_id in seen[2]
    assert "was revoked by @alice" in seen[2]


# --- the record ----------------------------------------------------------------------------------


def run_cli(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=live.stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_audit_verify_passes_and_the_export_holds_every_step_of_the_request(
    live: Live, asked: Asked, revoked: Revoked
) -> None:
    verify = run_cli(live, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "intact" in verify.stdout
    export = run_cli(live, "audit", "export", "--request", asked.request_id)
    assert export.returncode == 0, export.stderr
    lines = [json.loads(line) for line in export.stdout.splitlines() if line.strip()]
    steps = [(line["event"], line["actor"]) for line in lines]
    assert steps == [
        ("requested", ALICE),
        ("approved", BOB),
        ("approved", CAROL),
        ("granted", "system"),
        ("revoked", ALICE),
        ("binding_deleted", "system"),
    ]
    for line in lines:
        assert set(line) >= {"seq", "at", "request_id", "event", "actor", "details", "prev_hash", "hash"}
        assert line["request_id"] == asked.request_id
        assert line["at"].endswith("Z")
    assert lines[0]["details"]["reason"] == REASON
    assert lines[3]["details"]["binding"] == f"breakglass-{asked.request_id.lower()}"
    assert lines[4]["details"] == {"early": True}


def _samples(exposition: str) -> dict[str, float]:
    """Each sample line of a Prometheus text exposition, by its name and labels."""
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_count_the_request_its_grant_and_its_revoke(granted: Granted, revoked: Revoked) -> None:
    assert _samples(granted.metrics)["breakglass_active_grants"] == 1
    after = _samples(revoked.metrics)
    for outcome in ("requested", "granted", "revoked"):
        assert after[f'breakglass_requests_total{{outcome="{outcome}"}}'] == 1
    assert after["breakglass_approval_latency_seconds_count"] == 1
    assert after["breakglass_grant_latency_seconds_count"] == 1
    assert after["breakglass_active_grants"] == 0
