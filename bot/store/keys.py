"""Every Redis key breakglass writes, named in one place (as rq's ``Job.key``/``Queue.key`` are).

One ``Keys`` per deployment prefix; every other module asks it for a key instead of spelling one. RQ's
own keys (``rq:…``, under queues named ``<prefix>-cluster``/``<prefix>-slack``) are RQ's to name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "breakglass"

    # --- requests (bot.store.requests) ---
    def request(self, request_id: str) -> str:
        return f"{self.prefix}:request:{request_id}"

    @property
    def requests(self) -> str:
        return f"{self.prefix}:requests"

    @property
    def pending(self) -> str:
        """id -> created epoch."""
        return f"{self.prefix}:pending"

    @property
    def approved(self) -> str:
        """id -> approved epoch: grants in flight."""
        return f"{self.prefix}:approved"

    @property
    def active(self) -> str:
        """id -> expiry epoch: the grant schedule."""
        return f"{self.prefix}:active"

    @property
    def reviews_owed(self) -> str:
        """id -> ended epoch: ended self-service grants whose review is owed."""
        return f"{self.prefix}:reviews-owed"

    def claimed(self, duty: str) -> str:
        """A duty done once in its window (a review reminder a day): taken with the one lock, never
        released, lapsing with the window."""
        return f"{self.prefix}:claimed:{duty}"

    def reminded(self, request_id: str) -> str:
        """The grant expiry last reminded of; expires once that expiry has passed."""
        return f"{self.prefix}:reminded:{request_id}"

    def refusals(self, person: str) -> str:
        """Refused attempts by one person in the current window; expires with the window."""
        return f"{self.prefix}:refusals:{person}"

    def automatic_approvals(self, person: str) -> str:
        """One person's automatic approvals in the last 24 hours (bot.store.automatic); expires a day
        after the last one."""
        return f"{self.prefix}:automatic:{person}"

    @property
    def escalations(self) -> str:
        """Requests whose PagerDuty escalation incident is open (bot.store.escalations)."""
        return f"{self.prefix}:escalations"

    # --- the audit log (bot.store.audit_log) ---
    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    @property
    def audit_head(self) -> str:
        return f"{self.prefix}:audit:head"

    @property
    def audit_sink(self) -> str:
        """How far the durable copy (BREAKGLASS_AUDIT_SINK) has got, and its last failure (bot.store.audit_sink)."""
        return f"{self.prefix}:audit:sink"

    @property
    def audit_sink_shipping(self) -> str:
        """The lock of the one worker copying entries to the sink at a time."""
        return f"{self.prefix}:audit:sink:shipping"

    # --- what Slack has been shown of a request (bot.store.progress) ---
    def published(self, request_id: str) -> str:
        return f"{self.prefix}:slack:{request_id}"

    def publishing(self, request_id: str) -> str:
        """The lock one publisher holds while it posts a request's entries."""
        return f"{self.prefix}:publishing:{request_id}"

    @property
    def outbox(self) -> str:
        """Ids of requests whose thread Slack must get however long it is down (bot.store.outbox)."""
        return f"{self.prefix}:outbox"

    def revoking(self, request_id: str) -> str:
        """One process's claim on an overdue grant it is revoking (services.reconcile.revoke_overdue)."""
        return f"{self.prefix}:revoking:{request_id}"

    # --- the sweep (workers.sweeper) and the clusters it remembers (workers.known_clusters) ---
    @property
    def sweep_running(self) -> str:
        return f"{self.prefix}:sweep:running"

    @property
    def sweep_due(self) -> str:
        return f"{self.prefix}:sweep:due"

    @property
    def known_clusters(self) -> str:
        return f"{self.prefix}:clusters:known"

    # --- counters (bot.metrics) ---
    @property
    def metrics(self) -> str:
        return f"{self.prefix}:metrics"

    # --- step-up verification (bot.store.stepup) ---
    def step_up_start(self, token_digest: str) -> str:
        """A start link's pending action, under the SHA-256 of its token (the token itself is a secret)."""
        return f"{self.prefix}:stepup:start:{token_digest}"

    def step_up_login(self, state_digest: str) -> str:
        """A login in progress at the provider, under the SHA-256 of its ``state``."""
        return f"{self.prefix}:stepup:login:{state_digest}"
