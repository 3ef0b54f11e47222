"""What the HTTP adapters share: which CAs to trust, how long to wait, and what to do with a 429.

A lookup on the approval path must end soon, one way or the other: every call has a bounded timeout,
a rate limit is waited out only a bounded number of times and only for as long as the service's
``Retry-After`` asks (never longer than ``Patience.max_wait``), and one whole lookup — however many
calls and waits it takes — starts no call and no wait past ``Patience.deadline``. Past any of those
the adapter raises ``LookupFailed`` and the humans decide. The wait and the clock are injected
(``Patience.sleep``, ``Patience.clock``), so tests do not sleep on the wall clock.
"""

from __future__ import annotations

import math
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from bot.ports import LookupFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """How long an adapter waits: per HTTP call, and for rate limits."""

    timeout: float = 5.0  # seconds per HTTP call (connect, and each read)
    retries: int = 2  # how many 429s are waited out before the lookup fails
    max_wait: float = 10.0  # a Retry-After longer than this is not waited for at all
    deadline: float = 15.0  # seconds for one whole lookup: no call or wait starts after it
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.deadline <= 0 or self.retries < 0 or self.max_wait < 0:
            raise ValueError("timeout and deadline must be positive; retries and max_wait not negative")


_lookup = threading.local()


@contextmanager
def one_lookup(patience: Patience) -> Iterator[None]:
    """Everything inside is one lookup, held to ``patience.deadline`` (a lookup inside another
    shares the outer one's deadline)."""
    if getattr(_lookup, "ends", None) is not None:
        yield
        return
    _lookup.ends = patience.clock() + patience.deadline
    try:
        yield
    finally:
        _lookup.ends = None


def _time_left(patience: Patience) -> float:
    ends = getattr(_lookup, "ends", None)
    return math.inf if ends is None else ends - patience.clock()


class RateLimited(Exception):
    """A 429 from the service (raised inside an adapter, never past it)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited; retry after {wait:g} s")
        self.wait = wait


def retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110);
    1 s when it is missing or unreadable."""
    if value is None:
        return 1.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now()).total_seconds())


def with_retries(service: str, call: Callable[[], T], patience: Patience) -> T:
    """``call()``, waiting out up to ``patience.retries`` rate limits as the service asks, within the
    lookup's deadline."""
    attempt = 0
    while True:
        if _time_left(patience) <= 0:
            raise LookupFailed(f"{service} did not finish answering within {patience.deadline:g} seconds.")
        try:
            return call()
        except RateLimited as limited:
            too_long = limited.wait > min(patience.max_wait, _time_left(patience))
            if attempt >= patience.retries or too_long:
                raise LookupFailed(
                    f"{service} is rate-limiting breakglass (429 Too Many Requests) and asked it to wait "
                    f"{limited.wait:g} s.",
                    delay=max(limited.wait, 1.0),
                ) from None
            attempt += 1
            patience.sleep(limited.wait)


def ca_bundle() -> str | None:
    """The CA bundle the contract names (``REQUESTS_CA_BUNDLE``, then ``SSL_CERT_FILE``), or None for
    the system's store."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or None


def trust_problem() -> str | None:
    """Why the CA bundle in force cannot be used (it names no readable file), or None. A process is
    not stopped for it — its lookups fail (the humans decide) and ``doctor`` says why."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        path = os.environ.get(name)
        if path:
            if not (os.path.isfile(path) and os.access(path, os.R_OK)):
                return f"{name} names {path}, which is not a readable file"
            return None
    return None


def ssl_context() -> ssl.SSLContext:
    """A client TLS context trusting ``ca_bundle()`` when set, else the system's CA store. A bundle
    that cannot be loaded trusts nothing (every handshake fails), never the system's store instead."""
    bundle = ca_bundle()
    if not bundle:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def refuse_untrusted(service: str) -> None:
    """Raises LookupFailed when the CA bundle in force cannot be used."""
    problem = trust_problem()
    if problem is not None:
        raise LookupFailed(f"{service} cannot be reached safely: {problem}.")


@contextmanager
def translated(
    service: str,
    doing: str,
    patience: Patience,
    *,
    answered: type[BaseException],
    status_of: Callable[[BaseException], int],
    unanswered: type[BaseException],
) -> Iterator[None]:
    """One lookup of ``service`` within ``patience``, its client's errors made one ``LookupFailed``
    sentence each: ``answered`` (an HTTP error status, read by ``status_of``), ``unanswered`` (no
    HTTP answer at all) and an answer breakglass could not read. Refused at once when the CA bundle in
    force cannot be used."""
    try:
        refuse_untrusted(service)
        with one_lookup(patience):
            yield
    except LookupFailed:
        raise
    except answered as exc:
        raise failure_of_status(service, status_of(exc), doing) from None
    except unanswered as exc:
        raise failure_of_transport(service, exc, patience.timeout) from None
    except (KeyError, TypeError, ValueError):
        raise LookupFailed(f"{service} answered something breakglass could not read while {doing}.") from None


def failure_of_transport(service: str, exc: BaseException, timeout: float) -> LookupFailed:
    """One sentence for a call that got no HTTP answer: a timeout, a refused connection, an
    untrusted certificate. Never the exception's own text (it may carry a URL or a header)."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    names = " ".join(type(c).__name__ for c in chain).lower()
    texts = " ".join(str(c) for c in chain)
    if "certificate_verify_failed" in texts.lower() or any(isinstance(c, ssl.SSLCertVerificationError) for c in chain):
        return LookupFailed(
            f"{service}'s TLS certificate is not trusted (a private CA goes in SSL_CERT_FILE or REQUESTS_CA_BUNDLE)."
        )
    if "timeout" in names:
        return LookupFailed(f"{service} did not answer within {timeout:g} seconds.")
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "refused" in texts.lower():
        return LookupFailed(f"{service} could not be reached (connection refused).")
    return LookupFailed(f"{service} could not be reached (a network error).")


def failure_of_status(service: str, status: int, doing: str) -> LookupFailed:
    """One sentence for an HTTP error status that is not the caller's business (not a 404); ``doing``
    is what was under way ("reading the on-call list")."""
    if status == 401:
        return LookupFailed(f"{service} rejected breakglass's credentials (401 Unauthorized) while {doing}.")
    if status == 403:
        return LookupFailed(f"{service} refused breakglass's credentials (403 Forbidden) while {doing}.")
    if status >= 500:
        return LookupFailed(f"{service} failed with a server error ({status}) while {doing}.")
    return LookupFailed(f"{service} answered {status} while {doing}.")
