"""The audit hash chain on its own: intact chains verify; any change, removal, reordering or lost
tail is found, and the verdict names the first bad entry; without the key nobody can write a chain
that verifies."""

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from bot.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    entry_hash,
    format_at,
    next_entry,
    signed_text_in,
    verify_chain,
    verify_stored_chain,
)
from tests.conftest import CHAIN_KEY
from tests.fakes import T0

LENGTH = 6


def chain(length: int = LENGTH, key: bytes = CHAIN_KEY) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, length + 1):
        entry = next_entry(
            key=key,
            seq=seq,
            prev_hash=prev,
            at=T0 + timedelta(seconds=seq),
            request_id="BG-7K2QXM" if seq % 2 else None,
            event="approved" if seq % 2 else "refused",
            actor="U0000000BOB",
            details={"count": seq, "note": "ü ✓"},
        )
        entries.append(entry)
        prev = entry.hash
    return entries


def head_of(entries: list[AuditEntry]) -> tuple[int, str]:
    return (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS_HASH)


def test_intact_chain_verifies() -> None:
    entries = chain()
    verdict = verify_chain(entries, CHAIN_KEY, head=head_of(entries))
    assert verdict.ok
    assert verdict.checked == LENGTH
    assert verdict.bad_seq is None


def test_empty_chain_verifies_against_an_empty_head() -> None:
    assert verify_chain([], CHAIN_KEY, head=(0, GENESIS_HASH)).ok
    assert verify_chain([], CHAIN_KEY).ok


def test_each_entry_hashes_its_fields_and_the_one_before() -> None:
    entries = chain()
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in pairwise(entries):
        assert after.prev_hash == before.hash
    first = entries[0]
    assert first.hash == entry_hash(
        CHAIN_KEY, first.seq, first.at, first.request_id, first.event, first.actor, first.details, first.prev_hash
    )
    assert first.at == format_at(T0 + timedelta(seconds=1)) == "2026-11-27T09:00:01.000000Z"


ALTERATIONS: list[tuple[str, dict[str, Any]]] = [
    ("at", {"at": "2026-11-27T08:00:00.000000Z"}),
    ("request_id", {"request_id": "BG-222222"}),
    ("event", {"event": "denied"}),
    ("actor", {"actor": "U00000CAROL"}),
    ("details", {"details": {"count": 99, "note": "ü ✓"}}),
    ("prev_hash", {"prev_hash": "f" * 64}),
    ("hash", {"hash": "0" * 63 + "1"}),
    ("seq", {"seq": 42}),
]


@pytest.mark.parametrize("position", range(LENGTH), ids=lambda p: f"entry-{p + 1}")
@pytest.mark.parametrize("change", [c[1] for c in ALTERATIONS], ids=[c[0] for c in ALTERATIONS])
def test_altering_any_field_of_any_entry_is_found_at_that_entry(position: int, change: dict[str, Any]) -> None:
    entries = chain()
    entries[position] = replace(entries[position], **change)
    verdict = verify_chain(entries, CHAIN_KEY, head=head_of(chain()))
    assert not verdict.ok
    assert verdict.bad_seq == position + 1
    assert verdict.checked == position


def test_rehashing_an_altered_entry_is_still_found_at_the_next() -> None:
    entries = chain()
    e = replace(entries[2], actor="U00000CAROL")
    entries[2] = replace(
        e, hash=entry_hash(CHAIN_KEY, e.seq, e.at, e.request_id, e.event, e.actor, e.details, e.prev_hash)
    )
    verdict = verify_chain(entries, CHAIN_KEY, head=head_of(chain()))
    assert (verdict.ok, verdict.bad_seq) == (False, 4)
    assert verdict.problem == "entry 4 does not follow entry 3"


