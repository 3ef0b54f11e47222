"""Keeping Slack in step with the audit log: each request's thread shows its entries, in order, once.

What has been posted is one record per request (``bot.store.progress``): the notifier writes it as it
posts, and its ``done`` seq is where the next publish starts. Only one publisher works on a request at
a time (a short lock), so replies never interleave out of order even with several workers; a publisher
that dies mid-way leaves the record behind, and the next run posts from there (at worst one reply
twice, never one lost).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.domain.audit import AuditEntry, Event
from bot.domain.grants import RequestThread
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest
from bot.ports import JobQueue, Notifier, TemporaryError
from bot.store import Change, RequestStore

LOCK_TTL = timedelta(seconds=30)


def drain_outbox(store: RequestStore, jobs: JobQueue) -> int:
    """Queue a publish job for each request owed to Slack (``bot.store.outbox``); its job id is fixed,
    so one already waiting to retry is not doubled. Returns how many are owed."""
    owed = store.outbox.owed()
    for request_id in owed:
        jobs.publish(request_id)
    return len(owed)


def lost_request_thread(entries: Sequence[AuditEntry]) -> RequestThread | None:
    """The thread the sweep found named on a lost request's binding, from its ``sweep_recovered`` entry."""
    for entry in entries:
        if entry.event == Event.SWEEP_RECOVERED:
            return RequestThread.parse(entry.details.get("thread"))
    return None


class Publisher:
    def __init__(self, store: RequestStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier

    def publish(self, request_id: RequestId) -> int:
        """Post what is new for ``request_id``; returns how many entries were posted."""
        with self.store.lock(self.store.keys.publishing(request_id), LOCK_TTL) as taken:
            if not taken:
                raise TemporaryError(f"{request_id} is being published by another worker", delay=1.0)
            return self._publish(request_id)

    def _publish(self, request_id: RequestId) -> int:
        # The entries first, then the request: a change landing between the two reads then shows in
        # the root message at once and its entry in the follow-up publish it queued. Read the other
        # way round, the root would show the request as it was before the change, and the follow-up,
        # finding no new entry, would leave it so (a denied request still pending, with its buttons).
        entries = self.store.audit.for_request(request_id, after_seq=self.store.progress.done(request_id))
        request = self.store.get(request_id)
        if request is None:
            return self._publish_lost(request_id)
        if not entries and request.message_ts is not None:
            self.store.outbox.done(request_id)
            return 0
        ts = self.notifier.publish(request, entries)
        if ts and request.message_ts != ts:
            self._remember_message(request_id, ts)
        if entries:
            self.store.progress.mark_done(request_id, entries[-1].seq)
        self.store.outbox.done(request_id)  # caught up with every entry read above
        return len(entries)

    def _publish_lost(self, request_id: RequestId) -> int:
        """A request Redis has lost whose binding the sweep kept on its warrant: the thread its binding
        named (recorded in the sweep's entry) hears what the sweep did with it. Without a thread there
        is nowhere to post; the audit log holds the record."""
        thread = lost_request_thread(self.store.audit.for_request(request_id))
        if thread is None:
            self.store.outbox.done(request_id)
            return 0
        entries = self.store.audit.for_request(request_id, after_seq=self.store.progress.done(request_id))
        if entries:
            self.notifier.tell_thread(thread, entries)
            self.store.progress.mark_done(request_id, entries[-1].seq)
        self.store.outbox.done(request_id)
        return len(entries)

    def _remember_message(self, request_id: RequestId, ts: str) -> None:
        def decide(current: AccessRequest | None) -> Change[None]:
            if current is None or current.message_ts == ts:
                return Change(None)
            # Not a change of state, so no audit entry and no version bump that would look like one.
            return Change(current.model_copy(update={"message_ts": ts}))

        self.store.apply(request_id, decide)
