"""``breakglass doctor`` against the stand-ins set up right, and set up wrong in the ways operators do:
the bot's RBAC without ``bind``, a Slack app missing scopes, Redis not there, no admin token for
``mfa: has_2fa``, a missing token namespace, settings that do not load."""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path

import pytest
import yaml

from bot.doctor import run_doctor
from bot.slack.client import REQUIRED_SCOPES
from bot.standins.stack import (
    ADMIN_TOKEN,
    AUDIT_WEBHOOK_TOKEN,
    DEMO_ROSTER,
    SIGNING_SECRET,
    LocalStack,
    free_port,
)
from tests.ops.conftest import Spawned, give_bot_identity

pytestmark = pytest.mark.slow  # a private redis-server and the doubles per test, and `breakglass doctor` as a process

ALL_ROLES = sorted({role["cluster_role"] for role in DEMO_ROSTER["roles"].values()})


def _sections(output: str) -> dict[str, list[str]]:
    """The checklist by section title (``Cluster prod (context prod, …)`` is filed as ``Cluster prod``)."""
    sections: dict[str, list[str]] = {}
    for block in output.split("\n\n"):
        title, *lines = block.strip("\n").splitlines()
        sections[re.sub(r" \(.*\)$", "", title)] = lines
    return sections


def _doctor(env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    code = run_doctor(out, env)
    return code, out.getvalue()


def _secrets(stack: LocalStack, kube_tokens: list[str]) -> list[str]:
    return [
        stack.env()["SLACK_BOT_TOKEN"],
        SIGNING_SECRET,
        ADMIN_TOKEN,
        AUDIT_WEBHOOK_TOKEN,
        *kube_tokens,
        *(server.admin_token for server in stack.clusters.values()),
    ]


def _assert_every_failure_has_a_fix(output: str) -> None:
    """Each ✗ line is followed by a fix line before the next check or section (one fix may serve a run
    of failures just above it)."""
    pending: list[str] = []
    for line in [*output.splitlines(), ""]:
        if line.startswith("  ✗"):
            pending.append(line)
        elif line.startswith("      fix: "):
            pending = []
        elif pending:
            raise AssertionError(f"no fix for: {pending}")


def test_doctor_passes_a_correct_setup_and_exits_zero(stack: LocalStack) -> None:
    kubeconfig, kube_tokens = give_bot_identity(stack, {"prod": ALL_ROLES, "staging": ALL_ROLES})
    env = stack.env() | {"KUBECONFIG": str(kubeconfig)}

    doctor = Spawned(["doctor"], env)  # as an operator runs it
    code = doctor.wait(timeout=60)
    output = doctor.output

    assert code == 0, output
    assert "✗" not in output
    sections = _sections(output)
    for title in ("Settings", "Redis", "Slack", "Cluster prod", "Cluster staging"):
        assert any(line.startswith("  ✓") for line in sections[title]), f"{title}: {sections[title]}"
    assert "may bind admin, cluster-admin, edit, view" in "\n".join(sections["Cluster prod"])
    # prod uses credentials: user, and its RBAC gives the bot no rights on ServiceAccounts: doctor does
    # not ask for them there (12 cluster-wide permissions), only on the token cluster (17 with the Role).
    assert "the bot holds all 12 permissions it needs" in "\n".join(sections["Cluster prod"])
    assert "the bot holds all 17 permissions it needs" in "\n".join(sections["Cluster staging"])
    _assert_every_failure_has_a_fix(output)
    assert any("namespace breakglass-system exists" in line for line in sections["Cluster staging"])
    # The embedded Redis keeps nothing on disk: worth a warning, not a failure.
    assert any(line.startswith("  ! Redis keeps nothing on disk") for line in sections["Redis"])
    assert "all " in sections["Result"][0]
    for secret in _secrets(stack, kube_tokens):
        assert secret not in output


def test_doctor_names_each_problem_with_its_fix_and_exits_non_zero(stack: LocalStack) -> None:
    # The bot's RBAC as `deploy rbac` renders it, but without bind on prod (rendered for no roles).
    kubeconfig, kube_tokens = give_bot_identity(stack, {"prod": [], "staging": ALL_ROLES})
    stack.slack.set_scopes([s for s in REQUIRED_SCOPES if s not in ("chat:write", "users:read")])
    roster = copy.deepcopy(DEMO_ROSTER) | {"mfa": "has_2fa"}
    roster_path = stack.workdir / "roster-2fa.yaml"
    roster_path.write_text(yaml.safe_dump(roster))
    dead_redis = f"redis://:hunter2-redis-password@127.0.0.1:{free_port()}/0"
    env = stack.env() | {
        "KUBECONFIG": str(kubeconfig),
        "BREAKGLASS_REDIS_URL": dead_redis,
        "BREAKGLASS_ROSTER": str(roster_path),
    }
    del env["SLACK_ADMIN_TOKEN"]

    code, output = _doctor(env)

    assert code != 0
    sections = _sections(output)
    redis_lines = "\n".join(sections["Redis"])
    assert "✗ Redis does not answer at redis://:***@127.0.0.1:" in redis_lines
    assert "fix: start Redis there, or set BREAKGLASS_REDIS_URL" in redis_lines

    slack = "\n".join(sections["Slack"])
    assert "✓ the bot token works" in slack
    assert "✗ the bot token lacks scopes chat:write, users:read\n      fix: add them on the app's OAuth" in slack
    assert "✗ mfa: has_2fa needs SLACK_ADMIN_TOKEN" in slack
    assert "fix: set SLACK_ADMIN_TOKEN to a workspace admin's user token" in slack

    prod = sections["Cluster prod"]
    assert [line for line in prod if line.startswith("  ✗")] == [
        f"  ✗ the bot may not bind ClusterRole {role}: grants of roles using it would fail" for role in ALL_ROLES
    ]
    assert prod[-1] == (
        f"      fix: run `breakglass deploy rbac --roster {roster_path} --cluster prod | kubectl --context prod apply -f -`"
    )
    assert not [line for line in sections["Cluster staging"] if "✗" in line]

    for secret in [*_secrets(stack, kube_tokens), "hunter2-redis-password"]:
        assert secret not in output
    _assert_every_failure_has_a_fix(output)


def test_doctor_gives_a_fix_when_the_api_server_cannot_answer_its_questions(stack: LocalStack) -> None:
    # The API server answers /version but fails the bot's permission questions and the namespace probe.
    for server in stack.clusters.values():
        server.fail_requests(503, path_prefix="/apis/authorization.k8s.io")
    stack.clusters["staging"].fail_requests(503, path_prefix="/api/v1/namespaces")

    code, output = _doctor(stack.env())

    assert code != 0
    sections = _sections(output)
    prod = "\n".join(sections["Cluster prod"])
    assert "✗ could not ask the API server about the bot's own permissions" in prod
    assert "fix: let the bot create selfsubjectaccessreviews: run `breakglass deploy rbac" in prod
    staging = "\n".join(sections["Cluster staging"])
    assert "✗ could not check namespace breakglass-system" in staging
    assert "fix: `kubectl --context staging get namespace breakglass-system` shows whether it exists" in staging
    _assert_every_failure_has_a_fix(output)


def test_doctor_finds_the_token_namespace_missing(stack: LocalStack) -> None:
    env = stack.env() | {"BREAKGLASS_TOKEN_NAMESPACE": "breakglass-grants"}

    # With the stand-ins' admin credentials the API server can say the namespace is not there...
    code, output = _doctor(env)

    assert code != 0
    staging = "\n".join(_sections(output)["Cluster staging"])
    assert "✗ namespace breakglass-grants does not exist" in staging
    assert "fix: `kubectl --context staging create namespace breakglass-grants`" in staging

    # ...but the bot's own ServiceAccount may not ask there before its Role is in that namespace
    # (authorization comes before admission), so it names both fixes.
    kubeconfig, _ = give_bot_identity(stack, {"prod": ALL_ROLES, "staging": ALL_ROLES})
    code, output = _doctor(env | {"KUBECONFIG": str(kubeconfig)})

    assert code != 0
    staging = "\n".join(_sections(output)["Cluster staging"])
    assert "✗ the bot may not make ServiceAccounts in namespace breakglass-grants" in staging
    assert (
        "fix: `kubectl --context staging create namespace breakglass-grants` if it is missing, then run "
        f"`breakglass deploy rbac --roster {stack.roster_path} --grant-namespace breakglass-grants "
        "--cluster staging | kubectl --context staging apply -f -`"
    ) in staging
    assert "✗ the bot may not create serviceaccounts/token in namespace breakglass-grants" in staging
    assert "serviceaccounts" not in "\n".join(_sections(output)["Cluster prod"])  # credentials: user
    _assert_every_failure_has_a_fix(output)


def test_doctor_lists_every_settings_problem_on_its_own_line(stack: LocalStack) -> None:
    env = stack.env() | {"BREAKGLASS_REDIS_URL": "http://127.0.0.1:6379", "PORT": "0"}
    del env["SLACK_BOT_TOKEN"]

    code, output = _doctor(env)

    assert code != 0
    sections = _sections(output)
    failures = [line for line in sections["Settings"] if line.startswith("  ✗")]
    assert failures == [
        "  ✗ SLACK_BOT_TOKEN: is required",
        "  ✗ BREAKGLASS_REDIS_URL: must be a redis://, rediss:// or unix:// URL",
        "  ✗ PORT: must be 1 or more",
    ]
    assert sections["Redis"] == ["  – not checked: the settings do not load"]
    assert any(line.startswith("  ✓ the roster passes its check") for line in sections["Roster"])


def test_doctor_with_nothing_set_reports_every_missing_variable_and_how_to_make_a_roster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    code, output = _doctor({"PORT": "http"})

    sections = _sections(output)
    assert code != 0
    assert [line for line in sections["Settings"] if line.startswith("  ✗")] == [
        "  ✗ SLACK_BOT_TOKEN: is required",
        "  ✗ SLACK_SIGNING_SECRET: is required unless SLACK_APP_TOKEN selects Socket Mode",
        "  ✗ PORT: must be a whole number",
        "  ✗ BREAKGLASS_SIGNING_KEY: is required",
    ]
    assert sections["Roster"][-1] == (
        "      fix: create roster.yaml (start from deploy/roster.example.yaml), or set BREAKGLASS_ROSTER to the roster's path"
    )


def test_doctor_for_the_worker_needs_no_signing_secret_and_checks_the_rest(stack: LocalStack) -> None:
    # deploy/ gives the worker, where doctor runs with the cluster credentials, no SLACK_SIGNING_SECRET.
    env = stack.env()
    del env["SLACK_SIGNING_SECRET"]

    _, as_web = _doctor(env)
    out = io.StringIO()
    run_doctor(out, env, process="worker")
    as_worker = out.getvalue()

    assert "  ✗ SLACK_SIGNING_SECRET: is required unless SLACK_APP_TOKEN selects Socket Mode" in as_web
    settings = _sections(as_worker)["Settings"]
    assert not [line for line in settings if line.startswith("  ✗")], settings
    assert any(line.startswith("  ✓ the worker's settings load") for line in settings), settings
    assert any(line.startswith("  ✓") for line in _sections(as_worker)["Redis"])
