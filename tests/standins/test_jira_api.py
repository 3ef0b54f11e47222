"""The Jira stand-in answers like Jira's REST API v2: serverInfo, issues, projects with Jira's paging,
Cloud's basic auth or Data Center's bearer token, and Jira's error bodies."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bot.standins.jira import TOKEN, USER, JiraDouble


@pytest.fixture
def double() -> Iterator[JiraDouble]:
    with JiraDouble(max_results=2) as jira:
        yield jira


def basic(user: str = USER, token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def get(double: JiraDouble, path: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
    return requests.get(
        f"{double.base_url}/rest/api/2/{path}",
        params=params,
        headers=basic() if headers is None else headers,
        verify=double.ca_file,
        timeout=10,
    )


def test_server_info_names_the_deployment_and_version(double: JiraDouble) -> None:
    info = get(double, "serverInfo", headers={}).json()
    assert (info["deploymentType"], info["baseUrl"]) == ("Cloud", double.base_url)
    assert all(isinstance(n, int) for n in info["versionNumbers"])


def test_an_issue_has_jiras_shape(double: JiraDouble) -> None:
    double.add_issue("INC-4411", "Payments down", status="In Progress")
    issue = get(double, "issue/INC-4411", fields="summary,status").json()
    assert issue["key"] == "INC-4411"
    assert issue["id"].isdigit()
    assert set(issue["fields"]) == {"summary", "status"}
    assert issue["fields"]["status"]["name"] == "In Progress"
    assert issue["fields"]["status"]["statusCategory"]["key"] == "new"
    assert get(double, "issue/INC-4411").json()["fields"]["project"]["key"] == "INC"


def test_an_unknown_issue_or_project_is_404_with_jiras_error_messages(double: JiraDouble) -> None:
    missing = get(double, "issue/INC-1")
    assert (missing.status_code, missing.json()) == (
        404,
        {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}},
    )
    project = get(double, "project/NOPE")
    assert (project.status_code, project.json()["errorMessages"]) == (
        404,
        ["No project could be found with key 'NOPE'."],
    )


def test_cloud_takes_basic_auth_and_refuses_bearer(double: JiraDouble) -> None:
    assert get(double, "myself").status_code == 200
    refused = get(double, "myself", headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 401
    assert refused.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"
    assert refused.json()["errorMessages"] == [
        "You are not authenticated. Authentication required to perform this operation."
    ]
    assert get(double, "myself", headers=basic(token="wrong")).status_code == 401


def test_data_center_takes_a_bearer_token_and_refuses_basic() -> None:
    with JiraDouble(deployment="Server") as jira:
        assert get(jira, "myself", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert get(jira, "myself").status_code == 401
        assert get(jira, "serverInfo", headers={}).json()["deploymentType"] == "Server"


def test_projects_page_by_start_at_and_max_results(double: JiraDouble) -> None:
    for key in ("AAA", "BBB", "CCC"):
        double.add_project(key)
    first = get(double, "project/search", maxResults=50).json()
    assert (first["startAt"], first["maxResults"], first["total"], first["isLast"]) == (0, 2, 3, False)
    assert [p["key"] for p in first["values"]] == ["AAA", "BBB"]
    last = get(double, "project/search", startAt=2, maxResults=2).json()
    assert ([p["key"] for p in last["values"]], last["isLast"]) == (["CCC"], True)


def test_a_rate_limit_is_429_with_retry_after(double: JiraDouble) -> None:
    double.rate_limit(times=1, retry_after="5")
    limited = get(double, "myself")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "5")
    assert get(double, "myself").status_code == 200
