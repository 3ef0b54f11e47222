"""Roster groups kept in Slack user groups (``{slack_usergroup: S…}``), and people known only through
them (``identity: {kube_user_from: email}``): the roster as the services see it, resolved at each read.

Membership is read with ``usergroups.users.list`` at most ``CACHE_SECONDS`` ago, so someone removed
from the user group is refused within a minute, for new requests and for clicks on pending ones.
When a read fails (Slack down, 429, ``no_such_subteam``) the last good read stands in for at most the
roster's ``identity.group_cache_max_age``; after that the group is empty and its problem is one
sentence naming the group and the cause. A failed read never widens access: a group is its last
good read or nobody, never more.

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
from bot.domain.roster import Person, Roster
from bot.ports import BreakglassError
from bot.slack.client import SlackApi, SlackError

log = logging.getLogger(__name__)

CACHE_SECONDS = 60


@dataclass
class _Read:
    members: tuple[SlackUserId, ...]
    at: datetime


class UserGroupRoster:
    """A roster source whose Slack user groups and email-mapped people are filled in at each call."""

    def __init__(self, source: Callable[[], Roster], slack: SlackApi, now: Callable[[], datetime]) -> None:
        self.source = source
        self.slack = slack
        self.now = now
        self._groups: dict[str, _Read] = {}
        self._emails: dict[str, tuple[str | None, datetime]] = {}
        self._lock = threading.Lock()

    def __call__(self) -> Roster:
        roster = self.source()
        if not roster.group_sources:
            return roster
        groups = dict(roster.groups)
        problems: dict[str, str] = {}
        for name, usergroup in roster.group_sources.items():
            members, problem = self._members(usergroup, roster.identity.group_cache_max_age)
            groups[name] = members
            if problem:
                problems[name] = (
                    f"The group {name} could not be read from Slack ({problem}), so nobody in it may act now."
                )
        people = dict(roster.people)
        if roster.identity.kube_user_from == "email":
            for user in {u for members in groups.values() for u in members} - set(people):
                email = self._email(user)
                if email is not None:
                    people[user] = Person(user, email)
        return dataclasses.replace(roster, groups=groups, people=people, group_problems=problems)

    def read(self, usergroup: str) -> tuple[SlackUserId, ...]:
        """The members now, straight from Slack (``roster members``); SlackError/BreakglassError on failure."""
        return tuple(SlackUserId(u) for u in self.slack.usergroup_members(usergroup))

    def _members(self, usergroup: str, max_age: timedelta) -> tuple[tuple[SlackUserId, ...], str | None]:
        now = self.now()
        with self._lock:
            cached = self._groups.get(usergroup)
        if cached is not None and now - cached.at < timedelta(seconds=CACHE_SECONDS):
            return cached.members, None
        try:
            members = self.read(usergroup)
        except (SlackError, BreakglassError) as exc:
            cause = getattr(exc, "error", None) or type(exc).__name__
            log.warning("a Slack user group could not be read", extra={"usergroup": usergroup, "error": cause})
            if cached is not None and now - cached.at <= max_age:
                return cached.members, None  # the last good read, within its bound
            return (), str(cause)
        with self._lock:
            self._groups[usergroup] = _Read(members, now)
        return members, None

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
