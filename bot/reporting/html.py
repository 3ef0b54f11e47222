"""The reports as one self-contained HTML page: inline CSS and SVG charts, no script, nothing fetched.

The page's Content-Security-Policy forbids every fetch, so an auditor can open it offline and know
that what they see is all there is. Every piece of text is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html import escape

from bot.domain.audit import Verdict, format_at
from bot.reporting import controls, wording
from bot.reporting.history import RequestHistory, human_duration
from bot.reporting.markdown import FIRST_MUTATING
from bot.reporting.period import REVIEW_DUE_AFTER, PeriodSummary

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2329;max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin:2rem 0 .3rem;border-bottom:1px solid #d6dbe0}
p.controls{margin:.2rem 0 .8rem;color:#4a5561;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d6dbe0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f6}blockquote{margin:.5rem 0;padding:.3rem .8rem;border-left:4px solid #9aa5b1;white-space:pre-wrap}
.ok{color:#1e6b34;font-weight:600}.bad{color:#a3201a;font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
figure{margin:.5rem 0}figcaption{font-size:.85rem;color:#4a5561}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_BAR = "#3b6ea8"


def _page(title: str, body: Iterable[str]) -> str:
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
            *body,
            "</body></html>\n",
        ]
    )


def _section(anchor: str, title: str, evidences: tuple[str, ...]) -> str:
    return (
        f'<section id="{anchor}"><h2>{escape(title)}</h2>'
        f'<p class="controls">{escape(controls.controls_line(evidences))}</p>'
    )


def _table(headers: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _p(text: str, css: str = "") -> str:
    return f'<p class="{css}">{escape(text)}</p>' if css else f"<p>{escape(text)}</p>"


def _when(at: datetime | None) -> str:
    return format_at(at).replace(".000000Z", "Z") if at else "—"


def bar_chart(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per item, labelled with its value; an empty list draws a note."""
    if not items:
        return f"<figure><figcaption>{escape(title)}: nothing to show</figcaption></figure>"
    label_w, bar_w, row_h = 170, 260, 22
    top = max(value for _, value in items) or 1
    height = row_h * len(items) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 70}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">'
    ]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row_h
        width = max(1.0, bar_w * value / top) if value else 0
        shown = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(shown)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row_h - 8}" fill="{_BAR}"/>'
            f'<text x="{label_w + width + 5:.1f}" y="{y + 15}" font-size="12">{escape(_number(value))}{unit}</text>'
        )
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}<figcaption>{escape(title)}</figcaption></figure>"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


# Buckets for durations and latencies: a person reads "under 5 minutes" faster than a percentile.
_BUCKETS = (
    ("< 1m", timedelta(minutes=1)),
    ("1–5m", timedelta(minutes=5)),
    ("5–15m", timedelta(minutes=15)),
    ("15m–1h", timedelta(hours=1)),
    ("1–4h", timedelta(hours=4)),
    ("> 4h", timedelta.max),
)


def histogram(title: str, values: list[timedelta]) -> str:
    counts = dict.fromkeys((label for label, _ in _BUCKETS), 0)
    for value in values:
        label = next(label for label, bound in _BUCKETS if value < bound)
        counts[label] += 1
    return bar_chart(title, list(counts.items()) if values else [])


def _integrity(verdict: Verdict | None) -> str:
    verified, sentence = wording.integrity(verdict)
    return _section("integrity", "Integrity of the record", controls.INTEGRITY) + _p(
        sentence, "ok" if verified else "bad"
    )


def _quote(text: str) -> str:
    return f"<blockquote>{escape(text)}</blockquote>"


