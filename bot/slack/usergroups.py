"""Roster groups read at run time — Slack user groups (``{slack_usergroup: S…}``) and Okta groups
(``{okta_group: 00g…}``) — and people known only through them (``identity: {kube_user_from: email}``):
the roster as the services see it, resolved at each read.

Membership is read at most ``CACHE_SECONDS`` ago, so someone removed from the group is refused within
a minute, for new requests and for clicks on pending ones. An Okta group's members are matched to Slack
people by email: the roster's ``people.<id>.email`` first, else Slack's ``users.lookupByEmail``; a
member with no such Slack account, or a deactivated one, is left out.

When a read fails (Slack or Okta down, 429, a deleted group, a refused token) the last good read
stands in for at most the roster's ``identity.group_cache_max_age``; after that the group is empty and
its problem is one sentence naming the group, its source and the cause. A failed read never widens
access: a group is its last good read or nobody, never more.

A member not under ``people:`` gets their confirmed Slack profile email as ``kube_user`` when the
roster says ``kube_user_from: email``; one without a confirmed email is left out (and so refused).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.ids import SlackUserId
from bot.domain.roster import GroupSource, Person, Roster
from bot.ports import BreakglassError, GroupDirectory, LookupFailed
from bot.slack.client import SlackApi, SlackError

log = logging.getLogger(__name__)

CACHE_SECONDS = 60
OKTA_UNSET = "BREAKGLASS_OKTA_URL and BREAKGLASS_OKTA_TOKEN are not set"


@dataclass
class _Read:
    members: tuple[SlackUserId, ...]
    at: datetime


@dataclass(frozen=True)
class GroupReading:
    """One group as ``roster members`` shows it: who is in it now and where that came from."""

    name: str
    source: GroupSource | None  # None: listed in the roster file
    members: tuple[SlackUserId, ...]
    read_at: datetime | None  # when the source was read (None for a static group, or never read)
    problem: str | None  # why the source could not be read now (the members are then the last good read)


class UserGroupRoster:
    """A roster source whose run-time groups and email-mapped people are filled in at each call."""

    def __init__(
        self,
        source: Callable[[], Roster],
        slack: SlackApi,
        now: Callable[[], datetime],
        okta: GroupDirectory | None = None,
    ) -> None:
        self.source = source
        self.slack = slack
        self.now = now
        self.okta = okta
        self._groups: dict[GroupSource, _Read] = {}
        self._emails: dict[str, tuple[str | None, datetime]] = {}
        self._by_email: dict[str, tuple[SlackUserId | None, datetime]] = {}
        self._lock = threading.Lock()

    def __call__(self) -> Roster:
        roster = self.source()
        if not roster.group_sources:
            return roster
        groups = dict(roster.groups)
        problems: dict[str, str] = {}
        read_at: dict[str, datetime] = {}
        for name, source in roster.group_sources.items():
            read, problem = self._members(source, roster)
            groups[name] = read.members if read is not None else ()
            if read is not None:
                read_at[name] = read.at
            if problem:
                problems[name] = (
                    f"The group {name} could not be read from the {source} ({problem}), so nobody in it may act now."
                )
        people = dict(roster.people)
        if roster.identity.kube_user_from == "email":
            for user in {u for members in groups.values() for u in members} - set(people):
                email = self._email(user)
                if email is not None:
                    people[user] = Person(user, email)
        return dataclasses.replace(roster, groups=groups, people=people, group_problems=problems, group_read_at=read_at)

    def readings(self, only: str | None = None) -> list[GroupReading]:
        """Every group (or ``only``) as read now, each run-time source asked afresh (``roster members``)."""
        roster = self.source()
        result = []
        for name, static in roster.groups.items():
            if only is not None and name != only:
                continue
            source = roster.group_sources.get(name)
            if source is None:
                result.append(GroupReading(name, None, static, None, None))
                continue
            try:
                members = self.read(source, roster)
            except (SlackError, BreakglassError) as exc:
                with self._lock:
                    cached = self._groups.get(source)
                result.append(GroupReading(name, source, cached.members if cached else (), cached.at if cached else None,
                                           _cause(exc)))  # fmt: skip
                continue
            now = self.now()
            with self._lock:
                self._groups[source] = _Read(members, now)
            result.append(GroupReading(name, source, members, now, None))
        return result

    def read(self, source: GroupSource, roster: Roster) -> tuple[SlackUserId, ...]:
        """The members now, straight from the source; SlackError/BreakglassError on failure."""
        if source.kind == "slack_usergroup":
            return tuple(SlackUserId(u) for u in self.slack.usergroup_members(source.id))
        if self.okta is None:
            raise LookupFailed(OKTA_UNSET)
        emails = self.okta.member_emails(source.id)
        # The roster's own mapping wins: the address the identity provider knows a person by.
        mapped = {p.email.lower(): p.slack_id for p in roster.people.values() if p.email}
        members = []
        for email in emails:
            user = mapped.get(email) or self._slack_user_by_email(email)
            if user is not None and user not in members:
                members.append(user)
        return tuple(members)

    def _members(self, source: GroupSource, roster: Roster) -> tuple[_Read | None, str | None]:
        now = self.now()
        with self._lock:
            cached = self._groups.get(source)
        if cached is not None and now - cached.at < timedelta(seconds=CACHE_SECONDS):
            return cached, None
        try:
            members = self.read(source, roster)
        except (SlackError, BreakglassError) as exc:
            cause = _cause(exc)
            log.warning("a group could not be read", extra={"group_source": str(source), "error": cause})
            if cached is not None and now - cached.at <= roster.identity.group_cache_max_age:
                return cached, None  # the last good read, within its bound
            return None, cause
        read = _Read(members, now)
        with self._lock:
            self._groups[source] = read
        return read, None

    def _slack_user_by_email(self, email: str) -> SlackUserId | None:
        """The Slack member with this email, cached like a group read; None for nobody or a
        deactivated account. A failed lookup raises, so the whole read fails (never a partial group)."""
        now = self.now()
        with self._lock:
            cached = self._by_email.get(email)
        if cached is not None and now - cached[1] < timedelta(seconds=CACHE_SECONDS):
            return cached[0]
        user = self.slack.user_by_email(email)
        found = SlackUserId(str(user["id"])) if user and user.get("deleted") is False and user.get("id") else None
        with self._lock:
            self._by_email[email] = (found, now)
        return found

    def _email(self, user: str) -> str | None:
        now = self.now()
        with self._lock:
            cached = self._emails.get(user)
        if cached is not None and now - cached[1] < timedelta(seconds=CACHE_SECONDS):
            return cached[0]
        try:
            info: Mapping[str, Any] = self.slack.user_info(user)
        except (SlackError, BreakglassError):
            return cached[0] if cached is not None else None
        profile = info.get("profile") if isinstance(info.get("profile"), Mapping) else {}
        assert isinstance(profile, Mapping)
        email = profile.get("email")
        confirmed = (
            isinstance(email, str) and email and info.get("is_email_confirmed") is True and not info.get("deleted")
        )
        found = str(email) if confirmed else None
        with self._lock:
            self._emails[user] = (found, now)
        return found


def _cause(exc: BaseException) -> str:
    """A few words on why a read failed, fit for a refusal: Slack's error code, or the adapter's words."""
    if isinstance(exc, LookupFailed):
        return str(exc)
    return str(getattr(exc, "error", None) or type(exc).__name__)
