"""PagerDuty's REST API v2 over real HTTPS, for tests and ``breakglass demo``: not part of the product.

It answers the endpoints breakglass uses as developer.pagerduty.com documents them: ``GET /users``
(``query``), ``GET /users/{id}``, ``GET /users/me``, ``GET /oncalls`` (``user_ids[]``,
``schedule_ids[]``, ``escalation_policy_ids[]``, ``since``/``until``, ``earliest``), ``GET
/schedules/{id}``, ``GET /escalation_policies/{id}``, ``GET /services/{id}``, ``GET /abilities``,
``GET /incidents`` (``incident_key``, ``service_ids[]``, ``statuses[]``), ``GET /incidents/{id or
number}``, ``POST /incidents`` (the ``From`` header; an open incident's ``incident_key`` is refused as
a duplicate) and ``PUT /incidents/{id}``. Lists are paged by ``offset``/``limit`` with ``more``, never
more than ``max_limit`` a page. Every request must carry ``Authorization: Token token=<token>``: 401
otherwise, with PagerDuty's error body; unknown ids are 404 with its body.

A test says who is on call (``put_on_call``: a user, a policy, a level, a schedule or none, and the
shift's start and end) and makes the service misbehave (``RestDouble``'s faults: slow, 429 with
Retry-After, 5xx, down, and ``token`` changed for a 401).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.standins.rest import Reply, Request, RestDouble

TOKEN = "stand-in-pagerduty-token"  # noqa: S105 - a fake token for a fake service
SUBDOMAIN = "https://breakglass-standin.pagerduty.com"

# PagerDuty's error bodies: {"error": {"message", "code", "errors"?}} (REST API v2 "Errors").
UNAUTHORIZED = {"error": {"message": "Authentication failed", "code": 2006}}
FORBIDDEN = {"error": {"message": "Access Denied", "code": 2010}}
NOT_FOUND = {"error": {"message": "Not Found", "code": 2100}}
RATE_LIMITED = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
INTERNAL = {"error": {"message": "Internal Error", "code": 2000}}
NEEDS_FROM = {
    "error": {
        "message": "Invalid Input Provided",
        "code": 2001,
        "errors": ["The 'From' header must be the email address of a valid user."],
    }
}
DUPLICATE = {
    "error": {
        "message": "Arguments Caused Error",
        "code": 2002,
        "errors": ["Open incident with matching dedup key already exists on this service"],
    }
}
ALREADY_RESOLVED = {
    "error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Incident Already Resolved"]}
}


@dataclass(frozen=True)
class OnCall:
    user_id: str
    escalation_policy_id: str
    escalation_level: int
    schedule_id: str | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Incident:
    id: str
    number: int
    title: str
    status: str  # triggered | acknowledged | resolved
    service_id: str
    incident_key: str | None
    created_at: datetime
    details: str = ""


def _ref(kind: str, id_: str, summary: str, path: str) -> dict[str, Any]:
    return {
        "id": id_,
        "type": f"{kind}_reference",
        "summary": summary,
        "self": f"https://api.pagerduty.com/{path}/{id_}",
        "html_url": f"{SUBDOMAIN}/{path}/{id_}",
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class PagerDutyDouble(RestDouble):
    """A PagerDuty account: users, schedules, escalation policies, services, on-calls and incidents."""

    name = "pagerduty-double"

    def __init__(
        self,
        *,
        token: str = TOKEN,
        max_limit: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        **server: Any,
    ) -> None:
        super().__init__(**server)
        self.token = token
        self.token_user: str | None = None  # a user token's owner (``/users/me``); None: an account token
        self.max_limit = max_limit
        self.clock = clock
        self.users: dict[str, dict[str, str]] = {}
        self.schedules: dict[str, str] = {}
        self.policies: dict[str, str] = {}
        self.services: dict[str, tuple[str, str]] = {}  # id -> (name, escalation policy id)
        self.oncalls: list[OnCall] = []
        self.incidents: dict[str, Incident] = {}
        self._numbers = itertools.count(1)
        self._ids = itertools.count(1)

    # -- seeding ---------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def add_user(self, email: str, name: str | None = None, *, id: str | None = None) -> str:
        with self._lock:
            user_id = id or self._new_id("PU")
            self.users[user_id] = {"name": name or email.split("@")[0].title(), "email": email}
            return user_id

    def add_schedule(self, name: str, *, id: str | None = None) -> str:
        with self._lock:
            schedule_id = id or self._new_id("PS")
            self.schedules[schedule_id] = name
            return schedule_id

    def add_escalation_policy(self, name: str, *, id: str | None = None) -> str:
        with self._lock:
            policy_id = id or self._new_id("PE")
            self.policies[policy_id] = name
            return policy_id

    def add_service(self, name: str, escalation_policy_id: str, *, id: str | None = None) -> str:
        with self._lock:
            service_id = id or self._new_id("PV")
            self.services[service_id] = (name, escalation_policy_id)
            return service_id

    def put_on_call(
        self,
        email: str,
        *,
        escalation_policy_id: str,
        level: int = 1,
        schedule_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        """``email`` is on call for the policy at ``level`` from ``start`` to ``end`` (None: always),
        through ``schedule_id`` (None: named on the policy directly). Users, policies and schedules
        not yet known are added."""
        with self._lock:
            user_id = next((uid for uid, u in self.users.items() if u["email"] == email), None) or self.add_user(email)
            if escalation_policy_id not in self.policies:
                self.add_escalation_policy(f"Policy {escalation_policy_id}", id=escalation_policy_id)
            if schedule_id is not None and schedule_id not in self.schedules:
                self.add_schedule(f"Schedule {schedule_id}", id=schedule_id)
            self.oncalls.append(OnCall(user_id, escalation_policy_id, level, schedule_id, start, end))

    def clear_on_call(self) -> None:
        with self._lock:
            self.oncalls.clear()

    def add_incident(
        self, title: str, *, service_id: str, status: str = "triggered", incident_key: str | None = None
    ) -> Incident:
        with self._lock:
            incident = Incident(
                self._new_id("Q"), next(self._numbers), title, status, service_id, incident_key, self.clock()
            )
            self.incidents[incident.id] = incident
            return incident

    def set_incident_status(self, ref: str, status: str) -> None:
        with self._lock:
            incident = self._incident(ref)
            assert incident is not None, f"no incident {ref}"
            self.incidents[incident.id] = replace(incident, status=status)

    def open_incidents(self, service_id: str | None = None) -> list[Incident]:
        with self._lock:
            return [
                i
                for i in self.incidents.values()
                if i.status != "resolved" and (service_id is None or i.service_id == service_id)
            ]

    # -- the API ---------------------------------------------------------------------------------

    def canned_error(self, status: int) -> Any:
        return {429: RATE_LIMITED, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND}.get(status, INTERNAL)

    def answer(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Token token={self.token}":
            return Reply(401, UNAUTHORIZED)
        parts = request.path.strip("/").split("/")
        method = request.method
        if method == "GET" and parts == ["users"]:
            return self._users(request)
        if method == "GET" and parts == ["users", "me"]:
            return self._me()
        if method == "GET" and len(parts) == 2 and parts[0] == "users":
            user = self.users.get(parts[1])
            return Reply(200, {"user": self._user(parts[1], user)}) if user else Reply(404, NOT_FOUND)
        if method == "GET" and parts == ["oncalls"]:
            return self._oncalls(request)
        if method == "GET" and parts == ["abilities"]:
            return Reply(200, {"abilities": ["teams", "read_only_users", "urgencies"]})
        if method == "GET" and len(parts) == 2 and parts[0] in ("schedules", "escalation_policies", "services"):
            return self._named(parts[0], parts[1])
        if parts == ["incidents"] and method == "GET":
            return self._incidents(request)
        if parts == ["incidents"] and method == "POST":
            return self._create_incident(request)
        if len(parts) == 2 and parts[0] == "incidents" and method == "GET":
            incident = self._incident(parts[1])
            return Reply(200, {"incident": self._incident_json(incident)}) if incident else Reply(404, NOT_FOUND)
        if len(parts) == 2 and parts[0] == "incidents" and method == "PUT":
            return self._update_incident(parts[1], request)
        return Reply(404, NOT_FOUND)

    def _page(self, request: Request, wrapper: str, items: list[dict[str, Any]]) -> Reply:
        try:
            limit = min(int(request.one("limit") or 25), self.max_limit)
            offset = int(request.one("offset") or 0)
        except ValueError:
            return Reply(400, {"error": {"message": "Invalid Input Provided", "code": 2001}})
        limit = max(limit, 1)
        page = items[offset : offset + limit]
        total = len(items) if request.one("total") == "true" else None
        return Reply(
            200,
            {wrapper: page, "limit": limit, "offset": offset, "more": offset + limit < len(items), "total": total},
        )

    @staticmethod
    def _user(user_id: str, user: dict[str, str]) -> dict[str, Any]:
        return {
            **_ref("user", user_id, user["name"], "users"),
            "type": "user",
            "name": user["name"],
            "email": user["email"],
            "time_zone": "Etc/UTC",
            "role": "user",
        }

    def _users(self, request: Request) -> Reply:
        # PagerDuty's ``query`` matches a user's name or email, in part, regardless of case.
        query = (request.one("query") or "").lower()
        found = [
            self._user(uid, u)
            for uid, u in sorted(self.users.items())
            if query in u["email"].lower() or query in u["name"].lower()
        ]
        return self._page(request, "users", found)

    def _me(self) -> Reply:
        user_id = next((uid for uid, u in self.users.items() if u["email"] == self.token_user), None)
        if user_id is None:
            # An account (general access) token belongs to no user.
            return Reply(
                400,
                {
                    "error": {
                        "message": "Invalid Input Provided",
                        "code": 2001,
                        "errors": ["Only user level API keys can be used for /users/me."],
                    }
                },
            )
        return Reply(200, {"user": self._user(user_id, self.users[user_id])})

    def _oncalls(self, request: Request) -> Reply:
        try:
            since = _parse(request.one("since")) or self.clock()
            until = _parse(request.one("until")) or since
        except ValueError:
            return Reply(400, {"error": {"message": "Invalid 'since' or 'until' Parameter Values", "code": 2004}})
        if until < since:
            return Reply(400, {"error": {"message": "Invalid Query Date Range", "code": 2005}})
        users, schedules, policies = (
            request.many("user_ids"),
            request.many("schedule_ids"),
            request.many("escalation_policy_ids"),
        )
        found = [
            o
            for o in self.oncalls
            if (not users or o.user_id in users)
            and (not schedules or o.schedule_id in schedules)
            and (not policies or o.escalation_policy_id in policies)
            and (o.start is None or o.start <= until)
            and (o.end is None or o.end > since)
        ]
        if request.one("earliest") == "true":
            earliest: dict[tuple[str, str, int], OnCall] = {}
            for o in sorted(found, key=lambda o: o.start or datetime.min.replace(tzinfo=UTC)):
                earliest.setdefault((o.user_id, o.escalation_policy_id, o.escalation_level), o)
            found = list(earliest.values())
        return self._page(request, "oncalls", [self._oncall_json(o) for o in found])

    def _oncall_json(self, oncall: OnCall) -> dict[str, Any]:
        user = self.users[oncall.user_id]
        return {
            "user": _ref("user", oncall.user_id, user["name"], "users"),
            "escalation_policy": _ref(
                "escalation_policy",
                oncall.escalation_policy_id,
                self.policies[oncall.escalation_policy_id],
                "escalation_policies",
            ),
            "schedule": None
            if oncall.schedule_id is None
            else _ref("schedule", oncall.schedule_id, self.schedules[oncall.schedule_id], "schedules"),
            "escalation_level": oncall.escalation_level,
            "start": _iso(oncall.start),
            "end": _iso(oncall.end),
        }

    def _named(self, collection: str, id_: str) -> Reply:
        if collection == "schedules" and id_ in self.schedules:
            name = self.schedules[id_]
            return Reply(
                200,
                {
                    "schedule": {
                        **_ref("schedule", id_, name, collection),
                        "type": "schedule",
                        "name": name,
                        "time_zone": "Etc/UTC",
                    }
                },
            )
        if collection == "escalation_policies" and id_ in self.policies:
            name = self.policies[id_]
            body = {**_ref("escalation_policy", id_, name, collection), "type": "escalation_policy", "name": name}
            return Reply(200, {"escalation_policy": body})
        if collection == "services" and id_ in self.services:
            name, policy = self.services[id_]
            body = {
                **_ref("service", id_, name, collection),
                "type": "service",
                "name": name,
                "status": "active",
                "escalation_policy": _ref(
                    "escalation_policy", policy, self.policies.get(policy, policy), "escalation_policies"
                ),
            }
            return Reply(200, {"service": body})
        return Reply(404, NOT_FOUND)

    def _incident(self, ref: str) -> Incident | None:
        # GET /incidents/{id} takes the incident's id or its number.
        if ref.isdigit():
            return next((i for i in self.incidents.values() if i.number == int(ref)), None)
        return self.incidents.get(ref)

    def _incident_json(self, incident: Incident) -> dict[str, Any]:
        name, policy = self.services.get(incident.service_id, (incident.service_id, ""))
        body: dict[str, Any] = {
            **_ref("incident", incident.id, f"[#{incident.number}] {incident.title}", "incidents"),
            "type": "incident",
            "incident_number": incident.number,
            "title": incident.title,
            "status": incident.status,
            "incident_key": incident.incident_key,
            "created_at": _iso(incident.created_at),
            "urgency": "high",
            "service": _ref("service", incident.service_id, name, "services"),
            "body": {"type": "incident_body", "details": incident.details},
        }
        if policy:
            body["escalation_policy"] = _ref(
                "escalation_policy", policy, self.policies.get(policy, policy), "escalation_policies"
            )
        return body

    def _incidents(self, request: Request) -> Reply:
        key = request.one("incident_key")
        services = request.many("service_ids")
        statuses = request.many("statuses")
        found = [
            self._incident_json(i)
            for i in sorted(self.incidents.values(), key=lambda i: i.number)
            if (key is None or i.incident_key == key)
            and (not services or i.service_id in services)
            and (not statuses or i.status in statuses)
        ]
        return self._page(request, "incidents", found)

    def _from_user(self, request: Request) -> bool:
        sender = (request.headers.get("from") or "").lower()
        return any(u["email"].lower() == sender for u in self.users.values()) if sender else False

    def _create_incident(self, request: Request) -> Reply:
        if not self._from_user(request):
            return Reply(400, NEEDS_FROM)
        body = request.body if isinstance(request.body, dict) else {}
        wanted = body.get("incident")
        if not isinstance(wanted, dict) or wanted.get("type") != "incident" or not wanted.get("title"):
            return Reply(
                400,
                {
                    "error": {
                        "message": "Invalid Input Provided",
                        "code": 2001,
                        "errors": ["Incident title is required."],
                    }
                },
            )
        service = wanted.get("service") or {}
        service_id = service.get("id") if isinstance(service, dict) else None
        if service_id not in self.services:
            return Reply(
                400, {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Service not found"]}}
            )
        key = wanted.get("incident_key")
        if key and any(i.incident_key == key for i in self.open_incidents(service_id)):
            return Reply(400, DUPLICATE)
        details = ((wanted.get("body") or {}).get("details")) or ""
        incident = Incident(
            "Q" + secrets.token_hex(6).upper(),
            next(self._numbers),
            str(wanted["title"]),
            "triggered",
            str(service_id),
            key,
            self.clock(),
            str(details),
        )
        self.incidents[incident.id] = incident
        return Reply(201, {"incident": self._incident_json(incident)})

    def _update_incident(self, ref: str, request: Request) -> Reply:
        if not self._from_user(request):
            return Reply(400, NEEDS_FROM)
        incident = self._incident(ref)
        if incident is None:
            return Reply(404, NOT_FOUND)
        wanted = (request.body or {}).get("incident") if isinstance(request.body, dict) else None
        status = wanted.get("status") if isinstance(wanted, dict) else None
        if status not in ("acknowledged", "resolved"):
            return Reply(400, {"error": {"message": "Invalid Input Provided", "code": 2001}})
        if incident.status == "resolved":
            return Reply(400, ALREADY_RESOLVED)
        incident = replace(incident, status=status)
        self.incidents[incident.id] = incident
        return Reply(200, {"incident": self._incident_json(incident)})
