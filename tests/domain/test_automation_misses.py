"""Why automation left a request to the approvers: each code renders to one sentence; entries written
before misses had codes (a ``why`` sentence) still read as they were written."""

from __future__ import annotations

import pytest

from bot.domain.automation_misses import (
    Miss,
    MissCode,
    miss_sentence,
    said_as_before,
    unchecked_sentence,
)
from bot.domain.end_reasons import EndCode
from bot.domain.grant_failures import FailureCode, GrantFailure, failure_sentence

JIRA_INC = {"jira_projects": "INC, OPS"}
BOTH = {"jira_projects": "INC", "pagerduty_incidents": "yes"}

CASES: list[tuple[Miss, str]] = [
    (Miss(MissCode.NO_RULES, {"role": "admin"}), "'admin' has no automatic approval rules."),
    (
        Miss(MissCode.CLUSTER_SCOPED, {"role": "cluster-admin", "rule": "primary"}),
        "'cluster-admin' is cluster-wide, and rule primary approves only namespaced roles without a click.",
    ),
    (
        Miss(MissCode.OVER_MAX_DURATION, {"duration": "45m", "max_duration": "30m", "rule": "primary"}),
        "45m is longer than the 30m rule primary approves without a click (ask for 30m or less, or wait for an "
        "approver).",
    ),
    (
        Miss(
            MissCode.OUTSIDE_WINDOW,
            {
                "day": "sat",
                "time": "04:00",
                "tz": "Europe/Paris",
                "window": "mon 09:00-17:00 Europe/Paris",
                "rule": "office",
            },
        ),
        "it is sat 04:00 Europe/Paris, outside the hours rule office covers (mon 09:00-17:00 Europe/Paris).",
    ),
    (
        Miss(MissCode.DAILY_CAP, {"approvals": "3", "max_per_day": "3", "rule": "capped"}),
        "you have had 3 automatic approvals in the last 24 hours, the most rule capped allows (3).",
    ),
    (
        Miss(MissCode.CAP_TAKEN, {"max_per_day": "2", "rule": "primary"}),
        "you have reached the 2 automatic approvals rule primary allows in 24 hours.",
    ),
    (
        Miss(MissCode.NOT_ON_CALL, {"schedules": "P1ABCDE, PPOLICY1", "rule": "primary"}),
        "you are not on call now in P1ABCDE, PPOLICY1, which rule primary needs.",
    ),
    (
        Miss(MissCode.ON_CALL_TOO_DEEP, {"level": "2", "max_level": "1", "on_call": "Payments", "rule": "primary"}),
        "you are secondary on call for Payments, and rule primary approves only primary on call (level 1 or below).",
    ),
    (
        Miss(MissCode.NO_TICKET_CITED, {"role": "admin", "foreign": "ABC-9", **BOTH}),
        "'admin' needs a ticket (ABC-9 is not in INC): cite a Jira issue of INC (like INC-123) or a PagerDuty "
        "incident (PD#1234 or its link) in the reason, still open, and ask again.",
    ),
    (
        Miss(MissCode.NO_TICKET_CITED, {"role": "", "pagerduty_incidents": "yes"}),
        "This needs a ticket: cite a PagerDuty incident (PD#1234 or its link) in the reason, still open, and ask "
        "again.",
    ),
    (
        Miss(MissCode.TICKET_UNKNOWN, {"ticket": "INC-4411", "system": "jira", **JIRA_INC}),
        "INC-4411 does not exist in Jira; cite a Jira issue of INC, OPS (like INC-123).",
    ),
    (
        Miss(MissCode.TICKET_CLOSED, {"ticket": "INC-4411", "status": "Done", "allowed": "Open, In Progress"}),
        "INC-4411 is Done, not Open or In Progress; cite a ticket that is still open.",
    ),
    (
        Miss(MissCode.TICKET_CLOSED, {"ticket": "INC-4411", "status": "Done", "allowed": "Open", "rule": "ticketed"}),
        "rule ticketed needs an open ticket: INC-4411 is Done, not Open; cite a ticket that is still open.",
    ),
    (Miss(MissCode.ON_CALL_NOT_ASKED), "PagerDuty was not asked who is on call."),
    (
        Miss(MissCode.ON_CALL_NOT_SET_UP),
        "PagerDuty is not set up (BREAKGLASS_PAGERDUTY_TOKEN is unset), so on-call was not checked.",
    ),
    (
        Miss(MissCode.NO_EMAIL_FOR_ON_CALL),
        "the roster has no email address for you (people.<id>.email), so PagerDuty could not be asked whether "
        "you are on call.",
    ),
    (
        Miss(MissCode.ON_CALL_LOOKUP_FAILED, {"error": "PagerDuty did not answer within 5 seconds."}),
        "PagerDuty did not answer within 5 seconds.",
    ),
    (
        Miss(MissCode.ON_CALL_UNREADABLE, {"error": "KeyError"}),
        "PagerDuty's on-call answer could not be read (KeyError).",
    ),
    (Miss(MissCode.TICKET_NOT_LOOKED_UP, {"ticket": "PD#12"}), "PD#12 was not looked up"),
    (
        Miss(MissCode.TICKET_SOURCE_NOT_SET_UP, {"ticket": "INC-4411", "system": "jira"}),
        "Jira is not set up (BREAKGLASS_JIRA_URL is unset), so INC-4411 could not be checked.",
    ),
    (
        Miss(MissCode.TICKET_LOOKUP_FAILED, {"ticket": "INC-4411", "error": "Jira answered 503."}),
        "Jira answered 503.",
    ),
    (
        Miss(MissCode.TICKET_UNREADABLE, {"ticket": "PD#12", "system": "pagerduty", "error": "ValueError"}),
        "PagerDuty's answer about PD#12 could not be read (ValueError).",
    ),
]


