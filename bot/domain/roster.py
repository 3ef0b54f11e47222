"""The roster: who may ask for what, who approves, and where grants land.

Parsing is strict and reports *every* problem with its place in the file
(``roles.admin.approvers[0]: unknown group 'sre2'``), because an operator fixing a roster during an
incident should not have to fix one line, re-run, and discover the next. Unknown keys are problems
too: a misspelt ``aprovals:`` silently ignored would change who gets production access.

This module reads YAML text; it does not open files (``load_roster_file`` is the one place that does)
and it never talks to Slack or Kubernetes.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from bot.domain.automation import AutoRule, TicketPolicy
from bot.domain.durations import DurationError, format_duration, parse_duration
from bot.domain.grants import SYSTEM_NAMESPACE
from bot.domain.ids import SlackUserId
from bot.domain.roster_automation import (
    AUTOMATION_KEYS,
    References,
    check_escalation_timing,
    parse_role_automation,
    references,
)

MfaMode = Literal["slack_enforced", "has_2fa", "oidc"]
StepUpAction = Literal["request", "approve"]
STEP_UP_ACTIONS: tuple[StepUpAction, ...] = ("request", "approve")
Scope = Literal["namespace", "cluster"]
Credentials = Literal["user", "token"]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_NAMESPACE_GLOB = re.compile(r"[a-z0-9*?\[\]-]{1,63}")
_TEAM_ID = re.compile(r"T[A-Z0-9]{2,}")
_ENTERPRISE_ID = re.compile(r"E[A-Z0-9]{2,}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_USERGROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_OKTA_GROUP_ID = re.compile(r"00g[A-Za-z0-9]{5,30}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


# Namespaces an entitlement reaches only by naming them exactly: the API server's own, and (added by
# the roster) the bot's and the token namespace. ``admin`` in the bot's namespace reads its Secrets
# (signing key, Redis URL, kubeconfig) and can exec into the worker, whose ServiceAccount may bind
# cluster-admin; a glob or an omitted ``namespaces:`` written for application namespaces must never
# reach them by accident.
PROTECTED_NAMESPACE_GLOBS = ("kube-*",)
# Names a glob is tried against when the roster check looks for entitlements reaching ``kube-*``.
_WELL_KNOWN_KUBE_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


def is_dns_label(text: str) -> bool:
    return _DNS_LABEL.fullmatch(text) is not None


@dataclass(frozen=True)
class Problem:
    place: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.place}: {self.message}"


class RosterError(ValueError):
    """The roster failed the check. ``problems`` lists every one, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Workspace:
    team_id: str | None
    enterprise_id: str | None


@dataclass(frozen=True)
class Cluster:
    name: str
    context: str
    credentials: Credentials


@dataclass(frozen=True)
class Role:
    name: str
    cluster_role: str
    scope: Scope
    max_duration: timedelta
    min_duration: timedelta
    approvals: int
    approvers: tuple[str, ...]
    # A grant with no action recorded for this long is ended early; enforced only where the cluster
    # sends audit events (its webhook batches are what show the holder idle rather than unheard).
    idle_timeout: timedelta | None = None
    # With ``mfa: oidc``: which actions on this role need a fresh verification (None: the oidc block's).
    step_up: frozenset[str] | None = None
    # Automated approvals (``bot.domain.automation``): the tickets a reason must cite, the rules that
    # approve without a click, and when to page the approvers through PagerDuty.
    ticket: TicketPolicy | None = None
    auto_approve: tuple[AutoRule, ...] = ()
    escalate_after: timedelta | None = None
    escalate_service: str | None = None

    @property
    def self_service(self) -> bool:
        return self.approvals == 0


@dataclass(frozen=True)
class Person:
    slack_id: SlackUserId
    kube_user: str
    kube_groups: tuple[str, ...] = ()
    # The address the identity provider knows this person by, when it is not their Slack profile's.
    email: str | None = None


@dataclass(frozen=True)
class IdentityConfig:
    """``identity:``: where people not under ``people:`` get a kube_user, and how long a group read
    may stand in while its source (Slack) cannot be reached."""

    kube_user_from: Literal["email"] | None = None
    group_cache_max_age: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class GroupSource:
    """Where a group's members are read at run time: a Slack user group or an Okta group."""

    kind: Literal["slack_usergroup", "okta_group"]
    id: str

    def __str__(self) -> str:
        return f"Slack user group {self.id}" if self.kind == "slack_usergroup" else f"Okta group {self.id}"


