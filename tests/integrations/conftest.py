"""The adapters in bot.integrations against their stand-ins, over real HTTPS on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.integrations.http import Patience
from bot.standins.jira import JiraDouble
from bot.standins.pagerduty import PagerDutyDouble
from bot.standins.tls import local_ca


@pytest.fixture(autouse=True)
def trust_stand_ins(monkeypatch: pytest.MonkeyPatch) -> str:
    """Trust the stand-ins' CA the way an operator trusts a private PKI: both variables the
    contract names (the machine may already set either to its own store)."""
    ca = str(local_ca().ca_file)
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    return ca


@pytest.fixture
def sleeps() -> list[float]:
    """Every wait an adapter asked for (instead of sleeping on the wall clock)."""
    return []


@pytest.fixture
def patience(sleeps: list[float]) -> Patience:
    return Patience(timeout=2.0, retries=2, max_wait=10.0, sleep=sleeps.append)


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyDouble]:
    with PagerDutyDouble() as double:
        yield double


@pytest.fixture(params=["Cloud", "Server"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraDouble]:
    with JiraDouble(deployment=request.param) as double:
        yield double
