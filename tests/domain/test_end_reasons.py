"""Why breakglass ended a grant or removed something of one: the audit entry keeps a code and its facts,
and each renders to one sentence; an entry written before reasons had codes (the sentence under
``why``), and a person's own reason for an early revoke, still read as they were written."""

from __future__ import annotations

import pytest

from bot.domain.end_reasons import EndCode, EndReason, end_sentence, said_as_before

SENTENCES = [
    (EndReason(EndCode.CLUSTER_LEFT_ROSTER), "its cluster is no longer in the roster"),
    (EndReason(EndCode.REVOKE_OVERDUE), "its expiry has passed and its revoke had not run"),
    (
        EndReason(EndCode.UNWARRANTED),
        "its warrant is missing or does not verify (edited, relabelled or not made by breakglass)",
    ),
    (EndReason(EndCode.BINDING_EXPIRY_UNREADABLE), "its binding carries no readable expiry"),
    (
        EndReason(EndCode.BINDING_EXPIRY_PASSED, {"binding_expires_at": "2026-11-27T10:00:00Z"}),
        "its binding's expiry 2026-11-27T10:00:00Z has passed",
    ),
    (EndReason(EndCode.EXPIRY_PASSED), "its expiry has passed"),
    (EndReason(EndCode.REQUEST_UNKNOWN), "its request is unknown to Redis"),
    (EndReason(EndCode.REQUEST_ENDED, {"state": "revoked"}), "its request is revoked"),
    (
        EndReason(EndCode.KEPT_ON_WARRANT),
        "its request is unknown to Redis, and its warrant verifies: kept until its signed expiry",
    ),
    (
        EndReason(EndCode.BINDING_REMOVED_OUTSIDE, {"cluster": "prod"}),
        "its binding is no longer in prod: it was removed outside breakglass",
    ),
    (
        EndReason(EndCode.IDLE, {"idle_timeout": "10m", "cluster": "prod", "last_action_at": "2026-11-27T09:50:00Z"}),
        "idle for 10m: no action recorded on prod since 2026-11-27T09:50:00Z",
    ),
    (EndReason(EndCode.ENDED_WITH_GRANT, {"grant": "BG-7K2QXM"}), "BG-7K2QXM ended"),
]


@pytest.mark.parametrize(("reason", "sentence"), SENTENCES, ids=[r.code.value for r, _ in SENTENCES])
def test_each_reason_renders_its_sentence_from_the_details_it_records(reason: EndReason, sentence: str) -> None:
    details = reason.details()
    assert details["code"] == reason.code.value
    assert sentence not in details.values()  # the entry holds facts, not the sentence
    assert reason.sentence() == sentence
    # Read back from an entry that holds other details beside the reason's own.
    entry = {"cluster": "prod", "binding": "breakglass-bg-7k2qxm", **details, "expires_at": "2026-11-27T10:00:00Z"}
    assert EndReason.from_details(entry) == reason
    assert end_sentence(entry) == sentence


def test_every_code_has_a_sentence() -> None:
    assert {reason.code for reason, _ in SENTENCES} == set(EndCode)


def test_a_reason_refuses_facts_its_code_does_not_record() -> None:
    with pytest.raises(ValueError, match="idle records"):
        EndReason(EndCode.IDLE, {"cluster": "prod"})
    with pytest.raises(ValueError, match="unwarranted records"):
        EndReason(EndCode.UNWARRANTED, {"cluster": "prod"})


def test_an_entry_written_before_codes_reads_its_why_sentence() -> None:
    old = {"cluster": "prod", "why": "its request is unknown to Redis", "expires_at": None}
    assert EndReason.from_details(old) is None
    assert end_sentence(old) == "its request is unknown to Redis"
    assert said_as_before(old) == old


def test_a_persons_own_reason_is_kept_as_they_wrote_it() -> None:
    typed = {"early": True, "operator": "root@bastion", "why": "idle"}  # a code's name, typed by a person
    assert EndReason.from_details(typed) is None
    assert end_sentence(typed) == "idle"


def test_an_entry_without_a_reason_says_none() -> None:
    assert end_sentence({"expires_at": "2026-11-27T10:00:00Z"}) is None
    assert end_sentence({"code": "not_a_code", "why": ""}) is None


def test_listings_show_a_coded_entry_as_one_written_before_codes() -> None:
    old = {
        "cluster": "prod",
        "why": "its binding's expiry 2026-11-27T10:00:00Z has passed",
        "expires_at": "2026-11-27T11:00:00Z",
    }
    new = {
        "cluster": "prod",
        **EndReason(EndCode.BINDING_EXPIRY_PASSED, {"binding_expires_at": "2026-11-27T10:00:00Z"}).details(),
        "expires_at": "2026-11-27T11:00:00Z",
    }
    assert list(said_as_before(new).items()) == list(old.items())
    outside = {**EndReason(EndCode.BINDING_REMOVED_OUTSIDE, {"cluster": "prod"}).details()}
    assert said_as_before(outside) == {
        "why": "its binding is no longer in prod: it was removed outside breakglass",
        "cluster": "prod",
    }
