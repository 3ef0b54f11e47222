"""Okta's management API over real HTTP, for tests and ``breakglass demo``: not part of the product.

Only what breakglass reads: ``GET /api/v1/groups/{id}/users``, answered as Okta answers it:

- ``Authorization: SSWS <token>``; anything else is 401 ``E0000011`` ("Invalid token provided");
- an unknown (or deleted) group is 404 ``E0000007`` ("Not found: Resource not found: … (UserGroup)");
- ``limit`` (default 1000, at most 10000) users a page, in id order, with ``Link: <…>; rel="self"`` and,
  while more remain, ``Link: <…?after=<last id>&limit=…>; rel="next"`` — two headers, as Okta sends;
- every answer carries ``X-Rate-Limit-Limit``/``-Remaining``/``-Reset`` (UTC epoch seconds); past the
  limit, 429 ``E0000047`` with ``X-Rate-Limit-Remaining: 0`` until the reset;
- error bodies are ``{errorCode, errorSummary, errorLink, errorId, errorCauses}``;
- served over HTTPS with the process's stand-in CA (``ca_file``), as the product never speaks plain HTTP to Okta.

A test changes membership (``set_group``), user status (``set_status``), and injects faults
(``rate_limit``, ``fail``); ``requests`` records what was asked, for pagination tests.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from bot.standins.http import serve, shut
from bot.standins.tls import local_ca

API_TOKEN = "00stand-in-okta-api-token"  # noqa: S105 - a fake token for a fake org
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
RATE_LIMIT = 600  # per window, as Okta's /api/v1/groups bucket for a small org


@dataclass
class OktaUser:
    id: str
    email: str
    status: str = "ACTIVE"  # ACTIVE | STAGED | PROVISIONED | SUSPENDED | DEPROVISIONED | LOCKED_OUT | …


@dataclass
class OktaDouble:
    host: str = "127.0.0.1"
    port: int = 0
    token: str = API_TOKEN
    clock: Callable[[], float] = time.time
    users: dict[str, OktaUser] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # group id -> user ids
    requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._limited: list[tuple[int, int]] = []  # (times, reset in seconds from now)
        self._failures: list[tuple[int, int]] = []  # (times, status)

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the double first"
        return f"https://{self.host}:{self._server.server_address[1]}"

    @property
    def ca_file(self) -> str:
        """The CA bundle a client trusts this double with (``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``)."""
        return str(local_ca().ca_file)

    def start(self) -> OktaDouble:
        owner = self

        class Handler(_Handler):
            double = owner

        self._server = serve(Handler, self.host, self.port, "okta-double", local_ca())
        return self

    def stop(self) -> None:
        shut(self._server)
        self._server = None

    # --- seeding and faults --------------------------------------------------------------------

    def add_user(self, email: str, status: str = "ACTIVE") -> OktaUser:
        with self._lock:
            user = OktaUser("00u" + secrets.token_hex(7)[:17], email, status)
            self.users[user.id] = user
            return user

    def set_group(self, group_id: str, emails: list[str] | None) -> None:
        """The group's members by email (each made a user if new); None deletes the group."""
        with self._lock:
            if emails is None:
                self.groups.pop(group_id, None)
                return
        ids = []
        for email in emails:
            known = next((u for u in self.users.values() if u.email == email), None)
            ids.append((known or self.add_user(email)).id)
        with self._lock:
            self.groups[group_id] = ids

    def set_status(self, email: str, status: str) -> None:
        with self._lock:
            for user in self.users.values():
                if user.email == email:
                    user.status = status

    def rate_limit(self, *, times: int = 1, reset_in: int = 30) -> None:
        """The next ``times`` calls answer 429 E0000047, their reset ``reset_in`` seconds ahead."""
        with self._lock:
            self._limited.append((times, reset_in))

    def fail(self, *, times: int = 1, status: int = 500) -> None:
        """The next ``times`` calls answer ``status`` with Okta's internal error body (E0000009)."""
        with self._lock:
            self._failures.append((times, status))

    # --- the endpoint --------------------------------------------------------------------------

    def answer(
        self, path: str, query: Mapping[str, str], authorization: str | None
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        """(status, JSON body, headers) for one GET."""
        now = int(self.clock())
        reset = now + 60
        with self._lock:
            self.requests.append({"path": path, **query})
            limited = _take(self._limited)
            failure = _take(self._failures)
        rate = [("X-Rate-Limit-Limit", str(RATE_LIMIT)), ("X-Rate-Limit-Remaining", str(RATE_LIMIT - 1)),
                ("X-Rate-Limit-Reset", str(reset))]  # fmt: skip
        if authorization != f"SSWS {self.token}":
            return 401, _error("E0000011", "Invalid token provided"), []
        if limited is not None:
            headers = [("X-Rate-Limit-Limit", str(RATE_LIMIT)), ("X-Rate-Limit-Remaining", "0"),
                       ("X-Rate-Limit-Reset", str(now + limited))]  # fmt: skip
            return 429, _error("E0000047", "API call exceeded rate limit due to too many requests."), headers
        if failure is not None:
            return failure, _error("E0000009", "Internal Server Error"), rate
        parts = path.strip("/").split("/")
        if len(parts) != 5 or parts[:3] != ["api", "v1", "groups"] or parts[4] != "users":
            return 404, _error("E0000022", "The endpoint does not support the provided HTTP method"), rate
        group_id = parts[3]
        with self._lock:
            member_ids = sorted(self.groups.get(group_id, [])) if group_id in self.groups else None
            members = [self.users[i] for i in member_ids or []]
        if member_ids is None:
            return 404, _error("E0000007", f"Not found: Resource not found: {group_id} (UserGroup)"), rate
        try:
            limit = min(int(query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
        except ValueError:
            return 400, _error("E0000001", "Api validation failed: limit"), rate
        if limit < 1:
            return 400, _error("E0000001", "Api validation failed: limit"), rate
        after = query.get("after")
        start = next((i for i, u in enumerate(members) if u.id > after), len(members)) if after else 0
        page = members[start : start + limit]
        base = f"{self.url}{path}"
        links = [("Link", f'<{base}?{urlencode({"limit": limit})}>; rel="self"')]
        if start + limit < len(members):
            links.append(("Link", f'<{base}?{urlencode({"after": page[-1].id, "limit": limit})}>; rel="next"'))
        return 200, [self._user_json(u) for u in page], [*links, *rate]

    def _user_json(self, user: OktaUser) -> dict[str, Any]:
        stamp = "2026-01-05T09:00:00.000Z"
        local = user.email.split("@", 1)[0]
        return {
            "id": user.id,
            "status": user.status,
            "created": stamp,
            "activated": stamp if user.status == "ACTIVE" else None,
            "statusChanged": stamp,
            "lastLogin": None,
            "lastUpdated": stamp,
            "passwordChanged": stamp,
            "type": {"id": "oty1standin0000000"},
            "profile": {
                "firstName": local.title(),
                "lastName": "Example",
                "mobilePhone": None,
                "secondEmail": None,
                "login": user.email,
                "email": user.email,
            },
            "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"{self.url}/api/v1/users/{user.id}"}},
        }


def _take(queue: list[tuple[int, int]]) -> int | None:
    """The value of the first fault still due (one use spent), or None."""
    if not queue:
        return None
    times, value = queue[0]
    if times <= 1:
        queue.pop(0)
    else:
        queue[0] = (times - 1, value)
    return value


def _error(code: str, summary: str) -> dict[str, Any]:
    return {"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae" + secrets.token_urlsafe(15), "errorCauses": []}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    double: OktaDouble

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        status, body, headers = self.double.answer(parts.path, query, self.headers.get("Authorization"))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Okta-Request-Id", secrets.token_urlsafe(12))
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
