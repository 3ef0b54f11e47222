"""Why an approved request (a grant or an extension) could not be made: a code and its facts, and the
one sentence each renders to.

The audit log keeps the code and the facts (``GRANT_FAILED`` details), never the sentence, so an entry
reads the same to a machine whatever the wording becomes. The sentence is rendered here, once, for
every place that shows it (the request's note, the thread, the holder's DM). It lives in the domain,
beside the policy's own refusal sentences, because those places sit in layers that cannot import each
other (the services, the Slack adapter, the reports); each escapes it where it shows it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain.automation_misses import Miss


class FailureCode(StrEnum):
    APPROVAL_TOO_OLD = "approval_too_old"  # approved_ago, timeout
    NO_LONGER_ALLOWED = "no_longer_allowed"  # reason: the policy's own sentence
    ROLE_NEEDS_APPROVALS = "role_needs_approvals"  # role, approvals
    APPROVALS_NO_LONGER_SUFFICE = "approvals_no_longer_suffice"
    RULE_GONE = "rule_gone"  # rule
    RULE_NOT_COUNTED = "rule_not_counted"  # rule
    # rule, and the rule's miss: its code under ``miss`` and its facts (before misses had codes,
    # ``reason``: the rule's own sentence)
    RULE_NO_LONGER_APPROVES = "rule_no_longer_approves"
    CLUSTER_REFUSED_BINDING = "cluster_refused_binding"  # error
    KUBECONFIG_UNDELIVERABLE = "kubeconfig_undeliverable"  # error
    GRANT_NOT_ACTIVE = "grant_not_active"  # grant
    CLUSTER_REFUSED_EXPIRY = "cluster_refused_expiry"  # error
    NO_EXTENSION_ROOM = "no_extension_room"  # left
    GRANT_REMOVED_OUTSIDE = "grant_removed_outside"  # grant, cluster
    GRANT_ENDED = "grant_ended"  # grant, state


@dataclass(frozen=True)
class GrantFailure:
    code: FailureCode
    facts: Mapping[str, str] = field(default_factory=dict)

    def details(self) -> dict[str, str]:
        """What the ``GRANT_FAILED`` audit entry records."""
        return {"code": self.code.value, **self.facts}

    @classmethod
    def from_details(cls, details: Mapping[str, object]) -> GrantFailure | None:
        """The failure an audit entry records; None for an entry written before failures had codes."""
        try:
            code = FailureCode(str(details.get("code")))
        except ValueError:
            return None
        return cls(code, {k: str(v) for k, v in details.items() if k != "code"})

    def sentence(self) -> str:
        f = self.facts
        match self.code:
            case FailureCode.APPROVAL_TOO_OLD:
                return (
                    f"it was approved {f.get('approved_ago')} ago, longer than the request timeout "
                    f"({f.get('timeout')}), so that approval is too old to act on; ask again"
                )
            case FailureCode.NO_LONGER_ALLOWED:
                return f"no longer allowed: {f.get('reason')}"
            case FailureCode.ROLE_NEEDS_APPROVALS:
                approvals = f.get("approvals", "?")
                return f"'{f.get('role')}' now needs {approvals} approval{'' if approvals == '1' else 's'}; ask again"
            case FailureCode.APPROVALS_NO_LONGER_SUFFICE:
                return "its approvals no longer suffice: an approver has left the approver groups"
            case FailureCode.RULE_GONE:
                return (
                    f"the rule that approved it automatically ({f.get('rule')}) is no longer in the roster; ask again"
                )
            case FailureCode.RULE_NOT_COUNTED:
                return f"its automatic approval is not counted under rule {f.get('rule')}'s daily cap; ask again"
            case FailureCode.RULE_NO_LONGER_APPROVES:
                miss = Miss.from_details(f, key="miss")
                reason = miss.sentence() if miss is not None else f.get("reason", "")
                return f"rule {f.get('rule')} no longer approves it automatically: {reason.rstrip('.')}"
            case FailureCode.CLUSTER_REFUSED_BINDING:
                return f"the cluster refused the binding: {f.get('error')}"
            case FailureCode.KUBECONFIG_UNDELIVERABLE:
                return f"your kubeconfig could not be sent to you by DM ({f.get('error')}), so the grant was withdrawn"
            case FailureCode.GRANT_NOT_ACTIVE:
                return f"{f.get('grant')} is no longer active"
            case FailureCode.CLUSTER_REFUSED_EXPIRY:
                return f"the cluster refused the new expiry: {f.get('error')}"
            case FailureCode.NO_EXTENSION_ROOM:
                return f"only {f.get('left')} of the role's maximum is left"
            case FailureCode.GRANT_REMOVED_OUTSIDE:
                return (
                    f"{f.get('grant')} has already ended: its binding is no longer in {f.get('cluster')}: "
                    "it was removed outside breakglass"
                )
            case FailureCode.GRANT_ENDED:
                return f"{f.get('grant')} has already ended (it is {f.get('state')})"


def failure_sentence(details: Mapping[str, object]) -> str:
    """The sentence for a ``GRANT_FAILED`` entry's details, old (an ``error`` sentence) or new (a code)."""
    failure = GrantFailure.from_details(details)
    if failure is not None:
        return failure.sentence()
    return str(details.get("error") or "unknown error")
