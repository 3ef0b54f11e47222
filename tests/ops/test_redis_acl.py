"""The Redis ACL users shipped in deploy/ (bot/redis_acl.py, finding 7): a real redis-server loads them
from an ACL file, the real web and worker processes each log in as their own user, and a request is
granted and revoked without one refusal in Redis's ACL log; what each user must not do, Redis refuses."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.redis_acl import WEB_USER, WORKER_USER, acl_users
from bot.standins.slack_events import SlackSender
from bot.standins.stack import ALICE, INCIDENT_CHANNEL, SIGNING_SECRET, LocalStack, free_port, wait_until
from tests.ops.conftest import Spawned, get, port_open

pytestmark = pytest.mark.slow  # a redis-server and real web and worker processes


class AclRedis:
    """A private redis-server whose users are the shipped ones (and an administrator for the test)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.passwords = {name: secrets.token_hex(16) for name in ("default", WEB_USER, WORKER_USER)}
        web, worker = acl_users()
        digest = {name: hashlib.sha256(pw.encode()).hexdigest() for name, pw in self.passwords.items()}
        acl = directory / "users.acl"
        acl.write_text(
            f"user default on #{digest['default']} ~* &* +@all\n"
            f"{web.acl_file_line(digest[WEB_USER])}\n{worker.acl_file_line(digest[WORKER_USER])}\n"
        )
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--aclfile", str(acl)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, 30, "the redis-server with ACL users")

    def url(self, user: str) -> str:
        who = "" if user == "default" else user
        return f"redis://{who}:{self.passwords[user]}@127.0.0.1:{self.port}/0"

    def client(self, user: str) -> redis.Redis:
        return redis.Redis.from_url(self.url(user), decode_responses=True)

    def _answers(self) -> bool:
        try:
            return bool(self.client("default").ping())
        except redis.ConnectionError:
            return False

    def refusals(self) -> list[tuple[str, str, str]]:
        """Every (user, reason, object) in Redis's ACL log: what it refused, and to whom."""
        entries = self.client("default").execute_command("ACL", "LOG", "1000")
        found = []
        for entry in entries:
            fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
            found.append((str(fields["username"]), str(fields["reason"]), str(fields["object"])))
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    server = AclRedis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack(acl_redis: AclRedis, tmp_path: Path) -> Iterator[LocalStack]:
    started = LocalStack(workdir=tmp_path / "stack", redis_url=acl_redis.url("default")).start()
    try:
        yield started
    finally:
        started.stop()


def test_web_and_worker_grant_and_revoke_as_their_own_users_without_one_refusal(
    stack: LocalStack, acl_redis: AclRedis
) -> None:
    port = free_port()
    env = stack.env()
    web = Spawned(["web"], env | {"PORT": str(port), "BREAKGLASS_REDIS_URL": acl_redis.url(WEB_USER)})
    worker = Spawned(["worker"], env | {"BREAKGLASS_REDIS_URL": acl_redis.url(WORKER_USER)})
    try:

        def ready() -> bool:
            assert web.popen.poll() is None, web.output
            return port_open(port) and get(f"http://127.0.0.1:{port}/readyz")[0] == 200

        wait_until(ready, 90, "the web process, logged in as its user, to be ready")
        slack = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, stack.slack)
        asked = slack.slash_command(ALICE, "prod/payments emergency 5m INC-4411 restart the consumer", channel_id=INCIDENT_CHANNEL)  # fmt: skip
        assert asked.status == 200
        (binding,) = wait_until(lambda: stack.bindings("prod"), 120, "the worker, as its user, to grant")
        request_id = binding["metadata"]["labels"]["breakglass.dev/request-id"]
        slack.slash_command(ALICE, f"revoke {request_id}", channel_id=INCIDENT_CHANNEL)
        wait_until(lambda: not stack.bindings("prod"), 120, "the worker to revoke")
        wait_until(lambda: stack.slack.messages(INCIDENT_CHANNEL), 60, "the request posted to #incidents")
        assert acl_redis.refusals() == [], f"web:\n{web.output[-2000:]}\nworker:\n{worker.output[-2000:]}"
        # Both users really were used: a URL that fell back to the default user would prove nothing.
        users = {client.get("user") for client in acl_redis.client("default").client_list()}
        assert {WEB_USER, WORKER_USER} <= users
    finally:
        web.kill_group()
        worker.kill_group()


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("CONFIG", "SET", "dir", "/tmp"),
        ("KEYS", "*"),
        ("SCRIPT", "FLUSH"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("MODULE", "LIST"),
        ("SHUTDOWN", "NOSAVE"),
        ("ACL", "SETUSER", "mallory", "on", "nopass", "+@all", "~*"),
    ],
    ids=lambda c: c[0].lower(),
)
@pytest.mark.parametrize("user", [WEB_USER, WORKER_USER])
def test_neither_user_may_run_an_administrative_command(
    acl_redis: AclRedis, user: str, command: tuple[str, ...]
) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        acl_redis.client(user).execute_command(*command)
    assert acl_redis.client("default").ping()


@pytest.mark.parametrize(
    "key",
    [
        "breakglass:sweep:running",  # holding the sweep's lock would stop every sweep
        "breakglass:clusters:known",
        "breakglass:revoking:BG-7K2QXM",
        "breakglass:publishing:BG-7K2QXM",
        "breakglass:slack:BG-7K2QXM",
        "rq:workers",  # posing as a worker
        "rq:worker:mallory",
        "rq:workers:breakglass-cluster",
        "rq:suspended",  # suspending every worker
        "rq:scheduler-lock:breakglass-cluster",  # holding the scheduler off
        "other-installation:request:BG-7K2QXM",  # another installation sharing this Redis
    ],
)
def test_the_web_user_cannot_touch_the_workers_machinery_or_another_installation(acl_redis: AclRedis, key: str) -> None:
    web = acl_redis.client(WEB_USER)
    with pytest.raises(redis.exceptions.NoPermissionError):
        web.set(key, "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        web.get(key)
    if not key.startswith("other-"):
        assert acl_redis.client(WORKER_USER).exists(key) == 0, "the worker's own key, which it may read"


def test_the_worker_user_keeps_to_its_installation(acl_redis: AclRedis) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        acl_redis.client(WORKER_USER).set("other-installation:request:BG-7K2QXM", "1")
    assert acl_redis.client(WORKER_USER).set("breakglass:sweep:running", "1")


def test_the_web_user_cannot_command_a_worker(acl_redis: AclRedis) -> None:
    # RQ's workers obey {"command": "shutdown"} on rq:pubsub:<worker>; the web has no channel at all.
    with pytest.raises(redis.exceptions.NoPermissionError):
        acl_redis.client(WEB_USER).publish("rq:pubsub:worker-1", '{"command": "shutdown"}')
    assert acl_redis.client(WORKER_USER).publish("rq:pubsub:worker-1", "{}") == 0
