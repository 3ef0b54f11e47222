"""The identity gate against the Slack Web API double over HTTP: who may act, and every refusal's sentence."""

from __future__ import annotations

import pytest

from bot.domain.roster import Roster
from bot.slack import wording
from bot.slack.client import SlackApi
from bot.slack.identity import Actor, IdentityGate, IdentityRefused
from bot.standins.slack_api import SlackApiDouble
from tests.conftest import FakeClock
from tests.fakes import ALICE, roster_with
from tests.slack.conftest import ADMIN_TOKEN

TEAM = "T0000000001"


def gate(api: SlackApi, roster: Roster, clock: FakeClock, admin: SlackApi | None = None) -> IdentityGate:
    return IdentityGate(api, lambda: roster, clock, admin=admin)


def refusal(g: IdentityGate, actor: Actor) -> str:
    with pytest.raises(IdentityRefused) as refused:
        g.check(actor)
    return refused.value.reason


def test_a_roster_member_of_the_workspace_passes_with_their_profile(
    api: SlackApi, roster: Roster, clock: FakeClock
) -> None:
    profile = gate(api, roster, clock).check(Actor(ALICE, TEAM))
    assert profile.user_id == ALICE
    assert profile.display_name == "alice"
    assert profile.tz == "Europe/Berlin"


@pytest.mark.parametrize(
    ("flags", "sentence"),
    [
        ({"is_restricted": True}, wording.GUEST),
        ({"is_ultra_restricted": True}, wording.GUEST),
        ({"deleted": True}, wording.DEACTIVATED),
        ({"is_bot": True}, wording.NOT_A_PERSON),
        ({"is_app_user": True}, wording.NOT_A_PERSON),
        ({"is_invited_user": True}, wording.INVITED),
        ({"team_id": "T0000OTHER"}, wording.OTHER_TEAM),
    ],
)
def test_accounts_that_are_not_full_members_of_the_workspace_are_refused(
    flags: dict[str, object], sentence: str, slack: SlackApiDouble, api: SlackApi, roster: Roster, clock: FakeClock
) -> None:
    slack.add_user(ALICE, name="alice", **flags)  # type: ignore[arg-type]
    assert refusal(gate(api, roster, clock), Actor(ALICE, TEAM)) == sentence


def test_slackbot_is_never_a_person(slack: SlackApiDouble, api: SlackApi, clock: FakeClock) -> None:
    roster = roster_with(people={"USLACKBOT": {"kube_user": "slackbot"}})
    slack.add_user("USLACKBOT", name="slackbot")
    assert refusal(gate(api, roster, clock), Actor("USLACKBOT", TEAM)) == wording.NOT_A_PERSON


def test_a_stranger_is_refused_without_asking_slack(
    slack: SlackApiDouble, api: SlackApi, roster: Roster, clock: FakeClock
) -> None:
    slack.add_user("U0STRANGER", name="mallory")
    assert refusal(gate(api, roster, clock), Actor("U0STRANGER", TEAM)) == wording.NOT_IN_ROSTER
    assert slack.calls("users.info") == []


def test_a_payload_from_another_workspace_is_refused(api: SlackApi, roster: Roster, clock: FakeClock) -> None:
    assert refusal(gate(api, roster, clock), Actor(ALICE, "T0000OTHER")) == wording.WRONG_WORKSPACE
    assert refusal(gate(api, roster, clock), Actor(ALICE, None)) == wording.WRONG_WORKSPACE


def test_a_user_slack_does_not_know_is_refused(slack: SlackApiDouble, clock: FakeClock, api: SlackApi) -> None:
    roster = roster_with(people={"U0000GHOST": {"kube_user": "ghost"}})
    assert refusal(gate(api, roster, clock), Actor("U0000GHOST", TEAM)) == wording.UNKNOWN_ACCOUNT


class TestEnterpriseGrid:
    ORG = "E0000000001"

    def roster(self) -> Roster:
        return roster_with(workspace={"enterprise_id": self.ORG})

    def test_any_workspace_of_the_org_may_act(self, slack: SlackApiDouble, api: SlackApi, clock: FakeClock) -> None:
        slack.add_user(ALICE, name="alice", team_id="T0000SECOND", enterprise_id=self.ORG)
        profile = gate(api, self.roster(), clock).check(Actor(ALICE, "T0000SECOND", self.ORG))
        assert profile.user_id == ALICE

    def test_another_org_is_refused(self, slack: SlackApiDouble, api: SlackApi, clock: FakeClock) -> None:
        slack.add_user(ALICE, name="alice", enterprise_id=self.ORG)
        assert refusal(gate(api, self.roster(), clock), Actor(ALICE, TEAM, "E000000OTHER")) == wording.WRONG_WORKSPACE

    def test_an_account_outside_the_org_is_refused(
        self, slack: SlackApiDouble, api: SlackApi, clock: FakeClock
    ) -> None:
        slack.add_user(ALICE, name="alice", enterprise_id="E000000OTHER")
        assert refusal(gate(api, self.roster(), clock), Actor(ALICE, TEAM, self.ORG)) == wording.OTHER_TEAM


