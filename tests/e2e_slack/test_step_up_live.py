"""Step-up MFA (``mfa: oidc``) through the real web process, the real worker and an OIDC provider
stand-in over HTTP: the request is posted and the approval counts only after a fresh multi-factor
login of the same person; every way a login can fail to count is refused with one sentence, an audit
entry, and nothing else changed.

The test plays the browser: it follows the "Verify with …" link from Slack through the web process's
``/oidc/start/…`` to the provider's authorize endpoint and back to ``/oidc/callback``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from bot.domain.audit import Event
from bot.slack.notifier import RedisProgress
from bot.standins.oidc import CLIENT_ID, CLIENT_SECRET, OidcProviderDouble
from bot.standins.slack_api import Ephemeral
from bot.standins.stack import ALICE, BOB, CAROL, DAVE, DEMO_ROSTER, GUEST, LocalStack
from bot.store import AuditLog, RequestStore
from tests.e2e_slack.conftest import KEY_PREFIX, REQUEST_ID, Live

pytestmark = pytest.mark.slow

ERIN = "U00000ERIN"  # known only through the payments-devs user group
PAYMENTS_DEVS = "S0PAYDEVS"
START = re.compile(r"http://127\.0\.0\.1:\d+/oidc/start/[A-Za-z0-9_-]+")


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProviderDouble]:
    double = OidcProviderDouble().start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory, provider: OidcProviderDouble) -> Iterator[Live]:
    roster: dict[str, Any] = {
        **step_up_roster(provider),
        # payments-devs is a Slack user group; ERIN is in it and nowhere in the roster's people.
        "identity": {"kube_user_from": "email"},
        "groups": {**DEMO_ROSTER["groups"], "payments-devs": {"slack_usergroup": PAYMENTS_DEVS}},
    }
    yield from _running(redis_url, tmp_path_factory.mktemp("step-up-stack"), roster)


def step_up_roster(provider: OidcProviderDouble) -> dict[str, Any]:
    """The demo roster with step-up at the stand-in provider for requests and approvals."""
    return {
        **DEMO_ROSTER,
        "mfa": "oidc",
        "oidc": {
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "name": "Stand-in IdP",
            "max_age": "5m",
            "amr": ["otp", "mfa", "hwk"],
            "step_up": ["request", "approve"],
        },
        # Each test asks anew and leaves its request pending: the per-person quota must not refuse them.
        "max_pending_requests": 100,
    }


def _running(redis_url: str, workdir: Path, roster: dict[str, Any]) -> Iterator[Live]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    stack = LocalStack(
        workdir,
        redis_url=redis_url,
        roster=roster,
        key_prefix=KEY_PREFIX,
        extra_env={"BREAKGLASS_OIDC_CLIENT_SECRET": CLIENT_SECRET},
    ).start()
    stack.slack.add_user(ERIN, name="erin", email="erin@example.com")
    stack.slack.set_usergroup(PAYMENTS_DEVS, [ALICE, DAVE, GUEST, ERIN])
    try:
        web = stack.start_web()
        stack.start_worker()
        stack.wait_for_workers(1)
        audit = AuditLog(client, lambda: datetime.now(UTC), prefix=KEY_PREFIX, key=stack.chain_key())
        yield Live(
            stack=stack,
            web=web,
            sender=stack.sender(web),
            store=RequestStore(client, audit, prefix=KEY_PREFIX),
            audit=audit,
            progress=RedisProgress(client, prefix=KEY_PREFIX),
        )
    finally:
        stack.stop()
        client.flushdb()
        client.close()


def link(answer: Ephemeral) -> str:
    """The "Verify with …" button's URL in a Slack answer."""
    for block in answer.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("url"):
                return str(element["url"])
    found = START.search(answer.text)
    assert found, f"no verification link in: {answer.text}"
    return found.group(0)


def browse(url: str) -> requests.Response:
    """A browser following the link through the provider and back."""
    return requests.get(url, timeout=20)


def ask_with_step_up(live: Live, user: str = ALICE) -> str:
    answer = live.command(user, "prod/payments view 30m INC-1 checkout is down")
    assert "Verify with Stand-in IdP" in str(answer.blocks), answer.text
    assert not REQUEST_ID.search(answer.text), "no request may exist before the verification"
    return link(answer)