@dataclass(frozen=True)
class OidcConfig:
    """``mfa: oidc``: the provider that must see a fresh multi-factor login at the moment of elevation."""

    issuer: str
    client_id: str
    max_age: timedelta
    amr: tuple[str, ...]
    acr: tuple[str, ...]
    step_up: frozenset[str]
    name: str


@dataclass(frozen=True)
class Entitlement:
    group: str
    roles: tuple[str, ...]
    clusters: tuple[str, ...]
    namespaces: tuple[str, ...] | None  # None: any namespace (and cluster-scoped roles)

    def covers_namespace(self, namespace: str, protected: bool = False) -> bool:
        """Whether this entitlement reaches ``namespace``; a protected one only when named exactly."""
        if protected:
            return self.namespaces is not None and namespace in self.namespaces
        if self.namespaces is None:
            return True
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)


@dataclass(frozen=True)
class Roster:
    workspace: Workspace
    mfa: MfaMode
    incident_channel: str
    request_timeout: timedelta
    reminder_before: timedelta
    min_duration: timedelta
    clusters: Mapping[str, Cluster]
    roles: Mapping[str, Role]
    groups: Mapping[str, tuple[SlackUserId, ...]]
    people: Mapping[SlackUserId, Person]
    entitlements: tuple[Entitlement, ...]
    admins: tuple[str, ...] = field(default=())
    # Channels a request may be posted in besides incident_channel (the form offers any channel, so
    # without this list a requester could keep a request and its thread in a channel of their own).
    request_channels: tuple[str, ...] = field(default=())
    # Quotas: one person cannot flood the channel and every approver's DMs.
    max_pending_requests: int = 3  # per person
    max_pending_extensions: int = 2  # per grant
    oidc: OidcConfig | None = None
    # Groups whose members are read at run time from a Slack user group or an Okta group; their entry
    # in ``groups`` is empty until the roster is resolved (``bot.slack.usergroups``).
    group_sources: Mapping[str, GroupSource] = field(default_factory=dict)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    # Why a group could not be read (name -> one sentence), set when the roster is resolved.
    group_problems: Mapping[str, str] = field(default_factory=dict)
    # When each run-time group was last read (name -> instant), set when the roster is resolved.
    group_read_at: Mapping[str, datetime] = field(default_factory=dict)

    def needs_step_up(self, action: StepUpAction, role: str) -> bool:
        """Whether ``action`` on ``role`` waits for a verified login at the identity provider."""
        if self.mfa != "oidc" or self.oidc is None:
            return False
        known = self.roles.get(role)
        actions = known.step_up if known is not None and known.step_up is not None else self.oidc.step_up
        return action in actions

    bot_namespace: str = SYSTEM_NAMESPACE
    # The token namespace is a process setting (BREAKGLASS_TOKEN_NAMESPACE), added by whoever loads
    # the roster for a process (``RosterFile``).
    also_protected: tuple[str, ...] = field(default=())
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    @property
    def protected_namespaces(self) -> tuple[str, ...]:
        return (*PROTECTED_NAMESPACE_GLOBS, self.bot_namespace, *self.also_protected)

    def is_protected(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.protected_namespaces)

    def kube_user_of(self, person: SlackUserId) -> str | None:
        found = self.people.get(person)
        return found.kube_user if found else None

    def members(self, groups: Iterable[str]) -> frozenset[SlackUserId]:
        return frozenset(user for group in groups for user in self.groups.get(group, ()))

    def is_admin(self, user: SlackUserId) -> bool:
        return user in self.members(self.admins)

    def automation_references(self) -> References:
        """The PagerDuty schedules, policies and services and the Jira projects the roles name."""
        return references(self.roles.values())

    def summary(self) -> str:
        return (
            f"{len(self.people)} people, {len(self.groups)} groups, {len(self.roles)} roles, "
            f"{len(self.clusters)} clusters, {len(self.entitlements)} entitlements"
        )


# --- YAML with places -------------------------------------------------------------------------


