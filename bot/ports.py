"""The boundaries the services talk through, and the errors that cross them.

Adapters implement these (``workers/kube.py`` for clusters, ``bot/slack/`` for Slack, ``workers/queueing``
for RQ). Library exceptions never cross a port: an adapter translates them here, keeping the cause
(``raise ... from exc``). Whether a failure is worth retrying is its type, not a flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.audit import AuditEntry
from bot.domain.audit_sink import ChainCopy, SinkHead
from bot.domain.automation import OnCallShift, Ticket
from bot.domain.grants import BindingSpec, IssuedCredentials, ManagedBinding, ManagedServiceAccount, RequestThread
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest


class Refused(Exception):
    """The action was not taken; ``reason`` is one sentence that says why and what to do instead.

    Raised by services and by the Slack identity gate alike, so it lives below both."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BreakglassError(Exception):
    """Base of every error this project raises across a port."""


class TemporaryError(BreakglassError):
    """Worth retrying: timeouts, 5xx, 429, connection refused. ``delay`` is the least number of seconds
    to wait first (a Retry-After): the job's next retry is scheduled no earlier (``workers.jobs``)."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(BreakglassError):
    """Retrying cannot help (forbidden, invalid object, unknown cluster); a person must act."""


class ClusterUnavailable(TemporaryError):
    """The cluster's API could not be reached or answered 5xx/429 in time."""


class CredentialsRejected(TemporaryError):
    """The cluster's API did not accept our credentials (401).

    Transient, not permanent: during a credential rotation, or when an exec plugin failed once, the
    adapter loads the credentials afresh on the next call, so a retry may well succeed. The job's retry
    budget bounds it; a 403 (known to the API server, not allowed) stays ``ClusterRefused``.
    """


class ClusterRefused(PermanentError):
    """The cluster's API refused the operation (403, 422 Invalid, 400)."""


class BindingConflict(PermanentError):
    """A binding of that name exists and was not made for this grant."""


class BindingNotFound(BreakglassError):
    """The binding is not there. For a revoke this is success, and callers treat it so; for an
    extension it means the grant is already over (``GrantService`` ends it once, without retrying)."""


class UnknownCluster(PermanentError):
    """The roster names a cluster the adapter has no client for."""


@dataclass(frozen=True)
class AccessCheck:
    """One SubjectAccessReview question: may ``user`` (in ``groups``) ``verb`` ``resource``?"""

    user: str
    verb: str
    resource: str
    namespace: str | None = None
    groups: tuple[str, ...] = ()
    api_group: str = ""
    name: str | None = None


class ClusterGateway(Protocol):
    """Every cluster the roster names, behind one face. Implementations must be thread-safe."""

    def apply_grant(self, spec: BindingSpec) -> IssuedCredentials | None:
        """Create the grant's binding (and ServiceAccount + token for ``credentials: token``).

        Idempotent: a binding already there with this grant's request-id label counts as created
        (its expiry annotation is brought up to date). Returns credentials only in token mode.
        Raises BindingConflict if the name is taken by something that is not this grant.
        """
        ...

    def set_expiry(self, spec: BindingSpec) -> None:
        """Move the expiry annotation of an existing grant (extension). BindingNotFound if gone."""
        ...

    def remove_grant(self, cluster: str, request_id: RequestId, namespace: str | None) -> bool:
        """Delete the binding and the grant's ServiceAccount. False when already gone (still success)."""
        ...

    def binding_exists(self, cluster: str, namespace: str | None, name: str) -> bool:
        """Whether a RoleBinding (ClusterRoleBinding when ``namespace`` is None) of that name exists:
        one a holder made during a grant, looked for when the grant ends."""
        ...

    def issue_credentials(self, spec: BindingSpec) -> IssuedCredentials:
        """A new token for the grant's ServiceAccount (``credentials: token``), valid until
        ``spec.expires_at``: what an extension hands the holder."""
        ...

    def list_managed(self, cluster: str) -> Sequence[ManagedBinding]:
        """Every binding carrying the managed-by label, in every namespace, plus cluster-wide ones,
        each with whether its warrant verifies."""
        ...

    def remove_binding(self, binding: ManagedBinding) -> bool:
        """Delete exactly the binding listed, by its own name and namespace (whatever its labels say),
        and the ServiceAccount it names only when that is the one made for it. False when already gone."""
        ...

    def list_managed_service_accounts(self, cluster: str) -> Sequence[ManagedServiceAccount]:
        """Every ServiceAccount carrying the managed-by label in the token namespace (token mode's)."""
        ...

    def remove_service_account(self, cluster: str, request_id: RequestId) -> bool:
        """Delete the grant's ServiceAccount alone (which kills its tokens). False when already gone."""
        ...

    def review_access(self, cluster: str, check: AccessCheck) -> bool:
        """SubjectAccessReview: what the API server would decide for that user right now."""
        ...

    def clusters(self) -> Sequence[str]:
        """Every cluster this gateway can reach: the roster's, and any that left it and may still hold
        grants (remembered in Redis across restarts), so the sweep still clears what they hold."""
        ...


