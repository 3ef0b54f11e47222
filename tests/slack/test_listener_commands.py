"""/breakglass through Bolt over real, signed HTTP: every command, and a clear answer for every bad
input that changes nothing."""

from __future__ import annotations

import pytest

from bot.domain.lifecycle import State
from bot.standins.slack_api import SlackApiDouble
from tests.fakes import ALICE, BOB, CAROL
from tests.slack.conftest import INCIDENTS
from tests.slack.harness import SlackAppHarness

ASK = "prod/payments admin 1h INC-4411 checkout pods crash-looping"


def test_a_one_line_request_is_stored_and_confirmed_ephemerally(harness: SlackAppHarness) -> None:
    reply = harness.command(ALICE, ASK, channel=INCIDENTS)
    assert reply.status == 200
    (request,) = harness.requests()
    assert (request.cluster, request.namespace, request.role, request.state) == (
        "prod",
        "payments",
        "admin",
        State.PENDING,
    )
    said = harness.last_said_to(ALICE)
    assert (
        f"{request.id}: admin on prod/payments for 1h is being posted in #incidents and needs 2 approvals from sre"
        in said.replace("*", "")
    )
    assert harness.slack.messages(INCIDENTS) == []  # the channel hears of it through the publish job only
    assert [c.kind for c in harness.core.jobs.calls] == ["publish"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("prod/payments admin 0s INC-4411 checkout pods crash-looping", "'0s' is not a positive duration"),
        ("prod/payments admin -5m INC-4411 checkout pods crash-looping", "'-5m' is not a duration"),
        (
            "prod/payments admin 99999h INC-4411 checkout pods crash-looping",
            "'99999h' is longer than any grant can be (7 days)",
        ),
        ("prod/payments admin 1x INC-4411 checkout pods crash-looping", "'1x' is not a duration"),
        (
            "prod/payments admin 2h INC-4411 checkout pods crash-looping",
            "'admin' may be granted for at most 1h; ask for 1h or less.",
        ),
        (
            "prod/payments admin 1m INC-4411 checkout pods crash-looping",
            "'admin' is granted for at least 5m; ask for 5m or more.",
        ),
        (
            "prodd/payments admin 1h INC-4411 checkout pods crash-looping",
            "`prodd` is neither a breakglass command nor a cluster (clusters: `prod`, `staging`)",
        ),
        (
            "prod/payments root 1h INC-4411 checkout pods crash-looping",
            "There is no role 'root'; known roles: admin, cluster-admin, view.",
        ),
        (
            "prod/kube-system admin 1h INC-4411 checkout pods crash-looping",
            "You are not entitled to 'admin' on prod/kube-system",
        ),
        (
            "prod/Pay_ments admin 1h INC-4411 checkout pods crash-looping",
            "'Pay_ments' is not a valid Kubernetes namespace name.",
        ),
        ("prod cluster-admin 1h INC-4411 etcd is on fire", "You are not entitled to 'cluster-admin' on prod"),
        ("prod/payments admin 1h short", "The reason is too short (5 characters)"),
        ("prod/payments admin 1h " + "x" * 501, "The reason is too long (501 characters)"),
        ("status BG-22222", "'BG-22222' is not a request id"),
        ("cancel BG-7K2QXM", "There is no request BG-7K2QXM; /breakglass list shows yours."),
        ("revoke BG-7K2QXM", "There is no request BG-7K2QXM"),
        ("extend BG-7K2QXM 30m need more time please", "There is no request BG-7K2QXM"),
    ],
)
def test_every_bad_input_gets_one_clear_sentence_and_stores_nothing(
    harness: SlackAppHarness, text: str, says: str
) -> None:
    reply = harness.command(ALICE, text)
    assert reply.status == 200
    assert says in harness.last_said_to(ALICE)
    assert harness.requests() == []


def test_typed_pings_are_echoed_back_inert(harness: SlackAppHarness) -> None:
    harness.command(ALICE, "<!channel>/payments admin 1h INC-4411 checkout pods crash-looping")
    (answer,) = harness.slack.ephemerals(user_id=ALICE)
    assert "<!channel>" not in answer.text
    assert "<!channel>" not in str(answer.blocks)
    assert "`<!channel>` is neither a breakglass command nor a cluster" in harness.slack.render_text(answer)


