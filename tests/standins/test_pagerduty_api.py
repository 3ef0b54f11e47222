"""The PagerDuty stand-in answers like PagerDuty's REST API v2: its paths, shapes, headers, paging
and error bodies (checked over HTTPS with plain requests, not through the adapter)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from bot.standins.pagerduty import TOKEN, PagerDutyDouble

AT = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


@pytest.fixture
def double() -> Iterator[PagerDutyDouble]:
    with PagerDutyDouble(max_limit=2, clock=lambda: AT) as pagerduty:
        yield pagerduty


def get(double: PagerDutyDouble, path: str, token: str = TOKEN, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2"}
    return requests.get(double.base_url + path, params=params, headers=headers, verify=double.ca_file, timeout=10)


def test_a_request_without_the_token_is_401_with_pagerdutys_error_body(double: PagerDutyDouble) -> None:
    answer = get(double, "/users", token="wrong")
    assert answer.status_code == 401
    assert answer.json() == {"error": {"message": "Authentication failed", "code": 2006}}
    assert requests.get(double.base_url + "/users", verify=double.ca_file, timeout=10).status_code == 401


def test_an_unknown_object_is_404_with_pagerdutys_error_body(double: PagerDutyDouble) -> None:
    for path in ("/incidents/Q0NOSUCH0001", "/schedules/PNOSUCH", "/services/PNOSUCH", "/nowhere"):
        answer = get(double, path)
        assert (answer.status_code, answer.json()) == (404, {"error": {"message": "Not Found", "code": 2100}})


def test_lists_page_by_offset_and_limit_with_more(double: PagerDutyDouble) -> None:
    for n in range(3):
        double.add_user(f"user{n}@example.com")
    first = get(double, "/users", limit=100).json()
    assert (len(first["users"]), first["limit"], first["offset"], first["more"], first["total"]) == (
        2,
        2,
        0,
        True,
        None,
    )
    last = get(double, "/users", offset=2, limit=2, total="true").json()
    assert (len(last["users"]), last["more"], last["total"]) == (1, False, 3)
    assert {"id", "type", "summary", "self", "html_url", "name", "email"} <= set(last["users"][0])


def test_oncalls_filter_by_user_schedule_policy_and_time(double: PagerDutyDouble) -> None:
    double.put_on_call(
        "a@example.com",
        escalation_policy_id="PPOLICY1",
        schedule_id="PSCHED01",
        level=1,
        start=AT,
        end=AT + timedelta(hours=8),
    )
    double.put_on_call("a@example.com", escalation_policy_id="PPOLICY2", level=2)
    user_id = next(iter(double.users))
    listed = get(
        double,
        "/oncalls",
        **{
            "user_ids[]": user_id,
            "schedule_ids[]": "PSCHED01",
            "since": "2026-12-05T04:00:00Z",
            "until": "2026-12-05T04:00:01Z",
        },
    ).json()
    (entry,) = listed["oncalls"]
    assert entry["escalation_level"] == 1
    assert entry["schedule"]["type"] == "schedule_reference"
    assert entry["schedule"]["id"] == "PSCHED01"
    assert entry["escalation_policy"]["type"] == "escalation_policy_reference"
    assert entry["user"]["type"] == "user_reference"
    assert entry["user"]["id"] == user_id
    assert (entry["start"], entry["end"]) == ("2026-12-05T03:00:00Z", "2026-12-05T11:00:00Z")
    later = get(double, "/oncalls", **{"schedule_ids[]": "PSCHED01", "since": "2026-12-05T12:00:00Z"}).json()
    assert later["oncalls"] == []
    direct = get(double, "/oncalls", **{"escalation_policy_ids[]": "PPOLICY2"}).json()
    assert [(o["schedule"], o["start"], o["end"]) for o in direct["oncalls"]] == [(None, None, None)]


def test_a_bad_time_range_is_400(double: PagerDutyDouble) -> None:
    answer = get(double, "/oncalls", since="2026-12-05T04:00:00Z", until="2026-12-05T03:00:00Z")
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, 2005)


def test_a_rate_limit_is_429_with_retry_after(double: PagerDutyDouble) -> None:
    double.rate_limit(times=1, retry_after="7")
    limited = get(double, "/abilities")
    assert (limited.status_code, limited.headers["Retry-After"], limited.json()["error"]["code"]) == (429, "7", 2020)
    assert get(double, "/abilities").status_code == 200


def test_creating_an_incident_needs_a_from_header_naming_a_user(double: PagerDutyDouble) -> None:
    double.add_service("Payments", "PPOLICY1", id="PSERVICE")
    double.add_user("bot@example.com")
    body = {
        "incident": {
            "type": "incident",
            "title": "t",
            "service": {"id": "PSERVICE", "type": "service_reference"},
            "incident_key": "k",
        }
    }
    headers = {"Authorization": f"Token token={TOKEN}"}
    url = double.base_url + "/incidents"
    refused = requests.post(url, json=body, headers=headers, verify=double.ca_file, timeout=10)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, 2001)
    created = requests.post(
        url, json=body, headers={**headers, "From": "bot@example.com"}, verify=double.ca_file, timeout=10
    )
    assert created.status_code == 201
    incident = created.json()["incident"]
    assert (incident["type"], incident["status"], incident["incident_key"], incident["incident_number"]) == (
        "incident",
        "triggered",
        "k",
        1,
    )
    again = requests.post(
        url, json=body, headers={**headers, "From": "bot@example.com"}, verify=double.ca_file, timeout=10
    )
    assert again.status_code == 400
    assert again.json()["error"]["errors"] == ["Open incident with matching dedup key already exists on this service"]
    found = get(double, "/incidents", incident_key="k", **{"statuses[]": ["triggered", "acknowledged"]}).json()
    assert [i["id"] for i in found["incidents"]] == [incident["id"]]
    assert get(double, "/incidents/1").json()["incident"]["id"] == incident["id"]


def test_users_me_is_refused_for_an_account_token(double: PagerDutyDouble) -> None:
    assert get(double, "/users/me").status_code == 400
    double.add_user("bot@example.com")
    double.token_user = "bot@example.com"
    assert get(double, "/users/me").json()["user"]["email"] == "bot@example.com"


def test_down_refuses_connections_until_up(double: PagerDutyDouble) -> None:
    double.down()
    with pytest.raises(requests.ConnectionError):
        get(double, "/abilities")
    double.up()
    assert get(double, "/abilities").status_code == 200
