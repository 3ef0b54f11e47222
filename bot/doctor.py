"""``breakglass doctor``: is this installation ready to grant and revoke access? One line per check.

It reads the settings (every problem, each on its own line), checks the roster, and asks Redis
(answers, version, persistence, eviction), Slack (the bot token, its granted scopes against
``REQUIRED_SCOPES``, the admin token when the roster's ``mfa`` is ``has_2fa``) and every roster cluster
(the API server answers; the bot's own permissions, by SelfSubjectAccessReview, for each entry of
``REQUIRED_PERMISSIONS`` (those on ServiceAccounts only on ``credentials: token`` clusters) and ``bind``
on each ClusterRole the roster hands out; the token namespace of ``credentials: token`` clusters), and
for automated approvals PagerDuty and Jira (each token, and every schedule, escalation policy, service
and project the roster names). It
prints a checklist: ✓ passed, ! a warning, ✗ failed with the fix under it (every failure has one), – not checked because something it needs failed first. The exit status is 0 only when no
check failed; warnings do not fail.

What it must not do: print a secret (every line passes a redactor that knows the configured secret
values, the kubeconfig's tokens and the shapes of tokens), change anything (its one write is a
dry-run), or hang (every network call has a short timeout).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import redis
import yaml

from bot.deploy_rbac import RBAC_API_GROUP, Permission, required_permissions
from bot.domain import policy
from bot.domain.grants import SYSTEM_NAMESPACE
from bot.domain.roster import Roster, RosterError, load_roster_file
from bot.domain.roster_automation import References
from bot.integrations.connect import connect
from bot.integrations.http import Patience
from bot.integrations.jira import Jira
from bot.integrations.pagerduty import PagerDuty
from bot.logs import scrub
from bot.oidc import OidcClient, ProviderUnavailable
from bot.ports import AuditSink, BreakglassError, ClusterUnavailable, GroupDirectory, LookupFailed, UnknownCluster
from bot.settings import Process, Settings, load_settings, settings_problems, url_without_password
from bot.slack.client import ADMIN_SCOPES, REQUIRED_SCOPES, SlackError, SlackUnavailable, make_web_client, translated
from workers.kube import ClusterTarget, KubeClusters

EXIT_PROBLEM = 1
TIMEOUT_SECONDS = 5
SECRET_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_ADMIN_TOKEN",
    "BREAKGLASS_AUDIT_WEBHOOK_TOKEN",
    "BREAKGLASS_SIGNING_KEY",
    "BREAKGLASS_OIDC_CLIENT_SECRET",
    "BREAKGLASS_PAGERDUTY_TOKEN",
    "BREAKGLASS_JIRA_TOKEN",
    "BREAKGLASS_OKTA_TOKEN",
)
SLACK_APP_FIX = (
    "add them on the app's OAuth & Permissions page (or update the app from deploy/slack/manifest.yaml), "
    "reinstall it to the workspace, and put the new token in SLACK_BOT_TOKEN if it changed"
)
_SETTINGS_FIXES = {
    "SLACK_BOT_TOKEN": "set it to the app's Bot User OAuth Token (xoxb-…), on its OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "set it to the app's Signing Secret (Basic Information page), or set "
    "SLACK_APP_TOKEN to use Socket Mode instead",
    "BREAKGLASS_SIGNING_KEY": "set it to a random secret of at least 32 characters (openssl rand -hex 32), "
    "kept outside Redis; the same one in every web and worker process",
    "SLACK_APP_TOKEN": "set it to an app-level token (xapp-…) with connections:write, or unset it for HTTP mode",
}
_MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "–"}


@dataclass
class Checklist:
    """The printed checklist. Every line goes through ``redact`` before it is written."""

    out: TextIO
    secrets: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_MARKS, 0))

    def section(self, title: str) -> None:
        self.line(f"\n{title}")

    def ok(self, what: str) -> None:
        self._check("ok", what)

    def warn(self, what: str, fix: str | None = None) -> None:
        self._check("warn", what, fix)

    def fail(self, what: str, fix: str | None = None) -> None:
        self._check("fail", what, fix)

    def skip(self, what: str) -> None:
        self._check("skip", what)

    def fix(self, text: str) -> None:
        """The fix for the failures just above it, when one fix serves several."""
        self.line(f"      fix: {text}")

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return scrub(text)

    def _check(self, kind: str, what: str, fix: str | None = None) -> None:
        self.counts[kind] += 1
        self.line(f"  {_MARKS[kind]} {what}")
        if fix:
            self.fix(fix)

    def line(self, text: str) -> None:
        self.out.write(self.redact(text) + "\n")
        self.out.flush()


def run_doctor(out: TextIO, environ: Mapping[str, str] | None = None, process: Process = "web") -> int:
    """Check everything; print the checklist to ``out``; 0 when nothing failed. ``process`` is whose
    settings these are: the worker's need no SLACK_SIGNING_SECRET (deploy/ gives it none)."""
    env = dict(os.environ if environ is None else environ)
    with _libraries_silenced():
        return _run(out, env, process)


