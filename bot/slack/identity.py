"""Who is acting: checked on every action (request, approve, deny, cancel, revoke, extend, review, home).

A payload's ``user_id`` is only as good as Slack's signature on it, and says nothing about what
kind of account it is. The gate therefore checks, in this order, cheapest first:

1. the payload's workspace: ``team_id`` must be the roster's ``workspace.team_id``, or for Enterprise
   Grid (``workspace.enterprise_id``) the payload's ``enterprise_id`` must be that org's;
2. the Slack id is one of the roster's ``people``;
3. ``users.info`` (bot token): not deleted, not a bot or app user (nor Slackbot), not a guest
   (``is_restricted`` / ``is_ultra_restricted``), not a pending invitation, and the account's own
   team (or Grid org) is the roster's;
4. with ``mfa: has_2fa``: ``users.info`` with ``SLACK_ADMIN_TOKEN`` must show ``has_2fa: true``
   (Slack shows that field to admins only). A missing admin token, a missing field or a failed call
   refuses: fail closed.

Slack's answers about a user are cached for at most ``CACHE_SECONDS`` of the injected clock, positive
and negative alike, so one person clicking through a form costs one lookup, and a deactivated or
demoted account is refused within a minute. Failed lookups are *not* cached: a Slack blip costs the
person one retry, not a minute. The roster checks use the roster as it is at each call.

Every refusal is one sentence (``wording``), raised as ``IdentityRefused``; callers audit it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.ids import SlackUserId
from bot.domain.roster import Roster
from bot.ports import BreakglassError, Refused
from bot.slack import wording
from bot.slack.client import SlackApi, SlackError

CACHE_SECONDS = 60
SLACKBOT = "USLACKBOT"


class IdentityRefused(Refused):
    """The person may not act through breakglass right now; ``reason`` is one sentence."""


@dataclass(frozen=True)
class Actor:
    """Who a payload says is acting, and from where."""

    user_id: str
    team_id: str | None
    enterprise_id: str | None = None


@dataclass(frozen=True)
class Profile:
    """A checked person, with what rendering needs."""

    user_id: SlackUserId
    display_name: str
    tz: str | None
    tz_offset: int


@dataclass
class _Cached:
    value: Mapping[str, Any]
    until: datetime


class IdentityGate:
    def __init__(
        self,
        slack: SlackApi,
        roster: Callable[[], Roster],
        now: Callable[[], datetime],
        *,
        admin: SlackApi | None = None,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.slack = slack
        self.admin = admin
        self.roster = roster
        self.now = now
        self.ttl = timedelta(seconds=min(cache_seconds, CACHE_SECONDS))
        self._users: dict[str, _Cached] = {}
        self._admin_users: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def check(self, actor: Actor) -> Profile:
        """The acting person's profile, or IdentityRefused saying what is wrong and what to do."""
        roster = self.roster()
        _check_workspace(roster, actor.team_id, actor.enterprise_id)
        if actor.user_id not in roster.people:
            if roster.identity.kube_user_from == "email" and actor.user_id in roster.members(roster.groups):
                # In a group, but with no confirmed email to become their kube_user (bot.slack.usergroups).
                raise IdentityRefused(wording.EMAIL_UNCONFIRMED)
            # A group that could not be read may be why: say so rather than "not in the roster".
            problem = next(iter(roster.group_problems.values()), None)
            raise IdentityRefused(problem or wording.NOT_IN_ROSTER)
        user = self._lookup(self._users, self.slack, actor.user_id, "who you are")
        _check_account(roster, user)
        if roster.mfa == "has_2fa":
            if self.admin is None:
                raise IdentityRefused(wording.TWO_FA_UNCHECKABLE)
            seen_by_admin = self._lookup(self._admin_users, self.admin, actor.user_id, "your two-factor authentication")
            has_2fa = seen_by_admin.get("has_2fa")
            if has_2fa is None:
                raise IdentityRefused(wording.TWO_FA_UNKNOWN)
            if has_2fa is not True:
                raise IdentityRefused(wording.NO_2FA)
        profile = user.get("profile") if isinstance(user.get("profile"), Mapping) else {}
        assert isinstance(profile, Mapping)
        name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
        tz = user.get("tz")
        offset = user.get("tz_offset")
        return Profile(
            user_id=SlackUserId(actor.user_id),
            display_name=str(name or actor.user_id),
            tz=tz if isinstance(tz, str) and tz else None,
            tz_offset=offset if isinstance(offset, int) else 0,
        )

    def email_of(self, user_id: str) -> str | None:
        """The person's confirmed Slack profile email (scope ``users:read.email``), or None. The roster's
        ``people.<id>.email`` wins when set: the address the identity provider knows them by."""
        person = self.roster().people.get(SlackUserId(user_id))
        if person is not None and person.email:
            return person.email
        user = self._lookup(self._users, self.slack, user_id, "your email address")
        profile = user.get("profile") if isinstance(user.get("profile"), Mapping) else {}
        assert isinstance(profile, Mapping)
        email = profile.get("email")
        if not isinstance(email, str) or not email or user.get("is_email_confirmed") is not True:
            return None
        return email

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._users.pop(user_id, None)
            self._admin_users.pop(user_id, None)

    def _lookup(self, cache: dict[str, _Cached], api: SlackApi, user_id: str, what: str) -> Mapping[str, Any]:
        now = self.now()
        with self._lock:
            hit = cache.get(user_id)
            if hit is not None and hit.until > now:
                return hit.value
        try:
            user = api.user_info(user_id)
        except SlackError as exc:
            if exc.error == "user_not_found":
                # Slack's own negative answer: cached like any other fact about the user.
                user = {"id": user_id, "deleted": True, "_not_found": True}
            else:
                raise IdentityRefused(wording.identity_lookup_failed(what, exc.error)) from exc
        except BreakglassError as exc:
            raise IdentityRefused(wording.identity_lookup_failed(what, getattr(exc, "error", "unreachable"))) from exc
        with self._lock:
            cache[user_id] = _Cached(user, now + self.ttl)
        return user


def _check_workspace(roster: Roster, team_id: str | None, enterprise_id: str | None) -> None:
    expected_org = roster.workspace.enterprise_id
    if expected_org is not None:
        # Enterprise Grid: any workspace of the org may act (the contract's choice).
        if enterprise_id != expected_org:
            raise IdentityRefused(wording.WRONG_WORKSPACE)
        return
    if team_id is None or team_id != roster.workspace.team_id:
        raise IdentityRefused(wording.WRONG_WORKSPACE)


def _check_account(roster: Roster, user: Mapping[str, Any]) -> None:
    if user.get("_not_found"):
        raise IdentityRefused(wording.UNKNOWN_ACCOUNT)
    if user.get("deleted") is not False:
        # Missing counts as deleted: a users.info answer without the flag is not one to trust.
        raise IdentityRefused(wording.DEACTIVATED)
    if user.get("is_bot") is not False or user.get("is_app_user") is True or user.get("id") == SLACKBOT:
        raise IdentityRefused(wording.NOT_A_PERSON)
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        raise IdentityRefused(wording.GUEST)
    if user.get("is_invited_user"):
        raise IdentityRefused(wording.INVITED)
    expected_org = roster.workspace.enterprise_id
    if expected_org is not None:
        grid = user.get("enterprise_user")
        org = grid.get("enterprise_id") if isinstance(grid, Mapping) else None
        if org != expected_org:
            raise IdentityRefused(wording.OTHER_TEAM)
    elif user.get("team_id") != roster.workspace.team_id:
        raise IdentityRefused(wording.OTHER_TEAM)
