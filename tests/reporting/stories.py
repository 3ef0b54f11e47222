"""Audit trails as the services write them, built entry by entry for the report tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.audit import GENESIS_HASH, AuditEntry, next_entry
from tests.conftest import CHAIN_KEY

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Trail:
    """A chain of entries with a clock that moves forward by what each step says."""

    def __init__(self, start: datetime = START) -> None:
        self.at = start
        self.entries: list[AuditEntry] = []

    def add(
        self, request_id: str | None, event: str, actor: str, after: timedelta = timedelta(0), **details: Any
    ) -> None:
        self.at += after
        prev = self.entries[-1].hash if self.entries else GENESIS_HASH
        self.entries.append(
            next_entry(
                key=CHAIN_KEY,
                seq=len(self.entries) + 1,
                prev_hash=prev,
                at=self.at,
                request_id=request_id,
                event=event,
                actor=actor,
                details=details,
            )
        )

    def requested(self, rid: str, who: str, role: str = "admin", namespace: str | None = "payments", **kw: Any) -> None:
        details = {
            "cluster": "prod",
            "namespace": namespace,
            "role": role,
            "duration": "1h",
            "reason": "INC-4411 checkout pods crash-looping",
            "channel": "C0000INCIDENT",
            "approvals_required": 2,
        }
        details.update(kw)
        self.add(rid, "requested", who, **details)

    def granted(self, rid: str, after: timedelta = timedelta(seconds=2)) -> None:
        self.add(
            rid,
            "granted",
            "system",
            after,
            cluster="prod",
            namespace="payments",
            binding=f"breakglass-{rid.lower()}",
            cluster_role="admin",
            subject="alice@example.com",
            expires_at="2026-11-02T10:05:00Z",
        )

    def actions(self, rid: str, actions: list[dict[str, Any]], after: timedelta = timedelta(minutes=1)) -> None:
        self.add(rid, "actions_recorded", "system", after, cluster="prod", count=len(actions), actions=actions)


def action(verb: str, resource: str, name: str, namespace: str = "payments") -> dict[str, Any]:
    return {
        "at": "2026-11-02T09:10:00Z",
        "verb": verb,
        "resource": resource,
        "api_group": "",
        "namespace": namespace,
        "name": name,
        "code": 200,
        "audit_id": f"{verb}-{resource}-{name}",
    }


def full_story(rid: str = "BG-7K2QXM") -> Trail:
    """Requested, two human approvals, granted, 25 deletions and some reads, reminded, extended,
    revoked early, binding removed, reviewed."""
    trail = Trail()
    trail.requested(rid, "U000000ALICE", reason="INC-4411 *checkout* <pods> | crash")
    trail.add(rid, "approved", "U0000000BOB", timedelta(minutes=3), count=1, required=2)
    trail.add(rid, "approved", "U00000CAROL", timedelta(minutes=2), count=2, required=2)
    trail.granted(rid)
    deletions = [action("delete", "pods", f"checkout-{i}") for i in range(25)]
    reads = [action("get", "pods", "checkout-0"), action("list", "pods", "")]
    trail.actions(rid, reads + deletions)
    trail.add(rid, "reminder_sent", "system", timedelta(minutes=40), expires_at="2026-11-02T10:05:00Z")
    trail.add(rid, "extended", "system", timedelta(minutes=1), extension="BG-9PQRST", expires_at="2026-11-02T10:35:00Z")
    trail.add(rid, "revoked", "U000000ALICE", timedelta(minutes=10), early=True)
    trail.add(rid, "binding_deleted", "system", timedelta(seconds=1), cluster="prod", namespace="payments", binding="b")
    trail.add(
        rid,
        "review_written",
        "U0000000BOB",
        timedelta(hours=2),
        review="Restarted checkout.\n# not a heading",
        follow_ups="INC-4412 memory limit",
    )
    return trail
