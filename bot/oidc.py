"""The OpenID Connect client: discovery, the authorization URL, the code exchange, the ID token's signature.

Every piece of cryptography is PyJWT's (``PyJWKClient`` fetches the provider's JWKS and picks the key
by ``kid``; ``jwt.decode`` checks the RS256/ES256 signature, ``iss``, ``aud``, ``exp`` and ``iat``).
This module only asks in the standard's order and translates what goes wrong: a provider that cannot
be reached or answers nonsense is ``ProviderUnavailable``; a token that does not verify is
``LoginRefused`` with one sentence. Neither carries a code, a token or the client secret, and nothing
here logs one.

Outbound HTTPS trusts the system's CA store, or ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE`` when set.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from pydantic import SecretStr

from bot.domain.roster import OidcConfig
from bot.domain.stepup import LoginRefused
from bot.ports import TemporaryError

SCOPES = "openid email"
ALGORITHMS = ["RS256", "ES256"]
TIMEOUT = 10.0
DISCOVERY_TTL = 3600.0


class ProviderUnavailable(TemporaryError):
    """The identity provider could not be reached, or answered something no provider would."""


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...]

    @property
    def auth_method(self) -> str:
        # The standard's default is client_secret_basic; post only when that is all the provider takes.
        return "client_secret_post" if self.token_auth_methods == ("client_secret_post",) else "client_secret_basic"


@dataclass(frozen=True)
class Challenge:
    """The values one login needs: ``state`` and ``nonce`` travel through the browser, the verifier stays here."""

    state: str
    nonce: str
    code_verifier: str

    @classmethod
    def new(cls) -> Challenge:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48))

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _ca_bundle() -> str | bool:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True


class OidcClient:
    def __init__(
        self,
        config: OidcConfig,
        client_secret: SecretStr,
        redirect_uri: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.clock = clock
        self._discovery: tuple[float, Discovery] | None = None
        self._jwks: PyJWKClientFor | None = None
        self._lock = threading.Lock()

    # --- discovery -------------------------------------------------------------------------------

    def discover(self) -> Discovery:
        with self._lock:
            cached = self._discovery
        if cached is not None and self.clock() - cached[0] < DISCOVERY_TTL:
            return cached[1]
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url, "its discovery document")
        try:
            found = Discovery(
                issuer=str(document["issuer"]),
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
                token_auth_methods=tuple(
                    document.get("token_endpoint_auth_methods_supported") or ("client_secret_basic",)
                ),
            )
        except KeyError as exc:
            raise ProviderUnavailable(f"{self.config.name}'s discovery document lacks {exc.args[0]}") from None
        if found.issuer != self.config.issuer:
            # OIDC Discovery 4.3: the document must name the issuer it was fetched for.
            raise ProviderUnavailable(f"{self.config.name}'s discovery document names another issuer")
        with self._lock:
            self._discovery = (self.clock(), found)
            if self._jwks is None or self._jwks.uri != found.jwks_uri:
                self._jwks = PyJWKClientFor(found.jwks_uri)
        return found

    def jwks_keys(self) -> int:
        """How many signing keys the provider publishes (``doctor``)."""
        self.discover()
        assert self._jwks is not None
        try:
            return len(self._jwks.client.get_signing_keys())
        except jwt.PyJWKClientError as exc:
            raise ProviderUnavailable(f"{self.config.name}'s JWKS: {exc}") from None

    # --- the login -------------------------------------------------------------------------------

    def authorization_url(self, challenge: Challenge, login_hint: str | None = None) -> str:
        found = self.discover()
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPES,
            "state": challenge.state,
            "nonce": challenge.nonce,
            "code_challenge": challenge.code_challenge,
            "code_challenge_method": "S256",
            "max_age": str(int(self.config.max_age.total_seconds())),
            # A fresh login, not the session the browser already has: that is the point of step-up.
            "prompt": "login",
        }
        if login_hint:
            params["login_hint"] = login_hint
        separator = "&" if "?" in found.authorization_endpoint else "?"
        return found.authorization_endpoint + separator + urlencode(params)

    def redeem(self, code: str, code_verifier: str) -> Mapping[str, Any]:
        """The verified claims of the ID token that ``code`` is exchanged for. The caller checks nonce,
        freshness, factor and person (``bot.domain.stepup.judge``)."""
        found = self.discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: tuple[str, str] | None = None
        if found.auth_method == "client_secret_post":
            form["client_id"] = self.config.client_id
            form["client_secret"] = self.client_secret.get_secret_value()
        else:
            auth = (self.config.client_id, self.client_secret.get_secret_value())
        try:
            answer = requests.post(
                found.token_endpoint,
                data=form,
                auth=auth,
                headers={"Accept": "application/json"},
                timeout=TIMEOUT,
                verify=_ca_bundle(),
            )
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"{self.config.name}'s token endpoint: {type(exc).__name__}") from None
        if answer.status_code == 400 or answer.status_code == 401:
            # invalid_grant (a used or expired code), invalid_client: the error code alone, never the body.
            error = _json(answer).get("error", answer.status_code)
            raise LoginRefused("token_refused", f"{self.config.name} refused the sign-in's code ({error}).")
        if answer.status_code != 200:
            raise ProviderUnavailable(f"{self.config.name}'s token endpoint answered {answer.status_code}")
        id_token = _json(answer).get("id_token")
        if not isinstance(id_token, str):
            raise ProviderUnavailable(f"{self.config.name}'s token endpoint gave no ID token")
        return self.verify(id_token)

    def verify(self, id_token: str) -> Mapping[str, Any]:
        found = self.discover()
        assert self._jwks is not None
        name = self.config.name
        try:
            key = self._jwks.client.get_signing_key_from_jwt(id_token)
        except jwt.PyJWKClientConnectionError:
            raise ProviderUnavailable(f"{name}'s JWKS could not be fetched") from None
        except (jwt.PyJWKClientError, jwt.DecodeError):
            raise LoginRefused("unknown_key", f"The sign-in was signed by a key {name} does not publish.") from None
        try:
            claims: Mapping[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.config.client_id,
                issuer=found.issuer,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
                leeway=30,
            )
        except jwt.InvalidAudienceError:
            raise LoginRefused("wrong_audience", f"The sign-in at {name} was meant for another application.") from None
        except jwt.InvalidIssuerError:
            raise LoginRefused("wrong_issuer", f"The sign-in came from another issuer than {name}.") from None
        except jwt.ExpiredSignatureError:
            raise LoginRefused("expired", f"The sign-in at {name} has expired; start again from Slack.") from None
        except jwt.InvalidSignatureError:
            raise LoginRefused("bad_signature", f"The sign-in's signature does not match {name}'s key.") from None
        except jwt.InvalidTokenError as exc:
            raise LoginRefused("invalid_token", f"The sign-in at {name} is not a valid ID token ({exc}).") from None
        azp = claims.get("azp")
        if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and azp != self.config.client_id:
            # OIDC Core 3.1.3.7: with several audiences, azp must name us.
            raise LoginRefused("wrong_audience", f"The sign-in at {name} was meant for another application.")
        return claims

    # --- HTTP ------------------------------------------------------------------------------------

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            answer = requests.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT, verify=_ca_bundle())
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"{self.config.name}'s {what}: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise ProviderUnavailable(f"{self.config.name}'s {what} answered {answer.status_code}")
        document = _json(answer)
        if not document:
            raise ProviderUnavailable(f"{self.config.name}'s {what} is not JSON")
        return document


class PyJWKClientFor:
    """PyJWT's JWKS client for one URL, trusting the same CA bundle as the rest of this module."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        bundle = _ca_bundle()
        context = ssl.create_default_context(cafile=bundle if isinstance(bundle, str) else None)
        # A key the provider rotated in is fetched once when a token names it (PyJWT refetches on an
        # unknown kid); the set is cached for five minutes otherwise.
        self.client = jwt.PyJWKClient(uri, cache_keys=True, lifespan=300, timeout=int(TIMEOUT), ssl_context=context)


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