@pytest.mark.parametrize("position", range(LENGTH - 1), ids=lambda p: f"entry-{p + 1}")
def test_removing_an_entry_is_found_at_its_seq(position: int) -> None:
    entries = chain()
    del entries[position]
    verdict = verify_chain(entries, CHAIN_KEY, head=head_of(chain()))
    assert (verdict.ok, verdict.bad_seq) == (False, position + 1)
    assert verdict.problem == f"entry {position + 1} is missing (found {position + 2} next)"


@pytest.mark.parametrize("position", range(LENGTH - 1), ids=lambda p: f"entries-{p + 1}-{p + 2}")
def test_swapping_two_neighbours_is_found_at_the_first(position: int) -> None:
    entries = chain()
    entries[position], entries[position + 1] = entries[position + 1], entries[position]
    verdict = verify_chain(entries, CHAIN_KEY, head=head_of(chain()))
    assert (verdict.ok, verdict.bad_seq) == (False, position + 1)


@pytest.mark.parametrize("dropped", [1, 2, LENGTH], ids=["last", "last-two", "all"])
def test_truncating_the_tail_is_found_through_the_head(dropped: int) -> None:
    full = chain()
    verdict = verify_chain(full[: LENGTH - dropped], CHAIN_KEY, head=head_of(full))
    assert not verdict.ok
    assert verdict.bad_seq == LENGTH - dropped + 1
    assert verdict.problem == f"entries after {LENGTH - dropped} are missing (the head is at {LENGTH})"


def test_truncating_the_tail_without_a_head_goes_unnoticed() -> None:
    # Why the store keeps a head: the chain alone cannot know it lost its newest entries.
    assert verify_chain(chain()[:-1], CHAIN_KEY).ok


def test_a_head_that_does_not_match_the_last_hash_fails() -> None:
    entries = chain()
    verdict = verify_chain(entries, CHAIN_KEY, head=(LENGTH, "e" * 64))
    assert not verdict.ok
    assert verdict.bad_seq == LENGTH + 1


def test_entries_round_trip_through_their_json() -> None:
    for entry in chain():
        assert AuditEntry.from_dict(json.loads(entry.to_json())) == entry


