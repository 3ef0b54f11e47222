"""The step-up flow once end to end in a real browser: Debian's headless Chromium follows the
"Verify with …" link from Slack through the web process's ``/oidc/start/…``, signs in on the stand-in
provider's sign-in page (typing a one-time code and pressing "Sign in"), comes back to ``/oidc/callback``
and shows its one-line message; the request is then posted, and an approver's approval counts the same
way. Screenshots of the sign-in and callback pages are kept in the test's temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain.audit import Event
from bot.domain.lifecycle import State
from bot.slack import wording
from bot.standins.oidc import OidcProviderDouble
from bot.standins.stack import ALICE, BOB
from tests.chromium import Chromium, chromium_binary
from tests.e2e_slack.conftest import Live
from tests.e2e_slack.test_step_up_live import _running, link, step_up_roster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProviderDouble]:
    double = OidcProviderDouble(login_page=True).start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory, provider: OidcProviderDouble) -> Iterator[Live]:
    yield from _running(redis_url, tmp_path_factory.mktemp("browser-stack"), step_up_roster(provider))


@pytest.fixture
def browser() -> Iterator[Chromium]:
    chromium = Chromium(chromium_binary())
    try:
        yield chromium
    finally:
        chromium.close()


def _sign_in(browser: Chromium, url: str, shots: Path, name: str) -> str:
    """Follow a "Verify with …" link as a person would; the callback page's text."""
    browser.open(url)
    assert browser.evaluate("document.title") == "Sign in - Stand-in IdP", browser.evaluate("location.href")
    browser.evaluate("document.getElementById('otp').value = '123456'")
    browser.screenshot(shots / f"{name}-sign-in.png")
    browser.click("#sign-in")
    assert "/oidc/callback?" in browser.evaluate("location.href")
    browser.screenshot(shots / f"{name}-callback.png")
    return str(browser.evaluate("document.body.innerText")).strip()


def test_a_real_browser_verifies_a_request_and_an_approval(
    live: Live, provider: OidcProviderDouble, browser: Chromium, tmp_path: Path
) -> None:
    provider.login_as()
    answer = live.command(ALICE, "prod/payments view 30m INC-77 checkout is down")
    assert "Verify with Stand-in IdP" in str(answer.blocks)
    assert not [r for r in live.store.recent() if r.reason.startswith("INC-77")], "nothing before verification"

    assert _sign_in(browser, link(answer), tmp_path, "request") == wording.STEP_UP_DONE_PAGE
    request = next(r for r in live.store.recent() if r.requester == ALICE and r.reason.startswith("INC-77"))
    assert request.state is State.PENDING
    live.wait_published(request.id)
    verified = live.wait_for_event(request.id, Event.IDENTITY_VERIFIED)
    assert verified.details["amr"] == ["pwd", "otp"]
    assert provider.logins[-1]["login_hint"] == "alice@example.com"

    click = live.click(BOB, "approve", request.id, live.root(request.id))
    assert live.request(request.id).approved_by == (), "a click alone must not count"
    assert _sign_in(browser, link(click), tmp_path, "approval") == wording.STEP_UP_DONE_PAGE
    assert live.request(request.id).approved_by == (BOB,)
    for shot in tmp_path.glob("*.png"):  # the test's artifacts, in pytest's temporary folder
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(tmp_path.glob("*.png"))) == 4
