"""The outside services automated approvals read, built once from Settings (never at import).

``connect(settings)`` gives each port's adapter, or None where the settings leave that service out:
``on_call`` and ``pager`` need ``BREAKGLASS_PAGERDUTY_TOKEN``; ``tickets`` needs PagerDuty or Jira
(``BREAKGLASS_JIRA_URL`` and ``BREAKGLASS_JIRA_TOKEN``). Nothing here calls a service: a service that
is down when the process starts costs a lookup later (``LookupFailed``), not the start.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.integrations.http import Patience
from bot.integrations.jira import Jira
from bot.integrations.pagerduty import PagerDuty
from bot.ports import LookupFailed, OnCallDirectory, Pager, Ticket, TicketDirectory
from bot.settings import Settings


@dataclass(frozen=True)
class Tickets:
    """Both halves of ``TicketDirectory``; a half whose service is not configured fails the lookup
    with one sentence saying which settings are missing (so a roster citing it sends requests to
    the humans, never past them)."""

    jira: Jira | None
    pagerduty: PagerDuty | None

    def jira_issue(self, key: str) -> Ticket | None:
        if self.jira is None:
            raise LookupFailed("Jira is not configured (BREAKGLASS_JIRA_URL and BREAKGLASS_JIRA_TOKEN are unset).")
        return self.jira.jira_issue(key)

    def pagerduty_incident(self, ref: str) -> Ticket | None:
        if self.pagerduty is None:
            raise LookupFailed("PagerDuty is not configured (BREAKGLASS_PAGERDUTY_TOKEN is unset).")
        return self.pagerduty.pagerduty_incident(ref)


@dataclass(frozen=True)
class Integrations:
    pagerduty: PagerDuty | None
    jira: Jira | None

    @property
    def on_call(self) -> OnCallDirectory | None:
        return self.pagerduty

    @property
    def pager(self) -> Pager | None:
        return self.pagerduty

    @property
    def tickets(self) -> TicketDirectory | None:
        if self.pagerduty is None and self.jira is None:
            return None
        return Tickets(self.jira, self.pagerduty)

    def close(self) -> None:
        if self.pagerduty is not None:
            self.pagerduty.close()
        if self.jira is not None:
            self.jira.close()


def connect(settings: Settings, patience: Patience | None = None) -> Integrations:
    """The adapters ``settings`` configure (None for each that it does not)."""
    pagerduty = (
        PagerDuty(
            settings.pagerduty_token,
            api_url=settings.pagerduty_api_url,
            from_email=settings.pagerduty_from,
            patience=patience,
        )
        if settings.pagerduty_token is not None
        else None
    )
    jira = (
        Jira(settings.jira_url, settings.jira_token, user=settings.jira_user, patience=patience)
        if settings.jira_url is not None and settings.jira_token is not None
        else None
    )
    return Integrations(pagerduty, jira)
