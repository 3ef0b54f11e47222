"""Why breakglass itself ended a grant or removed something of one (the reconcile sweep, an idle
timeout, a binding removed outside breakglass): a code and its facts, and the one sentence each renders
to.

The audit log keeps the code and the facts (``code`` beside the entry's other details), never the
sentence, so an entry reads the same to a machine whatever the wording becomes. Entries written before
reasons had codes hold the sentence itself under ``why``, and still read as they did; so does a
person's own reason for an early revoke (``why`` too), which is their text, not wording. Like the grant
failures' sentences, these live in the domain because the places that show them (the services' note,
the Slack adapter, the reports) sit in layers that cannot import each other; each escapes it where it
shows it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class EndCode(StrEnum):
    CLUSTER_LEFT_ROSTER = "cluster_left_roster"
    REVOKE_OVERDUE = "revoke_overdue"
    UNWARRANTED = "unwarranted"
    BINDING_EXPIRY_UNREADABLE = "binding_expiry_unreadable"
    BINDING_EXPIRY_PASSED = "binding_expiry_passed"
    EXPIRY_PASSED = "expiry_passed"
    REQUEST_UNKNOWN = "request_unknown"
    REQUEST_ENDED = "request_ended"
    KEPT_ON_WARRANT = "kept_on_warrant"
    BINDING_REMOVED_OUTSIDE = "binding_removed_outside"
    IDLE = "idle"
    ENDED_WITH_GRANT = "ended_with_grant"  # an extension's note only: it ends with its grant


# The facts each code records, by their keys in the audit entry's details.
FACTS: Mapping[EndCode, tuple[str, ...]] = {
    EndCode.BINDING_EXPIRY_PASSED: ("binding_expires_at",),
    EndCode.REQUEST_ENDED: ("state",),
    EndCode.BINDING_REMOVED_OUTSIDE: ("cluster",),
    EndCode.IDLE: ("idle_timeout", "cluster", "last_action_at"),
    EndCode.ENDED_WITH_GRANT: ("grant",),
}


@dataclass(frozen=True)
class EndReason:
    code: EndCode
    facts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        wanted = FACTS.get(self.code, ())
        if set(self.facts) != set(wanted):
            raise ValueError(f"{self.code.value} records {sorted(wanted)}, not {sorted(self.facts)}")

    def details(self) -> dict[str, str]:
        """What the audit entry records of this reason, beside its other details."""
        return {"code": self.code.value, **self.facts}

    @classmethod
    def from_details(cls, details: Mapping[str, object]) -> EndReason | None:
        """The reason an audit entry records; None for one without a code (written before reasons had
        codes, or a person's own ``why``)."""
        try:
            code = EndCode(str(details.get("code")))
        except ValueError:
            return None
        return cls(code, {key: str(details.get(key, "?")) for key in FACTS.get(code, ())})

    def sentence(self) -> str:
        f = self.facts
        match self.code:
            case EndCode.CLUSTER_LEFT_ROSTER:
                return "its cluster is no longer in the roster"
            case EndCode.REVOKE_OVERDUE:
                return "its expiry has passed and its revoke had not run"
            case EndCode.UNWARRANTED:
                return "its warrant is missing or does not verify (edited, relabelled or not made by breakglass)"
            case EndCode.BINDING_EXPIRY_UNREADABLE:
                return "its binding carries no readable expiry"
            case EndCode.BINDING_EXPIRY_PASSED:
                return f"its binding's expiry {f['binding_expires_at']} has passed"
            case EndCode.EXPIRY_PASSED:
                return "its expiry has passed"
            case EndCode.REQUEST_UNKNOWN:
                return "its request is unknown to Redis"
            case EndCode.REQUEST_ENDED:
                return f"its request is {f['state']}"
            case EndCode.KEPT_ON_WARRANT:
                return "its request is unknown to Redis, and its warrant verifies: kept until its signed expiry"
            case EndCode.BINDING_REMOVED_OUTSIDE:
                return f"its binding is no longer in {f['cluster']}: it was removed outside breakglass"
            case EndCode.IDLE:
                return f"idle for {f['idle_timeout']}: no action recorded on {f['cluster']} since {f['last_action_at']}"
            case EndCode.ENDED_WITH_GRANT:
                return f"{f['grant']} ended"


def end_sentence(details: Mapping[str, object]) -> str | None:
    """Why, for an entry's details: its code's sentence; else the ``why`` it holds (an entry written
    before codes, or a person's own reason), as it was written; None when it says no reason."""
    reason = EndReason.from_details(details)
    if reason is not None:
        return reason.sentence()
    why = details.get("why")
    return str(why) if why else None


def said_as_before(details: Mapping[str, object]) -> dict[str, object]:
    """The details as an entry written before codes held them: the code and its facts replaced, in
    the code's place, by its sentence under ``why``. For listings that show every detail."""
    reason = EndReason.from_details(details)
    if reason is None:
        return dict(details)
    facts = set(FACTS.get(reason.code, ())) - {"cluster"}  # the entry's own cluster, where it has one
    shown: dict[str, object] = {}
    for key, value in details.items():
        if key == "code":
            shown["why"] = reason.sentence()
        elif key not in facts:
            shown[key] = value
    return shown