@contextlib.contextmanager
def _libraries_silenced() -> Iterator[None]:
    """The checklist is the output. The clients' own warnings (slack_sdk's "Failed to send a request",
    urllib3's retries) would repeat it on stderr without passing the redactor, so they go nowhere."""
    root = logging.getLogger()
    silence = logging.NullHandler()
    if not root.handlers:
        root.addHandler(silence)
    try:
        yield
    finally:
        root.removeHandler(silence)


def _run(out: TextIO, env: dict[str, str], process: Process) -> int:
    checks = Checklist(out, secrets=_secret_values(env))
    checks.out.write("breakglass doctor\n")

    checks.section("Settings")
    settings = _check_settings(checks, env, process)
    roster_path = settings.roster_path if settings else env.get("BREAKGLASS_ROSTER", "roster.yaml")
    if settings and settings.kubeconfig:
        checks.secrets += _kubeconfig_tokens(settings.kubeconfig)

    checks.section(f"Roster ({roster_path})")
    roster = _check_roster(checks, roster_path)

    checks.section("Redis")
    if settings is None:
        checks.skip("not checked: the settings do not load")
    else:
        _check_redis(checks, settings.redis_url)

    checks.section("Slack")
    if settings is None:
        checks.skip("not checked: the settings do not load")
    else:
        _check_slack(checks, settings, roster)

    if roster is not None and roster.group_sources and settings is not None:
        checks.section("Groups read from Slack and Okta")
        _check_groups(checks, settings, roster)

    if roster is not None and roster.mfa == "oidc" and settings is not None:
        checks.section("Identity provider (mfa: oidc)")
        _check_oidc(checks, settings, roster)

    if roster is None or settings is None:
        checks.section("Clusters")
        checks.skip("not checked: " + ("the roster fails its check" if roster is None else "the settings do not load"))
    else:
        _check_clusters(checks, settings, roster, roster_path)
        checks.section("Audit events")
        _check_audit_events(checks, settings, roster)

    if settings is not None and roster is not None:
        _check_outside(checks, settings, roster)

    checks.section("Audit sink (the durable copy)")
    if settings is None:
        checks.skip("not checked: the settings do not load")
    else:
        _check_audit_sink(checks, settings, process)

    failed, warned = checks.counts["fail"], checks.counts["warn"]
    passed = checks.counts["ok"]
    checks.section("Result")
    if failed:
        checks.line(
            f"  {failed} check{'s' if failed != 1 else ''} failed, {passed} passed, {warned} warning"
            f"{'s' if warned != 1 else ''}. Fix from the top: later checks often depend on earlier ones."
        )
        return EXIT_PROBLEM
    checks.line(f"  all {passed} checks passed ({warned} warning{'s' if warned != 1 else ''}).")
    return 0


# --- settings and roster ---------------------------------------------------------------------


def _check_settings(checks: Checklist, env: Mapping[str, str], process: Process) -> Settings | None:
    problems = settings_problems(env, process)
    for problem in problems:
        variable = problem.partition(":")[0]
        checks.fail(problem, _SETTINGS_FIXES.get(variable, f"set {variable} as the README's Configure table says"))
    if problems:
        return None
    settings = load_settings(env, process)
    if process == "worker":
        # The audit webhook token is the web process's; its absence here says nothing.
        checks.ok(f"the worker's settings load, Redis {url_without_password(settings.redis_url)}")
        return settings
    mode = "Socket Mode (SLACK_APP_TOKEN)" if settings.socket_mode else "HTTP mode (Slack posts to /slack/events)"
    checks.ok(f"settings load: {mode}, Redis {url_without_password(settings.redis_url)}")
    if settings.audit_webhook_token is None:
        checks.warn(
            "the Kubernetes audit webhook is off: what people do with a grant is not recorded",
            "set BREAKGLASS_AUDIT_WEBHOOK_TOKEN and connect the API server's audit webhook (deploy/audit/)",
        )
    return settings


