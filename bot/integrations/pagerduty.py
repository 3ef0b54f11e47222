"""PagerDuty through its own REST API v2 client (``pagerduty.RestApiV2Client``): who is on call,
incidents cited as tickets, and incidents that page approvers.

Implements ``OnCallDirectory``, the PagerDuty half of ``TicketDirectory`` and ``Pager``. Every call
has a bounded timeout; a 429 is waited out as its ``Retry-After`` asks, a bounded number of times
(``bot.integrations.http``); anything else that goes wrong is ``LookupFailed`` with one sentence that
names PagerDuty and the cause, never the token or a response body. The client's own unbounded 429
loop and its network retries (which sleep on the wall clock) are switched off here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pagerduty
from pydantic import SecretStr

from bot.integrations.http import (
    Patience,
    RateLimited,
    retry_after,
    ssl_context,
    translated,
    with_retries,
)
from bot.ports import LookupFailed, OnCallShift, Ticket

SERVICE = "PagerDuty"
DEFAULT_API_URL = "https://api.pagerduty.com"

# An incident is cited by its id (Q1ABC2DEF3GHIJ) or its number (4411); anything else never reaches
# the URL, so a reason's text cannot walk the API's paths.
_INCIDENT_REF = re.compile(r"^(?:[A-Z0-9]{6,20}|[0-9]{1,12})$")
_OBJECT_ID = re.compile(r"^[A-Z0-9]{6,20}$")


class _Client(pagerduty.RestApiV2Client):
    """The maintained client, made to hand every 429 to ``with_retries`` instead of sleeping on it."""

    patience: Patience

    def postprocess(self, response: Any, suffix: str | None = None) -> None:
        super().postprocess(response, suffix)
        if response.status_code == 429:
            raise RateLimited(retry_after(response.headers.get("Retry-After")))

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        def once() -> Any:
            return pagerduty.RestApiV2Client.request(self, method, url, **kwargs)

        return with_retries(SERVICE, once, self.patience)


class PagerDuty:
    """PagerDuty's REST API v2 as breakglass's on-call directory, incident tickets and pager."""

    def __init__(
        self,
        token: SecretStr,
        *,
        api_url: str = DEFAULT_API_URL,
        from_email: str | None = None,
        patience: Patience | None = None,
    ) -> None:
        self._patience = patience or Patience()
        client = _Client(token.get_secret_value(), base_url=api_url.rstrip("/"), verify=ssl_context())
        client.patience = self._patience
        client.timeout = self._patience.timeout  # type: ignore[assignment]  # httpx2 takes float seconds
        client.max_network_attempts = 0  # one attempt: a timeout is already the answer
        self._client = client
        self._from = from_email
        self._from_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # -- OnCallDirectory -------------------------------------------------------------------------

    def shifts(
        self, email: str, *, schedule_ids: Sequence[str], escalation_policy_ids: Sequence[str], at: datetime
    ) -> Sequence[OnCallShift]:
        if not schedule_ids and not escalation_policy_ids:
            return []
        with self._translated("reading the on-call list"):
            user = self._client.find("users", email, attribute="email")
            if user is None:
                return []
            # The filters are ANDed by the API, so schedules and policies are asked for separately.
            window = {"since": _iso(at), "until": _iso(at + timedelta(seconds=1)), "time_zone": "UTC"}
            found: dict[tuple[str, int, str | None], OnCallShift] = {}
            for name, ids in (("schedule_ids", schedule_ids), ("escalation_policy_ids", escalation_policy_ids)):
                if not ids:
                    continue
                params = {"user_ids[]": [user["id"]], f"{name}[]": list(ids), **window}
                for entry in self._client.iter_all("oncalls", params=params):
                    shift = _shift(entry)
                    chosen = shift.schedule_id in ids if name == "schedule_ids" else shift.escalation_policy_id in ids
                    covers = (shift.start is None or shift.start <= at) and (shift.end is None or at < shift.end)
                    if chosen and covers:
                        found.setdefault((shift.escalation_policy_id, shift.escalation_level, shift.schedule_id), shift)
        return sorted(found.values(), key=lambda s: (s.escalation_level, s.escalation_policy_id, s.schedule_id or ""))

    # -- TicketDirectory (PagerDuty half) --------------------------------------------------------

    def pagerduty_incident(self, ref: str) -> Ticket | None:
        ref = ref.strip().lstrip("#")
        if not _INCIDENT_REF.fullmatch(ref):
            return None
        with self._translated("reading an incident"):
            incident = self._get_or_none(f"incidents/{ref}")
        if incident is None:
            return None
        return _ticket(incident)

    # -- Pager -----------------------------------------------------------------------------------

    def open_incident(self, *, service_id: str, title: str, details: str, incident_key: str) -> str:
        with self._translated("opening an incident"):
            existing = self._open_by_key(service_id, incident_key)
            if existing is not None:
                return existing
            body = {
                "incident": {
                    "type": "incident",
                    "title": title[:1024],
                    "service": {"id": service_id, "type": "service_reference"},
                    "incident_key": incident_key,
                    "body": {"type": "incident_body", "details": details},
                }
            }
            try:
                created = self._client.rpost("incidents", json=body, headers={"From": self._sender()})
            except pagerduty.HttpError as exc:
                # Another process opened it between our look and our post: PagerDuty refuses the
                # duplicate key (400), and the incident it refused for is the one to return.
                if exc.response is not None and exc.response.status_code == 400:
                    existing = self._open_by_key(service_id, incident_key)
                    if existing is not None:
                        return existing
                raise
            return str(_mapping(created)["id"])

    def resolve_incident(self, incident_id: str) -> None:
        if not _OBJECT_ID.fullmatch(incident_id):
            raise LookupFailed(f"{SERVICE} incident id {incident_id!r} is not an incident id.")
        body = {"incident": {"type": "incident_reference", "status": "resolved"}}
        with self._translated("resolving an incident"):
            try:
                self._client.rput(f"incidents/{incident_id}", json=body, headers={"From": self._sender()})
            except pagerduty.HttpError as exc:
                # Resolving twice is harmless: PagerDuty refuses an already resolved incident (400),
                # and gone (404) is no worse than resolved.
                status = exc.response.status_code if exc.response is not None else 0
                if status == 404:
                    return
                if status == 400:
                    current = self._get_or_none(f"incidents/{incident_id}")
                    if current is None or current.get("status") == "resolved":
                        return
                raise

    # -- doctor's questions ----------------------------------------------------------------------

    def check_token(self) -> None:
        """Raises LookupFailed unless PagerDuty accepts the token."""
        with self._translated("checking the API token"):
            self._client.rget("abilities")

    def exists(self, kind: str, object_id: str) -> str | None:
        """The name of the schedule, escalation policy or service with this id, or None when there
        is none. ``kind``: ``schedules`` | ``escalation_policies`` | ``services``."""
        if kind not in ("schedules", "escalation_policies", "services"):
            raise ValueError(f"unknown PagerDuty object kind {kind!r}")
        if not _OBJECT_ID.fullmatch(object_id):
            return None
        with self._translated(f"reading {kind.replace('_', ' ')}"):
            found = self._get_or_none(f"{kind}/{object_id}")
        return None if found is None else str(found.get("name") or found.get("summary") or object_id)

    def sender(self) -> str:
        """The email incidents are opened and resolved as (the ``From`` header); raises LookupFailed."""
        with self._translated("finding the user to act as"):
            return self._sender()

    # -- inside ----------------------------------------------------------------------------------

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return _mapping(self._client.rget(path))
        except pagerduty.HttpError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return None
            raise

    def _open_by_key(self, service_id: str, incident_key: str) -> str | None:
        params = {
            "incident_key": incident_key,
            "service_ids[]": [service_id],
            "statuses[]": ["triggered", "acknowledged"],
        }
        for incident in self._client.iter_all("incidents", params=params):
            if incident.get("incident_key") == incident_key:
                return str(incident["id"])
        return None

    def _sender(self) -> str:
        # POST and PUT /incidents need a ``From`` header naming a PagerDuty user. Unless one is
        # configured, a user token's own user is asked for once (an account token has none).
        with self._from_lock:
            if self._from is None:
                try:
                    me = _mapping(self._client.rget("users/me"))
                except pagerduty.HttpError as exc:
                    if exc.response is not None and exc.response.status_code == 400:
                        raise LookupFailed(
                            f"{SERVICE} needs BREAKGLASS_PAGERDUTY_FROM (a user's email) to open incidents with an account token."
                        ) from None
                    raise
                self._from = str(me["email"])
            return self._from

    def _translated(self, doing: str) -> AbstractContextManager[None]:
        return translated(
            SERVICE,
            doing,
            self._patience,
            answered=pagerduty.HttpError,
            status_of=_status_of,
            unanswered=pagerduty.Error,
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: object) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _shift(entry: dict[str, Any]) -> OnCallShift:
    policy = _mapping(entry["escalation_policy"])
    schedule = entry.get("schedule")
    schedule = _mapping(schedule) if schedule else None
    return OnCallShift(
        escalation_policy_id=str(policy["id"]),
        escalation_policy_name=str(policy.get("summary") or policy["id"]),
        escalation_level=int(entry["escalation_level"]),
        schedule_id=None if schedule is None else str(schedule["id"]),
        schedule_name=None if schedule is None else str(schedule.get("summary") or schedule["id"]),
        start=_time(entry.get("start")),
        end=_time(entry.get("end")),
    )


def _ticket(incident: dict[str, Any]) -> Ticket:
    return Ticket(
        system="pagerduty",
        key=str(incident.get("incident_number") or incident["id"]),
        title=str(incident.get("title") or incident.get("summary") or ""),
        status=str(incident["status"]),
        url=str(incident.get("html_url") or ""),
    )


def _status_of(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    return int(response.status_code) if response is not None else 0
