"""The PagerDuty and Jira settings, and ``connect``: which adapters a process gets from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.integrations.connect import connect
from bot.integrations.jira import Jira
from bot.integrations.pagerduty import PagerDuty
from bot.ports import LookupFailed
from bot.settings import Settings, SettingsError, load_settings, settings_problems
from bot.standins.jira import JiraDouble
from bot.standins.pagerduty import PagerDutyDouble

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s" * 20, "BREAKGLASS_SIGNING_KEY": "k" * 40}
PD_TOKEN = "SECRETPAGERDUTYTOKEN"
JIRA_TOKEN = "SECRETJIRATOKEN"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        monkeypatch.delenv(str(field.validation_alias), raising=False)


def test_unset_means_no_adapters_and_the_contract_default_url() -> None:
    settings = load_settings(BASE)
    assert settings.pagerduty_api_url == "https://api.pagerduty.com"
    integrations = connect(settings)
    assert (integrations.on_call, integrations.pager, integrations.tickets) == (None, None, None)


def test_a_pagerduty_token_gives_on_call_pager_and_incident_tickets() -> None:
    integrations = connect(load_settings({**BASE, "BREAKGLASS_PAGERDUTY_TOKEN": PD_TOKEN}))
    assert isinstance(integrations.on_call, PagerDuty)
    assert integrations.pager is integrations.on_call
    assert integrations.tickets is not None
    with pytest.raises(
        LookupFailed, match=r"^Jira is not configured \(BREAKGLASS_JIRA_URL and BREAKGLASS_JIRA_TOKEN are unset\)\.$"
    ):
        integrations.tickets.jira_issue("INC-1")


def test_jira_alone_gives_tickets_and_says_pagerduty_is_not_configured() -> None:
    integrations = connect(
        load_settings(
            {**BASE, "BREAKGLASS_JIRA_URL": "https://example.atlassian.net/", "BREAKGLASS_JIRA_TOKEN": JIRA_TOKEN}
        )
    )
    assert integrations.on_call is None
    assert integrations.pager is None
    assert isinstance(integrations.jira, Jira)
    assert integrations.jira.url == "https://example.atlassian.net"
    assert integrations.tickets is not None
    with pytest.raises(LookupFailed, match=r"^PagerDuty is not configured"):
        integrations.tickets.pagerduty_incident("1")


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_connected_adapters_reach_the_services(deployment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PagerDutyDouble(token=PD_TOKEN) as pagerduty, JiraDouble(deployment=deployment, token=JIRA_TOKEN) as jira:  # type: ignore[arg-type]
        for name, value in pagerduty.trust_environ.items():
            monkeypatch.setenv(name, value)
        pagerduty.add_service("Payments", "PPOLICY1", id="PSERVICE")
        incident = pagerduty.add_incident("Payments down", service_id="PSERVICE")
        jira.add_issue("INC-1", "Payments down", status="Open")
        environ = {
            **BASE,
            "BREAKGLASS_PAGERDUTY_TOKEN": PD_TOKEN,
            "BREAKGLASS_PAGERDUTY_API_URL": pagerduty.base_url,
            "BREAKGLASS_JIRA_URL": jira.base_url,
            "BREAKGLASS_JIRA_TOKEN": JIRA_TOKEN,
            **({"BREAKGLASS_JIRA_USER": jira.user} if deployment == "Cloud" else {}),
        }
        integrations = connect(load_settings(environ))
        try:
            assert integrations.tickets is not None
            issue = integrations.tickets.jira_issue("INC-1")
            page = integrations.tickets.pagerduty_incident(str(incident.number))
            assert issue is not None
            assert issue.status == "Open"
            assert page is not None
            assert page.status == "triggered"
        finally:
            integrations.close()


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        ({"BREAKGLASS_PAGERDUTY_TOKEN": " "}, "BREAKGLASS_PAGERDUTY_TOKEN: is set but empty"),
        (
            {"BREAKGLASS_PAGERDUTY_API_URL": "http://api.pagerduty.com"},
            "BREAKGLASS_PAGERDUTY_API_URL: must be an https:// URL",
        ),
        (
            {"BREAKGLASS_PAGERDUTY_API_URL": "https://u:p@api.pagerduty.com"},
            "BREAKGLASS_PAGERDUTY_API_URL: must be a base URL with no query, fragment or credentials in it",
        ),
        (
            {"BREAKGLASS_PAGERDUTY_FROM": "bot@example.com"},
            "BREAKGLASS_PAGERDUTY_TOKEN: is required with BREAKGLASS_PAGERDUTY_FROM",
        ),
        (
            {"BREAKGLASS_PAGERDUTY_TOKEN": PD_TOKEN, "BREAKGLASS_PAGERDUTY_FROM": "a bot"},
            "BREAKGLASS_PAGERDUTY_FROM: must be the email address of a PagerDuty user",
        ),
        (
            {"BREAKGLASS_JIRA_URL": "https://example.atlassian.net"},
            "BREAKGLASS_JIRA_TOKEN: is required with BREAKGLASS_JIRA_URL",
        ),
        (
            {"BREAKGLASS_JIRA_TOKEN": JIRA_TOKEN},
            "BREAKGLASS_JIRA_URL: is required with BREAKGLASS_JIRA_TOKEN or BREAKGLASS_JIRA_USER",
        ),
        (
            {"BREAKGLASS_JIRA_URL": "http://jira.internal", "BREAKGLASS_JIRA_TOKEN": JIRA_TOKEN},
            "BREAKGLASS_JIRA_URL: must be an https:// URL",
        ),
        (
            {"BREAKGLASS_JIRA_URL": "https://jira.internal", "BREAKGLASS_JIRA_TOKEN": ""},
            "BREAKGLASS_JIRA_TOKEN: is set but empty",
        ),
    ],
)
def test_a_bad_integration_setting_is_one_line_naming_it(environ: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({**BASE, **environ})
    assert str(refused.value) == line
    assert settings_problems({**BASE, **environ}) == [line]
    assert PD_TOKEN not in line
    assert JIRA_TOKEN not in line


def test_the_tokens_never_appear_in_repr() -> None:
    settings = load_settings(
        {
            **BASE,
            "BREAKGLASS_PAGERDUTY_TOKEN": PD_TOKEN,
            "BREAKGLASS_JIRA_URL": "https://example.atlassian.net",
            "BREAKGLASS_JIRA_USER": "bot@example.com",
            "BREAKGLASS_JIRA_TOKEN": JIRA_TOKEN,
        }
    )
    assert PD_TOKEN not in repr(settings)
    assert JIRA_TOKEN not in repr(settings)
    assert PD_TOKEN not in str(settings)
    assert JIRA_TOKEN not in str(settings)
    assert settings.pagerduty_token == SecretStr(PD_TOKEN)


def test_a_ca_bundle_that_cannot_be_read_fails_each_lookup_not_the_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-bundle.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", missing)
    integrations = connect(
        load_settings(
            {
                **BASE,
                "BREAKGLASS_PAGERDUTY_TOKEN": PD_TOKEN,
                "BREAKGLASS_JIRA_URL": "https://example.atlassian.net",
                "BREAKGLASS_JIRA_TOKEN": JIRA_TOKEN,
            }
        )
    )
    assert integrations.tickets is not None
    with pytest.raises(LookupFailed) as failure:
        integrations.tickets.pagerduty_incident("1")
    assert str(failure.value) == (
        f"PagerDuty cannot be reached safely: REQUESTS_CA_BUNDLE names {missing}, which is not a readable file."
    )
    with pytest.raises(LookupFailed, match=r"^Jira cannot be reached safely: REQUESTS_CA_BUNDLE names "):
        integrations.tickets.jira_issue("INC-1")


def test_a_ca_bundle_holding_no_certificate_trusts_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with PagerDutyDouble(token=PD_TOKEN) as pagerduty:
        garbage = tmp_path / "garbage.pem"
        garbage.write_text("not a certificate\n")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(garbage))
        integrations = connect(
            load_settings(
                {**BASE, "BREAKGLASS_PAGERDUTY_TOKEN": PD_TOKEN, "BREAKGLASS_PAGERDUTY_API_URL": pagerduty.base_url}
            )
        )
        assert integrations.tickets is not None
        with pytest.raises(LookupFailed, match="TLS certificate is not trusted"):
            integrations.tickets.pagerduty_incident("1")
        assert pagerduty.calls == []
