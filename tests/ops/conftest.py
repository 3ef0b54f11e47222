"""Helpers for the operator-facing tests: the demo, doctor, serve and observability.

Every stack here gets its own embedded ``redis-server`` (``local_stack()`` with no URL): these tests stop
Redis, count metrics from zero and scan process logs, none of which may be shared with other tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.deploy_rbac import bot_rbac_manifests
from bot.standins.kube import ContextEntry, write_kubeconfig
from bot.standins.stack import LocalStack, local_stack, wait_until

ROOT = Path(__file__).resolve().parents[2]
BOT_USER = "system:serviceaccount:breakglass-system:breakglass"
BOT_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:breakglass-system")


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with local_stack() as started:
        yield started


def give_bot_identity(stack: LocalStack, bindable: dict[str, Iterable[str]]) -> tuple[Path, list[str]]:
    """Let the bot act as the ServiceAccount ``deploy rbac`` is written for, holding exactly the RBAC that
    command renders for ``bindable[cluster]`` roles, instead of the doubles' admin (the Role for
    per-grant ServiceAccounts only on ``credentials: token`` clusters, as that command renders it).
    Returns a kubeconfig for it and the tokens in it."""
    contexts: dict[str, ContextEntry] = {}
    tokens = []
    for name, cluster in stack.roster["clusters"].items():
        server = stack.clusters[name]
        tokens_here = cluster["credentials"] == "token"
        for manifest in bot_rbac_manifests(bindable.get(name, ()), service_account_tokens=tokens_here):
            server.seed(manifest)
        token = f"bot-{name}-{os.urandom(8).hex()}"
        server.add_identity(token, BOT_USER, BOT_GROUPS)
        contexts[cluster["context"]] = ContextEntry(server, token)
        tokens.append(token)
    path = write_kubeconfig(stack.workdir / "bot-kubeconfig", contexts)
    return path, tokens


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - a local URL
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line or environment contains ``text`` (this user's, via /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline or text.encode() in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed as one JSON object; a line that is not one fails the test."""
    parsed = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line[:300]}")
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


class Spawned:
    """A ``python -m bot.cli …`` child in its own session, its output collected by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        wait_until(lambda: any(text in line for line in self.lines) or self.popen.poll() is not None, timeout, text)
        assert any(text in line for line in self.lines), f"exited before printing {text!r}:\n{self.output}"

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill_group(self) -> None:
        """Last resort for a failed test: nothing of this child may outlive it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, 9)
        self.popen.wait(timeout=10)
