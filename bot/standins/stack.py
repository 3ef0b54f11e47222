"""Everything breakglass talks to, on this machine, plus the real web and worker processes.

``LocalStack`` starts a Redis (the one given, else an embedded ``redis-server`` on a free port), one
Kubernetes API double per roster cluster, and the Slack Web API double seeded with the roster's people
and some who must be refused; it writes a kubeconfig and a roster, and starts ``breakglass web`` and
``breakglass worker`` as real processes against them. The end-to-end tests and ``breakglass demo``
both use it, so the demo shows exactly what the tests check. With ``socket_mode=True`` the web process
gets ``SLACK_APP_TOKEN`` and no signing secret, Slack's Socket Mode endpoint (``SocketModeServer``) runs
beside the Web API double, and ``sender`` delivers over the socket instead of signed HTTP.

It is for tests and the demo only: tokens are fake, nothing is TLS, and it must never be pointed at a
real workspace or cluster.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis
import yaml

from bot.domain.grants import SYSTEM_NAMESPACE
from bot.domain.keys import Purpose, SigningKey
from bot.slack.client import ADMIN_SCOPES, REQUIRED_SCOPES
from bot.standins.kube import ContextEntry, KubeApiServer, write_kubeconfig
from bot.standins.slack_api import DEFAULT_APP_TOKEN, DEFAULT_BOT_TOKEN, SlackApiDouble
from bot.standins.slack_events import SlackSender
from bot.standins.slack_socket import SocketModeSender, SocketModeServer

SIGNING_SECRET = "local-stand-in-signing-secret"  # noqa: S105 - a fake secret for a fake Slack
AUDIT_WEBHOOK_TOKEN = "local-stand-in-audit-token"  # noqa: S105
SIGNING_KEY = "local-stand-in-signing-key-for-chain-and-warrants"  # a fake key for a fake cluster
ADMIN_TOKEN = "xoxp-fake-local-admin"  # noqa: S105

# The Slack app manifest, present in a source checkout (tests, ``breakglass demo`` from source).
MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack" / "manifest.yaml"

INCIDENT_CHANNEL = "C0000INCIDENT"
ALICE, BOB, CAROL = "U000000ALICE", "U0000000BOB", "U00000CAROL"
DAVE = "U0000000DAVE"  # in the roster, in no approver group
MALLORY = "U00000MALLORY"  # a real workspace member who is not in the roster
GUEST = "U0000000GUEST"  # in the roster by mistake, but a Slack guest

DEMO_ROSTER: dict[str, Any] = {
    "workspace": {"team_id": "T0000000001"},
    "mfa": "slack_enforced",
    "incident_channel": INCIDENT_CHANNEL,
    "request_timeout": "30m",
    "reminder_before": "10m",
    "min_duration": "5m",
    "clusters": {
        "prod": {"context": "prod", "credentials": "user"},
        "staging": {"context": "staging", "credentials": "token"},
    },
    "roles": {
        "view": {
            "cluster_role": "view",
            "scope": "namespace",
            "max_duration": "4h",
            "approvals": 1,
            "approvers": ["sre"],
        },
        "admin": {
            "cluster_role": "admin",
            "scope": "namespace",
            "max_duration": "1h",
            "approvals": 2,
            "approvers": ["sre"],
        },
        "cluster-admin": {
            "cluster_role": "cluster-admin",
            "scope": "cluster",
            "max_duration": "1h",
            "min_duration": "15m",
            "approvals": 2,
            "approvers": ["sre"],
        },
        "emergency": {
            "cluster_role": "edit",
            "scope": "namespace",
            "max_duration": "30m",
            "min_duration": "5s",
            "approvals": 0,
            "approvers": ["sre"],
        },
    },
    "groups": {"sre": [BOB, CAROL], "payments-devs": [ALICE, DAVE, GUEST]},
    "people": {
        ALICE: {"kube_user": "alice@example.com"},
        BOB: {"kube_user": "bob@example.com"},
        CAROL: {"kube_user": "carol@example.com", "kube_groups": ["oncall"]},
        DAVE: {"kube_user": "dave@example.com"},
        GUEST: {"kube_user": "guest@example.com"},
    },
    "entitlements": [
        {
            "group": "payments-devs",
            "roles": ["view", "admin", "emergency"],
            "clusters": ["prod", "staging"],
            "namespaces": ["payments", "payments-*"],
        },
        {"group": "sre", "roles": ["view", "admin", "cluster-admin", "emergency"], "clusters": ["prod", "staging"]},
    ],
}

NAMESPACES = ("payments", "payments-eu", "checkout", SYSTEM_NAMESPACE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def die_with_parent() -> None:
    """Run in a child between fork and exec: the kernel kills it when the process that started it
    dies, even by SIGKILL, so a killed demo (or test run) leaves no web, worker or Redis behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class EmbeddedRedis:
    """A private ``redis-server`` on a free port, persistence off, removed on stop."""

    def __init__(self, start_timeout: float = 10) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no Redis configured and redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="breakglass-redis-")
        # A password of its own: loopback is shared by every local user, and whoever writes this
        # Redis steers the demo's worker.
        password = secrets.token_urlsafe(24)
        config = Path(self.dir) / "redis.conf"
        config.write_text(f"requirepass {password}\n")
        config.chmod(0o600)
        self.process = subprocess.Popen(  # noqa: S603  (our own binary, fixed arguments)
            [binary, str(config), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # only sets the death signal (see die_with_parent)
        )  # fmt: skip
        self.url = f"redis://:{password}@127.0.0.1:{self.port}/0"
        try:
            wait_until(lambda: _redis_answers(self.url), start_timeout, "the embedded redis-server")
        except BaseException:
            self.stop()  # a server that never answered must not outlive us, nor its temp dir
            raise

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Process:
    """A breakglass process started by the stack; its output goes to a log file in the work dir."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    port: int | None = None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything it started (RQ's scheduler is a forked child)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # any stray child
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def manifest_scopes(path: Path = MANIFEST) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The bot and user scopes the Slack app manifest grants. The stack's tokens hold exactly these, so
    an end-to-end run proves the manifest is enough: a call needing a scope it lacks fails with Slack's
    ``missing_scope``. An installed wheel (the image) ships no manifest; there the code's own lists
    stand in, which ``tests/slack/test_app.py`` keeps equal to the manifest."""
    if not path.is_file():
        return REQUIRED_SCOPES, ADMIN_SCOPES
    scopes = (yaml.safe_load(path.read_text(encoding="utf-8")) or {})["oauth_config"]["scopes"]
    return tuple(scopes.get("bot") or ()), tuple(scopes.get("user") or ())


@dataclass
class LocalStack:
    workdir: Path
    redis_url: str | None = None
    roster: Mapping[str, Any] = field(default_factory=lambda: DEMO_ROSTER)
    sweep_interval: str = "2s"
    key_prefix: str = "breakglass"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    socket_mode: bool = False
    # The tests' fixed fake secrets by default; the demo draws random ones (random_secrets()).
    signing_secret: str = SIGNING_SECRET
    audit_webhook_token: str = AUDIT_WEBHOOK_TOKEN
    socket: SocketModeServer | None = field(default=None, init=False)
    clusters: dict[str, KubeApiServer] = field(default_factory=dict, init=False)
    slack: SlackApiDouble = field(init=False)
    processes: list[Process] = field(default_factory=list, init=False)
    _embedded: EmbeddedRedis | None = field(default=None, init=False)

    # --- the stand-ins ------------------------------------------------------------------------

    def start(self) -> LocalStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.redis_url is None:
            self._embedded = EmbeddedRedis()
            self.redis_url = self._embedded.url
        for name in self.roster["clusters"]:
            server = KubeApiServer(namespaces=NAMESPACES)
            server.start()
            self.clusters[name] = server
        contexts = {c["context"]: ContextEntry(self.clusters[n], self.clusters[n].admin_token)
                    for n, c in self.roster["clusters"].items()}  # fmt: skip
        write_kubeconfig(self.kubeconfig_path, contexts)
        self.roster_path.write_text(yaml.safe_dump(dict(self.roster), sort_keys=False))
        bot_scopes, admin_scopes = manifest_scopes()
        self.slack = SlackApiDouble(admin_token=ADMIN_TOKEN, scopes=bot_scopes, admin_scopes=admin_scopes).start()
        self._seed_slack()
        if self.socket_mode:
            self.socket = SocketModeServer(self.slack).start()
        return self

    def _seed_slack(self) -> None:
        names = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAVE: "dave", MALLORY: "mallory", GUEST: "guest"}
        for user, name in names.items():
            self.slack.add_user(user, name=name, tz="Europe/Amsterdam", tz_label="Central European Time",
                                tz_offset=3600, is_restricted=user == GUEST, has_2fa=True,
                                email=f"{name}@example.com")  # fmt: skip
        self.slack.add_channel(INCIDENT_CHANNEL, "incidents", members=list(names))

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def roster_path(self) -> Path:
        return self.workdir / "roster.yaml"

    def chain_key(self) -> bytes:
        """The audit chain key the stack's processes derive from SIGNING_KEY."""
        return SigningKey(SIGNING_KEY).derive(Purpose.AUDIT_CHAIN)

    def env(self) -> dict[str, str]:
        assert self.redis_url is not None
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SLACK_", "BREAKGLASS_")) and key not in ("KUBECONFIG", "PORT")
        }
        env.update(
            {
                "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
                "SLACK_SIGNING_SECRET": self.signing_secret,
                "SLACK_ADMIN_TOKEN": ADMIN_TOKEN,
                "BREAKGLASS_SLACK_API_URL": self.slack.api_url,
                "BREAKGLASS_REDIS_URL": self.redis_url,
                "BREAKGLASS_ROSTER": str(self.roster_path),
                "BREAKGLASS_AUDIT_WEBHOOK_TOKEN": self.audit_webhook_token,
                "BREAKGLASS_WEB_HOST": "127.0.0.1",
                "BREAKGLASS_SIGNING_KEY": SIGNING_KEY,
                "BREAKGLASS_SWEEP_INTERVAL": self.sweep_interval,
                "BREAKGLASS_KEY_PREFIX": self.key_prefix,
                "KUBECONFIG": str(self.kubeconfig_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.socket_mode:
            # What a Socket Mode install has: an app-level token, and no signing secret to verify with.
            env["SLACK_APP_TOKEN"] = DEFAULT_APP_TOKEN
            del env["SLACK_SIGNING_SECRET"]
        env.update(self.extra_env)
        return env

    # --- the real processes -------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], port: int | None = None) -> Process:
        env = self.env()
        if port is not None:
            env["PORT"] = str(port)
            # Where a browser reaches this web process: the step-up's start links and OIDC redirect.
            env.setdefault("BREAKGLASS_PUBLIC_URL", f"http://127.0.0.1:{port}")
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(  # noqa: S603  (this interpreter, our own module)
            [sys.executable, "-m", "bot.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches RQ's forked scheduler too
            preexec_fn=die_with_parent,  # only sets the death signal (see die_with_parent)
        )
        process = Process(name, popen, log_path, log, port)
        self.processes.append(process)
        return process

    def start_web(self, timeout: float = 30) -> Process:
        """A ``breakglass web`` process, once it answers ``/readyz`` (and, in Socket Mode, once it holds
        its own socket)."""
        port = free_port()
        last_socket = max((c.id for c in self.socket.connections()), default=0) if self.socket else 0
        web = self._spawn(f"web-{port}", ["web"], port)

        def healthy() -> bool:
            if not web.alive():
                raise RuntimeError(f"the web process exited:\n{web.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
                    return bool(reply.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout, "the web process to be ready")
        if self.socket is not None:
            self.socket.wait_for_connections(1, timeout, after=last_socket)
        return web

    def start_worker(self, name: str | None = None) -> Process:
        worker = self._spawn(name or f"worker-{len(self.processes)}", ["worker"])
        time.sleep(0)  # started; the worker registers with RQ within a moment
        return worker

    def wait_for_workers(self, count: int, timeout: float = 30) -> None:
        from rq import Worker

        connection = redis.Redis.from_url(self.redis_url or "")
        wait_until(lambda: len(Worker.all(connection=connection)) >= count, timeout, f"{count} RQ workers")

    def web_url(self, web: Process) -> str:
        return f"http://127.0.0.1:{web.port}"

    def sender(self, web: Process) -> SlackSender:
        """How a person reaches the app: signed HTTP to ``web``, or, in Socket Mode, the socket (Slack
        chooses which web process's connection gets each envelope)."""
        if self.socket is not None:
            return SocketModeSender(self.socket, self.slack)
        return SlackSender(f"{self.web_url(web)}/slack/events", self.signing_secret, self.slack)

    # --- reading the cluster ------------------------------------------------------------------

    def bindings(self, cluster: str = "prod") -> list[dict[str, Any]]:
        snapshot = self.clusters[cluster].snapshot("app.kubernetes.io/managed-by=breakglass")
        return snapshot["rolebindings"] + snapshot["clusterrolebindings"]

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url or "", decode_responses=True)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.socket is not None:
            self.socket.stop()
        with contextlib.suppress(AttributeError):
            self.slack.stop()
        for server in self.clusters.values():
            server.stop()
        if self._embedded is not None:
            self._embedded.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def random_secrets() -> tuple[str, str]:
    """Secrets for a stack nobody else should be able to talk to (the demo): a loopback port is
    reachable by every local user, and with the fixed test secrets any of them could sign requests."""
    return secrets.token_urlsafe(32), secrets.token_urlsafe(32)  # signing secret, audit webhook token


@contextlib.contextmanager
def local_stack(**kwargs: Any) -> Iterator[LocalStack]:
    workdir = Path(tempfile.mkdtemp(prefix="breakglass-stack-"))
    stack = LocalStack(workdir, **kwargs)
    try:
        yield stack.start()
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
