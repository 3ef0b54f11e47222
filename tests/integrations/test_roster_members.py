"""``breakglass roster members [GROUP]``: who is in each group now and where that came from — static
groups without settings or network, Slack user groups and Okta groups read now over HTTP(S)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.standins.okta import OktaDouble
from bot.standins.slack_api import DEFAULT_BOT_TOKEN, SlackApiDouble
from bot.standins.stack import manifest_scopes
from tests.conftest import TEST_SIGNING_KEY
from tests.fakes import ALICE, BOB, CAROL, example_roster_data

ERIN = "U00000ERIN"
PLATFORM = "00g1platform0AB"


def _write(tmp_path: Path, **groups: object) -> Path:
    data = example_roster_data()
    data["groups"].update(groups)
    data["identity"] = {"kube_user_from": "email"}
    path = tmp_path / "roster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SLACK_BOT_TOKEN", "BREAKGLASS_OKTA_URL", "BREAKGLASS_OKTA_TOKEN", "BREAKGLASS_ROSTER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_static_groups_need_no_settings_and_no_network(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["roster", "members", "--roster", str(_write(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "sre (static, in the roster): 2 people" in out
    assert f"  {BOB}  bob@example.com" in out
    assert f"  {CAROL}  carol@example.com" in out


def test_one_group_or_an_unknown_one(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_write(tmp_path))
    assert main(["roster", "members", "payments-devs", "--roster", path]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["payments-devs (static, in the roster): 1 person", f"  {ALICE}  alice@example.com"]
    assert main(["roster", "members", "sre2", "--roster", path]) == 2
    assert "has no group 'sre2'" in capsys.readouterr().err


@pytest.fixture
def outside(clean_env: pytest.MonkeyPatch) -> Iterator[tuple[SlackApiDouble, OktaDouble]]:
    slack = SlackApiDouble(scopes=manifest_scopes()[0]).start()
    okta = OktaDouble().start()
    slack.add_user(ERIN, name="erin", email="erin@example.com")
    slack.add_user(BOB, name="bob", email="bob@example.com")
    slack.set_usergroup("S0PAYDEVS", [ERIN])
    okta.set_group(PLATFORM, ["bob@example.com", "someone.else@example.com"])
    for name, value in {
        "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN, "BREAKGLASS_SLACK_API_URL": slack.api_url,
        "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY, "BREAKGLASS_OKTA_URL": okta.url,
        "BREAKGLASS_OKTA_TOKEN": okta.token, "REQUESTS_CA_BUNDLE": okta.ca_file, "SSL_CERT_FILE": okta.ca_file,
    }.items():  # fmt: skip
        clean_env.setenv(name, value)
    yield slack, okta
    okta.stop()
    slack.stop()


def test_slack_and_okta_groups_are_read_now_and_say_where_from(
    tmp_path: Path, outside: tuple[SlackApiDouble, OktaDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, **{"payments-devs": {"slack_usergroup": "S0PAYDEVS"}, "platform": {"okta_group": PLATFORM}})
    assert main(["roster", "members", "--roster", str(path)]) == 0
    out = capsys.readouterr().out
    assert "payments-devs (Slack user group S0PAYDEVS, read " in out
    assert f"  {ERIN}  erin@example.com" in out  # known only through the user group: kube_user from email
    assert "platform (Okta group 00g1platform0AB, read " in out
    assert "UTC): 1 person" in out  # someone.else has no Slack account
    assert f"  {BOB}  bob@example.com" in out


def test_a_group_that_cannot_be_read_says_why_and_fails(
    tmp_path: Path, outside: tuple[SlackApiDouble, OktaDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    _, okta = outside
    okta.set_group(PLATFORM, None)
    path = _write(tmp_path, platform={"okta_group": PLATFORM})
    assert main(["roster", "members", "platform", "--roster", str(path)]) == 1
    out = capsys.readouterr().out
    assert "platform (Okta group 00g1platform0AB, never read): 0 people" in out
    assert "  cannot be read now: Okta has no such group, 404 E0000007" in out
