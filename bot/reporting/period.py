"""A period's summary: who held what, how quickly it was approved, how long it was used, what was
refused, which reviews are owed, and what was changed most often."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.audit import AuditEntry, Event
from bot.domain.policy import REVIEW_DUE
from bot.reporting.history import RequestHistory, histories

# A review not written this long after its grant ended is overdue (and reminded daily from then on).
REVIEW_DUE_AFTER = REVIEW_DUE
TOP_ACTIONS = 10


@dataclass(frozen=True)
class PeriodSummary:
    since: datetime
    until: datetime
    entries: int
    requests: int
    grants: list[RequestHistory]
    by_role: Counter[str]
    by_cluster: Counter[str]
    by_person: Counter[str]
    approval_latencies: list[timedelta]
    durations_used: list[timedelta]
    self_service: list[RequestHistory]
    automatic: list[RequestHistory]
    denied: list[RequestHistory]
    refusals: Counter[str]  # the refused action (approve, revoke, …) → how many times
    reviews_owed: list[RequestHistory]
    reviews_overdue: list[RequestHistory]
    top_mutating: list[tuple[tuple[str, str], int]]  # ((verb, resource), count)
    mutating_total: int


def summarise(entries: Iterable[AuditEntry], since: datetime, now: datetime) -> PeriodSummary:
    """``entries`` are those at or after ``since``; a request begun before it shows only its later part."""
    count = 0
    refusals: Counter[str] = Counter()

    def counted() -> Iterable[AuditEntry]:
        nonlocal count
        for entry in entries:
            count += 1
            if entry.event == Event.REFUSED.value:
                refusals[str(entry.details.get("action") or "other")] += 1
            yield entry

    found = list(histories(counted()).values())
    grants = [h for h in found if h.was_granted and h.extends is None]
    mutating: Counter[tuple[str, str]] = Counter()
    for history in found:
        for action in history.mutating_actions():
            mutating[(action.verb, action.resource)] += 1
    owed = [h for h in grants if h.review_owed]
    return PeriodSummary(
        since=since,
        until=now,
        entries=count,
        requests=sum(1 for h in found if h.extends is None),
        grants=grants,
        by_role=Counter(h.role for h in grants),
        by_cluster=Counter(h.cluster for h in grants),
        by_person=Counter(h.requester for h in grants),
        approval_latencies=[
            latency for h in grants if not h.self_service and (latency := h.approval_latency) is not None
        ],
        durations_used=[used for h in grants if (used := h.used(now)) is not None],
        self_service=[h for h in grants if h.self_service],
        automatic=[h for h in grants if h.automatic],
        denied=[h for h in found if h.ending == "denied"],
        refusals=refusals,
        reviews_owed=owed,
        reviews_overdue=[h for h in owed if h.ended_at is not None and now - h.ended_at > REVIEW_DUE_AFTER],
        top_mutating=mutating.most_common(TOP_ACTIONS),
        mutating_total=sum(mutating.values()),
    )


def percentile(values: list[timedelta], fraction: float) -> timedelta | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]