class _Located:
    """A parsed YAML value plus, for each path inside it, the line it started on."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.duplicates: list[Problem] = []


def _compose(text: str, located: _Located) -> Any:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return None
    return _to_python(node, "", located)


def _join(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else str(key)


def _to_python(node: yaml.Node, path: str, located: _Located) -> Any:
    located.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            child = _join(path, str(key))
            if key in result:
                located.duplicates.append(Problem(child, f"duplicate key '{key}'", key_node.start_mark.line + 1))
                continue
            located.lines[child] = key_node.start_mark.line + 1
            result[key] = _to_python(value_node, child, located)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, _join(path, i), located) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return f"<{type(node).__name__}>"
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except yaml.YAMLError:
        raise
    except Exception:  # noqa: BLE001 - PyYAML's constructors raise what int(), float(), base64… raise
        # ``!!int one`` or ``!!binary ??`` make PyYAML raise ValueError and the like, not YAMLError;
        # as a roster problem it has a line, and a reload keeps the last good roster.
        raise yaml.constructor.ConstructorError(
            None, None, f"the value {node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}", node.start_mark
        ) from None


# --- the check --------------------------------------------------------------------------------


class _Checker:
    def __init__(self, located: _Located) -> None:
        self.located = located
        self.problems: list[Problem] = list(located.duplicates)

    def problem(self, place: str, message: str) -> None:
        line = self.located.lines.get(place)
        if line is None:  # a missing key: point at its parent
            parent = place.rsplit(".", 1)[0] if "." in place else ""
            line = self.located.lines.get(parent)
        self.problems.append(Problem(place, message, line))

    def mapping(self, value: Any, place: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(place, f"must be a mapping, not {_kind(value)}")
            return {}
        # A key of the file itself is placed by its own name, as its line was recorded.
        base = "" if place == "(file)" else place
        present = {str(k) for k in value}
        meant: set[str] = set()
        for key in value:
            if str(key) not in allowed:
                # A one-letter slip (`aprovals:`) is one problem with its fix, not an unknown key
                # plus a missing one.
                close = difflib.get_close_matches(str(key), sorted(allowed - present - meant), n=1, cutoff=0.8)
                if close:
                    meant.add(close[0])
                    self.problem(_join(base, str(key)), f"unknown key '{key}'; did you mean '{close[0]}'?")
                else:
                    self.problem(_join(base, str(key)), f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - present - meant):
            self.problem(_join(base, key), "is required")
        return {str(k): v for k, v in value.items()}

    def string(self, value: Any, place: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
        if not isinstance(value, str) or not value:
            self.problem(place, f"must be a non-empty string, not {_kind(value)}")
            return None
        if pattern is not None and pattern.fullmatch(value) is None:
            self.problem(place, f"'{value}' is not {what}")
            return None
        return value

    def duration(self, value: Any, place: str) -> timedelta | None:
        if not isinstance(value, str):
            self.problem(place, f"must be a duration like 15m or 1h30m, not {_kind(value)}")
            return None
        try:
            return parse_duration(value)
        except DurationError as exc:
            self.problem(place, str(exc))
            return None

    def string_list(self, value: Any, place: str) -> list[tuple[str, str]]:
        """(place, item) for each string item; problems for the rest."""
        if not isinstance(value, list):
            self.problem(place, f"must be a list, not {_kind(value)}")
            return []
        items = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item:
                items.append((_join(place, i), item))
            else:
                self.problem(_join(place, i), f"must be a non-empty string, not {_kind(item)}")
        return items


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number"}.get(
        type(value), type(value).__name__
    )


_TOP_KEYS = {
    "workspace", "mfa", "incident_channel", "request_timeout", "reminder_before", "min_duration",
    "clusters", "roles", "groups", "people", "entitlements", "admins",
    "request_channels", "max_pending_requests", "max_pending_extensions", "oidc", "identity",
    "bot_namespace",
}  # fmt: skip
_QUOTA_MAX = 100


def parse_roster(text: str) -> Roster:
    """Parse and check a roster. Raises RosterError listing every problem found."""
    located = _Located()
    try:
        raw = _compose(text, located)
    except yaml.YAMLError as exc:
        raise RosterError([_yaml_problem(exc, text)]) from None
    if raw is None:
        raise RosterError([Problem("(file)", "is empty; start from deploy/roster.example.yaml", 1)])
    check = _Checker(located)
    top = check.mapping(
        raw, "(file)", _TOP_KEYS,
        {"workspace", "mfa", "incident_channel", "clusters", "roles", "groups", "people", "entitlements"},
    )  # fmt: skip

    # Missing is reported as a missing key; present but empty (`workspace:`) as not a mapping.
    workspace = _workspace(check, top["workspace"]) if "workspace" in top else None
    mfa = top.get("mfa")
    if "mfa" in top and mfa not in ("slack_enforced", "has_2fa", "oidc"):
        check.problem("mfa", f"'{mfa}' is not one of slack_enforced, has_2fa, oidc")
    oidc = _oidc(check, top["oidc"]) if "oidc" in top else None
    if mfa == "oidc" and "oidc" not in top:
        check.problem("oidc", "is required with mfa: oidc (issuer, client_id, max_age, amr or acr)")
    channel = (
        check.string(top.get("incident_channel"), "incident_channel", _CHANNEL_ID, "a Slack channel id")
        if "incident_channel" in top
        else None
    )
    request_timeout = _optional_duration(check, top, "request_timeout", timedelta(minutes=30))
    reminder_before = _optional_duration(check, top, "reminder_before", timedelta(minutes=10))
    min_duration = _optional_duration(check, top, "min_duration", timedelta(minutes=5))

    clusters = _clusters(check, top.get("clusters", {}))
    people = _people(check, top.get("people", {}))
    identity = _identity(check, top["identity"]) if "identity" in top else IdentityConfig()
    groups, group_sources = _groups(check, top.get("groups", {}), people, identity)
    roles = _roles(check, top.get("roles", {}), groups, min_duration, set(group_sources))
    entitlements = _entitlements(check, top.get("entitlements", []), groups, roles, clusters)
    bot_namespace = (
        check.string(top["bot_namespace"], "bot_namespace", _DNS_LABEL, "a namespace name")
        if "bot_namespace" in top
        else SYSTEM_NAMESPACE
    )
    admins: list[str] = []
    for place, group in check.string_list(top["admins"], "admins") if "admins" in top else []:
        if group not in groups:
            check.problem(place, f"unknown group '{group}'")
        admins.append(group)

    request_channels = [
        channel_id
        for place, channel_id in (check.string_list(top["request_channels"], "request_channels")
                                  if "request_channels" in top else [])
        if check.string(channel_id, place, _CHANNEL_ID, "a Slack channel id")
    ]  # fmt: skip
    quotas = {}
    for quota, default in (("max_pending_requests", 3), ("max_pending_extensions", 2)):
        value = top.get(quota, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _QUOTA_MAX:
            check.problem(quota, f"must be a whole number from 1 to {_QUOTA_MAX}, not {value!r}"[:200])
        quotas[quota] = value

    if request_timeout is not None:
        for role in roles.values():
            check_escalation_timing(check, role.name, role.escalate_after, request_timeout)
    if reminder_before is not None and roles:
        shortest = min(role.max_duration for role in roles.values())
        if reminder_before >= shortest:
            check.problem(
                "reminder_before",
                f"{format_duration(reminder_before)} is not shorter than the shortest max_duration "
                f"({format_duration(shortest)})",
            )

    check.problems.sort(key=lambda p: p.line if p.line is not None else 0)
    if check.problems:
        raise RosterError(check.problems)
    # Every None below was reported as a problem, so none can reach here.
    assert workspace is not None
    assert channel is not None
    assert request_timeout is not None
    assert reminder_before is not None
    assert min_duration is not None
    return Roster(
        workspace=workspace,
        mfa=mfa,  # type: ignore[arg-type]  # checked above
        incident_channel=channel,
        request_timeout=request_timeout,
        reminder_before=reminder_before,
        min_duration=min_duration,
        clusters=clusters,
        roles=roles,
        groups=groups,
        people=people,
        entitlements=tuple(entitlements),
        admins=tuple(admins),
        request_channels=tuple(request_channels),
        max_pending_requests=quotas["max_pending_requests"],
        max_pending_extensions=quotas["max_pending_extensions"],
        oidc=oidc,
        group_sources=group_sources,
        identity=identity,
        bot_namespace=bot_namespace or SYSTEM_NAMESPACE,
        warnings=tuple(_protected_warnings(check, entitlements, roles, bot_namespace or SYSTEM_NAMESPACE)),
    )


def _protected_warnings(
    check: _Checker, entitlements: list[Entitlement], roles: Mapping[str, Role], bot_namespace: str
) -> list[Problem]:
    """Entitlements that would reach a protected namespace were it not protected: not errors (they
    are refused there), but their author may believe otherwise."""
    warnings = []
    probes = (*_WELL_KNOWN_KUBE_NAMESPACES, bot_namespace)
    for i, entitlement in enumerate(entitlements):
        if not any(roles.get(r) and roles[r].scope == "namespace" for r in entitlement.roles):
            continue
        place = f"entitlements[{i}]"
        if entitlement.namespaces is None:
            reached = ", ".join(("kube-*", bot_namespace))
            message = (
                f"no namespaces: reaches every namespace but the protected ones ({reached}), which it does not grant"
            )
            warnings.append(Problem(place, message, check.located.lines.get(place)))
            continue
        for j, pattern in enumerate(entitlement.namespaces):
            hits = [ns for ns in probes if ns != pattern and fnmatch.fnmatchcase(ns, pattern)]
            if hits:
                where = f"{place}.namespaces[{j}]"
                message = (
                    f"'{pattern}' matches protected namespaces ({', '.join(hits)}), which only their exact name grants"
                )
                warnings.append(Problem(where, message, check.located.lines.get(where)))
    return warnings


def load_roster_file(path: str | Path) -> Roster:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RosterError([Problem("(file)", f"cannot read {path}: {exc.strerror}")]) from None
    return parse_roster_bytes(data)


def parse_roster_bytes(data: bytes) -> Roster:
    """A roster from a file's bytes: one problem, with its line, for bytes that are not UTF-8 text."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise RosterError([Problem("(file)", "is a binary file, not a YAML roster", line)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - line_start + 1
        raise RosterError(
            [
                Problem(
                    "(file)",
                    f"byte 0x{data[exc.start]:02x} at column {column} is not UTF-8; save the file as UTF-8",
                    line,
                )
            ]
        ) from None
    return parse_roster(text)