def request_html(history: RequestHistory, verdict: Verdict | None, now: datetime) -> str:
    h = history
    body = [f"<h1>Post-incident report: {escape(h.id)}</h1>"]
    seqs = f", seq {h.seqs[0]}–{h.seqs[-1]}" if h.seqs else ""
    body.append(_p(f"Written {_when(now)} from the audit log ({len(h.seqs)} entries{seqs})."))

    body.append(_section("request", "Request and approvals", controls.REQUEST_AND_APPROVALS))
    if h.requested_at is None:
        body.append(_p("The audit log holds no request entry for this id."))
    else:
        body.append(_table(("", ""), wording.facts(h, now)))
        used = h.used(now)
        asked = [("asked", (h.duration_asked or timedelta(0)).total_seconds() / 60)]
        body.append(
            bar_chart(
                "Duration asked and used (minutes)", [*asked, ("used", (used or timedelta(0)).total_seconds() / 60)]
            )
        )
        if h.approvals:
            body.append(
                _table(
                    ("Approved at (UTC)", "How"),
                    [
                        (_when(a.at), wording.approval(a.self_service, a.automatic, a.by, dict(a.evidence)))
                        for a in h.approvals
                    ],
                )
            )
    body.append("</section>")

    body.append(_section("timeline", "Timeline", controls.TIMELINE))
    body.append(
        _table(
            ("At (UTC)", "Event", "By", "Details"),
            [(_when(s.at), s.event.replace("_", " "), s.actor, s.says) for s in h.timeline],
        )
    )
    body.append("</section>")

    body.append(_section("actions", "Actions in the cluster", controls.ACTIONS))
    if not h.actions:
        body.append(_p(wording.no_actions(h)))
    else:
        mutating = h.mutating_actions()
        body.append(_p(f"{h.actions_count} actions recorded, {len(mutating)} of them changing something."))
        by_kind = h.actions_by_verb_and_resource().most_common()
        body.append(bar_chart("Actions by verb and resource", [(f"{v} {r}", n) for (v, r), n in by_kind[:12]]))
        if mutating:
            body.append(
                _table(
                    ("At", "Verb", "Object", "Answer"),
                    [(a.at, a.verb, a.target, a.code or "?") for a in mutating[:FIRST_MUTATING]],
                )
            )
            if len(mutating) > FIRST_MUTATING:
                body.append(_p(f"and {len(mutating) - FIRST_MUTATING} more"))
        if wording.dropped(h):
            body.append(_p(wording.dropped(h) or ""))
    if h.open_sessions:
        items = "".join(f"<li>{escape(line)}</li>" for line in wording.open_sessions(h))
        body.append(_p(wording.OPEN_SESSIONS, "bad") + f"<ul>{items}</ul>")
    body.append("</section>")

    body.append(_section("review", "Review", controls.REVIEW))
    if h.review is not None:
        by, at, text = h.review
        body.append(_p(f"Written by {by} at {_when(at)}:") + _quote(text))
        if h.follow_ups:
            body.append(_p("Follow-ups:") + _quote(h.follow_ups))
    else:
        body.append(_p(wording.review_missing(h), "bad" if h.review_owed else ""))
    if h.holder_account is not None:
        by, at, text = h.holder_account
        body.append(_p(f"The holder's own account, by {by} at {_when(at)}:") + _quote(text))
    body.append("</section>")

    body.append(_integrity(verdict) + "</section>")
    return _page(f"breakglass report {h.id}", body)


def period_html(summary: PeriodSummary, verdict: Verdict | None) -> str:
    s = summary
    title = f"Access report: {_when(s.since)} to {_when(s.until)}"
    body = [f"<h1>{escape(title)}</h1>"]
    body.append(_p(f"{s.requests} requests, {len(s.grants)} grants, {s.entries} audit entries in the period."))

    body.append(_section("grants", "Grants", controls.GRANTS))
    if s.grants:
        body.append('<div class="charts">')
        for name, counts in (("By role", s.by_role), ("By cluster", s.by_cluster), ("By person", s.by_person)):
            body.append(bar_chart(f"Grants {name.lower()}", [(k, v) for k, v in counts.most_common(15)]))
        body.append("</div>")
    else:
        body.append(_p("No access was granted in the period."))
    body.append("</section>")

    body.append(_section("approvals", "Approvals", controls.APPROVALS))
    body.append(_p(wording.distribution("Time from request to approval", s.approval_latencies)))
    body.append(histogram("Time from request to approval", s.approval_latencies))
    body.append(_p(f"Self-service break-glass: {len(s.self_service)} ({wording.ids(s.self_service)})."))
    body.append(_p(f"Approved automatically by a rule: {len(s.automatic)} ({wording.ids(s.automatic)})."))
    body.append("</section>")

    body.append(_section("durations", "Duration used", controls.DURATIONS))
    body.append(_p(wording.distribution("Access held", s.durations_used)))
    body.append(histogram("Access held", s.durations_used))
    body.append("</section>")

    body.append(_section("refusals", "Refusals and denials", controls.REFUSALS))
    body.append(_p(f"Requests denied by an approver: {len(s.denied)} ({wording.ids(s.denied)})."))
    if s.refusals:
        body.append(bar_chart("Attempts refused (nothing changed)", list(s.refusals.most_common())))
    else:
        body.append(_p("No attempt was refused."))
    body.append("</section>")

    body.append(_section("reviews", "Reviews", controls.REVIEW))
    body.append(_p(f"Owed: {len(s.reviews_owed)} ({wording.ids(s.reviews_owed)})."))
    body.append(
        _p(
            f"Overdue (not written {human_duration(REVIEW_DUE_AFTER)} after the grant ended): {len(s.reviews_overdue)} "
            f"({wording.ids(s.reviews_overdue)}).",
            "bad" if s.reviews_overdue else "",
        )
    )
    body.append("</section>")

    body.append(_section("changes", "Most frequent changes", controls.ACTIONS))
    if s.top_mutating:
        body.append(_p(f"{s.mutating_total} changing actions recorded under grants."))
        body.append(bar_chart("Most frequent changes", [(f"{v} {r}", n) for (v, r), n in s.top_mutating]))
    else:
        body.append(_p("No changing action was recorded under a grant."))
    body.append("</section>")

    body.append(_integrity(verdict) + "</section>")
    return _page(title, body)
