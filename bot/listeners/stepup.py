"""Step-up MFA (``mfa: oidc``): hold an action until its person has signed in afresh, with a second
factor, at the identity provider; then complete it.

Three moments, each a method of ``StepUpDesk``:

1. ``hold``: a listener that meets an action needing step-up stores it under a random single-use
   token (bound to that Slack user and that one action, 5 minutes) and answers with a "Verify with
   <provider>" link button to ``BREAKGLASS_PUBLIC_URL/oidc/start/<token>``.
2. ``start`` (``GET /oidc/start/<token>``): takes the token (once), makes ``state``, ``nonce`` and a
   PKCE verifier, keeps them under ``state`` and redirects to the provider with ``prompt=login`` and
   ``max_age``.
3. ``callback`` (``GET /oidc/callback``): takes ``state`` (once; unknown, used or expired is 400 and
   nothing changes), redeems the code, checks the ID token (adapter: signature, iss, aud, exp, iat;
   domain: nonce, auth_time within max_age, amr/acr, the same person's verified email) and completes
   the action with an ``identity_verified`` entry written in the same transaction. Every refusal is
   one sentence on the page and a ``refused`` audit entry.

Secrets never reach a log line: the token, ``state``, the code and the ID token are never logged.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain import policy
from bot.domain.ids import RequestId, SlackUserId, parse_request_id
from bot.domain.roster import OidcConfig, Roster, StepUpAction
from bot.domain.stepup import Login, LoginRefused, PendingAction, Verified, judge
from bot.oidc import Challenge, OidcClient, ProviderUnavailable
from bot.ports import BreakglassError
from bot.services.access import AccessService
from bot.services.errors import Refused
from bot.settings import Settings
from bot.slack import blocks, wording
from bot.slack.blocks import Message
from bot.slack.identity import IdentityGate, IdentityRefused
from bot.store.stepup import StepUpStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """What the browser gets: a status, and a redirect or one line of text."""

    status: int
    text: str = ""
    location: str | None = None


@dataclass(frozen=True)
class Prompt:
    """The "verify first" answer: as a message with a link button, and as one line of mrkdwn (for
    places without buttons: a form's notice, the Home tab's)."""

    message: Message
    line: str


class StepUpDesk:
    def __init__(
        self,
        settings: Settings,
        store: StepUpStore,
        access: AccessService,
        identity: IdentityGate,
        roster: Callable[[], Roster],
        now: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.store = store
        self.access = access
        self.identity = identity
        self.roster = roster
        self.now = now
        self._clients: dict[OidcConfig, OidcClient] = {}
        self._lock = threading.Lock()

    # --- 1. in Slack ---------------------------------------------------------------------------

    def needed(self, action: StepUpAction, role: str) -> bool:
        return self.roster().needs_step_up(action, role)

    def hold(
        self, user_id: str, action: StepUpAction, payload: Mapping[str, Any], response_url: str | None = None
    ) -> Prompt:
        """Keep the action under a new start link; the answer to show its person."""
        config = self.roster().oidc
        if config is None or self.settings.public_url is None or self.settings.oidc_client_secret is None:
            raise Refused(wording.step_up_not_set_up())
        if self.identity.email_of(user_id) is None:
            # Nothing to match the provider's verified email against: refused before the sign-in,
            # not after it (the callback's check would refuse it too).
            raise Refused(wording.step_up_no_email(config.name))
        token = secrets.token_urlsafe(32)
        self.store.hold(token, PendingAction(user_id, action, dict(payload), self.now(), response_url))
        url = f"{self.settings.public_url}/oidc/start/{token}"
        return Prompt(blocks.step_up_prompt(config.name, action, url), wording.step_up_link(config.name, action, url))

    # --- 2. the start link ---------------------------------------------------------------------

    def start(self, token: str) -> Page:
        pending = self.store.take(token)
        if pending is None or pending.expired(self.now()):
            return Page(400, wording.STEP_UP_LINK_GONE)
        config, client = self._client()
        if config is None or client is None:
            return Page(404, wording.STEP_UP_OFF)
        challenge = Challenge.new()
        try:
            hint = self.identity.email_of(pending.user_id)
        except IdentityRefused:
            hint = None
        try:
            location = client.authorization_url(challenge, login_hint=hint)
        except ProviderUnavailable as exc:
            log.warning("the identity provider is unavailable", extra={"error": str(exc)})
            return Page(502, wording.step_up_unavailable(config.name))
        self.store.begin_login(challenge.state, Login(pending, challenge.nonce, challenge.code_verifier))
        return Page(302, location=location)

    # --- 3. the provider's redirect back -------------------------------------------------------

    def callback(self, query: Mapping[str, str]) -> Page:
        login = self.store.finish_login(query.get("state") or "") if query.get("state") else None
        if login is None or login.pending.expired(self.now()):
            return Page(400, wording.STEP_UP_STATE_GONE)
        pending = login.pending
        config, client = self._client()
        if config is None or client is None:
            return Page(404, wording.STEP_UP_OFF)
        if query.get("error"):
            # The provider's own refusal (access_denied, login_required…): its code only, never its prose.
            error = query["error"][:64]
            reason = wording.step_up_provider_refused(config.name, error)
            return self._refuse(pending, "provider_error", reason, {"error": error})
        code = query.get("code")
        if not code:
            return Page(400, wording.STEP_UP_STATE_GONE)
        claims: Mapping[str, Any] = {}
        try:
            claims = client.redeem(code, login.code_verifier)
            expected = self.identity.email_of(pending.user_id)
            verified = judge(claims, config, nonce=login.nonce, expected_email=expected, now=self.now())
        except LoginRefused as refused:
            return self._refuse(pending, refused.kind, refused.reason, _who(claims))
        except ProviderUnavailable as exc:
            log.warning("the identity provider is unavailable", extra={"error": str(exc)})
            return Page(502, wording.step_up_unavailable(config.name))
        except IdentityRefused as refused:
            return self._refuse(pending, "slack_lookup", refused.reason, {})
        return self._complete(pending, verified)

    def _complete(self, pending: PendingAction, verified: Verified) -> Page:
        person = SlackUserId(pending.user_id)
        details = verified.details()
        payload = pending.payload
        try:
            if pending.action == "request":
                self.access.submit(policy.Ask.resumed(person, payload), verified=details)
            else:
                request_id = parse_request_id(str(payload.get("request_id") or ""))
                if request_id is None:
                    return Page(400, wording.STEP_UP_STATE_GONE)
                self.access.approve(request_id, person, verified=details)
        except Refused as refused:
            # Verified, but the action itself is no longer allowed (decided meanwhile, roster changed).
            request_id = parse_request_id(str(payload.get("request_id") or ""))
            self.access.refuse(request_id, person, pending.action, refused.reason, _verified_refs(details))
            return Page(409, wording.step_up_refused_page(refused.reason))
        return Page(200, wording.STEP_UP_DONE_PAGE)

    def _refuse(self, pending: PendingAction, kind: str, reason: str, seen: Mapping[str, Any]) -> Page:
        request_id: RequestId | None = parse_request_id(str(pending.payload.get("request_id") or ""))
        details = {"step_up": kind, **seen}
        try:
            self.access.refuse(request_id, SlackUserId(pending.user_id), pending.action, reason, details)
        except BreakglassError:
            log.warning("could not audit a refused step-up", extra={"step_up": kind})
            raise
        return Page(403, wording.step_up_refused_page(reason))

    def _client(self) -> tuple[OidcConfig | None, OidcClient | None]:
        config = self.roster().oidc
        secret = self.settings.oidc_client_secret
        redirect = self.settings.oidc_redirect_uri
        if config is None or secret is None or redirect is None:
            return config, None
        with self._lock:
            client = self._clients.get(config)
            if client is None:
                client = self._clients[config] = OidcClient(config, secret, redirect)
            return config, client


def _who(claims: Mapping[str, Any]) -> dict[str, Any]:
    """What an auditor needs of a refused login's claims (who it was, how), never the token."""
    keep = ("iss", "sub", "email", "amr", "acr", "auth_time", "aud")
    return {f"claimed_{k}": claims[k] for k in keep if k in claims}


def _verified_refs(details: Mapping[str, Any]) -> dict[str, Any]:
    return {f"verified_{k}": v for k, v in details.items() if k in ("issuer", "subject", "amr", "acr", "auth_time")}
