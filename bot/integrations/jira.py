"""Jira through the ``jira`` client: issues cited as tickets (the Jira half of ``TicketDirectory``).

Cloud takes an account's email and an API token (HTTP basic); Data Center takes a personal access
token alone (``Authorization: Bearer``) — which one is chosen by whether ``BREAKGLASS_JIRA_USER`` is
set. The client asks ``serverInfo`` when it is made, so it is made on first use (a Jira that is down
when the bot starts costs a lookup, not the start). Every call has a bounded timeout; a 429 is waited
out as its ``Retry-After`` asks, a bounded number of times; the client's own retries (which sleep on
the wall clock) are off. Anything else that goes wrong is ``LookupFailed`` with one sentence; the
client's ``JIRAError`` text (which holds request headers, the token among them) never leaves here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import requests
from jira import JIRA, JIRAError
from pydantic import SecretStr

from bot.integrations.http import (
    Patience,
    RateLimited,
    ca_bundle,
    retry_after,
    translated,
    with_retries,
)
from bot.ports import LookupFailed, Ticket

SERVICE = "Jira"
T = TypeVar("T")

# A cited key never reaches the URL unless it looks like one (PROJ-123), so a reason's text cannot
# walk the API's paths.
_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,49}-[0-9]{1,12}$")
_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,49}$")


class Jira:
    """A Jira site (Cloud or Data Center) as breakglass's ticket directory."""

    def __init__(
        self, url: str, token: SecretStr, *, user: str | None = None, patience: Patience | None = None
    ) -> None:
        self._url = url.rstrip("/")
        self._token = token
        self._user = user
        self._patience = patience or Patience()
        self._client: JIRA | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- TicketDirectory (Jira half) -------------------------------------------------------------

    def jira_issue(self, key: str) -> Ticket | None:
        key = key.strip().upper()
        if not _ISSUE_KEY.fullmatch(key):
            return None
        raw = self._call(
            "reading an issue", lambda jira: _raw_or_none(lambda: jira.issue(key, fields="summary,status,project"))
        )
        if raw is None:
            return None
        return self._ticket(raw)

    # -- doctor's questions ----------------------------------------------------------------------

    def check_token(self) -> None:
        """Raises LookupFailed unless Jira accepts the credentials."""
        self._call("checking the credentials", lambda jira: jira.myself())

    def project(self, key: str) -> str | None:
        """The name of the project with this key, or None when there is none (or it is hidden)."""
        if not _PROJECT_KEY.fullmatch(key):
            return None
        raw = self._call("reading a project", lambda jira: _raw_or_none(lambda: jira.project(key)))
        return None if raw is None else str(raw.get("name") or key)

    # -- inside ----------------------------------------------------------------------------------

    def _ticket(self, raw: dict[str, Any]) -> Ticket:
        try:
            fields = raw["fields"]
            key = str(raw["key"])
            return Ticket(
                system="jira",
                key=key,
                title=str(fields.get("summary") or ""),
                status=str(fields["status"]["name"]),
                url=f"{self._url}/browse/{key}",
                project=str(fields["project"]["key"]) if fields.get("project") else key.rsplit("-", 1)[0],
            )
        except (KeyError, TypeError):
            raise LookupFailed(f"{SERVICE} answered an issue breakglass could not read.") from None

    def _jira(self) -> JIRA:
        with self._lock:
            if self._client is None:
                auth: dict[str, Any] = (
                    {"basic_auth": (self._user, self._token.get_secret_value())}
                    if self._user
                    else {"token_auth": self._token.get_secret_value()}
                )
                self._client = JIRA(
                    server=self._url,
                    options={"verify": ca_bundle() or True, "check_update": False},
                    timeout=self._patience.timeout,
                    max_retries=0,
                    get_server_info=True,
                    **auth,
                )
            return self._client

    def _call(self, doing: str, call: Callable[[JIRA], T]) -> T:
        def once() -> T:
            try:
                return call(self._jira())
            except JIRAError as exc:
                if exc.status_code == 429:
                    headers = exc.response.headers if exc.response is not None else {}
                    raise RateLimited(retry_after(headers.get("Retry-After"))) from None
                raise

        with self._translated(doing):
            return with_retries(SERVICE, once, self._patience)

    def _translated(self, doing: str) -> AbstractContextManager[None]:
        return translated(
            SERVICE,
            doing,
            self._patience,
            answered=JIRAError,
            status_of=lambda exc: getattr(exc, "status_code", None) or 0,
            unanswered=requests.RequestException,
        )


def _raw_or_none(fetch: Callable[[], Any]) -> dict[str, Any] | None:
    try:
        resource = fetch()
    except JIRAError as exc:
        if exc.status_code == 404:
            return None
        raise
    raw = resource.raw
    if not isinstance(raw, dict):
        raise TypeError("expected an object")
    return raw
