"""A period's summary: grants by role, cluster and person, approval latency and duration used,
self-service and automatic approvals, refusals, reviews owed and overdue, the most frequent changes."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.audit import verify_chain
from bot.reporting import period_html, period_markdown, summarise
from tests.conftest import CHAIN_KEY
from tests.reporting.stories import START, Trail, action


def _period() -> Trail:
    trail = Trail()
    # An approved admin grant, reviewed.
    trail.requested("BG-AAAAAA", "U000000ALICE")
    trail.add("BG-AAAAAA", "approved", "U0000000BOB", timedelta(minutes=4), count=2, required=2)
    trail.granted("BG-AAAAAA")
    trail.actions("BG-AAAAAA", [action("delete", "pods", "a"), action("patch", "deployments", "web")])
    trail.add("BG-AAAAAA", "expired", "system", timedelta(minutes=30), expires_at="x")
    trail.add("BG-AAAAAA", "review_written", "U0000000BOB", timedelta(minutes=5), review="fine")
    # Self-service view, never reviewed, ended long ago: overdue.
    trail.requested("BG-BBBBBB", "U00000CAROL", role="view", approvals_required=0)
    trail.add("BG-BBBBBB", "approved", "system", self_service=True, waited_seconds=0.0)
    trail.granted("BG-BBBBBB")
    trail.actions("BG-BBBBBB", [action("delete", "pods", "b")])
    trail.add("BG-BBBBBB", "expired", "system", timedelta(minutes=10))
    # Approved automatically by a rule, ended recently, review owed but not overdue.
    trail.add(None, "refused", "U0000000BOB", timedelta(days=8))
    trail.requested("BG-CCCCCC", "U000000ALICE", namespace=None, role="cluster-admin")
    trail.add("BG-CCCCCC", "approved", "system", timedelta(seconds=1), rule="pagerduty_oncall")
    trail.granted("BG-CCCCCC")
    trail.add("BG-CCCCCC", "revoked", "U000000ALICE", timedelta(minutes=15), early=True)
    # Denied, and two refused clicks.
    trail.requested("BG-DDDDDD", "U000000ALICE")
    trail.add("BG-DDDDDD", "refused", "U000000ALICE", action="approve", reason="own request")
    trail.add("BG-DDDDDD", "refused", "U000000ALICE", action="approve", reason="own request")
    trail.add("BG-DDDDDD", "denied", "U0000000BOB", timedelta(minutes=1))
    return trail


def test_the_summary_counts_grants_approvals_refusals_and_reviews() -> None:
    trail = _period()
    summary = summarise(trail.entries, START, trail.at + timedelta(hours=1))

    assert summary.requests == 4
    assert [g.id for g in summary.grants] == ["BG-AAAAAA", "BG-BBBBBB", "BG-CCCCCC"]
    assert summary.by_role == {"admin": 1, "view": 1, "cluster-admin": 1}
    assert summary.by_person == {"U000000ALICE": 2, "U00000CAROL": 1}
    assert summary.approval_latencies == [timedelta(minutes=4), timedelta(seconds=1)]
    assert [h.id for h in summary.self_service] == ["BG-BBBBBB"]
    assert [h.id for h in summary.automatic] == ["BG-CCCCCC"]
    assert [h.id for h in summary.denied] == ["BG-DDDDDD"]
    assert summary.refusals == {"approve": 2, "other": 1}
    assert [h.id for h in summary.reviews_owed] == ["BG-BBBBBB", "BG-CCCCCC"]
    assert [h.id for h in summary.reviews_overdue] == ["BG-BBBBBB"]
    assert summary.top_mutating[0] == (("delete", "pods"), 2)
    assert summary.mutating_total == 3


def test_the_markdown_summary_names_every_section_and_its_controls() -> None:
    trail = _period()
    text = period_markdown(summarise(trail.entries, START, trail.at), verify_chain(trail.entries, CHAIN_KEY))

    assert text.startswith("# Access report: 2026-11-02T09:00:00Z to ")
    assert "Self-service break-glass: 1 (BG-BBBBBB)." in text
    assert "Approved automatically by a rule: 1 (BG-CCCCCC)." in text
    assert "Overdue (not written 24h after the grant ended): 1 (BG-BBBBBB)." in text
    assert "| delete | pods | 2 |" in text
    assert "The audit chain verifies: 20 entries intact" in text
    for section in text.split("\n## ")[1:]:
        assert "Evidences: SOC 2 CC" in section


def test_the_html_summary_draws_its_charts_inline() -> None:
    trail = _period()
    page = period_html(summarise(trail.entries, START, trail.at), None)

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 7  # by role, cluster, person; latency; durations; refusals; changes
    for control in ("CC6.1", "CC6.2", "CC6.3", "CC7.2", "A.5.15", "A.5.18", "A.8.2", "A.8.15", "A.8.16"):
        assert control in page


def test_an_empty_period_still_makes_a_report() -> None:
    text = period_markdown(summarise([], START, START + timedelta(days=30)), None)
    assert "0 requests, 0 grants, 0 audit entries in the period." in text
    assert "No access was granted in the period." in text