def _check_roster(checks: Checklist, path: str) -> Roster | None:
    try:
        roster = load_roster_file(path)
    except RosterError as exc:
        shown = exc.problems[:20]
        for problem in shown:
            checks.fail(str(problem))
        if len(exc.problems) > len(shown):
            checks.fail(f"… and {len(exc.problems) - len(shown)} more problems")
        if not Path(path).exists():
            checks.fix(
                f"create {path} (start from deploy/roster.example.yaml), or set BREAKGLASS_ROSTER to the roster's path"
            )
        else:
            checks.fix(f"correct {path}; `breakglass roster check {path}` prints each problem with its place")
        return None
    checks.ok(f"the roster passes its check: {roster.summary()}")
    return roster


# --- Redis -------------------------------------------------------------------------------------


def _check_audit_events(
    checks: Checklist, settings: Settings, roster: Roster, client: redis.Redis | None = None
) -> None:
    """Which clusters send their API server's audit events: only there are actions recorded and a
    role's idle_timeout enforced."""
    from datetime import UTC, datetime

    from bot.store.audit_log import AuditLog
    from bot.store.kube_actions import HEARD_GAP, ActionLedger

    now = datetime.now(UTC)
    client = client or redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=TIMEOUT_SECONDS,
        socket_timeout=TIMEOUT_SECONDS,
        decode_responses=True,
    )
    ledger = ActionLedger(
        client, AuditLog(client, lambda: now, prefix=settings.key_prefix, key=None), settings.key_prefix
    )
    idle_roles = sorted(name for name, role in roster.roles.items() if role.idle_timeout is not None)
    idle = f"; idle_timeout ({', '.join(idle_roles)}) is enforced there" if idle_roles else ""
    for cluster in roster.clusters:
        try:
            hearing = ledger.hearing(cluster)
        except redis.RedisError as exc:
            checks.skip(f"{cluster}: not checked: Redis {type(exc).__name__}")
            continue
        if hearing is not None and now - hearing[1] <= HEARD_GAP:
            ago = int((now - hearing[1]).total_seconds())
            checks.ok(f"{cluster}: sends audit events (the last batch {ago}s ago): actions are recorded{idle}")
            continue
        when = f"none since {hearing[1]:%Y-%m-%d %H:%M} UTC" if hearing else "none received"
        checks.warn(
            f"{cluster}: sends no audit events ({when}): actions are not recorded"
            + (" and idle_timeout is not enforced there" if idle_roles else ""),
            f"point {cluster}'s API server audit webhook at /k8s/audit/{cluster} (deploy/audit/ has its policy)",
        )


def _check_audit_sink(
    checks: Checklist, settings: Settings, process: Process = "worker", client: redis.Redis | None = None
) -> None:
    """The bucket takes locked objects (where the worker runs: it holds the store's credentials), and
    the worker's copying keeps up (its progress record, readable anywhere)."""
    from bot.integrations.s3_audit_sink import sink_from_settings

    sink = sink_from_settings(settings)
    if sink is None:
        checks.skip(
            "BREAKGLASS_AUDIT_SINK is unset: the audit log is kept in Redis and the structured log only "
            "(set s3://bucket/prefix for a copy no one can change)"
        )
        return
    if process != "worker":
        checks.skip(
            "the bucket is checked where the worker runs (`breakglass doctor --worker`): it holds the credentials"
        )
    else:
        _check_bucket(checks, sink, settings)
    _check_copying(checks, settings, client)


def _check_bucket(checks: Checklist, sink: AuditSink, settings: Settings) -> None:
    from bot.ports import SinkRefused, SinkUnavailable

    try:
        checks.ok(sink.check_lock() + f", for {settings.audit_sink_retention.days} days")
    except SinkRefused as exc:
        checks.fail(
            str(exc),
            "create the bucket with Object Lock enabled and give the worker s3:PutObject, s3:GetObject, "
            "s3:ListBucket and s3:PutObjectRetention on it (README: The audit sink)",
        )
    except SinkUnavailable as exc:
        checks.fail(str(exc), "check BREAKGLASS_S3_ENDPOINT_URL and the network path to the store")


