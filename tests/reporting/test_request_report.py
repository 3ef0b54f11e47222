"""One request's post-incident report, rendered from its audit entries alone."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.audit import Verdict, verify_chain
from bot.reporting import history_of, request_html, request_markdown
from tests.conftest import CHAIN_KEY
from tests.reporting.stories import START, Trail, full_story

NOW = START + timedelta(days=1)


def test_the_report_tells_the_whole_story_in_order() -> None:
    trail = full_story()
    history = history_of("BG-7K2QXM", trail.entries)
    text = request_markdown(history, verify_chain(trail.entries, CHAIN_KEY), NOW)

    assert text.startswith("# Post-incident report: BG-7K2QXM\n")
    events = [line.split(" | ")[1] for line in text.splitlines() if line.startswith("| 2026-")]
    assert events == [
        "requested",
        "approved",
        "approved",
        "granted",
        "actions recorded",
        "reminder sent",
        "extended",
        "revoked",
        "binding deleted",
        "review written",
    ]
    assert "| Duration asked | 1h |" in text
    # Granted 09:05:02, access removed 09:57:03.
    assert "| Duration used | 52m1s |" in text
    assert "- 2026-11-02T09:03:00Z by U0000000BOB" in text
    assert "| Outcome | revoked |" in text
    assert "| Extended by | BG-9PQRST |" in text


def test_actions_are_summarised_by_verb_and_resource_with_the_first_twenty_changes() -> None:
    text = request_markdown(history_of("BG-7K2QXM", full_story().entries), None, NOW)

    assert "27 actions recorded, 25 of them changing something." in text
    assert "| delete | pods | 25 |" in text
    changes = [line for line in text.splitlines() if line.startswith("- 2026-11-02T09:10:00Z delete")]
    assert len(changes) == 20
    assert "- and 5 more" in text


def test_typed_text_cannot_add_markdown_of_its_own() -> None:
    text = request_markdown(history_of("BG-7K2QXM", full_story().entries), None, NOW)

    assert "| Justification | INC-4411 \\*checkout\\* \\<pods\\> \\| crash |" in text
    assert "> \\# not a heading" in text
    assert "Follow-ups:\n\n> INC-4412 memory limit" in text


def test_an_automatic_approval_names_its_rule_and_evidence() -> None:
    trail = Trail()
    trail.requested("BG-AAAAAA", "U000000ALICE")
    trail.add(
        "BG-AAAAAA",
        "approved",
        "system",
        timedelta(seconds=1),
        rule="pagerduty_oncall",
        evidence="on call for P1ABCDE at level 1",
    )
    history = history_of("BG-AAAAAA", trail.entries)
    text = request_markdown(history, None, NOW)

    assert history.automatic
    assert "automatically by rule (rule: pagerduty\\_oncall, evidence: on call for P1ABCDE at level 1)" in text
    assert "| Approvals required | 2 (approved automatically) |" in text


def test_a_grant_with_no_review_says_one_is_owed() -> None:
    trail = full_story()
    trail.entries.pop()  # the review
    text = request_markdown(history_of("BG-7K2QXM", trail.entries), None, NOW)
    assert "**No review has been written yet; one is owed.**" in text


def test_the_chain_verdict_is_part_of_the_report() -> None:
    trail = full_story()
    history = history_of("BG-7K2QXM", trail.entries)

    intact = request_markdown(history, verify_chain(trail.entries, CHAIN_KEY), NOW)
    assert "The audit chain verifies: 10 entries intact" in intact
    broken = request_markdown(history, Verdict(False, 3, 4, "entry 4 was altered (its hash does not match)"), NOW)
    assert "**The audit chain is broken at entry 4: entry 4 was altered (its hash does not match). " in broken
    unread = request_markdown(history, None, NOW)
    assert "was not verified (that needs BREAKGLASS\\_SIGNING\\_KEY)" in unread


def test_each_section_names_the_controls_it_evidences() -> None:
    text = request_markdown(history_of("BG-7K2QXM", full_story().entries), None, NOW)
    sections = text.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "Request and approvals",
        "Timeline",
        "Actions in the cluster",
        "Review",
        "Integrity of the record",
    ]
    for section in sections:
        assert "Evidences: SOC 2 CC" in section
        assert "ISO/IEC 27001:2022 A." in section


def test_the_html_page_escapes_typed_text_and_fetches_nothing() -> None:
    page = request_html(history_of("BG-7K2QXM", full_story().entries), None, NOW)

    assert "INC-4411 *checkout* &lt;pods&gt; | crash" in page
    assert "<pods>" not in page
    assert "default-src 'none'" in page
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert page.count("<svg") == 2  # duration asked and used; actions by verb


def test_sessions_possibly_still_open_and_dropped_actions_are_reported() -> None:
    trail = full_story()
    trail.add(
        "BG-7K2QXM",
        "actions_summary",
        "system",
        count=27,
        change_count=25,
        dropped=40,
        open_sessions=[
            {"at": "2026-11-02T09:20:00Z", "verb": "exec", "resource": "pods", "namespace": "payments", "name": "web-7"}
        ],
    )
    history = history_of("BG-7K2QXM", trail.entries)
    text = request_markdown(history, None, NOW)
    assert "40 further actions were counted but not kept (the per-grant limit)." in text
    assert "removing the binding does not end a running exec" in text
    assert "- exec pods payments/web-7, started 2026-11-02T09:20:00Z" in text
    assert "exec pods payments/web-7, started 2026-11-02T09:20:00Z" in request_html(history, None, NOW)


def _swept_and_idled(coded: bool) -> Trail:
    """A grant the sweep cut short, and one revoked for idleness, as written before and after the
    reasons became codes: the entries hold the sentence under ``why``, or its code and facts."""

    def reason(sentence: str, **code: str) -> dict[str, str]:
        return code if coded else {"why": sentence}

    passed = reason("its binding's expiry x has passed", code="binding_expiry_passed", binding_expires_at="x")
    trail = Trail()
    trail.requested("BG-AAAAAA", "U000000ALICE")
    trail.granted("BG-AAAAAA")
    trail.add("BG-AAAAAA", "sweep_revoked_overdue", "system", timedelta(minutes=5), cluster="prod", **passed)
    trail.add("BG-AAAAAA", "expired", "system", expires_at="y", **passed)
    trail.add("BG-AAAAAA", "binding_deleted", "system", cluster="prod", binding="breakglass-bg-aaaaaa", **passed)
    trail.add(
        "BG-AAAAAA",
        "sweep_service_account_deleted",
        "system",
        cluster="prod",
        service_account="breakglass-system/breakglass-bg-aaaaaa",
        **reason("its request is expired", code="request_ended", state="expired"),
    )
    trail.requested("BG-BBBBBB", "U000000ALICE")
    trail.granted("BG-BBBBBB")
    idle = {"idle_timeout": "10m", "cluster": "prod", "last_action_at": "z"}
    trail.add(
        "BG-BBBBBB",
        "revoked",
        "system",
        timedelta(minutes=20),
        **(
            {"code": "idle", **idle}
            if coded
            else {"why": "idle for 10m: no action recorded on prod since z", "idle_timeout": "10m"}
        ),
    )
    return trail


def test_breakglass_own_reasons_read_the_same_whether_written_as_sentences_or_codes() -> None:
    old, new = _swept_and_idled(coded=False), _swept_and_idled(coded=True)
    for rid in ("BG-AAAAAA", "BG-BBBBBB"):
        before = request_markdown(history_of(rid, old.entries), None, NOW)
        after = request_markdown(history_of(rid, new.entries), None, NOW)
        assert after == before
    swept = request_markdown(history_of("BG-AAAAAA", new.entries), None, NOW)
    assert "cluster: prod, why: its binding's expiry x has passed" in swept
    assert "why: its request is expired" in swept
    assert "code" not in swept
    idled = request_markdown(history_of("BG-BBBBBB", new.entries), None, NOW)
    assert "why: idle for 10m: no action recorded on prod since z" in idled


def test_left_to_approvers_reads_the_same_whether_written_as_a_sentence_or_a_code() -> None:
    def trail(left: dict[str, object]) -> Trail:
        written = Trail()
        written.requested("BG-CCCCCC", "U000000ALICE")
        written.add("BG-CCCCCC", "left_to_approvers", "system", **left)
        return written

    sentence = "PagerDuty did not answer within 5 seconds."
    old = trail({"why": sentence, "lookup_failed": True})
    new = trail({"code": "on_call_lookup_failed", "error": sentence, "lookup_failed": True})
    before = request_markdown(history_of("BG-CCCCCC", old.entries), None, NOW)
    after = request_markdown(history_of("BG-CCCCCC", new.entries), None, NOW)
    assert after == before
    assert f"why: {sentence}, lookup\\_failed: True" in after  # escaped for Markdown
    assert "on_call_lookup_failed" not in after