class TestHas2fa:
    def roster(self) -> Roster:
        return roster_with(mfa="has_2fa")

    def test_two_factor_on_passes(
        self, slack: SlackApiDouble, api: SlackApi, admin_api: SlackApi, clock: FakeClock
    ) -> None:
        slack.add_user(ALICE, name="alice", has_2fa=True)
        assert gate(api, self.roster(), clock, admin_api).check(Actor(ALICE, TEAM)).user_id == ALICE
        assert [c.token_kind for c in slack.calls("users.info")] == ["bot", "admin"]

    def test_two_factor_off_is_refused(
        self, slack: SlackApiDouble, api: SlackApi, admin_api: SlackApi, clock: FakeClock
    ) -> None:
        slack.add_user(ALICE, name="alice", has_2fa=False)
        assert refusal(gate(api, self.roster(), clock, admin_api), Actor(ALICE, TEAM)) == wording.NO_2FA

    def test_two_factor_not_shown_is_refused(
        self, slack: SlackApiDouble, api: SlackApi, admin_api: SlackApi, clock: FakeClock
    ) -> None:
        slack.add_user(ALICE, name="alice", has_2fa=None)
        assert refusal(gate(api, self.roster(), clock, admin_api), Actor(ALICE, TEAM)) == wording.TWO_FA_UNKNOWN

    def test_the_bot_token_alone_never_sees_two_factor_so_it_is_not_trusted(
        self, slack: SlackApiDouble, api: SlackApi, clock: FakeClock
    ) -> None:
        slack.add_user(ALICE, name="alice", has_2fa=True)
        assert refusal(gate(api, self.roster(), clock, admin=api), Actor(ALICE, TEAM)) == wording.TWO_FA_UNKNOWN

    def test_no_admin_token_refuses_everyone(self, slack: SlackApiDouble, api: SlackApi, clock: FakeClock) -> None:
        slack.add_user(ALICE, name="alice", has_2fa=True)
        assert refusal(gate(api, self.roster(), clock), Actor(ALICE, TEAM)) == wording.TWO_FA_UNCHECKABLE

    def test_a_failing_admin_lookup_refuses(
        self, slack: SlackApiDouble, api: SlackApi, admin_api: SlackApi, clock: FakeClock
    ) -> None:
        slack.add_user(ALICE, name="alice", has_2fa=True)
        g = gate(api, self.roster(), clock, admin_api)
        g.check(Actor(ALICE, TEAM))
        clock.advance(seconds=61)
        slack.revoke(ADMIN_TOKEN)
        assert refusal(g, Actor(ALICE, TEAM)) == wording.identity_lookup_failed(
            "your two-factor authentication", "token_revoked"
        )


@pytest.mark.parametrize(
    ("error", "status"), [("internal_error", 200), ("service_unavailable", 503), ("invalid_auth", 200)]
)
def test_a_failing_users_info_refuses_and_says_so(
    error: str, status: int, slack: SlackApiDouble, api: SlackApi, roster: Roster, clock: FakeClock
) -> None:
    slack.fail("users.info", error, status=status)
    reason = refusal(gate(api, roster, clock), Actor(ALICE, TEAM))
    assert reason == wording.identity_lookup_failed("who you are", error)


def test_users_info_is_retried_after_a_429(slack: SlackApiDouble, roster: Roster, clock: FakeClock) -> None:
    from pydantic import SecretStr

    from tests.slack.conftest import Sleeps

    sleeps = Sleeps()
    api = SlackApi.connect(SecretStr(slack.bot_token), slack.api_url, sleep=sleeps)
    slack.rate_limit("users.info", retry_after=2)
    assert gate(api, roster, clock).check(Actor(ALICE, TEAM)).user_id == ALICE
    assert sleeps == [2.0]


class TestCache:
    def test_answers_are_reused_for_sixty_seconds_then_asked_again(
        self, slack: SlackApiDouble, api: SlackApi, roster: Roster, clock: FakeClock
    ) -> None:
        g = gate(api, roster, clock)
        g.check(Actor(ALICE, TEAM))
        clock.advance(seconds=59)
        g.check(Actor(ALICE, TEAM))
        assert len(slack.calls("users.info")) == 1
        clock.advance(seconds=2)
        g.check(Actor(ALICE, TEAM))
        assert len(slack.calls("users.info")) == 2

    def test_a_deactivated_account_is_refused_within_a_minute(
        self, slack: SlackApiDouble, api: SlackApi, roster: Roster, clock: FakeClock
    ) -> None:
        g = gate(api, roster, clock)
        g.check(Actor(ALICE, TEAM))
        slack.add_user(ALICE, name="alice", deleted=True)
        g.check(Actor(ALICE, TEAM))  # still the cached answer
        clock.advance(seconds=61)
        assert refusal(g, Actor(ALICE, TEAM)) == wording.DEACTIVATED

    def test_negative_answers_are_cached_too(
        self, slack: SlackApiDouble, api: SlackApi, roster: Roster, clock: FakeClock
    ) -> None:
        slack.add_user(ALICE, name="alice", is_restricted=True)
        g = gate(api, roster, clock)
        refusal(g, Actor(ALICE, TEAM))
        refusal(g, Actor(ALICE, TEAM))
        assert len(slack.calls("users.info")) == 1

    def test_failed_lookups_are_not_cached(
        self, slack: SlackApiDouble, api: SlackApi, roster: Roster, clock: FakeClock
    ) -> None:
        slack.fail("users.info", "internal_error")
        g = gate(api, roster, clock)
        refusal(g, Actor(ALICE, TEAM))
        assert g.check(Actor(ALICE, TEAM)).user_id == ALICE

    def test_roster_changes_apply_at_once_despite_the_cache(self, api: SlackApi, clock: FakeClock) -> None:
        current = {"roster": roster_with()}
        g = IdentityGate(api, lambda: current["roster"], clock)
        g.check(Actor(ALICE, TEAM))
        current["roster"] = roster_with(
            people={ALICE: None},
            groups={"payments-devs": ["U0000000BOB"]},
        )
        assert refusal(g, Actor(ALICE, TEAM)) == wording.NOT_IN_ROSTER
