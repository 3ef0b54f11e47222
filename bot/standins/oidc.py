"""An OpenID Connect provider over real HTTP, for tests and ``breakglass demo``: not part of the product.

It answers as a standard provider does: a discovery document, an authorization endpoint, a token
endpoint (``client_secret_basic``, or ``client_secret_post`` when started with ``auth_methods``) that
checks the client, the code (single-use, 60 s), the ``redirect_uri`` and the PKCE S256 verifier, and a
JWKS with an RSA key and an EC (P-256) key made at start. ID tokens are RS256 (or ES256) JWTs.

The authorization endpoint logs in a *chosen* person with no form: ``next_login`` says who (by
default the ``login_hint`` it was sent, with ``amr: ["pwd", "otp"]`` and ``auth_time`` now). A test
sets it to make each kind of bad login: another email, an old ``auth_time``, no second factor, a key
the JWKS does not hold, another audience, a different nonce.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bot.standins.http import serve, shut

CLIENT_ID = "breakglass-stand-in"
CLIENT_SECRET = "stand-in-oidc-client-secret"  # noqa: S105 - a fake secret for a fake provider


@dataclass(frozen=True)
class NextLogin:
    """Who the authorization endpoint signs in next, and how."""

    email: str | None = None  # None: the login_hint it was sent
    email_verified: bool = True
    amr: tuple[str, ...] | None = ("pwd", "otp")
    acr: str | None = None
    auth_age: float = 0.0  # seconds between the sign-in and the token
    key: str = "rsa"  # rsa | ec | unknown (a key the JWKS does not publish)
    audience: str | None = None  # None: the client id
    nonce: str | None = None  # None: the nonce it was sent
    deny: str | None = None  # an OAuth error code to redirect back with instead of a code


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    claims: dict[str, Any]
    key: str
    issued: float


@dataclass
class OidcProviderDouble:
    host: str = "127.0.0.1"
    port: int = 0
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    clock: Callable[[], float] = time.time
    # True: /authorize shows a sign-in page (the login hint and a one-time-code field) whose form posts
    # back to /authorize, as a provider's login does in a browser; False: it signs in at once (302).
    login_page: bool = False
    next_login: NextLogin = field(default_factory=NextLogin)
    logins: list[dict[str, Any]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._ec = ec.generate_private_key(ec.SECP256R1())
        self._stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._codes: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() the provider first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> OidcProviderDouble:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = serve(Handler, self.host, self.port, "oidc-double")
        return self

    def stop(self) -> None:
        shut(self._server)
        self._server = None

    def login_as(self, **changes: Any) -> None:
        self.next_login = replace(NextLogin(), **changes)

    # --- the endpoints -------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid", "email"],
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "amr", "acr", "auth_time", "nonce"],
        }

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key, alg in (("rsa-1", self._rsa, "RS256"), ("ec-1", self._ec, "ES256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def authorize_check(self, query: Mapping[str, str]) -> str | None:
        """What is wrong with an authorization request, or None."""
        if query.get("client_id") != self.client_id or not query.get("redirect_uri"):
            return "unknown client or no redirect_uri"
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return "response_type must be code and scope must hold openid"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE S256 is required"
        return None

    def authorize(self, query: Mapping[str, str]) -> tuple[int, str]:
        """(status, Location or error text)."""
        problem = self.authorize_check(query)
        if problem is not None:
            return 400, problem
        redirect = query["redirect_uri"]
        login = self.next_login
        with self._lock:
            self.logins.append(dict(query))
        state = query.get("state", "")
        if login.deny:
            return 302, f"{redirect}?{urlencode({'error': login.deny, 'state': state})}"
        now = self.clock()
        email = login.email or query.get("login_hint") or "nobody@example.com"
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "00u" + base64.b32encode(email.encode()).decode().rstrip("=").lower()[:17],
            "aud": login.audience or self.client_id,
            "iat": int(now),
            "exp": int(now) + 300,
            "auth_time": int(now - login.auth_age),
            "nonce": login.nonce or query.get("nonce"),
            "email": email,
            "email_verified": login.email_verified,
        }
        if login.amr is not None:
            claims["amr"] = list(login.amr)
        if login.acr is not None:
            claims["acr"] = login.acr
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(self.client_id, redirect, query["code_challenge"], claims, login.key, now)
        return 302, f"{redirect}?{urlencode({'code': code, 'state': state})}"

    def token(self, form: Mapping[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, secret, method = self._client_auth(form, authorization)
        with self._lock:
            self.token_requests.append({"method": method, "grant_type": form.get("grant_type")})
        if method not in self.auth_methods or client_id != self.client_id or secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or self.clock() - grant.issued > 60 or grant.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(_sha256(verifier)).rstrip(b"=").decode()
        if challenge != grant.code_challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        if grant.key == "ec":
            id_token = jwt.encode(grant.claims, self._ec, algorithm="ES256", headers={"kid": "ec-1"})
        elif grant.key == "unknown":
            id_token = jwt.encode(grant.claims, self._stranger, algorithm="RS256", headers={"kid": "rsa-9"})
        else:
            id_token = jwt.encode(grant.claims, self._rsa, algorithm="RS256", headers={"kid": "rsa-1"})
        access = secrets.token_urlsafe(24)
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

    @staticmethod
    def _client_auth(form: Mapping[str, str], authorization: str | None) -> tuple[str, str, str]:
        if authorization and authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            except ValueError:
                return "", "", "client_secret_basic"
            client_id, _, secret = decoded.partition(":")
            return client_id, secret, "client_secret_basic"
        return form.get("client_id", ""), form.get("client_secret", ""), "client_secret_post"


def _sign_in_page(query: Mapping[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items()
    )
    who = html.escape(query.get("login_hint") or "someone")
    return (
        "<!DOCTYPE html><html><head><title>Sign in - Stand-in IdP</title></head><body>"
        f"<h1>Sign in to Stand-in IdP</h1><p>Signing in as {who}.</p>"
        f'<form method="post" action="/authorize">{hidden}'
        '<label>One-time code <input id="otp" name="otp" autocomplete="one-time-code"></label>'
        '<button id="sign-in" type="submit">Sign in</button></form></body></html>'
    )


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class _Handler(BaseHTTPRequestHandler):
    owner: OidcProviderDouble

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the URLs carry codes and states

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/.well-known/openid-configuration":
            self._json(200, self.owner.discovery())
        elif parts.path == "/jwks":
            self._json(200, self.owner.jwks())
        elif parts.path == "/authorize" and self.owner.login_page and self.owner.authorize_check(query) is None:
            self._html(200, _sign_in_page(query))
        elif parts.path == "/authorize":
            self._authorized(*self.owner.authorize(query))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path == "/authorize":
            # The sign-in page's form: the original query, carried in hidden fields, and the code typed.
            self._authorized(*self.owner.authorize({k: v for k, v in self._form().items() if k != "otp"}))
            return
        if urlsplit(self.path).path != "/token":
            self._json(404, {"error": "not_found"})
            return
        form = self._form()
        status, body = self.owner.token(form, self.headers.get("Authorization"))
        self._json(status, body)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

    def _authorized(self, status: int, target: str) -> None:
        """The authorization endpoint's answer: back to the client (302), or the request's fault."""
        if status == 302:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(status, {"error": "invalid_request", "error_description": target})

    def _html(self, status: int, page: str) -> None:
        payload = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, body: Mapping[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
