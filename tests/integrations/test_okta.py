"""Okta groups (``{okta_group: 00g…}``) through the official SDK, over HTTPS to the Okta stand-in:
pagination, only active users, members matched to Slack people by email, removal within the cache
bound, and every failure mode keeping the last read for the bounded age, then refusing with one
sentence naming the group and the cause — never widening."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

import bot.integrations.okta as okta_adapter
from bot.domain.ids import SlackUserId
from bot.integrations.okta import OktaGroups
from bot.ports import LookupFailed
from bot.roster_source import FixedRoster
from bot.slack.client import SlackApi
from bot.slack.usergroups import UserGroupRoster
from bot.standins.okta import OktaDouble
from bot.standins.slack_api import DEFAULT_BOT_TOKEN, SlackApiDouble
from bot.standins.stack import manifest_scopes
from tests.conftest import FakeClock
from tests.fakes import roster_with

GRACE, HENRY, IVAN = SlackUserId("U00000GRACE"), SlackUserId("U00000HENRY"), SlackUserId("U000000IVAN")
PLATFORM = "00g1platform0AB"


@pytest.fixture
def okta(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[OktaDouble]:
    double = OktaDouble(clock=lambda: clock().timestamp()).start()
    # Trusted the way the contract says a private CA is: the standard bundle variables.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", double.ca_file)
    monkeypatch.setenv("SSL_CERT_FILE", double.ca_file)
    double.set_group(PLATFORM, ["grace@example.com", "henry@example.com"])
    yield double
    double.stop()


@pytest.fixture
def adapter(okta: OktaDouble, clock: FakeClock) -> Iterator[OktaGroups]:
    groups = OktaGroups(okta.url, SecretStr(okta.token), clock=lambda: clock().timestamp())
    yield groups
    groups.close()


@pytest.fixture
def slack() -> Iterator[SlackApiDouble]:
    double = SlackApiDouble(scopes=manifest_scopes()[0]).start()
    double.add_user(GRACE, name="grace", email="grace@example.com")
    double.add_user(HENRY, name="henry", email="Henry@Example.com")
    double.add_user(IVAN, name="ivan", email="ivan@example.com")
    yield double
    double.stop()


@pytest.fixture
def resolved(slack: SlackApiDouble, adapter: OktaGroups, clock: FakeClock) -> UserGroupRoster:
    roster = roster_with(
        identity={"kube_user_from": "email", "group_cache_max_age": "10m"},
        groups={"platform": {"okta_group": PLATFORM}},
    )
    api = SlackApi.connect(SecretStr(DEFAULT_BOT_TOKEN), slack.api_url, sleep=lambda _: None)
    return UserGroupRoster(FixedRoster(roster), api, clock, okta=adapter)


# --- the adapter ----------------------------------------------------------------------------------


def test_every_page_is_read_by_following_the_link_header(
    adapter: OktaGroups, okta: OktaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    emails = [f"person{i:02d}@example.com" for i in range(7)]
    okta.set_group("00g1big00000AB", emails)
    monkeypatch.setattr(okta_adapter, "PAGE", 3)
    assert sorted(adapter.member_emails("00g1big00000AB")) == emails
    pages = [r for r in okta.requests if r["path"] == "/api/v1/groups/00g1big00000AB/users"]
    assert [r.get("limit") for r in pages] == ["3", "3", "3"]
    assert "after" not in pages[0]
    assert all(r.get("after") for r in pages[1:])


def test_only_active_users_count(adapter: OktaGroups, okta: OktaDouble) -> None:
    for status in ("SUSPENDED", "DEPROVISIONED", "LOCKED_OUT", "STAGED"):
        okta.set_status("henry@example.com", status)
        assert adapter.member_emails(PLATFORM) == ["grace@example.com"], status
    okta.set_status("henry@example.com", "ACTIVE")
    assert sorted(adapter.member_emails(PLATFORM)) == ["grace@example.com", "henry@example.com"]


def test_a_refused_token_is_a_lookup_failure_naming_the_setting(okta: OktaDouble, clock: FakeClock) -> None:
    wrong = OktaGroups(okta.url, SecretStr("00not-the-token"), clock=lambda: clock().timestamp())
    try:
        with pytest.raises(LookupFailed, match=r"^Okta refused BREAKGLASS_OKTA_TOKEN, 401 E0000011$"):
            wrong.member_emails(PLATFORM)
    finally:
        wrong.close()


def test_an_unknown_group_is_a_lookup_failure(adapter: OktaGroups) -> None:
    with pytest.raises(LookupFailed, match=r"^Okta has no such group, 404 E0000007$"):
        adapter.member_emails("00g1nosuchgroup")


def test_a_429_is_honoured_until_its_reset_without_asking_again(
    adapter: OktaGroups, okta: OktaDouble, clock: FakeClock
) -> None:
    okta.rate_limit(reset_in=30)
    with pytest.raises(LookupFailed, match=r"^Okta is rate-limiting this token until 09:00:30 UTC, 429 E0000047$"):
        adapter.member_emails(PLATFORM)
    asked = len(okta.requests)
    clock.advance(seconds=29)
    with pytest.raises(LookupFailed, match="rate-limiting"):
        adapter.member_emails(PLATFORM)
    assert len(okta.requests) == asked  # nothing sent before the reset
    clock.advance(seconds=2)
    assert len(adapter.member_emails(PLATFORM)) == 2


def test_a_server_error_is_a_lookup_failure(adapter: OktaGroups, okta: OktaDouble) -> None:
    okta.fail(status=503)
    with pytest.raises(LookupFailed, match=r"^Okta answered 503 E0000009$"):
        adapter.member_emails(PLATFORM)


def test_an_untrusted_certificate_is_never_read(
    okta: OktaDouble, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("SSL_CERT_FILE")
    untrusting = OktaGroups(okta.url, SecretStr(okta.token), clock=lambda: clock().timestamp())
    try:
        with pytest.raises(LookupFailed, match=r"^Okta could not be reached"):
            untrusting.member_emails(PLATFORM)
    finally:
        untrusting.close()
    assert okta.requests == []


def test_an_org_that_does_not_answer_is_a_lookup_failure(clock: FakeClock) -> None:
    gone = OktaDouble().start()
    url = gone.url
    gone.stop()
    closed = OktaGroups(url, SecretStr("00token"), clock=lambda: clock().timestamp())
    try:
        with pytest.raises(LookupFailed, match=r"^Okta could not be reached"):
            closed.member_emails(PLATFORM)
    finally:
        closed.close()


def test_the_token_never_reaches_the_logs(okta: OktaDouble, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    groups = OktaGroups(okta.url, SecretStr(okta.token), clock=lambda: clock().timestamp())
    try:
        groups.member_emails(PLATFORM)
        okta.fail(status=500)
        with pytest.raises(LookupFailed):
            groups.member_emails(PLATFORM)
    finally:
        groups.close()
    assert okta.token not in caplog.text


def test_calls_from_many_threads_share_the_one_loop(adapter: OktaGroups) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: sorted(adapter.member_emails(PLATFORM)), range(16)))
    assert answers == [["grace@example.com", "henry@example.com"]] * 16


# --- the roster, resolved -------------------------------------------------------------------------


def test_okta_members_are_matched_to_slack_people_by_email(resolved: UserGroupRoster) -> None:
    roster = resolved()
    assert set(roster.groups["platform"]) == {GRACE, HENRY}  # Henry's Slack email differs in case only
    assert roster.people[GRACE].kube_user == "grace@example.com"
    assert not roster.group_problems


def test_the_rosters_email_mapping_wins_over_slack(
    slack: SlackApiDouble, adapter: OktaGroups, okta: OktaDouble, clock: FakeClock
) -> None:
    okta.set_group(PLATFORM, ["ivan.i@corp.example.com"])  # Ivan's Okta address is not his Slack one
    roster = roster_with(
        groups={"platform": {"okta_group": PLATFORM}},
        people={IVAN: {"kube_user": "ivan", "email": "ivan.i@corp.example.com"}},
    )
    api = SlackApi.connect(SecretStr(DEFAULT_BOT_TOKEN), slack.api_url, sleep=lambda _: None)
    assert UserGroupRoster(FixedRoster(roster), api, clock, okta=adapter)().groups["platform"] == (IVAN,)


def test_a_member_without_a_slack_account_or_with_a_deactivated_one_is_left_out(
    resolved: UserGroupRoster, slack: SlackApiDouble, okta: OktaDouble
) -> None:
    okta.set_group(PLATFORM, ["grace@example.com", "henry@example.com", "nobody@example.com"])
    slack.add_user(HENRY, name="henry", email="henry@example.com", deleted=True)
    assert resolved().groups["platform"] == (GRACE,)


def test_removal_from_the_okta_group_takes_effect_within_the_cache_bound(
    resolved: UserGroupRoster, okta: OktaDouble, clock: FakeClock
) -> None:
    assert HENRY in resolved().members(["platform"])
    okta.set_group(PLATFORM, ["grace@example.com"])
    clock.advance(seconds=59)
    assert HENRY in resolved().members(["platform"])  # read less than a minute ago
    clock.advance(seconds=2)
    assert resolved().members(["platform"]) == {GRACE}


def test_a_suspended_okta_user_drops_out_within_the_cache_bound(
    resolved: UserGroupRoster, okta: OktaDouble, clock: FakeClock
) -> None:
    assert HENRY in resolved().members(["platform"])
    okta.set_status("henry@example.com", "SUSPENDED")
    clock.advance(seconds=61)
    assert resolved().members(["platform"]) == {GRACE}


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("rate_limit", "Okta is rate-limiting this token until 09:10:31 UTC, 429 E0000047"),
        ("server_error", "Okta answered 500 E0000009"),
        ("deleted_group", "Okta has no such group, 404 E0000007"),
        ("revoked_token", "Okta refused BREAKGLASS_OKTA_TOKEN, 401 E0000011"),
    ],
)
def test_a_failed_read_keeps_the_last_for_the_bounded_age_then_names_the_group_and_cause(
    resolved: UserGroupRoster, okta: OktaDouble, clock: FakeClock, fault: str, cause: str
) -> None:
    assert resolved().members(["platform"]) == {GRACE, HENRY}
    clock.advance(minutes=5)
    if fault == "rate_limit":
        okta.rate_limit(times=1000, reset_in=30)
    elif fault == "server_error":
        okta.fail(times=1000, status=500)
    elif fault == "deleted_group":
        okta.set_group(PLATFORM, None)
    else:
        okta.token = "00rotated-token"
    assert resolved().members(["platform"]) == {GRACE, HENRY}  # the last read, five minutes old
    assert not resolved().group_problems
    clock.advance(minutes=5, seconds=1)
    roster = resolved()
    assert roster.members(["platform"]) == frozenset()
    assert roster.group_problems["platform"] == (
        f"The group platform could not be read from the Okta group {PLATFORM} ({cause}), so nobody in it may act now."
    )


def test_a_failed_read_never_widens_the_group(resolved: UserGroupRoster, okta: OktaDouble, clock: FakeClock) -> None:
    okta.set_group(PLATFORM, ["grace@example.com"])
    assert resolved().members(["platform"]) == {GRACE}
    okta.set_group(PLATFORM, ["grace@example.com", "henry@example.com", "ivan@example.com"])
    okta.fail(times=1000, status=502)
    for _ in range(12):
        clock.advance(minutes=1)
        assert resolved().members(["platform"]) <= {GRACE}


def test_a_failed_slack_match_fails_the_read_rather_than_shrinking_it_silently(
    resolved: UserGroupRoster, slack: SlackApiDouble, clock: FakeClock
) -> None:
    assert resolved().members(["platform"]) == {GRACE, HENRY}
    clock.advance(minutes=2)
    slack.fail("users.lookupByEmail", "internal_error", times=1000)
    assert resolved().members(["platform"]) == {GRACE, HENRY}  # the last good read, not a partial one


def test_an_okta_group_without_okta_settings_is_nobody_and_says_why(slack: SlackApiDouble, clock: FakeClock) -> None:
    roster = roster_with(groups={"platform": {"okta_group": PLATFORM}})
    api = SlackApi.connect(SecretStr(DEFAULT_BOT_TOKEN), slack.api_url, sleep=lambda _: None)
    resolved = UserGroupRoster(FixedRoster(roster), api, clock, okta=None)()
    assert resolved.groups["platform"] == ()
    assert resolved.group_problems["platform"] == (
        f"The group platform could not be read from the Okta group {PLATFORM} "
        "(BREAKGLASS_OKTA_URL and BREAKGLASS_OKTA_TOKEN are not set), so nobody in it may act now."
    )


# --- roster check (offline) -----------------------------------------------------------------------


def test_roster_check_accepts_an_okta_group_without_network() -> None:
    roster = roster_with(groups={"platform": {"okta_group": PLATFORM}})
    assert str(roster.group_sources["platform"]) == f"Okta group {PLATFORM}"
    assert roster.groups["platform"] == ()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"okta_group": "g1platform"}, "groups.platform.okta_group: 'g1platform' is not an Okta group id (00g…)"),
        ({"okta_group": PLATFORM, "slack_usergroup": "S0PAYDEVS"},
         "groups.platform: needs exactly one of slack_usergroup: S… or okta_group: 00g…"),
        ({"okta_grop": PLATFORM}, "groups.platform.okta_grop: unknown key 'okta_grop'; did you mean 'okta_group'?"),
    ],
)  # fmt: skip
def test_roster_check_names_a_bad_okta_group(body: dict[str, str], problem: str) -> None:
    from bot.domain.roster import RosterError

    with pytest.raises(RosterError) as raised:
        roster_with(groups={"platform": body})
    assert problem in [f"{p.place}: {p.message}" for p in raised.value.problems]