class JobQueue(Protocol):
    """Background work, keyed by request id. Every method is idempotent: the same call twice runs once.
    Each returns True when it queued something new, False when an equal job was already waiting."""

    def grant(self, request_id: RequestId) -> bool:
        """Create the binding for an approved request (or apply an approved extension) now."""
        ...

    def revoke(self, request_id: RequestId, at: datetime | None = None) -> bool:
        """Remove the grant's binding at ``at`` (None: now) if by then it should be gone."""
        ...

    def remind(self, request_id: RequestId, at: datetime) -> bool:
        """Tell the holder their grant ends soon."""
        ...

    def revokes_waiting(self, ends: Sequence[tuple[RequestId, datetime]]) -> set[RequestId]:
        """Of these (request, expiry) pairs, the requests whose revoke at that expiry is scheduled and
        waiting: asked for many at once, so the sweep can skip the grants that need nothing."""
        ...

    def revoke_under_way(self, request_id: RequestId) -> bool:
        """Whether a revoke of this grant for now (not at an expiry) is waiting or running."""
        ...

    def publish(self, request_id: RequestId) -> bool:
        """Bring the request's Slack message, thread and DMs up to date with its audit entries."""
        ...

    def escalate(self, request_id: RequestId, at: datetime) -> bool:
        """At ``at``, page the approvers (a PagerDuty incident) if the request is still undecided."""
        ...

    def settle_escalation(self, request_id: RequestId) -> bool:
        """Resolve the request's escalation incident, if it has one open, now that it is decided."""
        ...


class Notifier(Protocol):
    """Where people hear about a request. The Slack adapter implements it; ``publish`` jobs call it."""

    def publish(self, request: AccessRequest, entries: Sequence[AuditEntry]) -> str | None:
        """Render ``request`` as it is now and post ``entries`` (oldest first, not yet posted) to its
        thread and DMs. Returns the root message ts (created on first call). Raises TemporaryError
        when Slack is unreachable or rate-limits, so the job retries; entries are never skipped."""
        ...

    def deliver_credentials(self, request: AccessRequest, credentials: IssuedCredentials) -> str | None:
        """Send a ``credentials: token`` kubeconfig to the holder by DM, never to a channel. Returns
        the sent file's id, so the grant's end can take it back."""
        ...

    def withdraw_credentials(self, request: AccessRequest, file_ids: Sequence[str]) -> None:
        """Delete the kubeconfig files sent for ``request`` from the holder's DM; one already gone
        counts as deleted. A token left readable in a DM outlives the grant in the holder's history."""
        ...

    def tell_thread(self, thread: RequestThread, entries: Sequence[AuditEntry]) -> None:
        """Post ``entries`` of a request Redis has lost as replies in its ``thread`` (named on its
        binding): what the sweep did with a grant it kept on its warrant. The root message is left
        as it is, since nothing is left to render it from. Raises TemporaryError as ``publish`` does."""
        ...


# --- Automated approvals: on-call, tickets and paging (PagerDuty, Jira) ---------------------------
# The services decide (``bot.domain`` evaluates the roster's rules); ``bot.integrations`` reads the
# outside world through these ports with each service's maintained client. A lookup that fails raises
# ``LookupFailed`` and never widens access: no automatic approval, the humans decide.