def unkeyed_hash(entry: AuditEntry) -> str:
    """What the chain's hash was before it was keyed: anyone could compute it."""
    body = {k: v for k, v in entry.to_dict().items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def rewritten(entries: list[AuditEntry], rehash: Any) -> list[AuditEntry]:
    """The history an attacker writes: every entry rehashed in turn, the chain consistent."""
    out: list[AuditEntry] = []
    prev = GENESIS_HASH
    for entry in entries:
        moved = replace(entry, prev_hash=prev, hash="")
        moved = replace(moved, hash=rehash(moved))
        out.append(moved)
        prev = moved.hash
    return out


@pytest.mark.parametrize(
    "rehash",
    [
        unkeyed_hash,
        lambda e: entry_hash(b"guessed-key", e.seq, e.at, e.request_id, e.event, e.actor, e.details, e.prev_hash),
    ],
    ids=["plain-sha256", "another-key"],
)
def test_a_history_rewritten_without_the_key_does_not_verify(rehash: Any) -> None:
    # The review's recipe: drop the last entry, change an approver, recompute every hash.
    entries = chain()[:-1]
    entries[2] = replace(entries[2], actor="U00000CAROL")
    forged = rewritten(entries, rehash)
    verdict = verify_chain(forged, CHAIN_KEY, head=head_of(forged))
    assert (verdict.ok, verdict.bad_seq) == (False, 1)


def test_a_chain_written_under_one_key_does_not_verify_under_another() -> None:
    entries = chain(key=b"k" * 32)
    assert verify_chain(entries, b"k" * 32, head=head_of(entries)).ok
    assert not verify_chain(entries, CHAIN_KEY, head=head_of(entries)).ok


# --- verifying the text an entry was stored as ---------------------------------------------------

# Values that put the signed text's own punctuation where the cut looks for it.
AWKWARD: list[tuple[str | None, dict[str, Any]]] = [
    (None, {}),
    ("BG-7K2QXM", {"hash": "f" * 64, "prev_hash": GENESIS_HASH, "seq": 3, "request_id": None}),
    ('x","prev_hash":"' + "0" * 64 + '","request_id":null,"seq":1}', {"note": '"hash":"' + "a" * 64 + '",'}),
    ('q\\"\\', {"nested": {"seq": 1, "list": ["}", '"', "\\"]}, "ü": "✓ \n\t\u0001"}),
    ("null", {"x": None, "y": 1.5, "z": [True, False]}),
]


def awkward_chain() -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for seq, (request_id, details) in enumerate(AWKWARD, start=1):
        entry = next_entry(
            key=CHAIN_KEY,
            seq=seq,
            prev_hash=prev,
            at=T0,
            request_id=request_id,
            event="refused",
            actor="U1",
            details=details,
        )
        entries.append(entry)
        prev = entry.hash
    return entries


def canonical_body(entry: AuditEntry) -> bytes:
    body = {k: v for k, v in entry.to_dict().items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_the_text_cut_from_an_entrys_json_is_exactly_what_its_hash_is_over() -> None:
    for entry in awkward_chain():
        assert signed_text_in(entry.to_json(), entry) == canonical_body(entry)


@pytest.mark.parametrize(
    "restore",
    [
        lambda e: json.dumps(e.to_dict()),  # spaces, ASCII escapes
        lambda e: json.dumps(e.to_dict(), separators=(",", ":"), ensure_ascii=False),  # field order as written
        lambda e: e.to_json().replace('"hash":"' + e.hash + '",', "")[:-1] + ',"hash":"' + e.hash + '"}',
        lambda e: e.to_json().replace('"actor":', '"actor": ', 1),  # cut, but not the signed text
    ],
    ids=["spaced", "unsorted", "hash-last", "spaced-head"],
)
def test_json_written_otherwise_is_not_cut_and_still_verifies(restore: Any) -> None:
    entries = awkward_chain()
    stored = [(e, restore(e)) for e in entries]
    assert all(json.loads(text) == e.to_dict() for e, text in stored)
    cuts = [(e, signed_text_in(text, e)) for e, text in stored]
    assert all(cut != canonical_body(e) for e, cut in cuts)
    verdict = verify_stored_chain(cuts, CHAIN_KEY, head=head_of(entries))
    assert (verdict.ok, verdict.checked) == (True, len(entries))


def forgeries(entry: AuditEntry) -> list[str]:
    """The JSON of ``entry`` tampered with in ways aimed at the cut: whatever still parses as an entry."""
    text = entry.to_json()
    hash_field = f'"hash":"{entry.hash}",'
    return [
        text.replace('"actor":"U1"', '"actor":"U2"'),
        text.replace(hash_field, "")[:-1] + "," + hash_field[:-1] + "}",
        text.replace(hash_field, hash_field + '"actor":"U2",'),  # a duplicate key after the cut
        text[:-1] + ',"actor":"U2"}',
        text.replace('"details":{', '"details":{"hash":"' + entry.hash + '",', 1),
        "{" + hash_field + text[1:],
    ]


@pytest.mark.parametrize("position", range(len(AWKWARD)), ids=lambda p: f"entry-{p + 1}")
def test_a_tampered_json_gets_the_verdict_of_the_entry_it_parses_to(position: int) -> None:
    entries = awkward_chain()
    tried = 0
    for forged in forgeries(entries[position]):
        try:
            data = json.loads(forged)
        except ValueError:
            continue  # not JSON: parse_stream_entry refuses it before any hash is checked
        tried += 1
        read = AuditEntry.from_dict(data)
        tampered = [*entries[:position], read, *entries[position + 1 :]]
        cuts = [(e, e.to_json() if e is not read else forged) for e in tampered]
        stored = [(e, signed_text_in(text, e)) for e, text in cuts]
        expected = verify_chain(tampered, CHAIN_KEY, head=head_of(entries))
        assert verify_stored_chain(stored, CHAIN_KEY, head=head_of(entries)) == expected, forged
    assert tried >= 5