def _check_copying(checks: Checklist, settings: Settings, client: redis.Redis | None) -> None:
    from bot.store.audit_sink import SinkProgressStore

    client = client or redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=TIMEOUT_SECONDS,
        socket_timeout=TIMEOUT_SECONDS,
        decode_responses=True,
    )
    try:
        progress = SinkProgressStore(client, settings.key_prefix).read()
    except redis.RedisError as exc:
        checks.skip(f"copying not checked: Redis {type(exc).__name__}")
        return
    if progress is None:
        checks.warn(
            "no worker has copied the audit log to the sink yet",
            "run a worker with BREAKGLASS_AUDIT_SINK set (the worker copies; web processes do not)",
        )
    elif progress.failing_since is not None:
        checks.fail(
            f"copying to the sink has failed since {progress.failing_since:%Y-%m-%d %H:%M:%S} UTC: {progress.error}; "
            f"{progress.behind} entries wait in Redis (none is lost; they are copied once it works)",
            "fix what the failure names; the worker retries by itself",
        )
    else:
        when = f"{progress.copied_at:%Y-%m-%d %H:%M:%S} UTC" if progress.copied_at else "never"
        checks.ok(f"the sink holds entries up to {progress.seq} (last look {when}; {progress.behind} waiting)")


def _check_redis(checks: Checklist, url: str) -> None:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS, decode_responses=True
    )
    try:
        _check_redis_server(checks, client, url_without_password(url))
    finally:
        client.close()


def _check_redis_server(checks: Checklist, client: redis.Redis, where: str) -> None:
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    except redis.RedisError as exc:
        checks.fail(
            f"Redis does not answer at {where}: {type(exc).__name__}: {exc}",
            "start Redis there, or set BREAKGLASS_REDIS_URL to the Redis breakglass should use",
        )
        return
    checks.ok(f"Redis {version} answers at {where}")
    try:
        config = {key: _config_get(client, key) for key in ("appendonly", "save", "maxmemory-policy")}
    except redis.ResponseError:  # managed Redis often disables or renames CONFIG
        checks.warn(
            "cannot read Redis's persistence settings (CONFIG is not allowed on this server)",
            "make sure it keeps an append-only file or snapshots, and evicts nothing (maxmemory-policy noeviction)",
        )
        return
    if config["appendonly"] == "yes":
        checks.ok("Redis persists every write (appendonly yes)")
    elif config["save"]:
        checks.ok(f"Redis persists snapshots (save {config['save']}); up to one interval of writes can be lost")
    else:
        checks.warn(
            "Redis keeps nothing on disk (appendonly no, no save schedule): a restart loses pending requests, "
            "schedules and the audit log (the sweep still ends every grant on time)",
            "turn on `appendonly yes` in the Redis configuration (or CONFIG SET appendonly yes, then CONFIG REWRITE)",
        )
    policy = config["maxmemory-policy"]
    if policy and policy != "noeviction":
        checks.warn(
            f"Redis may evict keys under memory pressure (maxmemory-policy {policy}): audit entries and queued "
            "revokes could be dropped",
            "set maxmemory-policy noeviction",
        )


def _config_get(client: redis.Redis, key: str) -> str:
    value = client.config_get(key)
    return str(value.get(key) or "")


# --- Slack -------------------------------------------------------------------------------------


def _check_slack(checks: Checklist, settings: Settings, roster: Roster | None) -> None:
    web = make_web_client(settings.slack_bot_token, settings.slack_api_url, timeout=TIMEOUT_SECONDS)
    try:
        with translated():
            answer = web.auth_test()
    except SlackError as exc:
        checks.fail(
            f"Slack refuses the bot token ({exc.error})",
            "put the app's current Bot User OAuth Token (xoxb-…) in SLACK_BOT_TOKEN; reinstall the app if it was removed",
        )
        return
    except SlackUnavailable as exc:
        checks.fail(
            f"Slack cannot be reached at {settings.slack_api_url} ({exc})",
            "check BREAKGLASS_SLACK_API_URL and that this host reaches it (proxy, firewall, DNS)",
        )
        return
    data: Mapping[str, Any] = answer.data if isinstance(answer.data, dict) else {}
    team_id = str(data.get("team_id") or "")
    checks.ok(f"the bot token works: @{data.get('user')} in {data.get('team')} ({team_id})")
    if roster is not None:
        _check_workspace(checks, roster, team_id, str(data.get("enterprise_id") or ""))
    granted = _granted_scopes(answer.headers)
    if granted is None:
        checks.warn("Slack did not report the token's scopes (no x-oauth-scopes header); they were not checked")
    else:
        missing = [scope for scope in REQUIRED_SCOPES if scope not in granted]
        if missing:
            checks.fail(
                f"the bot token lacks scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}", SLACK_APP_FIX
            )
        else:
            checks.ok(f"the bot token has every scope breakglass calls for ({', '.join(REQUIRED_SCOPES)})")
        unused = sorted(granted - set(REQUIRED_SCOPES))
        if unused:
            checks.warn(
                f"the bot token has scopes breakglass does not use: {', '.join(unused)}",
                "remove them from the app (deploy/slack/manifest.yaml lists exactly what is needed) and reinstall",
            )
    if roster is not None and roster.mfa == "has_2fa":
        _check_admin_token(checks, settings)