class LookupFailed(TemporaryError):
    """An outside source (PagerDuty, Jira, Okta, an identity provider) could not be read: timeout,
    5xx, 429 past its retries, a rejected token. ``str(exc)`` is one sentence naming the source and
    the cause, fit to show a person; it never carries a token or a response body."""


# ``OnCallShift`` and ``Ticket`` are defined beside the pure evaluation that reads them
# (``bot.domain.automation``) and re-exported here, where the adapters that make them look.


class OnCallDirectory(Protocol):
    """Who is on call now (PagerDuty)."""

    def shifts(
        self, email: str, *, schedule_ids: Sequence[str], escalation_policy_ids: Sequence[str], at: datetime
    ) -> Sequence[OnCallShift]:
        """The on-call entries at ``at`` of the PagerDuty user with this email, restricted to these
        schedules or escalation policies (either list may be empty; both empty: none). An unknown
        email is no shifts, not a failure. Raises LookupFailed."""
        ...


class TicketDirectory(Protocol):
    """Tickets a reason may cite (Jira issues, PagerDuty incidents)."""

    def jira_issue(self, key: str) -> Ticket | None:
        """The Jira issue ``key`` (``INC-4411``), or None if it does not exist (404). Raises LookupFailed."""
        ...

    def pagerduty_incident(self, ref: str) -> Ticket | None:
        """The PagerDuty incident with this id or number, or None if there is none. Raises LookupFailed."""
        ...


class Pager(Protocol):
    """Pages people (PagerDuty incidents on a service), for escalation of undecided requests."""

    def open_incident(self, *, service_id: str, title: str, details: str, incident_key: str) -> str:
        """Open (or find, by ``incident_key``: opening twice is harmless) an incident; returns its id.
        Raises LookupFailed."""
        ...

    def resolve_incident(self, incident_id: str) -> None:
        """Resolve it; one already resolved counts as resolved. Raises LookupFailed."""
        ...


# --- Groups kept in an identity provider (Okta) ---------------------------------------------------


class GroupDirectory(Protocol):
    """Who is in a group of the identity provider (``okta_group``), by email: the Slack side matches
    them to people (``bot.slack.usergroups``)."""

    def member_emails(self, group_id: str) -> Sequence[str]:
        """The lower-cased emails of the group's active members, every page read. Raises LookupFailed
        (an unknown group, a refused token, 429, 5xx, no answer) whose text is the cause in a few words."""
        ...


# --- The audit log's durable copy (S3 with Object Lock) --------------------------------------------


class SinkUnavailable(TemporaryError):
    """The audit sink could not be reached, timed out, or answered 5xx or "slow down": copy later."""


class SinkRefused(PermanentError):
    """The audit sink refused (access denied, no such bucket, no Object Lock, no credentials): a person
    must act. ``str(exc)`` names the sink and the cause; never a credential or a response body."""


class AuditSink(Protocol):
    """Where the audit log is copied to, each object locked (compliance mode) until ``retain_until``."""

    def read_head(self) -> SinkHead | None:
        """The head record (the newest entry copied), or None when the sink holds nothing yet."""
        ...

    def write_batch(self, chain: str, entries: Sequence[AuditEntry], retain_until: datetime) -> str:
        """Write ``entries`` (consecutive, oldest first) as one locked object; returns its key."""
        ...

    def write_previous(self, chain: str, previous: SinkHead, retain_until: datetime) -> None:
        """Record, for a chain after the first, where the chain before it ended."""
        ...

    def write_head(self, head: SinkHead, retain_until: datetime) -> None: ...

    def read_copy(self) -> tuple[list[ChainCopy], SinkHead | None]:
        """Every chain's batches (with their bodies), oldest chain first, and the head record."""
        ...

    def check_lock(self) -> str:
        """One sentence on the bucket's Object Lock (raises SinkRefused when it has none)."""
        ...

    def describe(self) -> str:
        """``s3://bucket/prefix`` (and the endpoint, when not AWS's)."""
        ...
