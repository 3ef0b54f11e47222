"""Step-up verification: what is waiting for a login at the identity provider, and whether a login's
verified claims count for that person at that moment. Pure: no HTTP, no Redis, no Slack.

The ID token's signature, ``iss``, ``aud``, ``exp`` and ``iat`` are checked by the OIDC adapter (with
PyJWT) before its claims reach here; this module decides what they must say to count: the same
``nonce`` as was sent, a login no older than ``max_age``, a multi-factor method, the same person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.roster import OidcConfig, StepUpAction

# How long a start link and a login in progress stay usable (the contract's 5 minutes).
STEP_UP_LIFETIME = timedelta(minutes=5)
# Clocks differ a little between the provider and us; a login a few seconds "in the future" is the same login.
CLOCK_SKEW = timedelta(seconds=30)


@dataclass(frozen=True)
class PendingAction:
    """An action held until its person has verified: who, which action, and what it carries (for a
    request the ask; for an approval the request id). Stored under a single-use token."""

    user_id: str
    action: StepUpAction
    payload: Mapping[str, Any]
    created_at: datetime
    response_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "action": self.action,
            "payload": dict(self.payload),
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "response_url": self.response_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingAction:
        return cls(
            user_id=str(data["user_id"]),
            action=data["action"],
            payload=dict(data["payload"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            response_url=data.get("response_url"),
        )

    def expired(self, now: datetime) -> bool:
        return now - self.created_at > STEP_UP_LIFETIME


@dataclass(frozen=True)
class Login:
    """A login in progress at the provider: the action it is for, and the values only we know."""

    pending: PendingAction
    nonce: str
    code_verifier: str

    def to_dict(self) -> dict[str, Any]:
        return {"pending": self.pending.to_dict(), "nonce": self.nonce, "code_verifier": self.code_verifier}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Login:
        return cls(PendingAction.from_dict(data["pending"]), str(data["nonce"]), str(data["code_verifier"]))


@dataclass(frozen=True)
class Verified:
    """What the audit log and the thread say about a verification."""

    issuer: str
    subject: str
    email: str
    amr: tuple[str, ...]
    acr: str | None
    auth_time: datetime
    provider: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return ", ".join(self.amr) if self.amr else (self.acr or "?")

    def details(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "issuer": self.issuer,
            "subject": self.subject,
            "email": self.email,
            "amr": list(self.amr),
            "acr": self.acr,
            "auth_time": self.auth_time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }


class LoginRefused(Exception):
    """The login does not count; ``reason`` is one sentence, ``kind`` a short word for the audit log."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def judge(
    claims: Mapping[str, Any],
    config: OidcConfig,
    *,
    nonce: str,
    expected_email: str | None,
    now: datetime,
) -> Verified:
    """The verification ``claims`` amount to, or LoginRefused saying why they do not."""
    if claims.get("nonce") != nonce:
        raise LoginRefused("nonce", "The sign-in answered a different login attempt; start again from Slack.")
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
        raise LoginRefused("stale", f"{config.name} did not say when you signed in, so it cannot count as fresh.")
    at = datetime.fromtimestamp(auth_time, UTC)
    if now - at > config.max_age + CLOCK_SKEW or at - now > CLOCK_SKEW:
        raise LoginRefused(
            "stale", f"Your sign-in at {config.name} is older than the roster allows; sign in again from Slack."
        )
    raw_amr = claims.get("amr")
    amr = tuple(str(v) for v in raw_amr) if isinstance(raw_amr, list) else ()
    acr = claims.get("acr") if isinstance(claims.get("acr"), str) else None
    if not (set(amr) & set(config.amr) or (acr is not None and acr in config.acr)):
        raise LoginRefused(
            "no_mfa", f"{config.name} did not report a multi-factor sign-in; sign in again with your second factor."
        )
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        raise LoginRefused("other_person", f"{config.name} gave no verified email, so it cannot be matched to you.")
    if expected_email is None:
        raise LoginRefused(
            "no_email",
            f"Your Slack account has no confirmed email address, so the sign-in at {config.name} cannot be matched "
            "to you; confirm your email in Slack, or ask your platform team to set your email under people: in the roster.",
        )
    if email.casefold() != expected_email.casefold():
        raise LoginRefused(
            "other_person", f"You signed in at {config.name} as someone else; sign in as yourself from Slack."
        )
    return Verified(
        issuer=str(claims.get("iss")),
        subject=str(claims.get("sub")),
        email=email,
        amr=amr,
        acr=acr,
        auth_time=at,
        provider=config.name,
    )
