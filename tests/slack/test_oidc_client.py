"""The OIDC adapter against the provider stand-in over HTTP: how it authenticates at the token
endpoint, what it makes of a provider that answers wrongly, and what doctor says about it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pydantic import SecretStr

from bot.doctor import Checklist, _check_oidc
from bot.domain.roster import OidcConfig
from bot.domain.stepup import LoginRefused
from bot.oidc import Challenge, OidcClient, ProviderUnavailable
from bot.settings import load_settings
from bot.standins.oidc import CLIENT_ID, CLIENT_SECRET, OidcProviderDouble
from tests.fakes import roster_with

REDIRECT = "http://127.0.0.1:9/oidc/callback"


def config(issuer: str) -> OidcConfig:
    return OidcConfig(issuer, CLIENT_ID, timedelta(minutes=5), ("otp",), (), frozenset({"request"}), "Stand-in")


@pytest.fixture
def provider() -> Iterator[OidcProviderDouble]:
    double = OidcProviderDouble(auth_methods=("client_secret_post",)).start()
    yield double
    double.stop()


def code_for(client: OidcClient, challenge: Challenge) -> str:
    answer = requests.get(client.authorization_url(challenge, "alice@example.com"), allow_redirects=False, timeout=10)
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def test_client_secret_post_is_used_when_discovery_lists_only_that(provider: OidcProviderDouble) -> None:
    client = OidcClient(config(provider.issuer), SecretStr(CLIENT_SECRET), REDIRECT)
    challenge = Challenge.new()
    claims = client.redeem(code_for(client, challenge), challenge.code_verifier)
    assert claims["email"] == "alice@example.com"
    assert provider.token_requests[-1]["method"] == "client_secret_post"


def test_a_code_redeemed_with_another_verifier_is_refused(provider: OidcProviderDouble) -> None:
    client = OidcClient(config(provider.issuer), SecretStr(CLIENT_SECRET), REDIRECT)
    challenge = Challenge.new()
    with pytest.raises(LoginRefused, match="refused the sign-in"):
        client.redeem(code_for(client, challenge), Challenge.new().code_verifier)


def test_a_discovery_document_naming_another_issuer_is_not_trusted(provider: OidcProviderDouble) -> None:
    client = OidcClient(config(provider.issuer + "/other"), SecretStr(CLIENT_SECRET), REDIRECT)
    with pytest.raises(ProviderUnavailable):
        client.discover()


def test_doctor_checks_discovery_jwks_and_the_redirect_uri(provider: OidcProviderDouble) -> None:
    roster = roster_with(mfa="oidc", oidc={"issuer": provider.issuer, "client_id": CLIENT_ID, "amr": ["otp"]})
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-doctor",
            "SLACK_SIGNING_SECRET": "s" * 32,
            "BREAKGLASS_SIGNING_KEY": "k" * 40,
            "BREAKGLASS_PUBLIC_URL": "https://breakglass.example.com/",
            "BREAKGLASS_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }
    )
    out = io.StringIO()
    checks = Checklist(out)
    _check_oidc(checks, settings, roster)
    text = out.getvalue()
    assert "https://breakglass.example.com/oidc/callback" in text
    assert "discovery document answers" in text
    assert "publishes 2 signing keys" in text
    assert checks.counts["fail"] == 0


def test_public_url_must_be_https_except_on_loopback() -> None:
    base = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s" * 32, "BREAKGLASS_SIGNING_KEY": "k" * 40}
    with pytest.raises(ValueError, match="BREAKGLASS_PUBLIC_URL: must be an https:// URL"):
        load_settings({**base, "BREAKGLASS_PUBLIC_URL": "http://breakglass.example.com"})
    assert load_settings({**base, "BREAKGLASS_PUBLIC_URL": "http://127.0.0.1:3000"}).public_url
