"""``breakglass doctor`` for automated approvals: PagerDuty's and Jira's tokens, and every schedule,
escalation policy, service and project the roster names, against the stand-ins over HTTPS."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.doctor import Checklist, _check_outside
from bot.domain.roster import Roster, load_roster_file
from bot.integrations.http import Patience
from bot.settings import load_settings
from bot.standins import jira as jira_standin
from bot.standins import pagerduty as pagerduty_standin
from tests.conftest import TEST_SIGNING_KEY
from tests.fakes import example_roster

ROOT = Path(__file__).resolve().parents[2]
AUTOMATED = ROOT / "deploy" / "roster.automated.example.yaml"  # names P1ABCDE, PPOLICY1, PSERVICE1, INC
BASE = {
    "SLACK_BOT_TOKEN": "xoxb-fake",
    "SLACK_SIGNING_SECRET": "fake-secret",
    "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY,
}


@pytest.fixture
def services(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[pagerduty_standin.PagerDutyDouble, jira_standin.JiraDouble]]:
    with pagerduty_standin.PagerDutyDouble() as pd, jira_standin.JiraDouble() as jira:
        for name, value in pd.trust_environ.items():
            monkeypatch.setenv(name, value)
        pd.add_user("breakglass-bot@example.com")
        pd.add_schedule("Payments primary", id="P1ABCDE")
        pd.add_escalation_policy("Payments", id="PPOLICY1")
        pd.add_service("Breakglass approvals", "PPOLICY1", id="PSERVICE1")
        jira.add_project("INC", "Incidents")
        yield pd, jira


def environ(
    pd: pagerduty_standin.PagerDutyDouble, jira: jira_standin.JiraDouble, **changes: str | None
) -> dict[str, str]:
    env = {
        **BASE,
        "BREAKGLASS_PAGERDUTY_TOKEN": pagerduty_standin.TOKEN,
        "BREAKGLASS_PAGERDUTY_API_URL": pd.base_url,
        "BREAKGLASS_PAGERDUTY_FROM": "breakglass-bot@example.com",
        "BREAKGLASS_JIRA_URL": jira.base_url,
        "BREAKGLASS_JIRA_USER": jira_standin.USER,
        "BREAKGLASS_JIRA_TOKEN": jira_standin.TOKEN,
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def doctor(env: dict[str, str], roster: Roster | None = None) -> tuple[Checklist, list[str]]:
    out = io.StringIO()
    checks = Checklist(out)  # no redactor secrets: the lines themselves must hold no token
    _check_outside(
        checks,
        load_settings(env),
        roster or load_roster_file(str(AUTOMATED)),
        Patience(timeout=2.0, sleep=lambda _: None),
    )
    return checks, out.getvalue().splitlines()


def test_every_named_object_and_both_tokens_pass(
    services: tuple[pagerduty_standin.PagerDutyDouble, jira_standin.JiraDouble],
) -> None:
    checks, lines = doctor(environ(*services))
    assert lines == [
        "",
        "PagerDuty",
        f"  ✓ PagerDuty ({services[0].base_url}) accepts BREAKGLASS_PAGERDUTY_TOKEN",
        "  ✓ schedule P1ABCDE exists (Payments primary)",
        "  ✓ escalation policy PPOLICY1 exists (Payments)",
        "  ✓ service PSERVICE1 exists (Breakglass approvals)",
        "  ✓ escalation incidents are opened as breakglass-bot@example.com",
        "",
        "Jira",
        f"  ✓ Jira ({services[1].base_url}) accepts the credentials",
        "  ✓ Jira project INC exists (Incidents)",
    ]
    assert checks.counts["fail"] == 0


def test_a_missing_object_is_named_with_the_roster_place_to_correct(
    services: tuple[pagerduty_standin.PagerDutyDouble, jira_standin.JiraDouble],
) -> None:
    pd, jira = services
    del pd.schedules["P1ABCDE"]
    del pd.services["PSERVICE1"]
    del jira.projects["INC"]
    checks, lines = doctor(environ(pd, jira))
    text = "\n".join(lines)
    assert "  ✗ schedule P1ABCDE does not exist in PagerDuty (or the token cannot see it)" in lines
    assert "correct auto_approve[].pagerduty_oncall.schedules in the roster" in text
    assert "  ✗ service PSERVICE1 does not exist in PagerDuty (or the token cannot see it)" in lines
    assert "correct escalate_service in the roster" in text
    assert "  ✓ escalation policy PPOLICY1 exists (Payments)" in lines
    assert "  ✗ Jira project INC does not exist (or the account cannot browse it)" in lines
    assert "correct ticket.jira.projects in the roster" in text
    assert checks.counts["fail"] == 3


def test_rejected_tokens_fail_without_showing_them(
    services: tuple[pagerduty_standin.PagerDutyDouble, jira_standin.JiraDouble],
) -> None:
    pd, jira = services
    env = environ(pd, jira, BREAKGLASS_PAGERDUTY_TOKEN="WRONGPAGERDUTYTOKEN", BREAKGLASS_JIRA_TOKEN="WRONGJIRATOKEN")
    checks, lines = doctor(env)
    text = "\n".join(lines)
    assert "  ✗ PagerDuty rejected breakglass's credentials (401 Unauthorized) while checking the API token." in lines
    assert "  ✗ Jira rejected breakglass's credentials (401 Unauthorized) while checking the credentials." in lines
    assert "schedule" not in text  # nothing more is asked with a token that does not work
    assert "WRONGPAGERDUTYTOKEN" not in text
    assert "WRONGJIRATOKEN" not in text
    assert checks.counts["fail"] == 2
    assert text.count("fix: ") == 2


def test_a_roster_naming_services_that_are_not_configured_fails_with_the_settings_to_set() -> None:
    checks, lines = doctor(dict(BASE))
    text = "\n".join(lines)
    assert "BREAKGLASS_PAGERDUTY_TOKEN is not set" in text
    assert "fix: set BREAKGLASS_PAGERDUTY_TOKEN to a PagerDuty REST API key" in text
    assert "BREAKGLASS_JIRA_URL and BREAKGLASS_JIRA_TOKEN are not set" in text
    assert checks.counts["fail"] == 2


def test_escalation_with_an_account_token_and_no_sender_says_to_set_one(
    services: tuple[pagerduty_standin.PagerDutyDouble, jira_standin.JiraDouble],
) -> None:
    checks, lines = doctor(environ(*services, BREAKGLASS_PAGERDUTY_FROM=None))
    assert (
        "  ✗ PagerDuty needs BREAKGLASS_PAGERDUTY_FROM (a user's email) to open incidents with an account token."
        in lines
    )
    assert any("fix: set BREAKGLASS_PAGERDUTY_FROM" in line for line in lines)
    assert checks.counts["fail"] == 1


def test_a_service_that_cannot_be_reached_is_a_failure_not_a_hang(
    services: tuple[pagerduty_standin.PagerDutyDouble, jira_standin.JiraDouble],
) -> None:
    pd, jira = services
    pd.down()
    jira.slow(5.0)
    checks, lines = doctor(environ(pd, jira))
    assert "  ✗ PagerDuty could not be reached (connection refused)." in lines
    assert "  ✗ Jira did not answer within 2 seconds." in lines
    assert checks.counts["fail"] == 2


def test_a_roster_without_automation_and_no_settings_prints_nothing() -> None:
    checks, lines = doctor(dict(BASE), example_roster())
    assert lines == []
    assert checks.counts == {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