def refused_entries(live: Live, since: int) -> list[Any]:
    return [e for e in live.entries_after(since) if e.event == Event.REFUSED]


# --- the way it should go ------------------------------------------------------------------------------


def test_request_is_posted_only_after_a_fresh_multi_factor_login(live: Live, provider: OidcProviderDouble) -> None:
    provider.login_as()
    before = live.world()
    url = ask_with_step_up(live)
    assert live.world() == before, "asking alone must post nothing"
    started = time.monotonic()
    page = browse(url)
    elapsed = time.monotonic() - started
    assert page.status_code == 200, page.text
    assert "You can return to Slack" in page.text
    request = next(r for r in live.store.recent() if r.requester == ALICE and r.reason.startswith("INC-1"))
    live.wait_published(request.id)
    verified = live.wait_for_event(request.id, Event.IDENTITY_VERIFIED)
    assert verified.details["issuer"] == provider.issuer
    assert verified.details["subject"].startswith("00u")
    assert verified.details["amr"] == ["pwd", "otp"]
    assert verified.details["auth_time"]
    thread = [live.seen(m) for m in live.thread(live.root(request.id))]
    assert any("verified at Stand-in IdP (pwd, otp)" in text for text in thread), thread
    login = provider.logins[-1]
    assert login["prompt"] == "login"
    assert login["max_age"] == "300"
    assert login["code_challenge_method"] == "S256"
    assert login["login_hint"] == "alice@example.com"
    print(f"step-up added {elapsed * 1000:.0f} ms (start link -> provider -> callback -> request stored)")


def test_approval_counts_only_after_the_approver_verifies(live: Live, provider: OidcProviderDouble) -> None:
    provider.login_as()
    assert browse(ask_with_step_up(live)).status_code == 200
    request = next(r for r in live.store.recent() if r.requester == ALICE and r.state.value == "pending")
    live.wait_published(request.id)
    answer = live.click(BOB, "approve", request.id, live.root(request.id))
    assert live.request(request.id).approved_by == (), "a click alone must not count"
    page = browse(link(answer))
    assert page.status_code == 200, page.text
    assert live.request(request.id).approved_by == (BOB,)
    # Bob's verified login, then his approval (the grant job may already have added more after it).
    entries = [(e.event, e.actor) for e in live.entries(request.id)]
    approved = entries.index((Event.APPROVED, BOB))
    assert entries[approved - 1] == (Event.IDENTITY_VERIFIED, BOB)


def test_an_ec_signed_id_token_counts_too(live: Live, provider: OidcProviderDouble) -> None:
    provider.login_as(key="ec")
    assert browse(ask_with_step_up(live, CAROL)).status_code == 200


# --- the link itself -----------------------------------------------------------------------------------


def test_a_start_link_works_once(live: Live, provider: OidcProviderDouble) -> None:
    provider.login_as()
    url = ask_with_step_up(live)
    assert browse(url).status_code == 200
    again = browse(url)
    assert again.status_code == 400
    assert "unknown, used or expired" in again.text


def test_callback_with_unknown_or_used_state_is_400_and_changes_nothing(
    live: Live, provider: OidcProviderDouble
) -> None:
    provider.login_as()
    base = live.stack.web_url(live.web)
    before, head = live.world(), live.head()
    assert requests.get(f"{base}/oidc/callback?code=x&state=forged", timeout=10).status_code == 400
    assert requests.get(f"{base}/oidc/callback", timeout=10).status_code == 400
    # A real state, replayed after it was used:
    url = ask_with_step_up(live)
    first = requests.get(url, allow_redirects=False, timeout=10)
    at_provider = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
    callback = at_provider.headers["Location"]
    assert requests.get(callback, timeout=20).status_code == 200
    after = live.world()
    replay = requests.get(callback, timeout=10)
    assert replay.status_code == 400
    assert live.world() == after
    assert before != after
    assert head < live.head()


# --- logins that do not count: one sentence, an audit entry, nothing else --------------------------------

