"""``SlackNotifier``: the ``bot.ports.Notifier`` on Slack. Publish jobs call it; listeners never do.

``publish(request, entries)`` brings Slack in step with a request:

- the root message in the request's channel: posted once, then updated in place to the current
  state (Approve/Deny only while approvals are outstanding);
- one thread reply per audit entry, oldest first, each with its time (refused attempts stay in the
  audit log and are not posted);
- direct messages: to the requester when their request is approved, denied, lapses, is granted
  (with the exact expiry in their own timezone), is about to end (with an **Extend** button), has
  ended (expired or revoked, with a **Write review** button) or could not be granted; to every
  approver of the role when a request waits for them (a link to the channel message, no buttons,
  so that decisions are made in one visible place), a loud notice when self-service
  break-glass was used, and, when that grant ends, a **Write review** button: its review is theirs.

Idempotence. Slack has no "post if absent", so what has been done is written down as it happens
(``bot.store.progress``, in Redis): the root's ``ts`` right after it is posted — before any reply, so a
retry after a failed reply updates that root instead of posting a second one — and, per entry, that
its reply and then its DMs went out. A retry (RQ retries on ``TemporaryError``) resumes where the
last attempt stopped; at worst one reply or DM goes out twice, none is skipped. A permanent refusal
to DM one person (deactivated, DMs closed) is logged and skipped: the thread holds the record.

``deliver_credentials`` uploads a ``credentials: token`` kubeconfig into the requester's DM only
(``conversations.open``, then ``files_upload_v2`` to that ``D…`` channel), never to a channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import redis

from bot.domain import policy
from bot.domain.audit import AuditEntry, Event
from bot.domain.end_reasons import end_sentence
from bot.domain.grant_failures import failure_sentence
from bot.domain.grants import IssuedCredentials, RequestThread, parse_instant
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.roster import Roster
from bot.ports import BreakglassError
from bot.settings import Settings
from bot.slack import blocks, wording
from bot.slack.blocks import Message
from bot.slack.client import SlackApi, SlackError
from bot.slack.presence import SlackPresence
from bot.store.progress import MemoryProgress, PublishProgress, RedisProgress

log = logging.getLogger(__name__)

# A channel we may no longer post in: fall back to the roster's incident channel for the root.
_CHANNEL_GONE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


class SlackNotifier:
    def __init__(
        self,
        slack: SlackApi,
        roster: Callable[[], Roster],
        now: Callable[[], datetime],
        progress: PublishProgress | None = None,
    ) -> None:
        self.slack = slack
        self.roster = roster
        self.now = now
        self.progress: PublishProgress = progress or MemoryProgress()
        self.presence = SlackPresence(slack, now)

    @classmethod
    def from_settings(
        cls, settings: Settings, roster: Callable[[], Roster], now: Callable[[], datetime]
    ) -> SlackNotifier:
        slack = SlackApi.connect(settings.slack_bot_token, settings.slack_api_url)
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True, health_check_interval=30)
        return cls(slack, roster, now, RedisProgress(client, prefix=settings.key_prefix))

    # --- Notifier ----------------------------------------------------------------------------------

    def publish(self, request: AccessRequest, entries: Sequence[AuditEntry]) -> str | None:
        roster = self.roster()
        now = self.now()
        channel, ts = self._root(request, roster, now)
        replied = self.progress.replied(request.id)
        done = self.progress.done(request.id)
        tz_cache: dict[str, str | None] = {}
        for entry in entries:
            if entry.seq <= done:
                continue
            if entry.seq > replied:
                reply = blocks.thread_reply(entry, request)
                if reply is not None:
                    text, body = reply
                    self.slack.post_message(channel, text, body, thread_ts=ts)
                self.progress.mark_replied(request.id, entry.seq)
            self._direct_messages(entry, request, roster, now, channel, ts, tz_cache)
            self.progress.mark_done(request.id, entry.seq)
        return ts

    def deliver_credentials(self, request: AccessRequest, credentials: IssuedCredentials) -> str | None:
        channel = self.slack.open_dm(request.requester)
        if not channel.startswith("D"):
            # A kubeconfig must never land where anyone but its holder can read it.
            raise SlackError(f"conversations.open gave {channel}, not a DM; the kubeconfig was not sent", "not_a_dm")
        comment = wording.credentials_comment(
            request, credentials.token_expires_at, credentials.outlives_grant, self._tz(request.requester, {})
        )
        return self.slack.upload_file(
            channel,
            credentials.kubeconfig,
            filename=f"{request.id.lower()}-kubeconfig.yaml",
            title=f"kubeconfig for {request.id}",
            initial_comment=comment,
        )

    def withdraw_credentials(self, request: AccessRequest, file_ids: Sequence[str]) -> None:
        for file_id in file_ids:
            self.slack.delete_file(file_id)

    def tell_thread(self, thread: RequestThread, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            reply = blocks.thread_reply(entry, None)
            if reply is not None:
                text, body = reply
                self.slack.post_message(thread.channel, text, body, thread_ts=thread.ts)

    # --- the root message --------------------------------------------------------------------------

    def _root(self, request: AccessRequest, roster: Roster, now: datetime) -> tuple[str, str]:
        text = blocks.fallback(wording.request_fallback(request))
        named = None
        if request.state is State.PENDING and not request.self_service:
            named = policy.approvers_to_name(roster, request, self.presence)
        body = blocks.request_message(request, roster, now, approvers=named)
        known = self.progress.root(request.id)
        if known is None and request.message_ts is not None:
            known = (request.channel, request.message_ts)
        if known is not None:
            channel, ts = known
            try:
                self.slack.update_message(channel, ts, text, body)
                return channel, ts
            except SlackError as exc:
                if exc.error != "message_not_found":
                    raise
                log.warning("root message gone; posting it again", extra={"request_id": request.id})
        channel = request.channel
        try:
            ts = self.slack.post_message(channel, text, body)
        except SlackError as exc:
            if exc.error not in _CHANNEL_GONE or channel == roster.incident_channel:
                raise
            log.warning(
                "cannot post in the request's channel; using the incident channel",
                extra={"request_id": request.id, "error": exc.error},
            )
            channel = roster.incident_channel
            ts = self.slack.post_message(channel, text, body)
        self.progress.remember_root(request.id, channel, ts)
        return channel, ts

    # --- direct messages ----------------------------------------------------------------------------

    def _direct_messages(
        self,
        entry: AuditEntry,
        request: AccessRequest,
        roster: Roster,
        now: datetime,
        channel: str,
        ts: str,
        tz_cache: dict[str, str | None],
    ) -> None:
        d = entry.details
        requester = request.requester
        match entry.event:
            case Event.REQUESTED if not request.self_service and request.automatic_rule is None:
                link = self._permalink(channel, ts)
                message = blocks.dm(wording.dm_approvers_pending(request, link))
                for approver in sorted(policy.approvers_for(roster, request)):
                    self._dm(approver, message, request)
            case Event.APPROVED if d.get("automatic"):
                # As for self-service: nobody was asked, so every approver is told, with the evidence.
                notice = blocks.dm(wording.dm_approvers_automatic(request, d, parse_instant(entry.at)))
                for approver in sorted(policy.approvers_for(roster, request)):
                    self._dm(approver, notice, request)
            case Event.APPROVED:
                count, required = d.get("count"), d.get("required")
                final = isinstance(count, int) and isinstance(required, int) and count >= required
                if final and not d.get("self_service"):
                    self._dm(requester, blocks.dm(wording.dm_approved(request)), request)
            case Event.DENIED:
                reason = str(d["reason"]) if d.get("reason") else None
                self._dm(requester, blocks.dm(wording.dm_denied(request, entry.actor, reason)), request)
            case Event.TIMED_OUT:
                self._dm(requester, blocks.dm(wording.dm_timed_out(request)), request)
            case Event.GRANTED:
                expires_at = _instant(d.get("expires_at")) or request.expires_at
                if expires_at is not None:
                    cluster = roster.clusters.get(request.cluster)
                    use = wording.how_to_use(
                        request, cluster.context if cluster else None, bool(cluster and cluster.credentials == "token")
                    )
                    text = wording.dm_granted(request, expires_at, use, self._permalink(channel, ts))
                    self._dm(requester, blocks.dm(text), request)
                if request.self_service:
                    notice = blocks.dm(wording.dm_approvers_self_service(request, expires_at))
                    for approver in sorted(policy.approvers_for(roster, request)):
                        self._dm(approver, notice, request)
            case Event.REMINDER_SENT:
                expires_at = _instant(d.get("expires_at")) or request.expires_at
                if expires_at is not None:
                    can_extend = policy.extension_room(roster, request) > timedelta(0)
                    text = wording.dm_reminder(request, expires_at, can_extend)
                    self._dm(requester, blocks.reminder_dm(request, text, can_extend), request)
            case Event.EXPIRED | Event.REVOKED:
                how = "revoked" if entry.event == Event.REVOKED else "expired"
                text = wording.dm_ended(request, how, entry.actor, end_sentence(d))
                self._dm(requester, blocks.ended_dm(request, text), request)
                if request.self_service and not request.extends and request.granted_at is not None:
                    # Nobody checked it before it was used, so an approver must check it now.
                    owed = blocks.review_owed_dm(request, wording.dm_approvers_review_owed(request, how))
                    for approver in sorted(policy.approvers_for(roster, request)):
                        self._dm(approver, owed, request)
            case Event.REVIEW_REMINDED:
                owed = blocks.review_owed_dm(request, wording.dm_review_overdue(request, d.get("ended_days_ago")))
                for person in d.get("owed_by") or []:
                    self._dm(str(person), owed, request)
            case Event.GRANT_FAILED:
                self._dm(requester, blocks.dm(wording.dm_grant_failed(request, failure_sentence(d))), request)
            case _:
                pass

    def _dm(self, user: SlackUserId | str, message: Message, request: AccessRequest) -> None:
        text, body = message
        try:
            self.slack.post_message(self.slack.open_dm(user), text, body)
        except SlackError as exc:
            # One person we cannot DM (deactivated, DMs with apps closed) must not stop the thread.
            log.warning("could not DM %s: %s", user, exc.error, extra={"request_id": request.id})

    def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            return self.slack.permalink(channel, ts)
        except SlackError:
            return None

    def _tz(self, user: str, cache: dict[str, str | None]) -> str | None:
        """The person's IANA timezone from users.info; None (UTC) if Slack cannot say right now."""
        if user not in cache:
            try:
                tz = self.slack.user_info(user).get("tz")
                cache[user] = tz if isinstance(tz, str) and tz else None
            except BreakglassError:
                cache[user] = None
        return cache[user]


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None
