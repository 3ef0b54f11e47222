"""``doctor`` reads every Slack user group and Okta group now, fails one that cannot be read (naming
the cause and the fix), and reports each role whose approver groups hold fewer people than its
``approvals``."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.doctor import Checklist, _check_groups
from bot.integrations.okta import OktaGroups
from bot.settings import Settings
from bot.standins.okta import OktaDouble
from bot.standins.slack_api import DEFAULT_BOT_TOKEN, SlackApiDouble
from bot.standins.stack import manifest_scopes
from tests.conftest import TEST_SIGNING_KEY
from tests.fakes import BOB, CAROL, roster_with

PLATFORM = "00g1platform0AB"


@pytest.fixture
def slack() -> Iterator[SlackApiDouble]:
    double = SlackApiDouble(scopes=manifest_scopes()[0]).start()
    double.add_user(BOB, name="bob", email="bob@example.com")
    double.add_user(CAROL, name="carol", email="carol@example.com")
    double.set_usergroup("S0SRE", [BOB, CAROL])
    yield double
    double.stop()


@pytest.fixture
def okta(monkeypatch: pytest.MonkeyPatch) -> Iterator[OktaDouble]:
    double = OktaDouble().start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", double.ca_file)
    monkeypatch.setenv("SSL_CERT_FILE", double.ca_file)
    yield double
    double.stop()


def _doctor(slack: SlackApiDouble, okta: OktaDouble, **roster: object) -> tuple[str, Checklist]:
    settings = Settings.model_validate(
        {"SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN, "BREAKGLASS_SLACK_API_URL": slack.api_url,
         "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY}
    )  # fmt: skip
    out = io.StringIO()
    checks = Checklist(out)
    adapter = OktaGroups(okta.url, SecretStr(okta.token))
    try:
        _check_groups(checks, settings, roster_with(**roster), okta=adapter)  # type: ignore[arg-type]
    finally:
        adapter.close()
    return out.getvalue(), checks


def test_groups_that_read_and_hold_enough_people_pass(slack: SlackApiDouble, okta: OktaDouble) -> None:
    okta.set_group(PLATFORM, ["bob@example.com", "carol@example.com"])
    text, checks = _doctor(
        slack, okta, groups={"sre": {"slack_usergroup": "S0SRE"}, "platform": {"okta_group": PLATFORM}}
    )
    assert "✓ sre (Slack user group S0SRE): 2 people" in text
    assert "✓ platform (Okta group 00g1platform0AB): 2 people" in text
    assert checks.counts["fail"] == 0


def test_a_group_short_of_a_roles_approvals_fails_with_its_fix(slack: SlackApiDouble, okta: OktaDouble) -> None:
    slack.set_usergroup("S0SRE", [BOB])
    text, checks = _doctor(slack, okta, groups={"sre": {"slack_usergroup": "S0SRE"}})
    assert "✗ admin needs 2 approvals but its approver groups (sre) hold 1 person now" in text, text
    assert "fix: add people to sre, or lower roles.admin.approvals" in text
    assert checks.counts["fail"] == 2  # admin and cluster-admin


def test_an_unreadable_okta_group_fails_naming_the_cause(slack: SlackApiDouble, okta: OktaDouble) -> None:
    text, checks = _doctor(slack, okta, groups={"platform": {"okta_group": PLATFORM}},
                           roles={"view": {"approvers": ["sre", "platform"]}})  # fmt: skip
    assert "✗ platform (Okta group 00g1platform0AB) could not be read: Okta has no such group, 404 E0000007" in text
    assert checks.counts["fail"] == 1
