"""Request ids: ``BG-`` and six characters that cannot be misheard, matched case-insensitively."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.ids import REQUEST_ID_ALPHABET, is_slack_user_id, new_request_id, parse_request_id


def test_alphabet_leaves_out_characters_that_look_or_sound_alike() -> None:
    for ambiguous in "01OIlLU":
        assert ambiguous.upper() not in REQUEST_ID_ALPHABET
    assert len(set(REQUEST_ID_ALPHABET)) == len(REQUEST_ID_ALPHABET) == 30
    assert REQUEST_ID_ALPHABET.upper() == REQUEST_ID_ALPHABET


def test_new_request_ids_have_the_contract_shape() -> None:
    for _ in range(200):
        request_id = new_request_id()
        assert request_id.startswith("BG-")
        assert len(request_id) == 9
        assert set(request_id[3:]) <= set(REQUEST_ID_ALPHABET)
        assert parse_request_id(request_id) == request_id


def test_new_request_ids_differ() -> None:
    assert len({new_request_id() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BG-7K2QXM", "BG-7K2QXM"),
        ("bg-7k2qxm", "BG-7K2QXM"),
        ("Bg-7K2qXm", "BG-7K2QXM"),
        ("  BG-7K2QXM\n", "BG-7K2QXM"),
    ],
    ids=["canonical", "lower-case", "mixed-case", "padded"],
)
def test_parse_request_id_is_case_insensitive(text: str, expected: str) -> None:
    assert parse_request_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "BG-",
        "BG-7K2QX",
        "BG-7K2QXMM",
        "7K2QXM",
        "BG7K2QXM",
        "BG_7K2QXM",
        "XX-7K2QXM",
        "BG-0K2QXM",
        "BG-OK2QXM",
        "BG-1K2QXM",
        "BG-IK2QXM",
        "BG-LK2QXM",
        "BG-UK2QXM",
        "BG-7K2 QXM",
        "BG-7K2QXM BG-7K2QXM",
    ],
    ids=[
        "empty",
        "prefix-only",
        "too-short",
        "too-long",
        "no-prefix",
        "no-dash",
        "underscore",
        "wrong-prefix",
        "zero",
        "letter-o",
        "one",
        "letter-i",
        "letter-l",
        "letter-u",
        "space-inside",
        "two-ids",
    ],
)
def test_parse_request_id_rejects_other_shapes(text: str) -> None:
    assert parse_request_id(text) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_parse_request_id_accepts_only_canonical_ids(text: str) -> None:
    parsed = parse_request_id(text)
    if parsed is not None:
        assert parsed == text.strip().upper()
        assert parsed.startswith("BG-")
        assert set(parsed[3:]) <= set(REQUEST_ID_ALPHABET)


@pytest.mark.parametrize(
    ("text", "valid"),
    [("U000000ALICE", True), ("W0123ABC", True), ("u000000alice", False), ("C0000INCIDENT", False), ("U1", False)],
    ids=["user", "enterprise-user", "lower-case", "channel", "too-short"],
)
def test_is_slack_user_id(text: str, valid: bool) -> None:
    assert is_slack_user_id(text) is valid
