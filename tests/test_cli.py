"""The ``breakglass`` command's own verbs: roster check, audit export and verify, sweep, and start-up
refusals. Run in-process through ``bot.cli.main`` (what the console script calls)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from rq import Queue

from bot.cli import main
from bot.store import AuditLog, Draft
from tests.conftest import EXAMPLE_ROSTER

BAD_ROSTER = """\
workspace: {team_id: T0000000001}
mfa: slack_enforced
incident_channel: C0000INCIDENT
clusters:
  prod: {context: prod}
roles:
  admin:
    cluster_role: admin
    scope: namespace
    max_duration: 1h
    min_duration: 2h
    approvals: 1
    approvers: [sre2]
groups:
  sre: [U0000000BOB, U00000CAROL]
people:
  U0000000BOB: {kube_user: bob@example.com}
  U00000CAROL: {kube_groups: [oncall]}
entitlements:
  - group: sre
    roles: [admin]
    clusters: [prod]
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, real_redis: redis.Redis) -> str:
    for name in ("SLACK_APP_TOKEN", "SLACK_ADMIN_TOKEN", "KUBECONFIG", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-fake-cli-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "fake-signing-secret")
    monkeypatch.setenv("BREAKGLASS_REDIS_URL", redis_url)
    monkeypatch.setenv("BREAKGLASS_KEY_PREFIX", "bg-cli-test")
    monkeypatch.setenv("BREAKGLASS_ROSTER", str(EXAMPLE_ROSTER))
    return redis_url


def test_roster_check_accepts_the_example_roster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roster", "check", str(EXAMPLE_ROSTER)]) == 0
    assert "ok: 3 people, 2 groups, 3 roles, 2 clusters, 2 entitlements" in capsys.readouterr().out


def test_roster_check_names_every_problem_with_its_place_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text(BAD_ROSTER)
    assert main(["roster", "check", str(roster)]) == 1
    out = capsys.readouterr().out
    assert f"{roster}: line 11: roles.admin.min_duration: min_duration 2h is above max_duration 1h" in out
    assert f"{roster}: line 13: roles.admin.approvers[0]: unknown group 'sre2'" in out
    assert f"{roster}: line 18: people.U00000CAROL: has no kube_user" in out


def test_audit_export_prints_json_lines_filtered_by_request(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    log = AuditLog(redis.Redis.from_url(env, decode_responses=True), lambda: datetime.now(UTC), prefix="bg-cli-test")
    log.append(Draft("requested", "U000000ALICE", "BG-7K2QXM"), Draft("requested", "U0000000BOB", "BG-9PQRST"))
    capsys.readouterr()
    assert main(["audit", "export", "--request", "bg-7k2qxm"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["seq"], e["request_id"], e["actor"]) for e in lines] == [(1, "BG-7K2QXM", "U000000ALICE")]
    assert set(lines[0]) == {"seq", "at", "request_id", "event", "actor", "details", "prev_hash", "hash"}


def test_audit_verify_exits_zero_when_intact_and_names_the_first_bad_entry_when_not(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(env, decode_responses=True)
    log = AuditLog(client, lambda: datetime.now(UTC), prefix="bg-cli-test")
    log.append(*(Draft("requested", "U000000ALICE", f"BG-{c * 6}") for c in "ABCD"))
    assert main(["audit", "verify"]) == 0
    assert "4 entries verified" in capsys.readouterr().out
    client.xdel(log.stream_key, "2-0")
    assert main(["audit", "verify"]) == 1
    assert "audit log broken at entry 2" in capsys.readouterr().out


def test_sweep_queues_one_reconcile_job_however_often_asked(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep"]) == 0
    assert main(["sweep"]) == 0
    out = capsys.readouterr().out
    assert "sweep queued" in out
    assert "already queued" in out
    queue = Queue("bg-cli-test-cluster", connection=redis.Redis.from_url(env))
    assert queue.get_job_ids() == ["reconcile-now"]


def test_a_missing_setting_stops_start_up_with_one_line_naming_it(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    with pytest.raises(SystemExit) as stopped:
        main(["worker"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == "SLACK_BOT_TOKEN: is required"


def test_a_roster_failing_the_check_stops_start_up(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text(BAD_ROSTER)
    monkeypatch.setenv("BREAKGLASS_ROSTER", str(roster))
    with pytest.raises(SystemExit) as stopped:
        main(["web"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"BREAKGLASS_ROSTER: {roster} fails the check (3 problems)"
    assert "unknown group 'sre2'" in err
