"""The ``breakglass`` command's own verbs: roster check, audit export and verify, sweep, and start-up
refusals. Run in-process through ``bot.cli.main`` (what the console script calls)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue

from bot.cli import EXIT_PROBLEM, EXIT_UNREADABLE, main
from bot.domain.audit import GENESIS_HASH
from bot.store import AuditLog, Draft
from bot.store.audit_log import parse_stream_entry
from tests.conftest import CHAIN_KEY, EXAMPLE_ROSTER, TEST_SIGNING_KEY

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
    monkeypatch.setenv("BREAKGLASS_SIGNING_KEY", TEST_SIGNING_KEY)
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
    log = AuditLog(
        redis.Redis.from_url(env, decode_responses=True), lambda: datetime.now(UTC), prefix="bg-cli-test", key=CHAIN_KEY
    )
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
    log = AuditLog(client, lambda: datetime.now(UTC), prefix="bg-cli-test", key=CHAIN_KEY)
    log.append(*(Draft("requested", "U000000ALICE", f"BG-{c * 6}") for c in "ABCD"))
    assert main(["audit", "verify"]) == 0
    assert "4 entries verified" in capsys.readouterr().out
    client.xdel(log.stream_key, "2-0")
    assert main(["audit", "verify"]) == 1
    assert "audit log broken at entry 2" in capsys.readouterr().out


def cli_log(env: str, now: datetime | None = None) -> AuditLog:
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    return AuditLog(redis.Redis.from_url(env, decode_responses=True), clock, prefix="bg-cli-test", key=CHAIN_KEY)


def exported(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[tuple[int, str | None]], str]:
    capsys.readouterr()
    code = main(["audit", "export", *args])
    captured = capsys.readouterr()
    entries = [json.loads(line) for line in captured.out.splitlines()]
    return code, [(e["seq"], e["request_id"]) for e in entries], captured.err


def test_audit_export_since_90_days_reaches_past_the_grant_limit(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    for days in (100, 80, 0):
        cli_log(env, now - timedelta(days=days)).append(Draft("requested", "U000000ALICE", "BG-7K2QXM"))
    assert exported(capsys, "--since", "90d")[:2] == (0, [(2, "BG-7K2QXM"), (3, "BG-7K2QXM")])
    assert exported(capsys, "--since", "1d12h")[:2] == (0, [(3, "BG-7K2QXM")])


@pytest.mark.parametrize(
    ("since", "seqs"),
    [
        ("2026-10-01", [2, 3]),  # a plain date is midnight UTC
        ("2026-10-01T00:00:00Z", [2, 3]),
        ("2026-10-01T00:30:00+01:00", [1, 2, 3]),  # 23:30 UTC the day before
        ("2026-10-15T00:00:00.000000Z", [3]),
    ],
)
def test_audit_export_since_a_date_or_an_rfc3339_instant(
    env: str, capsys: pytest.CaptureFixture[str], since: str, seqs: list[int]
) -> None:
    for at in ("2026-09-30T23:45:00+00:00", "2026-10-01T00:00:00+00:00", "2026-11-01T09:00:00+00:00"):
        cli_log(env, datetime.fromisoformat(at)).append(Draft("requested", "U000000ALICE", None))
    code, entries, _ = exported(capsys, "--since", since)
    assert (code, [seq for seq, _ in entries]) == (0, seqs)


def test_audit_export_since_and_request_together(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    cli_log(env, now - timedelta(days=3)).append(Draft("requested", "U000000ALICE", "BG-7K2QXM"))
    cli_log(env, now).append(
        Draft("requested", "U0000000BOB", "BG-9PQRST"), Draft("approved", "U0000000BOB", "BG-7K2QXM")
    )
    assert exported(capsys, "--since", "2d", "--request", "BG-7K2QXM")[:2] == (0, [(3, "BG-7K2QXM")])


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--since", "last week"],
            "--since: 'last week' is not a time ago like 90d or 24h, a date like 2026-10-01, "
            "or an RFC 3339 instant like 2026-10-01T00:00:00Z",
        ),
        (["--request", "BG-1234"], "--request: 'BG-1234' is not a request id like BG-7K2QXM"),
    ],
    ids=["since", "request"],
)
def test_audit_export_refuses_a_bad_argument_in_one_line(
    env: str, capsys: pytest.CaptureFixture[str], args: list[str], line: str
) -> None:
    cli_log(env).append(Draft("requested", "U000000ALICE", "BG-7K2QXM"))
    code, entries, err = exported(capsys, *args)
    assert (code, entries, err.strip()) == (2, [], line)


def _break_entry(env: str, seq: int) -> None:
    client = redis.Redis.from_url(env, decode_responses=True)
    stream = cli_log(env).stream_key
    rows = client.xrange(stream)
    client.delete(stream)
    for stream_id, fields in rows:
        client.xadd(stream, {"entry": "{truncated"} if stream_id == f"{seq}-0" else fields, id=stream_id)


def test_audit_export_prints_what_it_can_names_an_unreadable_entry_and_fails(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_log(env).append(*(Draft("requested", "U000000ALICE", None) for _ in range(3)))
    _break_entry(env, 2)
    code, entries, err = exported(capsys)
    assert (code, [seq for seq, _ in entries]) == (1, [1, 3])
    assert err.splitlines() == [
        "audit export: entry 2 cannot be read (it is not JSON); skipped",
        "audit export: 1 entry could not be read; run breakglass audit verify",
    ]


def test_audit_verify_names_an_unreadable_entry(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli_log(env).append(*(Draft("requested", "U000000ALICE", None) for _ in range(3)))
    _break_entry(env, 2)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert capsys.readouterr().out.strip() == "audit log broken at entry 2: entry 2 cannot be read (it is not JSON)"


def test_audit_verify_fails_when_the_head_record_is_deleted(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    log = cli_log(env)
    log.append(*(Draft("requested", "U000000ALICE", None) for _ in range(3)))
    redis.Redis.from_url(env).delete(log.head_key)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert capsys.readouterr().out.strip() == (
        "audit log broken: the head record bg-cli-test:audit:head is missing but the stream holds entries up to 3"
    )


def test_audit_commands_need_no_slack_tokens(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    cli_log(env).append(Draft("requested", "U000000ALICE", "BG-7K2QXM"))
    assert exported(capsys)[:2] == (0, [(1, "BG-7K2QXM")])
    assert main(["audit", "verify"]) == 0


def test_audit_verify_needs_the_signing_key_and_says_so_in_one_line(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_log(env).append(Draft("requested", "U000000ALICE", "BG-7K2QXM"))
    monkeypatch.delenv("BREAKGLASS_SIGNING_KEY")
    capsys.readouterr()
    assert main(["audit", "verify"]) == EXIT_UNREADABLE
    assert capsys.readouterr().err == (
        "BREAKGLASS_SIGNING_KEY: is required to verify the audit log (the chain is keyed with it)\n"
    )
    assert exported(capsys)[:2] == (0, [(1, "BG-7K2QXM")]), "export reads without the key"


def test_audit_verify_finds_a_history_rewritten_by_someone_without_the_key(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The review's recipe against Redis itself: drop the last entry, change an approver, recompute.
    log = cli_log(env)
    log.append(*(Draft("approved", "U0000000BOB", "BG-7K2QXM") for _ in range(4)))
    client = redis.Redis.from_url(env, decode_responses=True)
    entries = [parse_stream_entry(i, f) for i, f in client.xrange(log.stream_key)][:-1]
    client.delete(log.stream_key)
    prev = GENESIS_HASH
    for entry in entries:
        body = {**entry.to_dict(), "prev_hash": prev, "actor": "U00000CAROL"}
        del body["hash"]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        body["hash"] = prev = hashlib.sha256(canonical.encode()).hexdigest()
        client.xadd(log.stream_key, {"entry": json.dumps(body)}, id=f"{entry.seq}-0")
    client.hset(log.head_key, mapping={"seq": len(entries), "hash": prev})
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert capsys.readouterr().out.startswith("audit log broken at entry 1: ")


def test_audit_export_refuses_a_malformed_redis_url_in_one_line(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREAKGLASS_REDIS_URL", "redis://localhost:port/0")
    with pytest.raises(SystemExit) as stopped:
        main(["audit", "export"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "BREAKGLASS_REDIS_URL: is not a valid Redis URL (check its host, port and options)"
    )


def test_audit_verify_cannot_read_a_malformed_redis_url_and_says_so_apart_from_broken(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREAKGLASS_REDIS_URL", "redis://localhost:port/0")
    assert main(["audit", "verify"]) == EXIT_UNREADABLE != EXIT_PROBLEM
    assert capsys.readouterr().err.strip() == (
        "audit verify: cannot read the audit log: "
        "BREAKGLASS_REDIS_URL: is not a valid Redis URL (check its host, port and options)"
    )


def test_audit_verify_with_redis_unreachable_names_the_url_without_its_password(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREAKGLASS_REDIS_URL", "redis://:hunter2-secret@127.0.0.1:1/0")
    assert main(["audit", "verify"]) == EXIT_UNREADABLE
    err = capsys.readouterr().err.strip()
    assert err == (
        "audit verify: cannot read the audit log at redis://:***@127.0.0.1:1/0 (key prefix 'bg-cli-test'): "
        "ConnectionError"
    )


def test_audit_verify_with_no_audit_log_under_the_prefix_cannot_read(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREAKGLASS_KEY_PREFIX", "bg-cli-test-nothing-here")
    assert main(["audit", "verify"]) == EXIT_UNREADABLE
    assert "audit verify: no audit log at " in capsys.readouterr().err


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


@pytest.mark.parametrize("command", ["web", "worker"])
def test_a_roster_pyyaml_cannot_construct_stops_start_up_without_a_traceback(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text(EXAMPLE_ROSTER.read_text().replace("approvals: 2\n", "approvals: !!int one\n", 1))
    monkeypatch.setenv("BREAKGLASS_ROSTER", str(roster))
    with pytest.raises(SystemExit) as stopped:
        main([command])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"BREAKGLASS_ROSTER: {roster} fails the check (1 problem)",
        "  line 27: (file): is not valid YAML: the value 'one' is not a valid int",
    ]


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"breakglass {version('breakglass')}"


def test_roster_check_reads_standard_input_for_a_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EXAMPLE_ROSTER.read_bytes())))
    assert main(["roster", "check", "-"]) == 0
    assert capsys.readouterr().out.startswith("(stdin): ok: ")


@pytest.mark.parametrize("command", [["roster", "check"], ["deploy", "rbac"]])
def test_roster_commands_fall_back_to_breakglass_roster_and_refuse_bad_bytes_in_one_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREAKGLASS_ROSTER", str(EXAMPLE_ROSTER))
    assert main(command) == 0
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"mfa: caf\xe9\n")
    assert main([*command, str(latin)]) == 1
    captured = capsys.readouterr()
    assert (captured.out + captured.err).splitlines()[-2:] == [
        f"{latin}: line 1: (file): byte 0xe9 at column 9 is not UTF-8; save the file as UTF-8",
        f"{latin}: 1 problem",
    ]


def test_every_sub_command_says_what_it_does_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from bot.cli import _parser

    def leaves(parser: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
        found = [path]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += leaves(sub, [*path, name])
        return found

    for path in leaves(_parser(), [])[1:]:
        with pytest.raises(SystemExit):
            main([*path, "--help"])
        description = capsys.readouterr().out.split("\n\n")[1]
        assert not description.startswith(("options:", "positional")), f"breakglass {' '.join(path)} --help is empty"


@pytest.mark.parametrize("group", ["roster", "audit", "deploy"])
def test_a_command_group_alone_prints_its_own_help(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([group]) == 2
    assert capsys.readouterr().out.startswith(f"usage: breakglass {group} ")