def _check_workspace(checks: Checklist, roster: Roster, team_id: str, enterprise_id: str) -> None:
    wanted = roster.workspace
    if wanted.enterprise_id:
        if enterprise_id != wanted.enterprise_id:
            checks.fail(
                f"the token belongs to org {enterprise_id or '(none)'}, the roster names {wanted.enterprise_id}",
                "install the app in the roster's org, or correct workspace.enterprise_id in the roster",
            )
    elif wanted.team_id and team_id != wanted.team_id:
        checks.fail(
            f"the token belongs to workspace {team_id}, the roster names {wanted.team_id}: every request would be refused",
            "install the app in the roster's workspace, or correct workspace.team_id in the roster",
        )


def _check_admin_token(checks: Checklist, settings: Settings) -> None:
    if settings.slack_admin_token is None:
        checks.fail(
            "mfa: has_2fa needs SLACK_ADMIN_TOKEN, which is not set: every action would be refused",
            "set SLACK_ADMIN_TOKEN to a workspace admin's user token (xoxp-…) with users:read; or, if the "
            "workspace enforces 2FA or SSO with MFA for everyone, set mfa: slack_enforced in the roster",
        )
        return
    web = make_web_client(settings.slack_admin_token, settings.slack_api_url, timeout=TIMEOUT_SECONDS)
    try:
        with translated():
            answer = web.auth_test()
    except (SlackError, SlackUnavailable) as exc:
        checks.fail(
            f"Slack refuses SLACK_ADMIN_TOKEN ({getattr(exc, 'error', exc)})",
            "put a current user token (xoxp-…) of a workspace admin in SLACK_ADMIN_TOKEN",
        )
        return
    granted = _granted_scopes(answer.headers)
    missing = [scope for scope in ADMIN_SCOPES if granted is not None and scope not in granted]
    if missing:
        checks.fail(
            f"SLACK_ADMIN_TOKEN lacks scope {', '.join(missing)}: two-factor status cannot be read",
            "issue the admin's token with users:read",
        )
    else:
        checks.ok("SLACK_ADMIN_TOKEN works (mfa: has_2fa reads each person's two-factor status with it)")


def _check_groups(checks: Checklist, settings: Settings, roster: Roster, okta: GroupDirectory | None = None) -> None:
    """Each Slack user group and Okta group read now, and each role its approver groups leave short
    of its ``approvals`` (nothing asked for it could be approved)."""
    from datetime import UTC, datetime

    from bot.roster_source import FixedRoster
    from bot.slack.client import SlackApi
    from bot.slack.usergroups import UserGroupRoster
    from bot.wiring import okta_groups

    resolver = UserGroupRoster(
        FixedRoster(roster),
        SlackApi.connect(settings.slack_bot_token, settings.slack_api_url, sleep=lambda _: None),
        lambda: datetime.now(UTC),
        okta=okta or okta_groups(settings),
    )
    for reading in resolver.readings():
        if reading.source is None:
            continue
        if reading.problem is not None:
            fix = (
                "set BREAKGLASS_OKTA_URL and BREAKGLASS_OKTA_TOKEN (a token that may read groups)"
                if reading.source.kind == "okta_group"
                else "check the user group's id in the roster and the bot token's usergroups:read scope"
            )
            checks.fail(f"{reading.name} ({reading.source}) could not be read: {reading.problem}", fix)
            continue
        checks.ok(f"{reading.name} ({reading.source}): {len(reading.members)} people")
    for short in policy.approver_shortfalls(resolver()):
        groups = ", ".join(short.groups) or "a group"
        checks.fail(str(short), f"add people to {groups}, or lower roles.{short.role}.approvals")


