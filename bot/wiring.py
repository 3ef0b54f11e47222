"""Composition of the parts every process shares, built once from Settings (never at import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from redis import Redis

from bot.domain.keys import Purpose
from bot.domain.roster import Roster
from bot.integrations.connect import connect
from bot.metrics import Metrics
from bot.metrics import install as install_metrics
from bot.ports import GroupDirectory, OnCallDirectory, Pager, TicketDirectory
from bot.roster_source import RosterFile
from bot.services.access import AccessService
from bot.services.automation import AutomatedApprovals
from bot.settings import Settings
from bot.slack.client import SlackApi
from bot.slack.usergroups import UserGroupRoster
from bot.store import AuditLog, RequestStore
from workers.queueing import RqJobQueue, rq_connection


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutsideServices(Protocol):
    """The adapters automated approvals read (``bot.integrations``); None for a service left out."""

    @property
    def on_call(self) -> OnCallDirectory | None: ...

    @property
    def tickets(self) -> TicketDirectory | None: ...

    @property
    def pager(self) -> Pager | None: ...


@dataclass
class Core:
    settings: Settings
    roster: Callable[[], Roster]
    redis: Redis
    rq_redis: Redis
    audit: AuditLog
    store: RequestStore
    jobs: RqJobQueue
    access: AccessService
    now: Callable[[], datetime]
    metrics: Metrics
    automation: AutomatedApprovals


def okta_groups(settings: Settings) -> GroupDirectory | None:
    """The Okta adapter when BREAKGLASS_OKTA_URL (and its token) is set; the SDK is imported only then."""
    if settings.okta_url is None or settings.okta_token is None:
        return None
    from bot.integrations.okta import OktaGroups

    return OktaGroups(settings.okta_url, settings.okta_token)


def build_core(
    settings: Settings,
    roster: Callable[[], Roster] | None = None,
    now: Callable[[], datetime] = utcnow,
    outside: OutsideServices | None = None,
) -> Core:
    client = Redis.from_url(settings.redis_url, decode_responses=True, health_check_interval=30)
    rq_redis = rq_connection(settings.redis_url)
    # Groups kept in Slack user groups or Okta groups are read at most a minute ago; a roster
    # without any is returned as the file says (no Slack or Okta call).
    roster_source = roster or UserGroupRoster(
        RosterFile(settings.roster_path, settings.token_namespace),
        SlackApi.connect(settings.slack_bot_token, settings.slack_api_url),
        now,
        okta=okta_groups(settings),
    )
    audit = AuditLog(client, now, prefix=settings.key_prefix, key=settings.keys().derive(Purpose.AUDIT_CHAIN))
    store = RequestStore(client, audit, prefix=settings.key_prefix)
    jobs = RqJobQueue(rq_redis, prefix=settings.key_prefix)
    # PagerDuty and Jira as the settings configure them (None for a service left out): connecting
    # calls nothing, so a service down at start costs a lookup later, never the start.
    outside = outside or connect(settings)
    automation = AutomatedApprovals(store, jobs, now, outside.on_call, outside.tickets, outside.pager)
    access = AccessService(store, roster_source, jobs, now, automation)
    metrics = Metrics(client, settings.key_prefix)
    audit.observers.append(metrics.record_entries)
    install_metrics(metrics)
    return Core(settings, roster_source, client, rq_redis, audit, store, jobs, access, now, metrics, automation)
