"""Jira's REST API (v2) over real HTTPS, for tests and ``breakglass demo``: not part of the product.

It answers what the ``jira`` client and breakglass use, as Atlassian documents them: ``GET
/rest/api/2/serverInfo`` (the client asks it on construction; ``deploymentType`` is ``Cloud`` or
``Server``), ``GET /rest/api/2/myself``, ``GET /rest/api/2/issue/{key}`` (``fields``), ``GET
/rest/api/2/project/{key}`` and ``GET /rest/api/2/project/search`` (paged by ``startAt``/
``maxResults`` with ``total`` and ``isLast``, never more than ``max_results`` a page). Credentials as
the deployment takes them: Cloud, HTTP basic with an account's email and API token; Data Center, a
personal access token as ``Authorization: Bearer``. Wrong ones are 401 with Jira's body (and
``X-Seraph-LoginReason``); an unknown issue or project is 404 with Jira's ``errorMessages``.

A test adds issues (``add_issue``: key, title, status, project) and makes it misbehave with
``RestDouble``'s faults (slow, 429 with Retry-After, 5xx, down).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any, Literal

from bot.standins.rest import Reply, Request, RestDouble

USER = "breakglass@example.com"
TOKEN = "stand-in-jira-api-token"  # noqa: S105 - a fake token for a fake service

UNAUTHORIZED = {
    "errorMessages": ["You are not authenticated. Authentication required to perform this operation."],
    "errors": {},
}
NO_ISSUE = {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
RATE_LIMITED = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
INTERNAL = {"errorMessages": ["Internal server error"], "errors": {}}

# Jira's status categories (``statusCategory.key``), by the status names used in tests.
_CATEGORY = {"done": ("done", "Done", 3, "green"), "new": ("new", "To Do", 2, "blue-gray")}


@dataclass(frozen=True)
class Issue:
    key: str
    title: str
    status: str
    project: str
    id: str


class JiraDouble(RestDouble):
    """A Jira site: projects and issues, Cloud (basic auth) or Data Center (bearer PAT)."""

    name = "jira-double"

    def __init__(
        self,
        *,
        deployment: Literal["Cloud", "Server"] = "Cloud",
        user: str = USER,
        token: str = TOKEN,
        max_results: int = 50,
        **server: Any,
    ) -> None:
        super().__init__(**server)
        self.deployment = deployment
        self.user = user
        self.token = token
        self.max_results = max_results
        self.projects: dict[str, str] = {}  # key -> name
        self.issues: dict[str, Issue] = {}

    # -- seeding ---------------------------------------------------------------------------------

    def add_project(self, key: str, name: str | None = None) -> None:
        with self._lock:
            self.projects[key] = name or f"Project {key}"

    def add_issue(self, key: str, title: str, *, status: str = "Open", project: str | None = None) -> Issue:
        with self._lock:
            project = project or key.rsplit("-", 1)[0]
            self.projects.setdefault(project, f"Project {project}")
            issue = Issue(key, title, status, project, str(10000 + len(self.issues)))
            self.issues[key] = issue
            return issue

    def set_status(self, key: str, status: str) -> None:
        with self._lock:
            self.issues[key] = replace(self.issues[key], status=status)

    # -- the API ---------------------------------------------------------------------------------

    def canned_error(self, status: int) -> Any:
        return {429: RATE_LIMITED, 401: UNAUTHORIZED}.get(status, INTERNAL)

    def _authenticated(self, header: str | None) -> bool:
        if self.deployment == "Cloud":
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        else:
            expected = f"Bearer {self.token}"
        return header == expected

    def answer(self, request: Request) -> Reply:
        if not request.path.startswith("/rest/api/2/"):
            return Reply(404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"})
        parts = request.path.removeprefix("/rest/api/2/").strip("/").split("/")
        if parts == ["serverInfo"] and request.headers.get("authorization") is None:
            return Reply(200, self._server_info())  # anonymous access to serverInfo is allowed
        if not self._authenticated(request.headers.get("authorization")):
            return Reply(401, UNAUTHORIZED, {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"})
        if request.method != "GET":
            return Reply(405, {"errorMessages": ["Method not allowed"], "errors": {}})
        if parts == ["serverInfo"]:
            return Reply(200, self._server_info())
        if parts == ["myself"]:
            return Reply(
                200,
                {
                    "self": f"{self.base_url}/rest/api/2/myself",
                    "emailAddress": self.user,
                    "displayName": "breakglass",
                    "active": True,
                },
            )
        if len(parts) == 2 and parts[0] == "issue":
            issue = self.issues.get(parts[1].upper())
            if issue is None:
                return Reply(404, NO_ISSUE)
            return Reply(200, self._issue_json(issue, request.one("fields")))
        if parts == ["project", "search"]:
            return self._project_search(request)
        if len(parts) == 2 and parts[0] == "project":
            key = parts[1].upper()
            if key not in self.projects:
                return Reply(
                    404, {"errorMessages": [f"No project could be found with key '{parts[1]}'."], "errors": {}}
                )
            return Reply(200, self._project_json(key))
        return Reply(404, {"errorMessages": ["null for uri: " + request.path], "errors": {}})

    def _server_info(self) -> dict[str, Any]:
        version = [1001, 0, 0] if self.deployment == "Cloud" else [9, 12, 15]
        return {
            "baseUrl": self.base_url,
            "version": ".".join(map(str, version)) + ("-OD-001" if self.deployment == "Cloud" else ""),
            "versionNumbers": version,
            "deploymentType": self.deployment,
            "buildNumber": 100250,
            "buildDate": "2026-11-30T00:00:00.000+0000",
            "serverTime": "2026-12-04T12:00:00.000+0000",
            "scmInfo": "0" * 40,
            "serverTitle": "breakglass stand-in Jira",
        }

    def _project_json(self, key: str) -> dict[str, Any]:
        return {
            "self": f"{self.base_url}/rest/api/2/project/{key}",
            "id": str(10000 + sorted(self.projects).index(key)),
            "key": key,
            "name": self.projects[key],
            "projectTypeKey": "software",
        }

    def _issue_json(self, issue: Issue, fields: str | None) -> dict[str, Any]:
        category = _CATEGORY["done" if issue.status.lower() in ("done", "closed", "resolved") else "new"]
        all_fields: dict[str, Any] = {
            "summary": issue.title,
            "status": {
                "self": f"{self.base_url}/rest/api/2/status/1",
                "name": issue.status,
                "id": "1",
                "statusCategory": {
                    "key": category[0],
                    "name": category[1],
                    "id": category[2],
                    "colorName": category[3],
                },
            },
            "project": {k: v for k, v in self._project_json(issue.project).items() if k != "projectTypeKey"},
            "issuetype": {"name": "Incident", "subtask": False},
        }
        wanted = {f.strip() for f in fields.split(",")} if fields else None
        if wanted is not None and "*all" not in wanted:
            all_fields = {k: v for k, v in all_fields.items() if k in wanted}
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": issue.id,
            "self": f"{self.base_url}/rest/api/2/issue/{issue.id}",
            "key": issue.key,
            "fields": all_fields,
        }

    def _project_search(self, request: Request) -> Reply:
        try:
            start = int(request.one("startAt") or 0)
            size = min(int(request.one("maxResults") or 50), self.max_results)
        except ValueError:
            return Reply(400, {"errorMessages": ["startAt and maxResults must be numbers."], "errors": {}})
        keys = [k.upper() for k in request.many("keys")]
        chosen = [k for k in sorted(self.projects) if not keys or k in keys]
        page = chosen[start : start + size]
        return Reply(
            200,
            {
                "self": f"{self.base_url}/rest/api/2/project/search?startAt={start}&maxResults={size}",
                "maxResults": size,
                "startAt": start,
                "total": len(chosen),
                "isLast": start + size >= len(chosen),
                "values": [self._project_json(k) for k in page],
            },
        )