@pytest.mark.parametrize(("miss", "sentence"), CASES, ids=lambda c: c.code.value if isinstance(c, Miss) else "")
def test_each_code_renders_to_its_sentence_from_what_the_entry_keeps(miss: Miss, sentence: str) -> None:
    details = {**miss.details(), "lookup_failed": True} if miss.lookup_failed else miss.details()
    assert miss_sentence(details) == sentence
    assert Miss.from_details(details) == miss


def test_every_code_has_a_sentence_here() -> None:
    assert {miss.code for miss, _ in CASES} == set(MissCode)


def test_codes_are_not_read_as_end_reasons_or_grant_failures() -> None:
    # Listings try each reader on an entry's details: a code must belong to one of them only.
    assert not {c.value for c in MissCode} & ({c.value for c in EndCode} | {c.value for c in FailureCode})


def test_a_miss_records_only_its_own_facts() -> None:
    with pytest.raises(ValueError, match="records no"):
        Miss(MissCode.NO_RULES, {"why": "a sentence"})


def test_an_entry_written_before_codes_reads_as_it_was_written() -> None:
    old = {"why": "PagerDuty is down (503).", "lookup_failed": True}
    assert miss_sentence(old) == "PagerDuty is down (503)."
    assert said_as_before(old) == old
    assert unchecked_sentence("Jira did not answer within 5 s.") == "Jira did not answer within 5 s."
    assert miss_sentence({}) is None


def test_a_coded_entry_is_listed_as_an_old_one_was() -> None:
    miss = Miss(MissCode.DAILY_CAP, {"approvals": "3", "max_per_day": "3", "rule": "capped"})
    assert said_as_before(miss.details()) == {
        "why": "you have had 3 automatic approvals in the last 24 hours, the most rule capped allows (3)."
    }
    unreadable = {**Miss(MissCode.ON_CALL_NOT_SET_UP).details(), "lookup_failed": True}
    assert list(said_as_before(unreadable)) == ["why", "lookup_failed"]


def test_a_ticket_unchecked_is_rendered_from_its_code() -> None:
    miss = Miss(MissCode.TICKET_SOURCE_NOT_SET_UP, {"ticket": "PD#12", "system": "pagerduty"})
    assert unchecked_sentence(miss.details()) == (
        "PagerDuty is not set up (BREAKGLASS_PAGERDUTY_TOKEN is unset), so PD#12 could not be checked."
    )


def test_a_rule_that_no_longer_approves_keeps_its_miss_as_a_code_in_the_grant_failure() -> None:
    miss = Miss(MissCode.OVER_MAX_DURATION, {"duration": "30m", "max_duration": "15m", "rule": "primary"})
    failure = GrantFailure(FailureCode.RULE_NO_LONGER_APPROVES, {"rule": "primary", **miss.details(key="miss")})
    details = failure.details()
    assert details["miss"] == "over_max_duration"
    assert failure_sentence(details) == (
        "rule primary no longer approves it automatically: 30m is longer than the 15m rule primary approves "
        "without a click (ask for 15m or less, or wait for an approver)"
    )
    old = {"code": "rule_no_longer_approves", "rule": "night", "reason": "It is outside the window."}
    assert failure_sentence(old) == "rule night no longer approves it automatically: It is outside the window"
