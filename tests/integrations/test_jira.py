"""bot.integrations.jira against the Jira stand-in over HTTPS, as Cloud (email + API token, basic)
and as Data Center (a personal access token, bearer): issues, projects, and every way a lookup fails."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from bot.integrations.http import Patience
from bot.integrations.jira import Jira
from bot.ports import LookupFailed, Ticket
from bot.standins.jira import TOKEN, USER, JiraDouble


def adapter(double: JiraDouble, patience: Patience, token: str = TOKEN) -> Jira:
    # Cloud takes the account's email with the token; Data Center the token alone.
    user = USER if double.deployment == "Cloud" else None
    return Jira(double.base_url, SecretStr(token), user=user, patience=patience)


def test_an_issue_is_read_with_its_title_status_project_and_link(jira: JiraDouble, patience: Patience) -> None:
    jira.add_issue("INC-4411", "Payments API returns 502", status="In Progress")
    assert adapter(jira, patience).jira_issue("INC-4411") == Ticket(
        system="jira",
        key="INC-4411",
        title="Payments API returns 502",
        status="In Progress",
        url=f"{jira.base_url}/browse/INC-4411",
        project="INC",
    )
    (call,) = jira.calls_to("GET", "/rest/api/2/issue/INC-4411")
    assert call.query["fields"] == ["summary,status,project"]


def test_the_client_asks_server_info_once_when_first_used(jira: JiraDouble, patience: Patience) -> None:
    jira.add_issue("INC-1", "one")
    jira_adapter = adapter(jira, patience)
    assert jira.calls == []  # made on first use, not at start
    jira_adapter.jira_issue("INC-1")
    jira_adapter.jira_issue("INC-1")
    assert len(jira.calls_to("GET", "/rest/api/2/serverInfo")) == 1


def test_a_key_in_lower_case_is_read_as_the_issue(jira: JiraDouble, patience: Patience) -> None:
    jira.add_issue("INC-7", "seven")
    ticket = adapter(jira, patience).jira_issue(" inc-7 ")
    assert ticket is not None
    assert ticket.key == "INC-7"


def test_an_unknown_issue_is_none(jira: JiraDouble, patience: Patience) -> None:
    assert adapter(jira, patience).jira_issue("INC-404") is None
    assert len(jira.calls_to("GET", "/rest/api/2/issue/INC-404")) == 1


def test_a_key_not_shaped_like_one_never_reaches_the_api(jira: JiraDouble, patience: Patience) -> None:
    for key in ("../myself", "INC-1/comment", "INC", "1-INC", ""):
        assert adapter(jira, patience).jira_issue(key) is None
    assert jira.calls == []


def test_wrong_credentials_are_a_lookup_failure_naming_jira_and_401(jira: JiraDouble, patience: Patience) -> None:
    jira.add_issue("INC-1", "one")
    with pytest.raises(LookupFailed) as failure:
        adapter(jira, patience, token="not-the-token").jira_issue("INC-1")
    assert str(failure.value) == "Jira rejected breakglass's credentials (401 Unauthorized) while reading an issue."
    assert "not-the-token" not in str(failure.value)
    assert failure.value.__cause__ is None
    assert failure.value.__suppress_context__


def test_cloud_credentials_do_not_open_data_center(patience: Patience) -> None:
    with JiraDouble(deployment="Server") as double:
        double.add_issue("INC-1", "one")
        cloud_style = Jira(double.base_url, SecretStr(TOKEN), user=USER, patience=patience)
        with pytest.raises(LookupFailed, match="401"):
            cloud_style.jira_issue("INC-1")


def test_a_rate_limit_is_waited_out_as_retry_after_asks(
    jira: JiraDouble, patience: Patience, sleeps: list[float]
) -> None:
    jira.add_issue("INC-1", "one")
    jira_adapter = adapter(jira, patience)
    jira_adapter.jira_issue("INC-1")
    jira.rate_limit(times=2, retry_after="4")
    assert jira_adapter.jira_issue("INC-1") is not None
    assert sleeps == [4.0, 4.0]


def test_a_rate_limit_past_the_retries_is_a_lookup_failure(
    jira: JiraDouble, patience: Patience, sleeps: list[float]
) -> None:
    jira.add_issue("INC-1", "one")
    jira.rate_limit(times=3, retry_after="1")
    with pytest.raises(LookupFailed, match=r"^Jira is rate-limiting breakglass \(429 Too Many Requests\)"):
        adapter(jira, patience).jira_issue("INC-1")
    assert sleeps == [1.0, 1.0]
    assert len(jira.calls) == 3


def test_a_server_error_is_a_lookup_failure(jira: JiraDouble, patience: Patience) -> None:
    jira.add_issue("INC-1", "one")
    jira_adapter = adapter(jira, patience)
    jira_adapter.jira_issue("INC-1")
    jira.fail(502)
    with pytest.raises(LookupFailed) as failure:
        jira_adapter.jira_issue("INC-1")
    assert str(failure.value) == "Jira failed with a server error (502) while reading an issue."


def test_a_slow_answer_is_a_timeout(jira: JiraDouble, sleeps: list[float]) -> None:
    jira.slow(3.0)
    with pytest.raises(LookupFailed) as failure:
        adapter(jira, Patience(timeout=0.5, sleep=sleeps.append)).jira_issue("INC-1")
    assert str(failure.value) == "Jira did not answer within 0.5 seconds."


def test_jira_down_at_first_use_fails_the_lookup_and_a_later_one_succeeds(jira: JiraDouble, patience: Patience) -> None:
    jira.add_issue("INC-1", "one")
    jira_adapter = adapter(jira, patience)
    jira.down()
    with pytest.raises(LookupFailed) as failure:
        jira_adapter.jira_issue("INC-1")
    assert str(failure.value) == "Jira could not be reached (connection refused)."
    jira.up()
    assert jira_adapter.jira_issue("INC-1") is not None


def test_an_untrusted_certificate_is_a_lookup_failure_saying_how_to_trust_it(
    jira: JiraDouble, patience: Patience, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(LookupFailed, match=r"TLS certificate is not trusted .*SSL_CERT_FILE or REQUESTS_CA_BUNDLE"):
        adapter(jira, patience).jira_issue("INC-1")


def test_no_failure_logs_the_token(jira: JiraDouble, patience: Patience, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    jira.add_issue("INC-1", "one")
    jira_adapter = adapter(jira, patience)
    for fault in (lambda: jira.fail(500), lambda: jira.rate_limit(times=3), lambda: jira.fail(401)):
        fault()
        with pytest.raises(LookupFailed):
            jira_adapter.jira_issue("INC-1")
    assert TOKEN not in caplog.text


def test_projects_and_credentials_as_doctor_asks(jira: JiraDouble, patience: Patience) -> None:
    jira.add_project("INC", "Incidents")
    jira_adapter = adapter(jira, patience)
    jira_adapter.check_token()
    assert jira_adapter.project("INC") == "Incidents"
    assert jira_adapter.project("NOPE") is None
    assert jira_adapter.project("../x") is None
    with pytest.raises(LookupFailed, match="401"):
        adapter(jira, patience, token="wrong").check_token()


def test_a_rate_limit_is_not_waited_out_past_the_lookups_deadline(jira: JiraDouble, sleeps: list[float]) -> None:
    jira.add_issue("INC-1", "one")
    jira.rate_limit(times=1, retry_after="9")
    patience = Patience(deadline=5.0, max_wait=60.0, sleep=sleeps.append)
    with pytest.raises(LookupFailed, match=r"^Jira is rate-limiting breakglass"):
        adapter(jira, patience).jira_issue("INC-1")
    assert sleeps == []