REFUSALS = [
    pytest.param({"email": "mallory@example.com"}, "as someone else", "other_person", id="another-person"),
    pytest.param({"email_verified": False}, "no verified email", "other_person", id="unverified-email"),
    pytest.param({"auth_age": 3600}, "older than the roster allows", "stale", id="stale-auth-time"),
    pytest.param({"amr": ("pwd",)}, "did not report a multi-factor", "no_mfa", id="password-only"),
    pytest.param({"amr": None}, "did not report a multi-factor", "no_mfa", id="no-amr"),
    pytest.param({"key": "unknown"}, "a key Stand-in IdP does not publish", "unknown_key", id="unknown-key"),
    pytest.param({"audience": "someone-else"}, "meant for another application", "wrong_audience", id="wrong-aud"),
    pytest.param({"nonce": "replayed"}, "different login attempt", "nonce", id="wrong-nonce"),
    pytest.param({"deny": "access_denied"}, "did not sign you in (access_denied)", "provider_error", id="denied"),
]


@pytest.mark.parametrize(("login", "sentence", "kind"), REFUSALS)
def test_a_login_that_does_not_count_is_refused_and_audited(
    live: Live, provider: OidcProviderDouble, login: dict[str, Any], sentence: str, kind: str
) -> None:
    provider.login_as(**login)
    url = ask_with_step_up(live)
    before, head = live.world(), live.head()
    page = browse(url)
    assert page.status_code == 403, page.text
    assert sentence in page.text
    assert "Nothing was changed" in page.text
    assert live.world() == before, "a refused login must change nothing"
    refused = refused_entries(live, head)
    assert len(refused) == 1
    assert refused[0].details["step_up"] == kind
    assert refused[0].actor == ALICE
    assert refused[0].details["action"] == "request"
    assert not [e for e in live.entries_after(head) if e.event == Event.IDENTITY_VERIFIED]


def test_an_approval_by_a_login_of_someone_else_does_not_count(live: Live, provider: OidcProviderDouble) -> None:
    provider.login_as()
    assert browse(ask_with_step_up(live)).status_code == 200
    request = next(r for r in live.store.recent() if r.requester == ALICE and r.state.value == "pending")
    live.wait_published(request.id)
    answer = live.click(CAROL, "approve", request.id, live.root(request.id))
    provider.login_as(email="bob@example.com")
    head = live.head()
    page = browse(link(answer))
    assert page.status_code == 403
    assert live.request(request.id).approved_by == ()
    refused = refused_entries(live, head)
    assert refused[0].request_id == request.id
    assert refused[0].details["claimed_email"] == "bob@example.com"


def test_secrets_never_reach_the_logs(live: Live, provider: OidcProviderDouble) -> None:
    provider.login_as()
    url = ask_with_step_up(live)
    first = requests.get(url, allow_redirects=False, timeout=10)
    at_provider = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
    callback = at_provider.headers["Location"]
    assert requests.get(callback, timeout=20).status_code == 200
    code = re.search(r"code=([^&]+)", callback)
    assert code
    token = url.rsplit("/", 1)[1]
    for process in live.stack.processes:
        logged = process.output()
        for secret in (CLIENT_SECRET, code.group(1), token):
            assert secret not in logged, f"{process.name} logged a secret"


# --- people known only through a Slack user group ------------------------------------------------------


def test_someone_known_only_through_a_user_group_asks_with_their_email_as_kube_user(
    live: Live, provider: OidcProviderDouble
) -> None:
    provider.login_as()
    assert browse(ask_with_step_up(live, ERIN)).status_code == 200
    request = next(r for r in live.store.recent() if r.requester == ERIN)
    live.wait_published(request.id)
    assert live.wait_for_event(request.id, Event.IDENTITY_VERIFIED).details["email"] == "erin@example.com"


def test_someone_whose_slack_email_is_not_confirmed_is_refused_before_signing_in(
    live: Live, provider: OidcProviderDouble
) -> None:
    from bot.slack import wording

    # Dave is asked about nowhere else in this module, so no cached answer of Slack's hides the change.
    live.stack.slack.add_user(DAVE, name="dave", email="dave@example.com", email_confirmed=False)
    try:
        before, head = live.world(), live.head()
        answer = live.command(DAVE, "prod/payments view 30m INC-9 checkout is down")
        assert wording.step_up_no_email("Stand-in IdP") in live.seen(answer).replace("\n", " "), answer.text
        assert "/oidc/start/" not in str(answer.blocks), "no sign-in link for a person nothing can be matched to"
        assert live.world() == before
        assert [e.details.get("action") for e in refused_entries(live, head)] == ["request"]
    finally:
        live.stack.slack.add_user(DAVE, name="dave", email="dave@example.com", has_2fa=True)
