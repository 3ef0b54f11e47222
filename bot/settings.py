"""Process settings, read once from the environment (the contract's table) and passed down.

A missing or malformed value stops start-up with one line naming the variable
(``SettingsError``); secret values never appear in that line, in ``repr`` or in logs (``SecretStr``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from redis.connection import parse_url

from bot.domain.durations import DurationError, parse_duration
from bot.domain.grants import DEFAULT_INSTALLATION, SYSTEM_NAMESPACE
from bot.domain.keys import MIN_SIGNING_KEY, Purpose, SigningKey

# The audit webhook token is the only thing between the internet-facing web process and records of
# what a grant was used for; a short one can be guessed, so it must have some length.
MIN_WEBHOOK_TOKEN = 16

# Which process the settings are for. The worker verifies no Slack request, so it starts without
# SLACK_SIGNING_SECRET: the secret alone forges approvals, and a process that does not need it should
# not hold it (deploy/ gives it to the web process only).
Process = Literal["web", "worker"]


class SettingsError(ValueError):
    """One line naming the variable and what is wrong with it."""


def _redis_url_shape(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    try:
        parse_url(value)
    except ValueError:
        # Not redis-py's own message: a URL mangled by a password holding '/' or '@' could put part
        # of that password in it.
        raise ValueError("is not a valid Redis URL (check its host, port and options)") from None
    return value


class _FromEnviron(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # ``load_settings`` reads the environment it is given (the process's by default) and passes
        # it in; no other source may fill a gap behind its back.
        return (init_settings,)


def _signing_key_shape(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        if not value.get_secret_value().strip():
            raise ValueError("is set but empty")
        if len(value.get_secret_value()) < MIN_SIGNING_KEY:
            raise ValueError(
                f"must be at least {MIN_SIGNING_KEY} characters: it keys the audit chain and signs every "
                "binding's warrant, and a short one can be guessed"
            )
    return value


# How long each object the audit sink writes is kept under Object Lock (compliance mode: nobody, the
# bucket's owner included, can delete or shorten it before then). A year covers a SOC 2 Type II period
# and its audit; ISO/IEC 27001 evidence is often kept three.
DEFAULT_SINK_RETENTION = timedelta(days=365)
MAX_SINK_RETENTION = timedelta(days=100 * 365)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _audit_sink_shape(value: str | None) -> str | None:
    """``s3://bucket`` or ``s3://bucket/prefix``: the durable copy of the audit log (Object Lock)."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("must be s3://bucket or s3://bucket/prefix")
    if not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        raise ValueError("names no valid S3 bucket (3-63 lower-case letters, digits, '.' and '-')")
    prefix = parts.path.strip("/")
    if "//" in prefix:
        raise ValueError("has an empty part in its prefix ('//')")
    return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"


