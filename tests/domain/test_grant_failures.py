"""Grant failures: the audit entry keeps a code and its facts, and each renders to one sentence; an
entry written before failures had codes (an ``error`` sentence) still reads as it did."""

from __future__ import annotations

import pytest

from bot.domain.grant_failures import FailureCode, GrantFailure, failure_sentence

SENTENCES = [
    (
        GrantFailure(FailureCode.APPROVAL_TOO_OLD, {"approved_ago": "31m", "timeout": "30m"}),
        "it was approved 31m ago, longer than the request timeout (30m), so that approval is too old to act on; "
        "ask again",
    ),
    (
        GrantFailure(FailureCode.NO_LONGER_ALLOWED, {"reason": "You are not in the breakglass roster."}),
        "no longer allowed: You are not in the breakglass roster.",
    ),
    (
        GrantFailure(FailureCode.ROLE_NEEDS_APPROVALS, {"role": "view", "approvals": "1"}),
        "'view' now needs 1 approval; ask again",
    ),
    (
        GrantFailure(FailureCode.ROLE_NEEDS_APPROVALS, {"role": "view", "approvals": "2"}),
        "'view' now needs 2 approvals; ask again",
    ),
    (
        GrantFailure(FailureCode.APPROVALS_NO_LONGER_SUFFICE),
        "its approvals no longer suffice: an approver has left the approver groups",
    ),
    (
        GrantFailure(FailureCode.RULE_GONE, {"rule": "night"}),
        "the rule that approved it automatically (night) is no longer in the roster; ask again",
    ),
    (
        GrantFailure(FailureCode.RULE_NOT_COUNTED, {"rule": "night"}),
        "its automatic approval is not counted under rule night's daily cap; ask again",
    ),
    (
        GrantFailure(FailureCode.RULE_NO_LONGER_APPROVES, {"rule": "night", "reason": "It is outside the window."}),
        "rule night no longer approves it automatically: It is outside the window",
    ),
    (
        GrantFailure(FailureCode.CLUSTER_REFUSED_BINDING, {"error": "forbidden"}),
        "the cluster refused the binding: forbidden",
    ),
    (
        GrantFailure(FailureCode.KUBECONFIG_UNDELIVERABLE, {"error": "cannot_dm_bot"}),
        "your kubeconfig could not be sent to you by DM (cannot_dm_bot), so the grant was withdrawn",
    ),
    (GrantFailure(FailureCode.GRANT_NOT_ACTIVE, {"grant": "BG-7K2QXM"}), "BG-7K2QXM is no longer active"),
    (
        GrantFailure(FailureCode.CLUSTER_REFUSED_EXPIRY, {"error": "conflict"}),
        "the cluster refused the new expiry: conflict",
    ),
    (GrantFailure(FailureCode.NO_EXTENSION_ROOM, {"left": "15m"}), "only 15m of the role's maximum is left"),
    (
        GrantFailure(FailureCode.GRANT_REMOVED_OUTSIDE, {"grant": "BG-7K2QXM", "cluster": "prod"}),
        "BG-7K2QXM has already ended: its binding is no longer in prod: it was removed outside breakglass",
    ),
    (
        GrantFailure(FailureCode.GRANT_ENDED, {"grant": "BG-7K2QXM", "state": "expired"}),
        "BG-7K2QXM has already ended (it is expired)",
    ),
]


@pytest.mark.parametrize(
    ("failure", "sentence"), SENTENCES, ids=[f.code.value + str(i) for i, (f, _) in enumerate(SENTENCES)]
)
def test_each_failure_renders_its_sentence_from_the_details_it_records(failure: GrantFailure, sentence: str) -> None:
    details = failure.details()
    assert details["code"] == failure.code.value
    assert sentence not in details.values()  # the entry holds facts, not the sentence
    assert failure.sentence() == sentence
    assert GrantFailure.from_details(details) == failure
    assert failure_sentence(details) == sentence


def test_every_code_has_a_sentence() -> None:
    assert {failure.code for failure, _ in SENTENCES} == set(FailureCode)


def test_an_entry_written_before_codes_reads_its_error_sentence() -> None:
    assert GrantFailure.from_details({"error": "the cluster refused the binding: forbidden"}) is None
    assert failure_sentence({"error": "the cluster refused the binding: forbidden"}) == (
        "the cluster refused the binding: forbidden"
    )
    assert failure_sentence({}) == "unknown error"