def _check_oidc(checks: Checklist, settings: Settings, roster: Roster) -> None:
    """Step-up needs a public URL (the redirect URI lives under it), the client secret, the provider's
    discovery document and its signing keys; without any of them every step-up action is refused."""
    config = roster.oidc
    assert config is not None  # the roster check requires the block with mfa: oidc
    redirect = settings.oidc_redirect_uri
    if redirect is None:
        checks.fail(
            "mfa: oidc needs BREAKGLASS_PUBLIC_URL, which is not set: no verification link can be made",
            "set BREAKGLASS_PUBLIC_URL to the web process's https:// address",
        )
    elif not redirect.startswith(f"{settings.public_url}/"):
        checks.fail(f"the redirect URI {redirect} is not under BREAKGLASS_PUBLIC_URL")
    else:
        checks.ok(f"the redirect URI is {redirect} (register it with the provider for client {config.client_id})")
    if settings.oidc_client_secret is None:
        checks.fail(
            "mfa: oidc needs BREAKGLASS_OIDC_CLIENT_SECRET, which is not set",
            "set it to the secret of the provider's client for breakglass",
        )
        return
    client = OidcClient(config, settings.oidc_client_secret, redirect or "")
    try:
        found = client.discover()
        checks.ok(f"{config.name}'s discovery document answers (issuer {found.issuer}, {found.auth_method})")
        keys = client.jwks_keys()
    except ProviderUnavailable as exc:
        checks.fail(f"the identity provider: {exc}", f"check oidc.issuer in the roster ({config.issuer})")
        return
    if keys:
        checks.ok(f"{config.name} publishes {keys} signing key{'s' if keys != 1 else ''} (JWKS)")
    else:
        checks.fail(f"{config.name}'s JWKS holds no signing key: no ID token could be verified")


def _granted_scopes(headers: Mapping[str, Any]) -> set[str] | None:
    for name, value in headers.items():
        if name.lower() == "x-oauth-scopes":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            return {scope.strip() for scope in str(raw).split(",") if scope.strip()}
    return None


# --- clusters ----------------------------------------------------------------------------------


def _check_clusters(checks: Checklist, settings: Settings, roster: Roster, roster_path: str) -> None:
    targets = {name: ClusterTarget(c.context, c.credentials) for name, c in roster.clusters.items()}
    kube = KubeClusters(
        targets,
        kubeconfig=settings.kubeconfig,
        token_namespace=settings.token_namespace,
        request_timeout=(float(TIMEOUT_SECONDS), float(TIMEOUT_SECONDS)),
    )
    cluster_roles = sorted({role.cluster_role for role in roster.roles.values()})
    try:
        for name, cluster in roster.clusters.items():
            checks.section(f"Cluster {name} (context {cluster.context}, credentials: {cluster.credentials})")
            _check_cluster(
                checks, kube, settings, name, cluster.context, cluster.credentials, cluster_roles, roster_path
            )
    finally:
        kube.close()