def test_a_reason_with_pings_and_links_is_stored_as_typed_and_posted_inert(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    # Someone who is no approver: the card names the approvers (mentions), never whom the reason names.
    reason = "INC-1 <!channel> ask <@U0000000ZOE> see <http://evil.example|runbook>"
    harness.command(ALICE, f"prod/payments admin 1h {reason}")
    (request,) = harness.requests()
    assert request.reason == reason
    published = harness.publish(request)
    root = slack.message(INCIDENTS, published.message_ts or "")
    assert root is not None
    raw = str(root.blocks) + root.text
    for control in ("<!channel>", "<@U0000000ZOE>", "<http://evil.example"):
        assert control not in raw
    assert reason in slack.render_text(root)


def test_someone_elses_request_is_as_good_as_unknown_and_every_probe_is_audited(harness: SlackAppHarness) -> None:
    harness.command(CAROL, "prod/ingress view 30m INC-9 looking at dns failures")
    (request,) = harness.requests()
    probes = ("status {}", "cancel {}", "revoke {}", "extend {} 30m INC-9 still looking at dns")
    for probe in probes:
        # Alice is in the roster but neither asked for it nor may approve it: she learns nothing,
        # word for word what an id nobody holds gets.
        for request_id in (request.id, "BG-222222"):
            harness.command(ALICE, probe.format(request_id.lower()))
            assert harness.last_said_to(ALICE).endswith(
                f"There is no request {request_id}; /breakglass list shows yours."
            ), probe
    assert harness.core.store.get(request.id).state is State.PENDING  # type: ignore[union-attr]
    # A probe is on record either way; an id nobody holds is kept in the details, not filed as a request.
    assert [(e.actor, e.details["action"], e.request_id, e.details.get("unknown_id")) for e in harness.refusals()] == [
        (ALICE, action, filed, unknown)
        for action in ("status", "cancel", "revoke", "extend")
        for filed, unknown in ((request.id, None), (None, "BG-222222"))
    ]


def test_status_list_cancel_and_help(harness: SlackAppHarness) -> None:
    harness.command(ALICE, ASK)
    (request,) = harness.requests()
    harness.command(ALICE, f"status {request.id.lower()}")
    assert "@alice asks for admin on prod/payments for 1h" in harness.last_said_to(ALICE).replace("*", "")
    harness.command(BOB, "list")
    assert f"{request.id} · admin on prod/payments for 1h" in harness.last_said_to(BOB).replace("*", "")
    harness.command(ALICE, f"cancel {request.id}")
    assert f"{request.id} is cancelled" in harness.last_said_to(ALICE).replace("*", "")
    assert harness.core.store.get(request.id).state is State.CANCELLED  # type: ignore[union-attr]
    harness.command(ALICE, "help")
    assert "/breakglass extend <id> <duration> <reason…>" in harness.last_said_to(ALICE)


def test_an_unknown_subcommand_gets_the_help(harness: SlackAppHarness) -> None:
    harness.command(ALICE, "frobnicate")
    said = harness.last_said_to(ALICE)
    assert "frobnicate is neither a breakglass command nor a cluster" in said.replace("`", "")
    assert "/breakglass status <id>" in said


def test_a_stranger_is_refused_and_the_attempt_audited(harness: SlackAppHarness, slack: SlackApiDouble) -> None:
    slack.add_user("U0STRANGER", name="mallory")
    harness.command("U0STRANGER", ASK)
    assert "You are not in the breakglass roster; ask your platform team to add you." in harness.last_said_to(
        "U0STRANGER"
    )
    assert harness.requests() == []
    (refused,) = harness.refusals()
    assert (refused.actor, refused.details["action"]) == ("U0STRANGER", "request")


def test_a_guest_is_refused(harness: SlackAppHarness, slack: SlackApiDouble) -> None:
    slack.add_user(ALICE, name="alice", is_restricted=True)
    harness.command(ALICE, ASK)
    assert "Guest accounts cannot use breakglass" in harness.last_said_to(ALICE)
    assert harness.requests() == []


def test_a_request_from_another_workspace_is_refused(harness: SlackAppHarness) -> None:
    harness.sender.team_id = "T0000OTHER"
    harness.command(ALICE, ASK)
    assert "This Slack workspace is not the one breakglass serves" in harness.last_said_to(ALICE)
    assert harness.requests() == []


def test_unsigned_and_forged_requests_get_401_and_change_nothing(harness: SlackAppHarness) -> None:
    form = {"command": "/breakglass", "text": ASK, "user_id": ALICE, "team_id": "T0000000001"}
    assert harness.sender.send_form(form, signed=False).status == 401
    assert harness.sender.send_form(form, signature="v0=" + "0" * 64).status == 401
    assert harness.sender.send_form(form, timestamp=1).status == 401
    harness.executor.settle()
    assert harness.requests() == []


def test_the_unexpected_is_answered_with_a_reference_and_logged_without_secrets(
    harness: SlackAppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(person: object) -> object:
        raise RuntimeError("redis fell over")

    harness.core.access.listing = broken  # type: ignore[method-assign, assignment]
    harness.command(ALICE, "list")
    said = harness.last_said_to(ALICE)
    assert "Something went wrong on our side; nothing more was done. Reference:" in said
    reference = said.rsplit(" ", 1)[-1].strip("`.")
    failures = [r for r in caplog.records if r.getMessage() == "a Slack listener failed"]
    assert [getattr(r, "reference", None) for r in failures] == [reference]
    assert harness.slack.bot_token not in caplog.text
    assert "xoxp-" not in caplog.text


def test_made_up_ids_make_no_keys_and_refusals_per_person_are_bounded(harness: SlackAppHarness) -> None:
    from bot.services.access import REFUSALS_WRITTEN

    made_up = [f"BG-{i:06d}".replace("0", "A").replace("1", "B") for i in range(REFUSALS_WRITTEN + 30)]
    for request_id in made_up:
        harness.command(ALICE, f"status {request_id}")
        assert harness.last_said_to(ALICE).endswith(f"There is no request {request_id}; /breakglass list shows yours.")
    refusals = harness.refusals()
    assert len(refusals) == REFUSALS_WRITTEN
    assert all(e.request_id is None for e in refusals)
    assert "further_refusals_not_written_for" in refusals[-1].details
    client = harness.core.redis
    for key in client.keys("*"):
        assert not any(request_id in key for request_id in made_up), key
        if "refusals" in key:
            assert client.ttl(key) > 0, key


def test_an_identity_refusal_is_not_filed_under_the_id_it_named(
    harness: SlackAppHarness, slack: SlackApiDouble
) -> None:
    slack.add_user("U0STRANGER", name="mallory")
    harness.command(CAROL, "prod/ingress view 30m INC-9 looking at dns failures")
    (request,) = harness.requests()
    harness.command("U0STRANGER", f"status {request.id}")
    harness.command("U0STRANGER", "status BG-333333")
    assert [(e.actor, e.request_id) for e in harness.refusals()] == [("U0STRANGER", None), ("U0STRANGER", None)]
    assert all("BG-" not in str(e.details) for e in harness.refusals())
    assert not [key for key in harness.core.redis.keys("*") if "BG-333333" in key]


@pytest.mark.parametrize("namespace", ["kube-system", "breakglass-system"])
def test_an_entitlement_for_any_namespace_does_not_reach_a_protected_one(
    harness: SlackAppHarness, namespace: str
) -> None:
    # Finding 2: sre's entitlement names no namespaces; admin in kube-system or the bot's own
    # namespace would read the bot's Secrets and exec into the worker.
    harness.command(BOB, f"prod/{namespace} view 1h INC-4411 need to look at the nodes")
    assert f"You are not entitled to 'view' on prod/{namespace}" in harness.last_said_to(BOB)
    assert harness.requests() == []
    harness.command(BOB, "prod/checkout view 1h INC-4411 need to look at checkout")
    assert len(harness.requests()) == 1
