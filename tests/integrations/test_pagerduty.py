"""bot.integrations.pagerduty against the PagerDuty stand-in over HTTPS: on-calls, incidents, paging,
and every way a lookup fails (each one ``LookupFailed`` with one sentence, never the token)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from bot.integrations.http import Patience
from bot.integrations.pagerduty import PagerDuty
from bot.ports import LookupFailed
from bot.standins.pagerduty import TOKEN, PagerDutyDouble

AT = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
ALICE = "alice@example.com"


def adapter(double: PagerDutyDouble, patience: Patience, **kwargs: object) -> PagerDuty:
    return PagerDuty(SecretStr(TOKEN), api_url=double.base_url, patience=patience, **kwargs)  # type: ignore[arg-type]


def on_call(
    double: PagerDutyDouble,
    *,
    level: int = 1,
    schedule: str | None = "PSCHED01",
    policy: str = "PPOLICY1",
    hours: float = 4,
) -> None:
    double.put_on_call(
        ALICE,
        escalation_policy_id=policy,
        level=level,
        schedule_id=schedule,
        start=None if schedule is None else AT - timedelta(hours=1),
        end=None if schedule is None else AT + timedelta(hours=hours),
    )


# --- on-calls -------------------------------------------------------------------------------------


def test_shift_names_policy_level_schedule_and_window(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    on_call(pagerduty)
    shifts = adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)
    assert [(s.escalation_policy_id, s.escalation_level, s.schedule_id, s.start, s.end) for s in shifts] == [
        ("PPOLICY1", 1, "PSCHED01", AT - timedelta(hours=1), AT + timedelta(hours=4))
    ]
    assert shifts[0].schedule_name == "Schedule PSCHED01"
    assert shifts[0].escalation_policy_name == "Policy PPOLICY1"


def test_shifts_are_asked_for_the_person_and_the_moment(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    on_call(pagerduty)
    adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)
    (call,) = pagerduty.calls_to("GET", "/oncalls")
    user_id = next(uid for uid, u in pagerduty.users.items() if u["email"] == ALICE)
    assert call.query["user_ids[]"] == [user_id]
    assert call.query["schedule_ids[]"] == ["PSCHED01"]
    assert call.query["since"] == ["2026-12-05T03:00:00Z"]
    assert call.query["until"] == ["2026-12-05T03:00:01Z"]


def test_shifts_are_read_across_pages(patience: Patience) -> None:
    with PagerDutyDouble(max_limit=2) as double:
        for n in range(5):
            double.add_user(f"{n}alice@example.com")  # also matched by the query for alice@example.com
        for n in range(5):
            double.put_on_call(ALICE, escalation_policy_id=f"PPOLICY{n}", level=n + 1, start=None, end=None)
        shifts = adapter(double, patience).shifts(
            ALICE, schedule_ids=[], escalation_policy_ids=[f"PPOLICY{n}" for n in range(5)], at=AT
        )
        assert sorted(s.escalation_level for s in shifts) == [1, 2, 3, 4, 5]
        assert [c.query["offset"] for c in double.calls_to("GET", "/oncalls")] == [["0"], ["2"], ["4"]]
        assert len(double.calls_to("GET", "/users")) >= 2  # the email was found past the first page


def test_a_person_unknown_to_pagerduty_has_no_shifts(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    on_call(pagerduty)
    assert (
        adapter(pagerduty, patience).shifts(
            "mallory@example.com", schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT
        )
        == []
    )


def test_an_email_that_only_contains_the_persons_is_not_them(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    pagerduty.put_on_call("xalice@example.com.evil", escalation_policy_id="PPOLICY1", schedule_id="PSCHED01")
    assert adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT) == []


def test_nothing_is_asked_when_no_schedule_or_policy_is_named(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    on_call(pagerduty)
    assert adapter(pagerduty, patience).shifts(ALICE, schedule_ids=[], escalation_policy_ids=[], at=AT) == []
    assert pagerduty.calls == []


def test_a_shift_that_ended_before_the_moment_is_not_listed(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    pagerduty.put_on_call(
        ALICE, escalation_policy_id="PPOLICY1", schedule_id="PSCHED01", start=AT - timedelta(hours=8), end=AT
    )
    assert adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT) == []


def test_a_shift_on_another_schedule_is_not_listed(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    on_call(pagerduty, schedule="PSCHED99")
    assert adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT) == []


def test_someone_named_on_the_policy_directly_is_on_call_with_no_schedule(
    pagerduty: PagerDutyDouble, patience: Patience
) -> None:
    on_call(pagerduty, schedule=None, level=2)
    (shift,) = adapter(pagerduty, patience).shifts(ALICE, schedule_ids=[], escalation_policy_ids=["PPOLICY1"], at=AT)
    assert (shift.escalation_level, shift.schedule_id, shift.start, shift.end) == (2, None, None, None)


def test_schedules_and_policies_each_count_on_their_own(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    # PagerDuty ANDs its filters; a rule naming a schedule *or* a policy must see either.
    on_call(pagerduty, schedule="PSCHED01", policy="PPOLICY1", level=1)
    on_call(pagerduty, schedule=None, policy="PPOLICY2", level=1)
    shifts = adapter(pagerduty, patience).shifts(
        ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=["PPOLICY2"], at=AT
    )
    assert sorted((s.escalation_policy_id, s.schedule_id or "") for s in shifts) == [
        ("PPOLICY1", "PSCHED01"),
        ("PPOLICY2", ""),
    ]


# --- failures ---------------------------------------------------------------------------------------


def test_a_rejected_token_is_a_lookup_failure_naming_pagerduty_and_401(
    pagerduty: PagerDutyDouble, patience: Patience
) -> None:
    on_call(pagerduty)
    pagerduty.token = "a-rotated-token"
    with pytest.raises(LookupFailed) as failure:
        adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)
    assert str(failure.value) == (
        "PagerDuty rejected breakglass's credentials (401 Unauthorized) while reading the on-call list."
    )
    assert TOKEN not in str(failure.value)
    assert failure.value.__cause__ is None
    assert failure.value.__suppress_context__


def test_a_forbidden_read_is_a_lookup_failure(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    pagerduty.add_incident("db down", service_id="PSERVICE")
    pagerduty.fail(403)
    with pytest.raises(LookupFailed, match=r"^PagerDuty refused breakglass's credentials \(403 Forbidden\)"):
        adapter(pagerduty, patience).pagerduty_incident("1")


def test_a_rate_limit_is_waited_out_as_retry_after_asks(
    pagerduty: PagerDutyDouble, patience: Patience, sleeps: list[float]
) -> None:
    on_call(pagerduty)
    pagerduty.rate_limit(times=2, retry_after="3")
    shifts = adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)
    assert len(shifts) == 1
    assert sleeps == [3.0, 3.0]


def test_a_rate_limit_past_the_retries_is_a_lookup_failure(
    pagerduty: PagerDutyDouble, patience: Patience, sleeps: list[float]
) -> None:
    on_call(pagerduty)
    pagerduty.rate_limit(times=3, retry_after="2")
    with pytest.raises(
        LookupFailed, match=r"^PagerDuty is rate-limiting breakglass \(429 Too Many Requests\)"
    ) as failure:
        adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)
    assert sleeps == [2.0, 2.0]  # two retries, then no more
    assert len(pagerduty.calls) == 3
    assert failure.value.delay == 2.0


def test_a_retry_after_longer_than_the_patience_is_not_waited_for(
    pagerduty: PagerDutyDouble, patience: Patience, sleeps: list[float]
) -> None:
    pagerduty.rate_limit(times=1, retry_after="3600")
    with pytest.raises(LookupFailed, match="429"):
        adapter(pagerduty, patience).pagerduty_incident("1")
    assert sleeps == []


def test_a_server_error_is_a_lookup_failure(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    pagerduty.fail(503)
    with pytest.raises(LookupFailed) as failure:
        adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=[], at=AT)
    assert str(failure.value) == "PagerDuty failed with a server error (503) while reading the on-call list."


def test_a_slow_answer_is_a_timeout(pagerduty: PagerDutyDouble, sleeps: list[float]) -> None:
    pagerduty.slow(3.0)
    with pytest.raises(LookupFailed) as failure:
        adapter(pagerduty, Patience(timeout=0.5, sleep=sleeps.append)).pagerduty_incident("1")
    assert str(failure.value) == "PagerDuty did not answer within 0.5 seconds."


def test_pagerduty_down_is_a_lookup_failure(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    pagerduty.down()
    with pytest.raises(LookupFailed) as failure:
        adapter(pagerduty, patience).pagerduty_incident("1")
    assert str(failure.value) == "PagerDuty could not be reached (connection refused)."


def test_an_untrusted_certificate_is_a_lookup_failure_saying_how_to_trust_it(
    pagerduty: PagerDutyDouble, patience: Patience, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("SSL_CERT_FILE")  # the system's store, which does not hold the stand-in's CA
    with pytest.raises(LookupFailed, match=r"TLS certificate is not trusted .*SSL_CERT_FILE or REQUESTS_CA_BUNDLE"):
        adapter(pagerduty, patience).pagerduty_incident("1")


def test_no_failure_logs_the_token(
    pagerduty: PagerDutyDouble, patience: Patience, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pd = adapter(pagerduty, patience)
    for fault in (lambda: pagerduty.fail(500), lambda: pagerduty.rate_limit(times=3), lambda: pagerduty.fail(401)):
        fault()
        with pytest.raises(LookupFailed):
            pd.pagerduty_incident("1")
    assert caplog.records  # the client did log; none of it holds the token
    assert TOKEN not in caplog.text


# --- incidents as tickets ---------------------------------------------------------------------------


def test_an_incident_is_found_by_number_and_by_id(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    pagerduty.add_service("Payments", "PPOLICY1", id="PSERVICE")
    incident = pagerduty.add_incident("Payments API down", service_id="PSERVICE", status="acknowledged")
    pd = adapter(pagerduty, patience)
    by_number, by_id = pd.pagerduty_incident(str(incident.number)), pd.pagerduty_incident(incident.id)
    assert by_number == by_id
    assert by_number is not None
    assert (by_number.system, by_number.key, by_number.title, by_number.status) == (
        "pagerduty",
        str(incident.number),
        "Payments API down",
        "acknowledged",
    )
    assert by_number.url.endswith(f"/incidents/{incident.id}")
    assert by_number.project is None


def test_an_unknown_incident_is_none(pagerduty: PagerDutyDouble, patience: Patience) -> None:
    assert adapter(pagerduty, patience).pagerduty_incident("Q0NOSUCH0001") is None
    assert adapter(pagerduty, patience).pagerduty_incident("4411") is None


def test_a_reference_not_shaped_like_an_incident_never_reaches_the_api(
    pagerduty: PagerDutyDouble, patience: Patience
) -> None:
    for ref in ("../users/me", "Q1?x=1", "", "q lower"):
        assert adapter(pagerduty, patience).pagerduty_incident(ref) is None
    assert pagerduty.calls == []


# --- paging -----------------------------------------------------------------------------------------


@pytest.fixture
def service(pagerduty: PagerDutyDouble) -> str:
    pagerduty.add_user("breakglass-bot@example.com", id="PBOT0001")
    return pagerduty.add_service("Breakglass approvals", "PPOLICY1", id="PSERVICE")


def test_opening_an_incident_sends_the_from_header_and_the_key(
    pagerduty: PagerDutyDouble, patience: Patience, service: str
) -> None:
    pd = adapter(pagerduty, patience, from_email="breakglass-bot@example.com")
    incident_id = pd.open_incident(service_id=service, title="Request waits", details="link", incident_key="req-1")
    (post,) = pagerduty.calls_to("POST", "/incidents")
    assert post.headers["from"] == "breakglass-bot@example.com"
    assert post.body["incident"]["incident_key"] == "req-1"
    assert [(i.id, i.status, i.incident_key, i.details) for i in pagerduty.open_incidents(service)] == [
        (incident_id, "triggered", "req-1", "link")
    ]


def test_opening_twice_with_one_key_opens_one_incident(
    pagerduty: PagerDutyDouble, patience: Patience, service: str
) -> None:
    pd = adapter(pagerduty, patience, from_email="breakglass-bot@example.com")
    first = pd.open_incident(service_id=service, title="Request waits", details="", incident_key="req-1")
    second = pd.open_incident(service_id=service, title="Request waits", details="", incident_key="req-1")
    assert first == second
    assert len(pagerduty.open_incidents(service)) == 1


def test_the_stand_in_refuses_a_duplicate_key_as_pagerduty_does(pagerduty: PagerDutyDouble, service: str) -> None:
    pagerduty.add_incident("open", service_id=service, incident_key="req-1")
    body = {"incident": {"type": "incident", "title": "again", "service": {"id": service}, "incident_key": "req-1"}}
    from bot.standins.rest import Request

    reply = pagerduty.answer(
        Request(
            "POST",
            "/incidents",
            {},
            {"authorization": f"Token token={TOKEN}", "from": "breakglass-bot@example.com"},
            body,
        )
    )
    assert reply.status == 400
    assert reply.body["error"]["errors"] == ["Open incident with matching dedup key already exists on this service"]


def test_after_resolving_the_same_key_opens_a_new_incident(
    pagerduty: PagerDutyDouble, patience: Patience, service: str
) -> None:
    pd = adapter(pagerduty, patience, from_email="breakglass-bot@example.com")
    first = pd.open_incident(service_id=service, title="t", details="", incident_key="req-1")
    pd.resolve_incident(first)
    second = pd.open_incident(service_id=service, title="t", details="", incident_key="req-1")
    assert second != first


def test_resolving_twice_is_harmless(pagerduty: PagerDutyDouble, patience: Patience, service: str) -> None:
    pd = adapter(pagerduty, patience, from_email="breakglass-bot@example.com")
    incident_id = pd.open_incident(service_id=service, title="t", details="", incident_key="req-1")
    pd.resolve_incident(incident_id)
    pd.resolve_incident(incident_id)
    assert pagerduty.incidents[incident_id].status == "resolved"
    assert pagerduty.open_incidents(service) == []


def test_resolving_an_unknown_incident_is_harmless(
    pagerduty: PagerDutyDouble, patience: Patience, service: str
) -> None:
    adapter(pagerduty, patience, from_email="breakglass-bot@example.com").resolve_incident("Q0NOSUCH0001")


def test_a_user_token_opens_incidents_as_its_own_user(
    pagerduty: PagerDutyDouble, patience: Patience, service: str
) -> None:
    pagerduty.token_user = "breakglass-bot@example.com"
    adapter(pagerduty, patience).open_incident(service_id=service, title="t", details="", incident_key="req-1")
    (post,) = pagerduty.calls_to("POST", "/incidents")
    assert post.headers["from"] == "breakglass-bot@example.com"


def test_an_account_token_without_a_sender_says_which_setting_is_missing(
    pagerduty: PagerDutyDouble, patience: Patience, service: str
) -> None:
    with pytest.raises(LookupFailed) as failure:
        adapter(pagerduty, patience).open_incident(service_id=service, title="t", details="", incident_key="req-1")
    assert str(failure.value) == (
        "PagerDuty needs BREAKGLASS_PAGERDUTY_FROM (a user's email) to open incidents with an account token."
    )
    assert pagerduty.open_incidents() == []


def test_paging_while_pagerduty_is_down_is_a_lookup_failure(
    pagerduty: PagerDutyDouble, patience: Patience, service: str
) -> None:
    pd = adapter(pagerduty, patience, from_email="breakglass-bot@example.com")
    pagerduty.fail(500, times=2)
    with pytest.raises(LookupFailed, match=r"server error \(500\) while opening an incident"):
        pd.open_incident(service_id=service, title="t", details="", incident_key="req-1")


# --- what doctor asks -------------------------------------------------------------------------------


def test_objects_are_found_by_kind_and_id(pagerduty: PagerDutyDouble, patience: Patience, service: str) -> None:
    pagerduty.add_schedule("Payments primary", id="PSCHED01")
    pd = adapter(pagerduty, patience)
    assert pd.exists("schedules", "PSCHED01") == "Payments primary"
    assert pd.exists("services", service) == "Breakglass approvals"
    assert pd.exists("escalation_policies", "PPOLICY1") is None
    assert pd.exists("schedules", "../abilities") is None
    pd.check_token()
    pagerduty.token = "rotated"
    with pytest.raises(LookupFailed, match="401"):
        pd.check_token()


# --- one lookup's deadline --------------------------------------------------------------------------


def ticking(step: float) -> Callable[[], float]:
    """A clock that moves ``step`` seconds each time it is read."""
    reads = itertools.count()
    return lambda: next(reads) * step


def test_a_lookup_starts_no_call_past_its_deadline(pagerduty: PagerDutyDouble, sleeps: list[float]) -> None:
    on_call(pagerduty)
    patience = Patience(deadline=15.0, sleep=sleeps.append, clock=ticking(6.0))  # 6 s pass per call
    with pytest.raises(LookupFailed) as failure:
        adapter(pagerduty, patience).shifts(ALICE, schedule_ids=["PSCHED01"], escalation_policy_ids=["PPOLICY1"], at=AT)
    assert str(failure.value) == "PagerDuty did not finish answering within 15 seconds."
    assert [c.path for c in pagerduty.calls] == ["/users", "/oncalls"]  # the third call was never made


def test_a_rate_limit_is_not_waited_out_past_the_deadline(pagerduty: PagerDutyDouble, sleeps: list[float]) -> None:
    pagerduty.rate_limit(times=1, retry_after="20")
    patience = Patience(deadline=15.0, max_wait=60.0, sleep=sleeps.append, clock=ticking(1.0))
    with pytest.raises(LookupFailed, match=r"429 Too Many Requests\) and asked it to wait 20 s"):
        adapter(pagerduty, patience).pagerduty_incident("1")
    assert sleeps == []