def _yaml_problem(exc: yaml.YAMLError, text: str) -> Problem:
    """PyYAML's error in plain words, on the line a person must look at.

    PyYAML reports where it gave up, which is often after the mistake: an unclosed quote or bracket
    is blamed on the end of the file, a key missing its ':' on the line below. The opening mark
    (``context_mark``) is where the fix goes, so such errors point there."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        return Problem("(file)", f"holds a control character (#x{exc.character:04x}); a roster is plain text", line)
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Problem("(file)", f"is not valid YAML ({exc})")
    problem = exc.problem or ""
    context = exc.context or ""
    at = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
    opened = exc.context_mark.line + 1 if exc.context_mark is not None else at
    if "'\\t'" in problem or "\\t" in problem:
        return Problem("(file)", "a tab in the indentation; YAML indents with spaces", at)
    if "quoted scalar" in context:
        return Problem("(file)", "a quote opened on this line is never closed", opened)
    if problem.startswith("expected ',' or '}'"):
        return Problem("(file)", "a '{' opened on this line is not closed by '}' (or a ',' is missing)", opened)
    if problem.startswith("expected ',' or ']'"):
        return Problem("(file)", "a '[' opened on this line is not closed by ']' (or a ',' is missing)", opened)
    if problem.startswith("could not find expected ':'"):
        return Problem("(file)", "a key without its ':' (or a line that does not belong here)", opened)
    if problem == "mapping values are not allowed here":
        before = f", or a ':' missing at the end of line {at - 1}" if at is not None and at > 1 else ""
        return Problem("(file)", f"a ':' where none may be: quote a value holding ': '{before}", at)
    if problem.startswith("expected <block end>") or "block mapping" in context:
        return Problem("(file)", "the indentation does not line up with the lines above", at)
    return Problem("(file)", f"is not valid YAML: {problem or context or exc}", at)


def _optional_duration(check: _Checker, top: dict[str, Any], key: str, default: timedelta) -> timedelta | None:
    return check.duration(top[key], key) if key in top else default


def _workspace(check: _Checker, value: Any) -> Workspace | None:
    ws = check.mapping(value, "workspace", {"team_id", "enterprise_id"}, set())
    team = check.string(ws["team_id"], "workspace.team_id", _TEAM_ID, "a Slack team id") if "team_id" in ws else None
    enterprise = (
        check.string(ws["enterprise_id"], "workspace.enterprise_id", _ENTERPRISE_ID, "a Slack enterprise id")
        if "enterprise_id" in ws
        else None
    )
    if "team_id" not in ws and "enterprise_id" not in ws:
        check.problem("workspace", "needs team_id (or enterprise_id for Enterprise Grid)")
    return Workspace(team_id=team, enterprise_id=enterprise)


def _clusters(check: _Checker, value: Any) -> dict[str, Cluster]:
    result: dict[str, Cluster] = {}
    for name, body in check.mapping(value, "clusters", set(value) if isinstance(value, dict) else set(), set()).items():
        place = f"clusters.{name}"
        if not _DNS_LABEL.fullmatch(name):
            check.problem(place, f"cluster name '{name}' must be a lower-case DNS label")
        spec = check.mapping(body, place, {"context", "credentials"}, {"context"})
        context = check.string(spec.get("context"), f"{place}.context") if "context" in spec else None
        credentials = spec.get("credentials", "user")
        if credentials not in ("user", "token"):
            check.problem(f"{place}.credentials", f"'{credentials}' is not one of user, token")
        if context is not None:
            result[name] = Cluster(name=name, context=context, credentials=credentials)
    if isinstance(value, dict) and not value:
        check.problem("clusters", "names no cluster")
    return result


def _people(check: _Checker, value: Any) -> dict[SlackUserId, Person]:
    result: dict[SlackUserId, Person] = {}
    for user, body in check.mapping(value, "people", set(value) if isinstance(value, dict) else set(), set()).items():
        place = f"people.{user}"
        if not _USER_ID.fullmatch(user):
            check.problem(place, f"'{user}' is not a Slack user id (U… or W…)")
        spec = check.mapping(body, place, {"kube_user", "kube_groups", "email"}, set())
        if "kube_user" not in spec:
            check.problem(place, "has no kube_user")
            continue
        kube_user = check.string(spec["kube_user"], f"{place}.kube_user")
        kube_groups = [item for _, item in check.string_list(spec.get("kube_groups", []), f"{place}.kube_groups")]
        for forbidden in ("system:masters",):
            if forbidden in kube_groups:
                check.problem(f"{place}.kube_groups", f"'{forbidden}' would bypass RBAC entirely")
        email = check.string(spec["email"], f"{place}.email", _EMAIL, "an email address") if "email" in spec else None
        if kube_user is not None and kube_user.startswith("system:"):
            # The API server's own identities (system:admin, system:serviceaccount:…, system:node:…):
            # binding one would hand a person a component's or a ServiceAccount's name.
            check.problem(f"{place}.kube_user", f"'{kube_user}' is a Kubernetes system identity (system:…)")
            continue
        if kube_user is not None:
            other = next((p for p in result.values() if p.kube_user == kube_user), None)
            if other is not None:
                # One person with two Slack accounts could approve their own request.
                check.problem(f"{place}.kube_user", f"'{kube_user}' is also {other.slack_id}'s kube_user")
                continue
            result[SlackUserId(user)] = Person(SlackUserId(user), kube_user, tuple(kube_groups), email)
    return result


def _identity(check: _Checker, value: Any) -> IdentityConfig:
    spec = check.mapping(value, "identity", {"kube_user_from", "group_cache_max_age"}, set())
    source = spec.get("kube_user_from")
    if source is not None and source != "email":
        check.problem("identity.kube_user_from", f"'{source}' is not one of email")
    max_age = (
        check.duration(spec["group_cache_max_age"], "identity.group_cache_max_age")
        if "group_cache_max_age" in spec
        else None
    )
    return IdentityConfig("email" if source == "email" else None, max_age or timedelta(minutes=10))


def _groups(
    check: _Checker, value: Any, people: Mapping[SlackUserId, Person], identity: IdentityConfig
) -> tuple[dict[str, tuple[SlackUserId, ...]], dict[str, GroupSource]]:
    result: dict[str, tuple[SlackUserId, ...]] = {}
    sources: dict[str, GroupSource] = {}
    for name, members in check.mapping(
        value, "groups", set(value) if isinstance(value, dict) else set(), set()
    ).items():
        place = f"groups.{name}"
        if not _NAME.fullmatch(name):
            check.problem(place, f"group name '{name}' has characters other than letters, digits, _ . -")
        if isinstance(members, dict):
            spec = check.mapping(members, place, {"slack_usergroup", "okta_group"}, set())
            kinds = [kind for kind in ("slack_usergroup", "okta_group") if kind in spec]
            if len(kinds) != 1:
                check.problem(place, "needs exactly one of slack_usergroup: S… or okta_group: 00g…")
            elif kinds[0] == "slack_usergroup":
                found = check.string(spec["slack_usergroup"], f"{place}.slack_usergroup", _USERGROUP_ID,
                                     "a Slack user group id")  # fmt: skip
                if found is not None:
                    sources[name] = GroupSource("slack_usergroup", found)
            else:
                found = check.string(
                    spec["okta_group"], f"{place}.okta_group", _OKTA_GROUP_ID, "an Okta group id (00g…)"
                )
                if found is not None:
                    sources[name] = GroupSource("okta_group", found)
            result[name] = ()
            continue
        ids: list[SlackUserId] = []
        for item_place, user in check.string_list(members, place):
            # A person listed without a valid entry is reported once, at that entry, not at every group.
            if user not in people and user not in _declared(check, "people") and identity.kube_user_from is None:
                check.problem(item_place, f"'{user}' is not in people (every member needs a kube_user)")
            ids.append(SlackUserId(user))
        result[name] = tuple(ids)
    return result, sources


_ROLE_KEYS = {
    "cluster_role", "scope", "max_duration", "min_duration", "approvals", "approvers", "idle_timeout", "step_up",
    *AUTOMATION_KEYS,
}  # fmt: skip


def _roles(
    check: _Checker,
    value: Any,
    groups: Mapping[str, tuple[SlackUserId, ...]],
    default_min: timedelta | None,
    read_at_run_time: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Role]:
    result: dict[str, Role] = {}
    for name, body in check.mapping(value, "roles", set(value) if isinstance(value, dict) else set(), set()).items():
        place = f"roles.{name}"
        spec = check.mapping(body, place, _ROLE_KEYS, {"cluster_role", "scope", "max_duration", "approvals"})
        cluster_role = (
            check.string(spec["cluster_role"], f"{place}.cluster_role", _DNS_SUBDOMAIN, "a valid ClusterRole name")
            if "cluster_role" in spec
            else None
        )
        scope = spec.get("scope")
        if "scope" in spec and scope not in ("namespace", "cluster"):
            check.problem(f"{place}.scope", f"'{scope}' is not one of namespace, cluster")
        max_duration = check.duration(spec["max_duration"], f"{place}.max_duration") if "max_duration" in spec else None
        min_duration = (
            check.duration(spec["min_duration"], f"{place}.min_duration") if "min_duration" in spec else default_min
        )
        if max_duration is not None and min_duration is not None and min_duration > max_duration:
            check.problem(
                f"{place}.min_duration" if "min_duration" in spec else f"{place}.max_duration",
                f"min_duration {format_duration(min_duration)} is above max_duration {format_duration(max_duration)}",
            )
        idle_timeout = check.duration(spec["idle_timeout"], f"{place}.idle_timeout") if "idle_timeout" in spec else None
        if idle_timeout is not None and max_duration is not None and idle_timeout >= max_duration:
            check.problem(
                f"{place}.idle_timeout",
                f"idle_timeout {format_duration(idle_timeout)} is not shorter than max_duration "
                f"{format_duration(max_duration)}, so it could never end a grant early",
            )
        step_up = _step_up(check, spec["step_up"], f"{place}.step_up") if "step_up" in spec else None
        approvals = spec.get("approvals")
        if "approvals" in spec and (not isinstance(approvals, int) or isinstance(approvals, bool) or approvals < 0):
            check.problem(f"{place}.approvals", f"must be a whole number of 0 or more, not {approvals!r}")
            approvals = None
        approvers: list[str] = []
        for item_place, group in check.string_list(spec.get("approvers", []), f"{place}.approvers"):
            if group not in groups:
                check.problem(item_place, f"unknown group '{group}'")
            approvers.append(group)
        if (
            isinstance(approvals, int)
            and isinstance(spec.get("approvers"), list)
            and all(g in groups for g in approvers)
            # A user group's members are known only at run time: doctor counts them then.
            and not set(approvers) & set(read_at_run_time)
        ):
            eligible = {user for g in approvers for user in groups[g]}
            if approvals > len(eligible):
                check.problem(
                    f"{place}.approvals",
                    f"needs {approvals} approvals but its approver groups hold only {len(eligible)} people",
                )
            if approvals == 0 and approvers and not eligible:
                check.problem(
                    f"{place}.approvers",
                    "a self-service role's approver groups hold no one: nobody would be told or close its review",
                )
        if isinstance(approvals, int) and approvals == 0 and not approvers:
            check.problem(
                f"{place}.approvers", "a self-service role still needs approvers: they are told and owe a review"
            )
        if isinstance(approvals, int) and approvals > 0 and "approvers" not in spec:
            check.problem(f"{place}.approvers", "is required when approvals is above 0")
        automation = parse_role_automation(
            check, spec, place, scope=scope, max_duration=max_duration, approvals=approvals
        )
        if (
            cluster_role
            and scope in ("namespace", "cluster")
            and max_duration
            and min_duration
            and isinstance(approvals, int)
        ):
            result[name] = Role(
                name=name,
                cluster_role=cluster_role,
                scope=scope,
                max_duration=max_duration,
                min_duration=min_duration,
                approvals=approvals,
                approvers=tuple(approvers),
                idle_timeout=idle_timeout,
                step_up=step_up,
                ticket=automation.ticket,
                auto_approve=automation.auto_approve,
                escalate_after=automation.escalate_after,
                escalate_service=automation.escalate_service,
            )
    return result


def _step_up(check: _Checker, value: Any, place: str) -> frozenset[str]:
    actions = set()
    for item_place, action in check.string_list(value, place):
        if action not in STEP_UP_ACTIONS:
            check.problem(item_place, f"'{action}' is not one of {', '.join(STEP_UP_ACTIONS)}")
        actions.add(action)
    return frozenset(actions)


def _oidc(check: _Checker, value: Any) -> OidcConfig | None:
    spec = check.mapping(value, "oidc", {"issuer", "client_id", "max_age", "amr", "acr", "step_up", "name"},
                         {"issuer", "client_id"})  # fmt: skip
    issuer = check.string(spec.get("issuer"), "oidc.issuer") if "issuer" in spec else None
    if issuer is not None and not (
        issuer.startswith("https://") or re.match(r"http://(localhost|127\.0\.0\.1|\[::1\])[:/]", issuer + "/")
    ):
        check.problem("oidc.issuer", "must be an https:// URL (http:// only for a loopback host)")
    client_id = check.string(spec.get("client_id"), "oidc.client_id") if "client_id" in spec else None
    max_age = check.duration(spec["max_age"], "oidc.max_age") if "max_age" in spec else timedelta(minutes=5)
    amr = tuple(item for _, item in check.string_list(spec["amr"], "oidc.amr")) if "amr" in spec else ()
    acr = tuple(item for _, item in check.string_list(spec["acr"], "oidc.acr")) if "acr" in spec else ()
    if not amr and not acr:
        # Without one of them any login would do, a password alone included: that is not step-up MFA.
        check.problem("oidc", "needs amr or acr: the values that count as a multi-factor login")
    step_up = _step_up(check, spec["step_up"], "oidc.step_up") if "step_up" in spec else frozenset(STEP_UP_ACTIONS)
    name = check.string(spec["name"], "oidc.name") if "name" in spec else None
    if issuer is None or client_id is None or max_age is None:
        return None
    host = issuer.split("://", 1)[-1].split("/", 1)[0]
    return OidcConfig(issuer, client_id, max_age, amr, acr, step_up, name or host)


def _entitlements(
    check: _Checker,
    value: Any,
    groups: Mapping[str, tuple[SlackUserId, ...]],
    roles: Mapping[str, Role],
    clusters: Mapping[str, Cluster],
) -> list[Entitlement]:
    result: list[Entitlement] = []
    if not isinstance(value, list):
        check.problem("entitlements", f"must be a list, not {_kind(value)}")
        return result
    for i, body in enumerate(value):
        place = f"entitlements[{i}]"
        spec = check.mapping(body, place, {"group", "roles", "clusters", "namespaces"}, {"group", "roles", "clusters"})
        group = check.string(spec["group"], f"{place}.group") if "group" in spec else None
        if group is not None and group not in groups:
            check.problem(f"{place}.group", f"unknown group '{group}'")
        role_items = check.string_list(spec.get("roles", []), f"{place}.roles")
        for item_place, role in role_items:
            if role not in roles and role not in _declared(check, "roles"):
                check.problem(item_place, f"unknown role '{role}'")
        role_names = [role for _, role in role_items]
        cluster_names = []
        for item_place, cluster in check.string_list(spec.get("clusters", []), f"{place}.clusters"):
            if cluster not in clusters and cluster not in _declared(check, "clusters"):
                check.problem(item_place, f"unknown cluster '{cluster}'")
            cluster_names.append(cluster)
        namespaces: list[str] | None = None
        if "namespaces" in spec:
            namespaces = []
            for item_place, pattern in check.string_list(spec["namespaces"], f"{place}.namespaces"):
                if not _NAMESPACE_GLOB.fullmatch(pattern):
                    check.problem(item_place, f"'{pattern}' is not a namespace name or glob")
                namespaces.append(pattern)
            # Policy never lets a namespace-limited entitlement grant a cluster-wide binding (it
            # would reach every namespace), so such a line is dead and its author meant something else.
            for item_place, role in role_items:
                if role in roles and roles[role].scope == "cluster":
                    check.problem(
                        item_place,
                        f"'{role}' is cluster-scoped, so an entitlement limited to namespaces can never grant it",
                    )
        if group is not None:
            result.append(Entitlement(group, tuple(role_names), tuple(cluster_names), _tuple_or_none(namespaces)))
    return result


def _declared(check: _Checker, section: str) -> set[str]:
    """Names present in a section even when their body had problems (reported there, not twice)."""
    prefix = f"{section}."
    return {place[len(prefix) :].split(".")[0] for place in check.located.lines if place.startswith(prefix)}


def _tuple_or_none(items: list[str] | None) -> tuple[str, ...] | None:
    return None if items is None else tuple(items)
