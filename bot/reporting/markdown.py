"""The reports as Markdown: what ``breakglass report`` prints.

Text people typed (reasons, reviews) is escaped so that it reads as typed and cannot add headings,
links or table cells of its own.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from bot.domain.audit import Verdict, format_at
from bot.reporting import controls, wording
from bot.reporting.history import RequestHistory, human_duration
from bot.reporting.period import REVIEW_DUE_AFTER, PeriodSummary

FIRST_MUTATING = 20
_SPECIAL = "\\`*_[]<>|#"


def md(text: object) -> str:
    """Plain text for a Markdown line or table cell."""
    out = "".join("\\" + c if c in _SPECIAL else c for c in str(text))
    return " ".join(out.split())


def _quote(text: str) -> list[str]:
    return ["> " + md(line) if line.strip() else ">" for line in text.splitlines()] or [">"]


def _section(title: str, evidences: tuple[str, ...]) -> list[str]:
    return ["", f"## {title}", "", f"_{controls.controls_line(evidences)}_", ""]


def _table(headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]
    return lines


def _when(at: datetime | None) -> str:
    return format_at(at).replace(".000000Z", "Z") if at else "—"


def integrity_lines(verdict: Verdict | None) -> list[str]:
    verified, sentence = wording.integrity(verdict)
    return [md(sentence) if verified else f"**{md(sentence)}**"]


def request_markdown(history: RequestHistory, verdict: Verdict | None, now: datetime) -> str:
    h = history
    lines = [f"# Post-incident report: {md(h.id)}", ""]
    seqs = f", seq {h.seqs[0]}–{h.seqs[-1]}" if h.seqs else ""
    lines.append(f"Written {_when(now)} from the audit log ({len(h.seqs)} entries{seqs}).")

    lines += _section("Request and approvals", controls.REQUEST_AND_APPROVALS)
    if h.requested_at is None:
        lines.append("The audit log holds no request entry for this id.")
    else:
        lines += _table(("", ""), list(wording.facts(h, now)))
        if h.approvals:
            lines += ["", "Approvals:", ""]
            for approval in h.approvals:
                who = wording.approval(approval.self_service, approval.automatic, approval.by, dict(approval.evidence))
                lines.append(f"- {_when(approval.at)} {md(who)}")

    lines += _section("Timeline", controls.TIMELINE)
    lines += _table(
        ("At (UTC)", "Event", "By", "Details"),
        [(_when(s.at), s.event.replace("_", " "), s.actor, s.says) for s in h.timeline],
    )

    lines += _section("Actions in the cluster", controls.ACTIONS)
    lines += actions_lines(h)

    lines += _section("Review", controls.REVIEW)
    if h.review is not None:
        by, at, text = h.review
        lines += [f"Written by {md(by)} at {_when(at)}:", "", *_quote(text)]
        if h.follow_ups:
            lines += ["", "Follow-ups:", "", *_quote(h.follow_ups)]
    else:
        lines.append(f"**{wording.review_missing(h)}**" if h.review_owed else wording.review_missing(h))
    if h.holder_account is not None:
        by, at, text = h.holder_account
        lines += ["", f"The holder's own account, by {md(by)} at {_when(at)}:", "", *_quote(text)]

    lines += _section("Integrity of the record", controls.INTEGRITY)
    lines += integrity_lines(verdict)
    return "\n".join(lines) + "\n"


def actions_lines(h: RequestHistory) -> list[str]:
    if not h.actions and not h.open_sessions:
        return [wording.no_actions(h)]
    mutating = h.mutating_actions()
    lines = [f"{h.actions_count} actions recorded, {len(mutating)} of them changing something.", ""]
    by_kind = h.actions_by_verb_and_resource()
    lines += _table(("Verb", "Resource", "Count"), [(v, r, n) for (v, r), n in by_kind.most_common()])
    if mutating:
        lines += ["", f"Changes (the first {min(FIRST_MUTATING, len(mutating))}):", ""]
        for action in mutating[:FIRST_MUTATING]:
            lines.append(f"- {md(action.at)} {md(action.verb)} {md(action.target)} → {action.code or '?'}")
        if len(mutating) > FIRST_MUTATING:
            lines.append(f"- and {len(mutating) - FIRST_MUTATING} more")
    if wording.dropped(h):
        lines += ["", md(wording.dropped(h))]
    if h.open_sessions:
        lines += ["", md(wording.OPEN_SESSIONS), "", *(f"- {md(line)}" for line in wording.open_sessions(h))]
    return lines


def _counts(title: str, counts: Counter[str]) -> list[str]:
    return [f"{title}:", "", *_table(("", "Grants"), list(counts.most_common())), ""]


def period_markdown(summary: PeriodSummary, verdict: Verdict | None) -> str:
    s = summary
    lines = [
        f"# Access report: {_when(s.since)} to {_when(s.until)}",
        "",
        f"{s.requests} requests, {len(s.grants)} grants, {s.entries} audit entries in the period.",
    ]
    lines += _section("Grants", controls.GRANTS)
    if s.grants:
        lines += _counts("By role", s.by_role) + _counts("By cluster", s.by_cluster) + _counts("By person", s.by_person)
    else:
        lines.append("No access was granted in the period.")

    lines += _section("Approvals", controls.APPROVALS)
    lines.append(wording.distribution("Time from request to approval", s.approval_latencies))
    lines.append("")
    lines.append(f"Self-service break-glass: {len(s.self_service)} ({wording.ids(s.self_service)}).")
    lines.append(f"Approved automatically by a rule: {len(s.automatic)} ({wording.ids(s.automatic)}).")

    lines += _section("Duration used", controls.DURATIONS)
    lines.append(wording.distribution("Access held", s.durations_used))

    lines += _section("Refusals and denials", controls.REFUSALS)
    lines.append(f"Requests denied by an approver: {len(s.denied)} ({wording.ids(s.denied)}).")
    if s.refusals:
        lines += ["", "Attempts refused (nothing changed):", ""]
        lines += _table(("Attempt", "Times"), list(s.refusals.most_common()))
    else:
        lines.append("No attempt was refused.")

    lines += _section("Reviews", controls.REVIEW)
    lines.append(f"Owed: {len(s.reviews_owed)} ({wording.ids(s.reviews_owed)}).")
    lines.append(
        f"Overdue (not written {human_duration(REVIEW_DUE_AFTER)} after the grant ended): {len(s.reviews_overdue)} "
        f"({wording.ids(s.reviews_overdue)})."
    )

    lines += _section("Most frequent changes", controls.ACTIONS)
    if s.top_mutating:
        lines.append(f"{s.mutating_total} changing actions recorded under grants.")
        lines.append("")
        lines += _table(("Verb", "Resource", "Times"), [(v, r, n) for (v, r), n in s.top_mutating])
    else:
        lines.append("No changing action was recorded under a grant.")

    lines += _section("Integrity of the record", controls.INTEGRITY)
    lines += integrity_lines(verdict)
    return "\n".join(lines) + "\n"
