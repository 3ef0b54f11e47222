"""Fixtures for the Slack adapter: requests in every state, the Slack Web API double seeded with the
example roster's people, and a Core over fakeredis with a recording job queue."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import AccessRequest, Approval, Review, State
from bot.domain.roster import Roster
from bot.metrics import Metrics
from bot.roster_source import FixedRoster
from bot.services.access import AccessService
from bot.settings import Settings
from bot.slack.client import REQUIRED_SCOPES, SlackApi
from bot.standins.slack_api import SlackApiDouble
from bot.store import AuditLog, RequestStore
from bot.wiring import Core
from tests.conftest import CHAIN_KEY, TEST_SIGNING_KEY, FakeClock
from tests.fakes import ALICE, BOB, CAROL, RecordingJobs, example_roster

INCIDENTS = "C0000INCIDENT"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
ADMIN_TOKEN = "xoxp-fake-admin-double"
PREFIX = "bgtest"


def no_sleep(seconds: float) -> None:
    """Stands in for time.sleep in Slack retry handlers; records nothing, waits for nothing."""


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_request(clock: FakeClock, state: State = State.PENDING, **fields: Any) -> AccessRequest:
    now = clock()
    base: dict[str, Any] = {
        "id": RequestId("BG-7K2QXM"),
        "requester": SlackUserId(ALICE),
        "cluster": "prod",
        "namespace": "payments",
        "role": "admin",
        "duration": timedelta(hours=1),
        "reason": "INC-4411 checkout pods crash-looping",
        "channel": INCIDENTS,
        "created_at": now,
        "updated_at": now,
        "approvals_required": 2,
    }
    if state in (State.APPROVED, State.ACTIVE, State.EXPIRED, State.REVOKED):
        base["approvals"] = (Approval(by=SlackUserId(BOB), at=now), Approval(by=SlackUserId(CAROL), at=now))
    if state in (State.ACTIVE, State.EXPIRED, State.REVOKED):
        base["granted_at"] = now
        base["expires_at"] = now + timedelta(hours=1)
    if state.terminal:
        base["ended_at"] = now + timedelta(minutes=30)
    if state in (State.DENIED, State.CANCELLED, State.REVOKED):
        base["decided_by"] = SlackUserId(BOB if state is not State.CANCELLED else ALICE)
    if state is State.FAILED:
        base["note"] = "the cluster refused the binding: forbidden"
    base.update(fields)
    return AccessRequest(state=state, **base)


def reviewed(request: AccessRequest, clock: FakeClock) -> AccessRequest:
    return request.model_copy(update={"review": Review(by=request.requester, at=clock(), text="restarted pods")})


@pytest.fixture
def roster() -> Roster:
    return example_roster()


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackApiDouble]:
    """The workspace of the example roster: Alice, Bob and Carol in the incident channel."""
    # The bot holds exactly the scopes the manifest asks for, so a call needing more fails the test.
    double = SlackApiDouble(clock=clock, admin_token=ADMIN_TOKEN, scopes=REQUIRED_SCOPES)
    double.add_user(ALICE, name="alice", tz="Europe/Berlin")
    double.add_user(BOB, name="bob", tz="America/New_York")
    double.add_user(CAROL, name="carol", tz="Europe/London")
    double.add_channel(INCIDENTS, "incidents", members=[ALICE, BOB, CAROL])
    with double:
        yield double


@pytest.fixture
def api(slack: SlackApiDouble) -> SlackApi:
    from pydantic import SecretStr

    return SlackApi.connect(SecretStr(slack.bot_token), slack.api_url, sleep=no_sleep)


@pytest.fixture
def admin_api(slack: SlackApiDouble) -> SlackApi:
    from pydantic import SecretStr

    return SlackApi.connect(SecretStr(ADMIN_TOKEN), slack.api_url, sleep=no_sleep)


@pytest.fixture
def settings(slack: SlackApiDouble) -> Settings:
    return Settings.model_validate(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BREAKGLASS_SLACK_API_URL": slack.api_url,
            "BREAKGLASS_KEY_PREFIX": PREFIX,
            "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY,
        }
    )


def make_core(settings: Settings, roster: Roster, clock: FakeClock, client: redis.Redis) -> Core:
    source = FixedRoster(roster)
    audit = AuditLog(client, clock, prefix=PREFIX, out=io.StringIO(), key=CHAIN_KEY)
    store = RequestStore(client, audit, prefix=PREFIX)
    jobs = RecordingJobs()
    access = AccessService(store, source, jobs, clock)
    return Core(
        settings=settings,
        roster=source,
        redis=client,
        rq_redis=client,
        audit=audit,
        store=store,
        jobs=jobs,  # type: ignore[arg-type]  # the recording queue stands in for RQ
        access=access,
        now=clock,
        metrics=Metrics(client, PREFIX),
        automation=access.automation,
    )


@pytest.fixture
def harness(settings: Settings, core: Core, slack: SlackApiDouble, clock: FakeClock) -> Iterator[Any]:
    from tests.slack.harness import SlackAppHarness

    running = SlackAppHarness(settings, core, slack, clock)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def core(settings: Settings, roster: Roster, clock: FakeClock, fake_redis: redis.Redis) -> Core:
    return make_core(settings, roster, clock, fake_redis)
