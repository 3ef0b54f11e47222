"""The sentences both report formats share, as plain text (each format escapes them its own way)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.audit import Verdict
from bot.reporting.history import RequestHistory, human_duration
from bot.reporting.period import percentile


def integrity(verdict: Verdict | None) -> tuple[bool, str]:
    """(verified, the sentence saying so)."""
    if verdict is None:
        return (
            False,
            "The audit chain was not verified (that needs BREAKGLASS_SIGNING_KEY), so this report is unproven.",
        )
    if verdict.ok:
        return True, f"The audit chain verifies: {verdict.checked} entries intact, each keyed to the one before it."
    where = f" at entry {verdict.bad_seq}" if verdict.bad_seq is not None else ""
    return False, f"The audit chain is broken{where}: {verdict.problem}. Treat this report as unproven."


def distribution(name: str, values: list[timedelta]) -> str:
    if not values:
        return f"{name}: none in the period."
    return (
        f"{name}: median {human_duration(percentile(values, 0.5))}, "
        f"90th percentile {human_duration(percentile(values, 0.9))}, "
        f"longest {human_duration(max(values))} ({len(values)} grants)."
    )


def ids(histories: list[RequestHistory]) -> str:
    return ", ".join(h.id for h in histories) if histories else "none"


def approval(self_service: bool, automatic: bool, by: str, evidence: dict[str, object]) -> str:
    if self_service:
        return "self-service (no approver; a review is owed)"
    if automatic:
        said = ", ".join(f"{k}: {v}" for k, v in evidence.items())
        return "automatically by rule" + (f" ({said})" if said else "")
    return f"by {by}"


def review_missing(history: RequestHistory) -> str:
    if history.review_owed:
        return "No review has been written yet; one is owed."
    if not history.was_granted:
        return "Nothing was granted, so no review is owed."
    return "The grant has not ended yet; its review is written once it has."


def no_actions(history: RequestHistory) -> str:
    if history.was_granted:
        return "No action was recorded (the cluster may not send audit events to breakglass)."
    return "Nothing was granted, so nothing could be done."


def facts(h: RequestHistory, now: datetime) -> list[tuple[str, str]]:
    """The request at a glance: who, what, why, for how long, how it was approved and ended."""
    kind = "self-service break-glass" if h.self_service else ("approved automatically" if h.automatic else "")
    required = "—" if h.approvals_required is None else str(h.approvals_required)
    rows = [
        ("Requested by", h.requester),
        ("Access", f"{h.role} on {h.target}"),
        ("Justification", h.reason),
        ("Duration asked", human_duration(h.duration_asked)),
        ("Duration used", human_duration(h.used(now))),
        ("Approvals required", f"{required} ({kind})" if kind else required),
        ("Outcome", h.state),
    ]
    if h.extends:
        rows.append(("Extends", h.extends))
    if h.extensions:
        rows.append(("Extended by", ", ".join(h.extensions)))
    return rows


def dropped(history: RequestHistory) -> str | None:
    if not history.dropped:
        return None
    return f"{history.dropped} further actions were counted but not kept (the per-grant limit)."


def open_sessions(history: RequestHistory) -> list[str]:
    """One line per session started and never completed; removing RBAC does not end them."""
    lines = []
    for session in history.open_sessions:
        where = f"{session['namespace']}/" if session.get("namespace") else ""
        lines.append(
            f"{session.get('verb', '?')} {session.get('resource', '')} {where}{session.get('name') or ''}, started {session.get('at', '?')}"
        )
    return lines


OPEN_SESSIONS = (
    "Sessions started and never completed, possibly still open when access ended "
    "(removing the binding does not end a running exec, attach, port-forward or watch):"
)
