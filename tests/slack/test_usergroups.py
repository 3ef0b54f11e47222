"""Roster groups kept in Slack user groups, read over HTTP from the Slack double: members follow the
user group within a minute, people known only through it get their confirmed email as kube_user, and
a failed read keeps the last good one for a bounded time, then refuses naming the group and the cause."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.domain.ids import SlackUserId
from bot.domain.roster import GroupSource
from bot.roster_source import FixedRoster
from bot.slack.client import SlackApi
from bot.slack.usergroups import UserGroupRoster
from bot.standins.slack_api import DEFAULT_BOT_TOKEN, SlackApiDouble
from bot.standins.stack import manifest_scopes
from tests.conftest import FakeClock
from tests.fakes import roster_with

ERIN, FRANK = SlackUserId("U00000ERIN"), SlackUserId("U0000FRANK")
GROUP = "S0PAYDEVS"


@pytest.fixture
def slack() -> Iterator[SlackApiDouble]:
    double = SlackApiDouble(scopes=manifest_scopes()[0]).start()
    double.add_user(ERIN, name="erin", email="erin@example.com")
    double.add_user(FRANK, name="frank", email="frank@example.com")
    double.set_usergroup(GROUP, [ERIN])
    yield double
    double.stop()


@pytest.fixture
def resolved(slack: SlackApiDouble, clock: FakeClock) -> UserGroupRoster:
    roster = roster_with(
        identity={"kube_user_from": "email", "group_cache_max_age": "10m"},
        groups={"payments-devs": {"slack_usergroup": GROUP}},
    )
    api = SlackApi.connect(SecretStr(DEFAULT_BOT_TOKEN), slack.api_url, sleep=lambda _: None)
    return UserGroupRoster(FixedRoster(roster), api, clock)


def test_a_person_known_only_through_a_user_group_gets_their_email_as_kube_user(resolved: UserGroupRoster) -> None:
    roster = resolved()
    assert roster.groups["payments-devs"] == (ERIN,)
    assert roster.people[ERIN].kube_user == "erin@example.com"


def test_membership_follows_the_user_group_within_a_minute(
    resolved: UserGroupRoster, slack: SlackApiDouble, clock: FakeClock
) -> None:
    assert ERIN in resolved().members(["payments-devs"])
    slack.set_usergroup(GROUP, [FRANK])
    clock.advance(seconds=59)
    assert ERIN in resolved().members(["payments-devs"])  # read less than a minute ago
    clock.advance(seconds=2)
    assert resolved().members(["payments-devs"]) == {FRANK}


def test_a_failed_read_keeps_the_last_for_the_bounded_age_then_names_the_group_and_cause(
    resolved: UserGroupRoster, slack: SlackApiDouble, clock: FakeClock
) -> None:
    assert resolved().members(["payments-devs"]) == {ERIN}
    slack.rate_limit("usergroups.users.list", times=100, retry_after=1)
    clock.advance(minutes=5)
    assert resolved().members(["payments-devs"]) == {ERIN}
    assert not resolved().group_problems
    clock.advance(minutes=6)
    roster = resolved()
    assert roster.members(["payments-devs"]) == frozenset()
    assert roster.group_problems["payments-devs"] == (
        "The group payments-devs could not be read from the Slack user group S0PAYDEVS (ratelimited), so nobody in it may act now."
    )


def test_a_deleted_user_group_is_nobody(resolved: UserGroupRoster, slack: SlackApiDouble) -> None:
    slack.set_usergroup(GROUP, None)
    roster = resolved()
    assert roster.members(["payments-devs"]) == frozenset()
    assert "no_such_subteam" in roster.group_problems["payments-devs"]


def test_a_member_without_a_confirmed_email_gets_no_kube_user(
    resolved: UserGroupRoster, slack: SlackApiDouble, clock: FakeClock
) -> None:
    slack.add_user(FRANK, name="frank", is_bot=True)  # a bot's email is never confirmed
    slack.set_usergroup(GROUP, [FRANK])
    clock.advance(minutes=2)
    assert FRANK not in resolved().people


def test_roster_check_stays_offline_and_accepts_a_user_group() -> None:
    roster = roster_with(groups={"payments-devs": {"slack_usergroup": GROUP}})
    assert roster.group_sources == {"payments-devs": GroupSource("slack_usergroup", GROUP)}
    assert roster.groups["payments-devs"] == ()


def test_a_group_member_whose_email_is_not_confirmed_is_refused_with_its_own_sentence(
    resolved: UserGroupRoster, slack: SlackApiDouble, clock: FakeClock
) -> None:
    from bot.slack import wording
    from bot.slack.identity import Actor, IdentityGate, IdentityRefused

    slack.add_user(FRANK, name="frank", email="frank@example.com", email_confirmed=False)
    slack.set_usergroup(GROUP, [ERIN, FRANK])
    clock.advance(minutes=2)
    api = SlackApi.connect(SecretStr(DEFAULT_BOT_TOKEN), slack.api_url, sleep=lambda _: None)
    gate = IdentityGate(api, resolved, clock)
    team = resolved().workspace.team_id
    with pytest.raises(IdentityRefused) as refused:
        gate.check(Actor(FRANK, team))
    assert refused.value.reason == wording.EMAIL_UNCONFIRMED
    with pytest.raises(IdentityRefused) as stranger:
        gate.check(Actor("U0STRANGER", team))
    assert stranger.value.reason == wording.NOT_IN_ROSTER
