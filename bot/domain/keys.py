"""The keys derived from ``BREAKGLASS_SIGNING_KEY``, one per purpose, and nothing else.

The signing key never enters Redis: whoever can write Redis must not be able to write an audit
history that verifies, nor a binding the sweep keeps. Each purpose gets its own key,
HMAC-SHA256(signing key, purpose label), so a value signed for one purpose (an audit entry) is never
valid for another (a warrant). Only the standard library's ``hmac``/``hashlib`` are used: no
hand-written cryptography.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

# Shorter keys can be guessed offline from one signed value (an audit entry, a binding's warrant).
MIN_SIGNING_KEY = 32


class Purpose(StrEnum):
    AUDIT_CHAIN = "breakglass/audit-chain/v1"
    WARRANT = "breakglass/warrant/v1"


class SigningKey:
    """The deployment's secret; derives a key per purpose. Its repr never shows the secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SIGNING_KEY:
            raise ValueError(f"must be at least {MIN_SIGNING_KEY} characters")
        self._secret = secret.encode("utf-8")

    def derive(self, purpose: Purpose) -> bytes:
        return hmac.new(self._secret, purpose.value.encode("ascii"), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "SigningKey(**********)"


def sign(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 of ``message`` under ``key``, as 64 hex digits."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Signer:
    """``sign`` under one key, for many messages: the key is set into HMAC once, and each message
    starts from a copy of that keyed state (``audit verify`` signs every entry of the log again, and
    setting the key up costs a third of each signature). Same digests as ``sign``."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def sign(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "Signer(**********)"


def signature_matches(key: bytes, message: bytes, signature: str) -> bool:
    """In constant time, whether ``signature`` is ``sign(key, message)``."""
    return hmac.compare_digest(sign(key, message), signature)
