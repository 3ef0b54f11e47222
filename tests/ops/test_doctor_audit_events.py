"""``breakglass doctor`` says which clusters send audit events: only there are actions recorded and
a role's idle_timeout enforced."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta

import fakeredis

from bot.doctor import Checklist, _check_audit_events
from bot.settings import load_settings
from bot.store import AuditLog
from bot.store.kube_actions import ActionLedger
from tests.conftest import TEST_SIGNING_KEY
from tests.fakes import example_roster


def test_doctor_names_the_clusters_that_send_audit_events_and_those_that_do_not() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    ledger = ActionLedger(client, AuditLog(client, lambda: datetime.now(UTC), key=None))
    ledger.heard("prod", datetime.now(UTC) - timedelta(seconds=20))
    ledger.heard("staging", datetime.now(UTC) - timedelta(hours=2))
    roster = example_roster()
    view = dataclasses.replace(roster.roles["view"], idle_timeout=timedelta(minutes=30))
    roster = dataclasses.replace(roster, roles={**roster.roles, "view": view})
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-fake",
            "SLACK_SIGNING_SECRET": "fake-secret",
            "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY,
        }
    )
    out = io.StringIO()
    checks = Checklist(out)

    _check_audit_events(checks, settings, roster, client)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  ✓ prod: sends audit events (the last batch ")
    assert lines[0].endswith("actions are recorded; idle_timeout (view) is enforced there")
    assert lines[1].startswith("  ! staging: sends no audit events (none since ")
    assert lines[1].endswith("actions are not recorded and idle_timeout is not enforced there")
    assert "fix: point staging's API server audit webhook at /k8s/audit/staging" in lines[2]