def _check_cluster(
    checks: Checklist,
    kube: KubeClusters,
    settings: Settings,
    name: str,
    context: str,
    credentials: str,
    cluster_roles: Sequence[str],
    roster_path: str,
) -> None:
    kubeconfig = settings.kubeconfig or "~/.kube/config"
    try:
        version = kube.ping(name)
    except UnknownCluster as exc:
        checks.fail(
            str(exc),
            f"add a context named '{context}' to the kubeconfig ({kubeconfig}), or correct clusters.{name}.context",
        )
        return
    except ClusterUnavailable as exc:
        checks.fail(
            f"the API server does not answer: {exc}", f"check that this host reaches the API server of '{context}'"
        )
        return
    except BreakglassError as exc:
        checks.fail(
            f"the API server refuses the bot: {exc}",
            f"renew the credentials of context '{context}' in {kubeconfig} (expired or wrong)",
        )
        return
    checks.ok(f"the API server answers: Kubernetes {version}")

    namespace = settings.token_namespace
    rbac_fix = (
        f"run `breakglass deploy rbac --roster {roster_path}"
        + (f" --grant-namespace {namespace}" if namespace != SYSTEM_NAMESPACE else "")
        + f" --cluster {name} | {_kubectl(context)} apply -f -`"
    )
    if credentials == "token":
        _check_token_namespace(checks, kube, name, context, namespace, rbac_fix)

    # A credentials: user cluster never makes ServiceAccounts, and its RBAC gives the bot no rights on
    # them (least privilege): asking for those rights there would fail a correct setup.
    needed = list(required_permissions(namespace, service_account_tokens=credentials == "token"))
    try:
        missing = [p for p in needed if not kube.self_review(name, p.verb, p.resource, p.namespace, p.api_group)]
        unbindable = [
            role
            for role in cluster_roles
            if not kube.self_review(name, "bind", "clusterroles", None, RBAC_API_GROUP, name=role)
        ]
    except BreakglassError as exc:
        checks.fail(
            f"could not ask the API server about the bot's own permissions: {exc}",
            f"let the bot create selfsubjectaccessreviews: {rbac_fix}; if the API server is failing, run doctor "
            "again once it answers",
        )
        return
    for permission in missing:
        checks.fail(f"the bot may not {_describe(permission)}")
    for role in unbindable:
        checks.fail(f"the bot may not bind ClusterRole {role}: grants of roles using it would fail")
    if missing or unbindable:
        # The Role for the token namespace cannot be applied into a namespace that is not there.
        in_namespace = any(p.namespace for p in missing)
        checks.fix(
            f"`{_kubectl(context)} create namespace {namespace}` if it is missing, then {rbac_fix}"
            if in_namespace
            else rbac_fix
        )
        return
    checks.ok(
        f"the bot holds all {len(needed)} permissions it needs, and may bind {', '.join(cluster_roles) or 'no role'}"
    )


def _check_token_namespace(
    checks: Checklist, kube: KubeClusters, cluster: str, context: str, namespace: str, rbac_fix: str
) -> None:
    create = f"{_kubectl(context)} create namespace {namespace}"
    try:
        exists = kube.namespace_exists(cluster, namespace)
    except BreakglassError as exc:
        checks.fail(
            f"could not check namespace {namespace}: {exc}",
            f"`{_kubectl(context)} get namespace {namespace}` shows whether it exists; once the API server "
            "answers again, run doctor again",
        )
        return
    if exists:
        checks.ok(f"namespace {namespace} exists (token grants' ServiceAccounts are made there)")
    elif exists is None:
        checks.fail(
            f"the bot may not make ServiceAccounts in namespace {namespace}: the namespace or the bot's Role "
            "there is missing, and token grants need both",
            f"`{create}` if it is missing, then {rbac_fix}",
        )
    else:
        checks.fail(
            f"namespace {namespace} does not exist: token grants cannot make their ServiceAccounts",
            f"`{create}` (or set BREAKGLASS_TOKEN_NAMESPACE to a namespace that exists)",
        )


def _describe(permission: Permission) -> str:
    resource = permission.resource + (f".{permission.api_group}" if permission.api_group else "")
    where = f"in namespace {permission.namespace}" if permission.namespace else "cluster-wide"
    return f"{permission.verb} {resource} {where}"


def _kubectl(context: str) -> str:
    return "kubectl" if context == "in-cluster" else f"kubectl --context {context}"


# --- automated approvals: PagerDuty and Jira ----------------------------------------------------

_CONNECT = 'the README\'s "Connect PagerDuty and Jira"'
# What each kind of PagerDuty object is, and where the roster names it.
_PAGERDUTY_KINDS = (
    ("schedules", "schedule", "auto_approve[].pagerduty_oncall.schedules"),
    ("escalation_policies", "escalation policy", "auto_approve[].pagerduty_oncall.escalation_policies"),
    ("services", "service", "escalate_service"),
)


def _check_outside(checks: Checklist, settings: Settings, roster: Roster, patience: Patience | None = None) -> None:
    """The tokens work, and every schedule, escalation policy, service and Jira project the roster
    names exists (and the token can see it): a misspelt id would quietly approve nobody, or page nobody."""
    references = roster.automation_references()
    outside = connect(
        settings, patience or Patience(timeout=TIMEOUT_SECONDS, retries=1, max_wait=float(TIMEOUT_SECONDS))
    )
    try:
        if references.needs_pagerduty or outside.pagerduty is not None:
            checks.section("PagerDuty")
            _check_pagerduty(checks, outside.pagerduty, references, settings.pagerduty_api_url)
        if references.needs_jira or outside.jira is not None:
            checks.section("Jira")
            _check_jira(checks, outside.jira, references)
    finally:
        outside.close()


