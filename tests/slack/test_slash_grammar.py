"""The /breakglass grammar: every form the contract lists, and a clear sentence for every bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.slack.slash_grammar import (
    Ask,
    Cancel,
    CommandError,
    Extend,
    Help,
    ListRequests,
    OpenForm,
    Revoke,
    Status,
    parse_command,
)
from tests.fakes import ALICE
from tests.slack.harness import SlackAppHarness


def test_no_text_opens_the_form() -> None:
    assert parse_command("") == OpenForm()
    assert parse_command("   ") == OpenForm()


def test_one_line_request_is_parsed_with_the_reason_kept_whole() -> None:
    command = parse_command("prod/payments admin 1h30m INC-4411  checkout pods\tcrash-looping")
    assert command == Ask(
        "prod", "payments", "admin", timedelta(hours=1, minutes=30), "INC-4411  checkout pods\tcrash-looping"
    )


def test_cluster_without_namespace_is_a_cluster_wide_ask() -> None:
    command = parse_command("prod cluster-admin 15m INC-1 etcd is on fire")
    assert isinstance(command, Ask)
    assert command.namespace is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", Help()),
        ("HELP", Help()),
        ("list", ListRequests()),
        ("status bg-7k2qxm", Status("BG-7K2QXM")),
        ("cancel BG-7K2QXM", Cancel("BG-7K2QXM")),
        ("revoke Bg-7k2QxM", Revoke("BG-7K2QXM")),
        (
            "extend bg-7k2qxm 30m still mitigating INC-4411",
            Extend("BG-7K2QXM", timedelta(minutes=30), "still mitigating INC-4411"),
        ),
    ],
)
def test_subcommands_match_ids_case_insensitively(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("text", ["frobnicate", "prod/payments admin", "approve BG-7K2QXM"])
def test_unknown_or_incomplete_text_gets_the_help(text: str) -> None:
    command = parse_command(text)
    assert isinstance(command, Help)
    assert command.unknown == text


CLUSTERS = ("prod", "staging")


@pytest.mark.parametrize(
    "text",
    ["approve BG-7K2QXM looks right to me", "mars/payments admin 30m INC-1 checkout is down", "frobnicate"],
)
def test_a_first_word_that_is_neither_a_subcommand_nor_a_cluster_gets_the_help(text: str) -> None:
    command = parse_command(text, CLUSTERS)
    assert command == Help(unknown_word=text.split()[0].partition("/")[0])  # the word alone: the help names only it


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "prod/payments admin 1h INC-4411 checkout",
            Ask("prod", "payments", "admin", timedelta(hours=1), "INC-4411 checkout"),
        ),
        (
            "staging view 15m INC-4411 look at logs",
            Ask("staging", None, "view", timedelta(minutes=15), "INC-4411 look at logs"),
        ),
        ("LIST", ListRequests()),
    ],
)
def test_a_roster_cluster_or_a_subcommand_is_parsed_as_before(text: str, expected: object) -> None:
    assert parse_command(text, CLUSTERS) == expected


@pytest.mark.parametrize(
    ("duration", "says"),
    [
        ("0s", "'0s' is not a positive duration"),
        ("-5m", "'-5m' is not a duration"),
        ("99999h", "'99999h' is longer than any grant can be (7 days)"),
        ("1x", "'1x' is not a duration"),
        ("200h", "longer than any grant can be"),
    ],
)
def test_bad_durations_are_refused_with_what_to_type(duration: str, says: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(f"prod/payments admin {duration} INC-4411 checkout pods crash-looping")
    assert says in refused.value.reason
    assert "Example: `/breakglass prod/payments admin 1h" in refused.value.reason


@pytest.mark.parametrize("text", ["status nope", "cancel BG-0O1IL0", "revoke 42", "extend BG-123 30m reason here ok"])
def test_malformed_request_ids_are_refused(text: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(text)
    assert "is not a request id; ids look like BG-7K2QXM" in refused.value.reason


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("status", "takes one request id"),
        ("cancel BG-7K2QXM BG-7K2QXN", "takes one request id"),
        ("list everything", "takes nothing after it"),
        ("extend BG-7K2QXM 30m", "needs an id, a duration and a reason"),
        ("extend BG-7K2QXM 1x needed more", "'1x' is not a duration"),
        ("/payments admin 1h some reason here", "names no cluster"),
        ("prod/ admin 1h some reason here", "names no namespace"),
    ],
)
def test_malformed_subcommands_say_what_to_type(text: str, says: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(text)
    assert says in refused.value.reason


def test_an_unknown_subcommand_of_four_words_is_answered_with_the_help_not_a_missing_cluster(
    harness: SlackAppHarness,
) -> None:
    harness.command(ALICE, "approve BG-7K2QXM looks right")
    said = harness.last_said_to(ALICE)
    first_line = said.splitlines()[0].replace("`", "")
    assert (
        first_line
        == "approve is neither a breakglass command nor a cluster (clusters: prod, staging); here is what I do:"
    )
    assert "There is no cluster" not in said
    assert "/breakglass status <id>" in said
    assert harness.requests() == []


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("60min", timedelta(hours=1)),
        ("1 hour", timedelta(hours=1)),
        ("2d", timedelta(days=2)),  # the role's max_duration decides whether it is granted
        ("90 minutes", timedelta(minutes=90)),
    ],
)
def test_durations_as_people_write_them_leave_the_reason_whole(duration: str, expected: timedelta) -> None:
    command = parse_command(f"prod/payments admin {duration} INC-4411 2 pods down")
    assert command == Ask("prod", "payments", "admin", expected, "INC-4411 2 pods down")


def test_a_missing_reason_gets_a_one_line_hint_not_the_help() -> None:
    with pytest.raises(CommandError) as refused:
        parse_command("prod/payments admin 1h")
    assert refused.value.reason == (
        "Add a reason after the duration, e.g. `/breakglass prod/payments admin 1h INC-4411 checkout pods crash-looping`."
    )


def test_a_namespace_typed_as_its_own_word_is_told_to_join_the_cluster_with_a_slash() -> None:
    with pytest.raises(CommandError) as refused:
        parse_command("prod payments admin 1h fix", CLUSTERS)
    assert refused.value.reason.startswith("Write the target as cluster/namespace: `prod/payments`")


def test_an_extension_takes_a_duration_in_words() -> None:
    assert parse_command("extend BG-7K2QXM 1 hour rollback is slow") == Extend(
        "BG-7K2QXM", timedelta(hours=1), "rollback is slow"
    )