def _endpoint_shape(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("must be the http(s):// URL of an S3-compatible endpoint")
    return value.rstrip("/")


def _retention(value: object) -> object:
    """``365d``, ``7y`` (365 days each) or a whole number of days."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,6})\s*([dy]?)\s*", value.lower())
        if match is None:
            raise ValueError("must be a number of days or years, like 365d or 7y")
        days = int(match[1]) * (365 if match[2] == "y" else 1)
        value = timedelta(days=days)
    if isinstance(value, timedelta) and not timedelta(days=1) <= value <= MAX_SINK_RETENTION:
        raise ValueError("must be at least 1d and at most 100y")
    return value


class SinkSettings(_FromEnviron):
    """Where the audit log's durable copy is written (``BREAKGLASS_AUDIT_SINK``) and how long each
    object is locked. Read by the worker (which writes it) and the audit commands (which check it)."""

    audit_sink: str | None = Field(default=None, validation_alias="BREAKGLASS_AUDIT_SINK")
    s3_endpoint_url: str | None = Field(default=None, validation_alias="BREAKGLASS_S3_ENDPOINT_URL")
    audit_sink_retention: timedelta = Field(
        default=DEFAULT_SINK_RETENTION, validation_alias="BREAKGLASS_AUDIT_SINK_RETENTION"
    )

    _audit_sink = field_validator("audit_sink")(_audit_sink_shape)
    _endpoint = field_validator("s3_endpoint_url")(_endpoint_shape)
    _retention = field_validator("audit_sink_retention", mode="before")(_retention)

    @property
    def sink_bucket(self) -> str | None:
        return urlsplit(self.audit_sink).netloc if self.audit_sink else None

    @property
    def sink_prefix(self) -> str:
        return urlsplit(self.audit_sink).path.strip("/") if self.audit_sink else ""


class AuditSettings(SinkSettings):
    """What ``breakglass audit export|verify`` need: Redis, and for verify the signing key. An auditor
    collecting evidence must not need the bot's Slack tokens."""

    redis_url: str = Field(default="redis://localhost:6379/0", validation_alias="BREAKGLASS_REDIS_URL", repr=False)
    key_prefix: str = Field(default="breakglass", validation_alias="BREAKGLASS_KEY_PREFIX")
    signing_key: SecretStr | None = Field(default=None, validation_alias="BREAKGLASS_SIGNING_KEY")

    _redis_url = field_validator("redis_url")(_redis_url_shape)
    _signing_key = field_validator("signing_key")(_signing_key_shape)

    def chain_key(self) -> bytes | None:
        """The audit chain's key, or None when BREAKGLASS_SIGNING_KEY is unset (export still works)."""
        if self.signing_key is None:
            return None
        return SigningKey(self.signing_key.get_secret_value()).derive(Purpose.AUDIT_CHAIN)


class Settings(SinkSettings):
    slack_bot_token: SecretStr = Field(validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_admin_token: SecretStr | None = Field(default=None, validation_alias="SLACK_ADMIN_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="BREAKGLASS_SLACK_API_URL")
    # repr=False: a Redis URL may carry a password (rediss://:secret@host).
    redis_url: str = Field(default="redis://localhost:6379/0", validation_alias="BREAKGLASS_REDIS_URL", repr=False)
    roster_path: str = Field(default="roster.yaml", validation_alias="BREAKGLASS_ROSTER")
    audit_webhook_token: SecretStr | None = Field(default=None, validation_alias="BREAKGLASS_AUDIT_WEBHOOK_TOKEN")
    kubeconfig: str | None = Field(default=None, validation_alias="KUBECONFIG")
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="PORT")
    # Where the web server listens: every interface in a container (the contract); the local demo
    # and the tests' stack listen on loopback only.
    web_host: str = Field(default="0.0.0.0", validation_alias="BREAKGLASS_WEB_HOST")  # noqa: S104
    # Not in the contract's table, so ours to choose; defaults suit production.
    sweep_interval: timedelta = Field(default=timedelta(seconds=30), validation_alias="BREAKGLASS_SWEEP_INTERVAL")
    token_namespace: str = Field(default=SYSTEM_NAMESPACE, validation_alias="BREAKGLASS_TOKEN_NAMESPACE")
    # How long one Kubernetes API call may wait for its answer. A hung API server costs the sweep this
    # much per cluster, and a revoke this much per attempt; short enough that a retry or the next sweep
    # comes soon, long enough for a slow list of many bindings.
    kube_timeout: timedelta = Field(default=timedelta(seconds=10), validation_alias="BREAKGLASS_KUBE_TIMEOUT")
    key_prefix: str = Field(default="breakglass", validation_alias="BREAKGLASS_KEY_PREFIX")
    # Labels every binding this installation makes; two installations sharing a cluster must differ.
    installation: str = Field(
        default=DEFAULT_INSTALLATION,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        validation_alias="BREAKGLASS_INSTALLATION",
    )
    # Keys the audit chain and signs warrants; never written to Redis (bot.domain.keys).
    signing_key: SecretStr = Field(validation_alias="BREAKGLASS_SIGNING_KEY")
    # Step-up MFA (mfa: oidc): where the web process is reached from a browser, and the OIDC client's secret.
    public_url: str | None = Field(default=None, validation_alias="BREAKGLASS_PUBLIC_URL")
    oidc_client_secret: SecretStr | None = Field(default=None, validation_alias="BREAKGLASS_OIDC_CLIENT_SECRET")
    # Automated approvals (bot.integrations): PagerDuty's REST API and a Jira site. Unset: not used.
    pagerduty_token: SecretStr | None = Field(default=None, validation_alias="BREAKGLASS_PAGERDUTY_TOKEN")
    pagerduty_api_url: str = Field(default="https://api.pagerduty.com", validation_alias="BREAKGLASS_PAGERDUTY_API_URL")
    # Not in the contract's table, so ours: the PagerDuty user escalation incidents are opened as
    # (their ``From`` header). Unset: the token's own user, which only a user token has.
    pagerduty_from: str | None = Field(default=None, validation_alias="BREAKGLASS_PAGERDUTY_FROM")
    jira_url: str | None = Field(default=None, validation_alias="BREAKGLASS_JIRA_URL")
    jira_user: str | None = Field(default=None, validation_alias="BREAKGLASS_JIRA_USER")
    jira_token: SecretStr | None = Field(default=None, validation_alias="BREAKGLASS_JIRA_TOKEN")
    # Okta groups (okta_group: 00g…): the org and an API token that may read groups.
    okta_url: str | None = Field(default=None, validation_alias="BREAKGLASS_OKTA_URL")
    okta_token: SecretStr | None = Field(default=None, validation_alias="BREAKGLASS_OKTA_TOKEN")

    _signing_key = field_validator("signing_key")(_signing_key_shape)

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        # The step-up's code and state come back to this address through the browser: in clear text
        # anyone on the path could replay them, so plain HTTP only where nothing leaves the machine.
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("must be an https:// URL (http:// only for a loopback host)")
        if not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be a base URL like https://breakglass.example.com")
        return value.rstrip("/")

    @field_validator("pagerduty_api_url", "jira_url")
    @classmethod
    def _https_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        # Tokens travel in every request's headers: never in clear text. A private CA is trusted
        # through SSL_CERT_FILE/REQUESTS_CA_BUNDLE instead (the contract's "Outbound HTTPS").
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be a base URL with no query, fragment or credentials in it")
        return value.rstrip("/")

    @field_validator("pagerduty_from", "jira_user")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("is set but empty")
        return value.strip()

    @field_validator("pagerduty_from")
    @classmethod
    def _from_is_email(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or " " in value):
            raise ValueError("must be the email address of a PagerDuty user")
        return value

    @model_validator(mode="after")
    def _jira_complete(self) -> Settings:
        # Half a Jira configuration is a mistake, never "off": a roster citing Jira tickets would
        # refuse every request with no hint of why.
        if self.jira_url is not None and self.jira_token is None:
            raise ValueError("BREAKGLASS_JIRA_TOKEN: is required with BREAKGLASS_JIRA_URL")
        if self.jira_url is None and (self.jira_token is not None or self.jira_user is not None):
            raise ValueError("BREAKGLASS_JIRA_URL: is required with BREAKGLASS_JIRA_TOKEN or BREAKGLASS_JIRA_USER")
        if self.pagerduty_from is not None and self.pagerduty_token is None:
            raise ValueError("BREAKGLASS_PAGERDUTY_TOKEN: is required with BREAKGLASS_PAGERDUTY_FROM")
        return self

    @field_validator("okta_url")
    @classmethod
    def _okta_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        # The API token travels in every request's Authorization header: never in clear text.
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be the org's https:// URL, like https://example.okta.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _okta_pair(self) -> Settings:
        if self.okta_url is not None and self.okta_token is None:
            raise ValueError("BREAKGLASS_OKTA_TOKEN: is required with BREAKGLASS_OKTA_URL")
        if self.okta_url is None and self.okta_token is not None:
            raise ValueError("BREAKGLASS_OKTA_URL: is required with BREAKGLASS_OKTA_TOKEN")
        return self

    @property
    def oidc_redirect_uri(self) -> str | None:
        return f"{self.public_url}/oidc/callback" if self.public_url else None

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_admin_token",
        "audit_webhook_token",
        "oidc_client_secret",
        "pagerduty_token",
        "jira_token",
        "okta_token",
        mode="before",
    )
    @classmethod
    def _secret_not_empty(cls, value: object) -> object:
        # Set-but-empty is a mistake, never "off": an empty signing secret makes every signature
        # forgeable, and an empty webhook token would admit "Authorization: Bearer " with nothing after.
        if isinstance(value, str) and not value.strip():
            raise ValueError("is set but empty")
        return value

    @field_validator("audit_webhook_token")
    @classmethod
    def _webhook_token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_WEBHOOK_TOKEN:
            raise ValueError(
                f"must be at least {MIN_WEBHOOK_TOKEN} characters: it alone guards the audit webhook, "
                "and a short token can be guessed"
            )
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_shape(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    _redis_url = field_validator("redis_url")(_redis_url_shape)

    @field_validator("sweep_interval", "kube_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except DurationError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def keys(self) -> SigningKey:
        return SigningKey(self.signing_key.get_secret_value())


_NO_SIGNING = "SLACK_SIGNING_SECRET: is required unless SLACK_APP_TOKEN selects Socket Mode"
_ALIASES = {name: str(field.validation_alias) for name, field in Settings.model_fields.items()}


def settings_problems(environ: Mapping[str, str] | None = None, process: Process = "web") -> list[str]:
    """Every problem with the settings in ``environ`` (default: the process environment) for
    ``process``, one line each naming the variable; empty when they load. ``breakglass doctor`` lists
    them all."""
    env = dict(os.environ if environ is None else environ)
    try:
        _validate(env)
    except ValidationError as exc:
        problems = [_one_line(error) for error in exc.errors()]
    else:
        problems = []
    if process == "web" and not env.get("SLACK_APP_TOKEN") and not env.get("SLACK_SIGNING_SECRET"):
        problems.append(_NO_SIGNING)
    order = list(_ALIASES.values())
    return sorted(problems, key=lambda line: _rank(order, line.partition(":")[0]))


def _rank(order: list[str], variable: str) -> int:
    return order.index(variable) if variable in order else len(order)


def url_without_password(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: fit for an error line or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(environ: Mapping[str, str] | None = None, process: Process = "web") -> Settings:
    """Settings of ``process`` from ``environ`` (default: the process environment), or one-line
    SettingsError."""
    try:
        settings = _validate(environ)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc.errors()[0])) from None
    if process == "web" and settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise SettingsError(_NO_SIGNING)
    return settings


def load_audit_settings(environ: Mapping[str, str] | None = None) -> AuditSettings:
    """The audit commands' settings (Redis only), or one-line SettingsError."""
    env = dict(os.environ if environ is None else environ)
    try:
        return AuditSettings.model_validate({k: v for k, v in env.items() if k in _ALIASES.values()})
    except ValidationError as exc:
        raise SettingsError(_one_line(exc.errors()[0])) from None


def load_webhook_secret(environ: Mapping[str, str] | None = None) -> SecretStr:
    """BREAKGLASS_AUDIT_WEBHOOK_TOKEN alone (``audit webhook-config`` needs nothing else), or one-line
    SettingsError; unset is an error here, since there is no token to derive from."""
    env = dict(os.environ if environ is None else environ)
    alias = _ALIASES["audit_webhook_token"]
    if alias not in env:
        raise SettingsError(f"{alias}: is required to derive a cluster's webhook token")
    try:
        value = Settings._secret_not_empty(env[alias])
        return Settings._webhook_token_length(SecretStr(str(value))) or SecretStr("")
    except ValueError as exc:
        raise SettingsError(f"{alias}: {exc}") from None


def _validate(environ: Mapping[str, str] | None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    return Settings.model_validate({k: v for k, v in env.items() if k in _ALIASES.values()})


def _one_line(error: ErrorDetails) -> str:
    """``VARIABLE: what is wrong``; never the value itself (it may be a secret)."""
    loc = error["loc"][0] if error["loc"] else ""
    variable = str(loc) if str(loc) in _ALIASES.values() else _ALIASES.get(str(loc), "")
    message = error["msg"].removeprefix("Value error, ")
    limits = error.get("ctx") or {}
    # pydantic's own wording ("Input should be a valid integer, unable to parse string as an
    # integer") is for programmers; the operator reads what the variable must be.
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] in ("int_parsing", "int_type", "int_from_float"):
        message = "must be a whole number"
    elif error["type"] == "greater_than_equal":
        message = f"must be {limits.get('ge')} or more"
    elif error["type"] == "less_than_equal":
        message = f"must be {limits.get('le')} or less"
    elif message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ").split(",")[0]
    if not variable and ":" in message:
        variable, _, message = message.partition(": ")
    return f"{variable or 'settings'}: {message}"