def _check_pagerduty(checks: Checklist, pagerduty: PagerDuty | None, references: References, api_url: str) -> None:
    if pagerduty is None:
        checks.fail(
            "the roster names PagerDuty (on-call rules, incident tickets or escalation) but "
            "BREAKGLASS_PAGERDUTY_TOKEN is not set: those rules never approve and those tickets are never accepted",
            f"set BREAKGLASS_PAGERDUTY_TOKEN to a PagerDuty REST API key ({_CONNECT})",
        )
        return
    try:
        pagerduty.check_token()
    except LookupFailed as exc:
        checks.fail(
            str(exc), f"check BREAKGLASS_PAGERDUTY_TOKEN and BREAKGLASS_PAGERDUTY_API_URL ({api_url}); {_CONNECT}"
        )
        return
    checks.ok(f"PagerDuty ({api_url}) accepts BREAKGLASS_PAGERDUTY_TOKEN")
    for kind, noun, place in _PAGERDUTY_KINDS:
        for object_id in sorted(getattr(references, kind)):
            _check_named(
                checks,
                f"{noun} {object_id}",
                partial(pagerduty.exists, kind, object_id),
                missing="does not exist in PagerDuty (or the token cannot see it)",
                fix=f"correct {place} in the roster, or give the token's user access to it",
            )
    if references.services:
        try:
            checks.ok(f"escalation incidents are opened as {pagerduty.sender()}")
        except LookupFailed as exc:
            checks.fail(
                str(exc), f"set BREAKGLASS_PAGERDUTY_FROM to the email of the PagerDuty user to act as ({_CONNECT})"
            )


def _check_jira(checks: Checklist, jira: Jira | None, references: References) -> None:
    if jira is None:
        checks.fail(
            "the roster's tickets name Jira projects but BREAKGLASS_JIRA_URL and BREAKGLASS_JIRA_TOKEN are not "
            "set: every request citing a Jira issue is refused",
            f"set BREAKGLASS_JIRA_URL, BREAKGLASS_JIRA_TOKEN (and BREAKGLASS_JIRA_USER for Cloud) ({_CONNECT})",
        )
        return
    try:
        jira.check_token()
    except LookupFailed as exc:
        checks.fail(
            str(exc),
            f"check BREAKGLASS_JIRA_URL ({jira.url}) and the credentials: Cloud takes BREAKGLASS_JIRA_USER (an email) "
            f"with an API token, Data Center a personal access token alone ({_CONNECT})",
        )
        return
    checks.ok(f"Jira ({jira.url}) accepts the credentials")
    for key in sorted(references.jira_projects):
        _check_named(
            checks,
            f"Jira project {key}",
            partial(jira.project, key),
            missing="does not exist (or the account cannot browse it)",
            fix="correct ticket.jira.projects in the roster, or give the account Browse projects in it",
        )


def _check_named(checks: Checklist, what: str, look: Callable[[], str | None], *, missing: str, fix: str) -> None:
    """One object the roster names: found (with its name), missing, or not readable now."""
    try:
        name = look()
    except LookupFailed as exc:
        checks.fail(f"{what}: {exc}", "run doctor again; if it persists, check the service's status page")
        return
    if name is None:
        checks.fail(f"{what} {missing}", fix)
    else:
        checks.ok(f"{what} exists ({name})")


# --- secrets -----------------------------------------------------------------------------------


def _secret_values(env: Mapping[str, str]) -> list[str]:
    """Values never to print, read straight from the environment, so a malformed one is hidden too."""
    values = [env[name] for name in SECRET_VARIABLES if len(env.get(name, "")) >= 4]
    password = urlsplit(env.get("BREAKGLASS_REDIS_URL", "")).password
    if password and len(password) >= 4:
        values.append(password)
    return values


def _kubeconfig_tokens(paths: str) -> list[str]:
    tokens: list[str] = []
    for path in paths.split(os.pathsep):
        try:
            document = yaml.safe_load(Path(path).expanduser().read_text())
        except (OSError, yaml.YAMLError):
            continue
        for user in (document or {}).get("users") or []:
            token = ((user or {}).get("user") or {}).get("token")
            if isinstance(token, str) and len(token) >= 4:
                tokens.append(token)
    return tokens
