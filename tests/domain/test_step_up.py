"""Step-up in the roster (``mfa: oidc``, the ``oidc:`` block, per-role ``step_up``) and the pure
judgement of a verified login's claims: nonce, freshness, factor, person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.roster import OidcConfig, RosterError
from bot.domain.stepup import LoginRefused, judge
from tests.fakes import roster_with

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OIDC = {"issuer": "https://idp.example.com", "client_id": "0oa1", "max_age": "5m", "amr": ["mfa"]}
CONFIG = OidcConfig("https://idp.example.com", "0oa1", timedelta(minutes=5), ("mfa",), ("phr",),
                    frozenset({"request", "approve"}), "Okta")  # fmt: skip


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": "https://idp.example.com",
        "sub": "00u1",
        "nonce": "n-1",
        "auth_time": int(NOW.timestamp()) - 30,
        "amr": ["pwd", "mfa"],
        "email": "alice@example.com",
        "email_verified": True,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_oidc_roster_needs_step_up_for_the_actions_it_names_and_a_role_may_override() -> None:
    roster = roster_with(mfa="oidc", oidc={**OIDC, "step_up": ["request"]}, roles={"view": {"step_up": ["approve"]}})
    assert roster.oidc is not None
    assert roster.oidc.name == "idp.example.com"
    assert roster.needs_step_up("request", "admin")
    assert not roster.needs_step_up("approve", "admin")
    assert roster.needs_step_up("approve", "view")
    assert not roster.needs_step_up("request", "view")


def test_other_mfa_modes_never_need_step_up() -> None:
    assert not roster_with(oidc=OIDC).needs_step_up("request", "admin")


@pytest.mark.parametrize(
    ("oidc", "message"),
    [
        ({**OIDC, "amr": None}, "needs amr or acr"),
        ({**OIDC, "issuer": "http://idp.example.com"}, "must be an https:// URL"),
        ({**OIDC, "step_up": ["deny"]}, "'deny' is not one of request, approve"),
    ],
)
def test_an_oidc_block_that_cannot_prove_mfa_is_a_problem(oidc: dict[str, Any], message: str) -> None:
    with pytest.raises(RosterError) as raised:
        roster_with(mfa="oidc", oidc={k: v for k, v in oidc.items() if v is not None})
    assert any(message in p.message for p in raised.value.problems), raised.value.problems


def test_mfa_oidc_without_its_block_is_a_problem() -> None:
    with pytest.raises(RosterError, match="is required with mfa: oidc"):
        roster_with(mfa="oidc")


def test_a_fresh_multi_factor_login_of_the_same_person_counts() -> None:
    verified = judge(claims(), CONFIG, nonce="n-1", expected_email="Alice@Example.com", now=NOW)
    assert verified.method == "pwd, mfa"
    assert verified.details()["auth_time"] == "2026-12-04T11:59:30Z"


def test_an_acr_the_roster_names_counts_without_amr() -> None:
    assert judge(claims(amr=None, acr="phr"), CONFIG, nonce="n-1", expected_email="alice@example.com", now=NOW)


@pytest.mark.parametrize(
    ("changes", "expected_email", "kind"),
    [
        ({"nonce": "other"}, "alice@example.com", "nonce"),
        ({"auth_time": int(NOW.timestamp()) - 400}, "alice@example.com", "stale"),
        ({"auth_time": None}, "alice@example.com", "stale"),
        ({"auth_time": int(NOW.timestamp()) + 300}, "alice@example.com", "stale"),
        ({"amr": ["pwd"]}, "alice@example.com", "no_mfa"),
        ({"email_verified": False}, "alice@example.com", "other_person"),
        ({}, "bob@example.com", "other_person"),
        ({}, None, "no_email"),
    ],
)
def test_a_login_that_does_not_count_says_why(changes: dict[str, Any], expected_email: str | None, kind: str) -> None:
    with pytest.raises(LoginRefused) as refused:
        judge(claims(**changes), CONFIG, nonce="n-1", expected_email=expected_email, now=NOW)
    assert refused.value.kind == kind
    assert refused.value.reason.endswith(".")
