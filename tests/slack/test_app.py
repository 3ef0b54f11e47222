"""The app factory fails closed at start, and the manifest asks Slack for exactly what the app uses."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import SlackStartupError, create_app
from bot.settings import Settings
from bot.slack.client import REQUIRED_SCOPES
from bot.standins.slack_api import SlackApiDouble
from bot.wiring import Core
from tests.conftest import ROOT, TEST_SIGNING_KEY, FakeClock
from tests.fakes import ALICE, roster_with
from tests.slack.conftest import ADMIN_TOKEN, INCIDENTS, SIGNING_SECRET, make_core
from tests.slack.harness import SlackAppHarness

MANIFEST = ROOT / "deploy" / "slack" / "manifest.yaml"
EVENTS_URL = "https://breakglass.example.com/slack/events"


def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(Path(MANIFEST).read_text(encoding="utf-8")))


def test_manifest_bot_scopes_are_exactly_the_required_scopes() -> None:
    assert sorted(manifest()["oauth_config"]["scopes"]["bot"]) == sorted(REQUIRED_SCOPES)


def test_manifest_routes_the_command_interactivity_and_home_events_to_the_web_process() -> None:
    m = manifest()
    (command,) = m["features"]["slash_commands"]
    assert (command["command"], command["url"]) == ("/breakglass", EVENTS_URL)
    assert m["settings"]["interactivity"] == {"is_enabled": True, "request_url": EVENTS_URL}
    assert m["settings"]["event_subscriptions"] == {"request_url": EVENTS_URL, "bot_events": ["app_home_opened"]}
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert m["settings"]["socket_mode_enabled"] is False


def settings_for(slack: SlackApiDouble, **overrides: str) -> Settings:
    values = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "BREAKGLASS_SLACK_API_URL": slack.api_url,
        "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY,
    }
    values.update(overrides)
    return Settings.model_validate({k: v for k, v in values.items() if v})


def test_a_bad_bot_token_stops_the_app_at_start_without_showing_it(slack: SlackApiDouble, core: Core) -> None:
    settings = settings_for(slack, SLACK_BOT_TOKEN="xoxb-not-a-real-token-123")
    with pytest.raises(SlackStartupError) as refused:
        create_app(settings, core)
    assert str(refused.value) == "SLACK_BOT_TOKEN: Slack refused it (invalid_auth)"
    assert "not-a-real-token" not in str(refused.value)


def test_a_token_of_another_workspace_stops_the_app_at_start(
    slack: SlackApiDouble, clock: FakeClock, fake_redis: Any
) -> None:
    settings = settings_for(slack)
    core = make_core(settings, roster_with(workspace={"team_id": "T0000OTHER"}), clock, fake_redis)
    with pytest.raises(SlackStartupError, match="belongs to workspace T0000000001, not the roster's T0000OTHER"):
        create_app(settings, core)


def test_an_unreachable_slack_stops_the_app_at_start(slack: SlackApiDouble, core: Core) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    settings = settings_for(slack, BREAKGLASS_SLACK_API_URL=f"http://127.0.0.1:{port}/api/")
    with pytest.raises(SlackStartupError, match="SLACK_BOT_TOKEN: could not be checked, Slack is unreachable"):
        create_app(settings, core)


def test_without_a_signing_secret_no_http_request_is_accepted(
    slack: SlackApiDouble, core: Core, clock: FakeClock
) -> None:
    settings = settings_for(slack, SLACK_SIGNING_SECRET="", SLACK_APP_TOKEN="xapp-1-socket-mode")
    harness = SlackAppHarness(settings, core, slack, clock)
    try:
        harness.sender.signing_secret = ""
        reply = harness.sender.slash_command(ALICE, "prod/payments admin 1h INC-4411 checkout pods crash-looping")
        assert reply.status == 401
        assert core.store.recent() == []
    finally:
        harness.close()


def test_slash_command_text_is_read_as_typed(harness: SlackAppHarness) -> None:
    harness.command(ALICE, "prod/payments admin 1h INC-1 latency &lt; 5ms &amp; errors &gt; 1%", channel=INCIDENTS)
    (request,) = harness.requests()
    assert request.reason == "INC-1 latency < 5ms & errors > 1%"
