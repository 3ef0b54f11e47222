"""Okta groups (``groups.<name>: {okta_group: 00g…}``) through the official ``okta`` SDK.

The SDK is asyncio-based; breakglass's processes are threaded (gunicorn's gthread workers, RQ). Each
``OktaGroups`` owns one event loop in a thread of its own, started at the first call in a process (a
gunicorn worker forked after the app was built starts its own), with one aiohttp session on it; every
call from any thread runs there (``run_coroutine_threadsafe``) and waits at most ``timeout`` seconds.

Only ACTIVE users count: a suspended, deprovisioned, locked-out or not yet activated account is not
someone who may approve or ask. A 429 is honoured: no call is made before its ``X-Rate-Limit-Reset``
(the cache above keeps the last read meanwhile). The SDK's own retries are off (they would sleep in a
Slack listener); so are its cache and its logging, whose debug lines carry the ``SSWS`` token.

Outbound HTTPS trusts the system's CA store, or ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` when set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import aiohttp
from okta.client import Client
from pydantic import SecretStr

from bot.ports import LookupFailed

T = TypeVar("T")

PAGE = 200  # Okta's advice for this endpoint (its default, 1000, is "for historical reasons")
TIMEOUT = 10.0
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')

# The SDK logs each request (headers and all) at DEBUG under this name: never, whatever the root level.
logging.getLogger("okta-sdk-python").disabled = True


class OktaGroups:
    """``GroupDirectory`` over Okta's ``GET /api/v1/groups/{id}/users``. Thread-safe."""

    def __init__(
        self,
        org_url: str,
        token: SecretStr,
        *,
        timeout: float = TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.org_url = org_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._blocked_until = 0.0
        # Okta's documented header is "SSWS <token>"; the SDK's generated operations write "SSWS<token>"
        # (authorization_mode + token), so each call names the header itself, as the SDK allows.
        self._auth = {
            "type": "api_key",
            "in": "header",
            "key": "Authorization",
            "value": f"SSWS {token.get_secret_value()}",
        }

    def member_emails(self, group_id: str) -> Sequence[str]:
        with self._lock:
            blocked_until = self._blocked_until
        if self.clock() < blocked_until:
            raise LookupFailed(_rate_limited(blocked_until))
        return self._run(self._read_all(group_id))

    async def _read_all(self, group_id: str) -> list[str]:
        client = await self._connected()
        emails: list[str] = []
        after: str | None = None
        while True:
            users, answer, error = await client.list_group_users(
                group_id, after=after, limit=PAGE, _request_auth=self._auth
            )
            if error is not None:
                raise self._translated(error)
            for user in users or []:
                email = getattr(getattr(user, "profile", None), "email", None)
                status = getattr(user, "status", None)
                status = getattr(status, "value", status)
                if status == "ACTIVE" and isinstance(email, str) and email:
                    emails.append(email.strip().lower())
            after = _next_cursor(answer.headers if answer is not None else None)
            if after is None:
                return emails

    async def _connected(self) -> Client:
        if self._client is None:
            client = Client(
                {
                    "orgUrl": self.org_url,
                    "token": self._token.get_secret_value(),
                    "authorizationMode": "SSWS",
                    "requestTimeout": int(self.timeout),
                    "rateLimit": {"maxRetries": 0},
                    "cache": {"enabled": False},
                    "logging": {"enabled": False},
                }
            )
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
            context = ssl.create_default_context(cafile=bundle or None)
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
            client._request_executor._http_client.set_session(session)
            self._client = client
        return self._client

    def _translated(self, error: Any) -> LookupFailed:
        status = getattr(error, "status", None)
        code = getattr(error, "error_code", None)
        tag = f"{status} {code}" if code else str(status)
        if status == 401:
            return LookupFailed(f"Okta refused BREAKGLASS_OKTA_TOKEN, {tag}")
        if status == 403:
            return LookupFailed(f"BREAKGLASS_OKTA_TOKEN may not read groups, {tag}")
        if status == 404:
            return LookupFailed(f"Okta has no such group, {tag}")
        if status == 429:
            headers = getattr(error, "headers", None) or {}
            try:
                reset = float(headers.get("X-Rate-Limit-Reset", ""))
            except ValueError:
                reset = self.clock() + 60
            with self._lock:
                self._blocked_until = max(self._blocked_until, reset)
            return LookupFailed(_rate_limited(reset))
        if isinstance(status, int):
            return LookupFailed(f"Okta answered {tag}")
        return LookupFailed(f"Okta could not be reached, {type(error).__name__}")

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        loop = self._event_loop()
        future = asyncio.run_coroutine_threadsafe(work, loop)
        try:
            return future.result(timeout=self.timeout + 5)
        except TimeoutError:
            future.cancel()
            raise LookupFailed(f"Okta did not answer within {self.timeout:.0f} s") from None
        except LookupFailed:
            raise
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # The SDK returns most failures; a few (a malformed org URL) raise.
            raise LookupFailed(f"Okta could not be reached, {type(exc).__name__}") from exc
        except AttributeError as exc:
            # A connection that failed before any answer (refused, TLS not trusted, timed out) reaches
            # the generated operation as no response at all, which it then reads ``.status`` of.
            raise LookupFailed("Okta could not be reached, no answer") from exc

    def close(self) -> None:
        """Close the session and stop the loop (a later call starts them again)."""
        with self._lock:
            loop, client, self._loop, self._client = self._loop, self._client, None, None
        if loop is None or self._pid != os.getpid():
            return
        if client is not None:
            session = client._request_executor._http_client._session
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                # A fork (gunicorn) copies the loop object but not its thread: start afresh.
                self._loop = asyncio.new_event_loop()
                self._client = None
                self._pid = os.getpid()
                threading.Thread(target=self._loop.run_forever, name="okta-sdk", daemon=True).start()
            return self._loop


def _next_cursor(headers: Any) -> str | None:
    """The ``after`` of the ``Link: <…>; rel="next"`` header, or None on the last page."""
    if headers is None:
        return None
    values = headers.getall("Link", []) if hasattr(headers, "getall") else [headers.get("Link", "")]
    for value in values:
        for url in _NEXT.findall(value or ""):
            after = parse_qs(urlsplit(url).query).get("after")
            if after:
                return after[0]
    return None


def _rate_limited(until: float) -> str:
    return f"Okta is rate-limiting this token until {datetime.fromtimestamp(until, UTC):%H:%M:%S} UTC, 429 E0000047"
