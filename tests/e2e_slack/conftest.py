"""One live breakglass per test module: real Redis, the real ``breakglass web`` (gunicorn) and
``breakglass worker`` processes, the Slack Web API double and a Kubernetes API double per cluster.

People act through ``SlackSender`` (signed HTTP to the web process, as Slack sends it); tests read
what a person would see in the Slack double, what the cluster double holds, and what Redis holds.
Listeners answer after their ack and jobs run in the worker, so everything here waits with a deadline
for the outcome it expects (``wait_until``); nothing sleeps for a fixed time, and no ack is timed here
(on a loaded machine a correct one can take seconds): that an ack never waits for slow work is tested
as an order, against Slack calls held unanswered (tests/slack/test_listener_interactions.py).

Starting the stack costs a few seconds, so a module shares one; its tests each make their own
requests, and wait for every effect of their own actions before they finish, so the next test starts
from a settled world.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.domain.audit import AuditEntry, Event
from bot.domain.grants import REQUEST_ID_LABEL
from bot.domain.ids import REQUEST_ID_ALPHABET, REQUEST_ID_LENGTH
from bot.domain.lifecycle import AccessRequest, State
from bot.slack.notifier import RedisProgress
from bot.standins.slack_api import Ephemeral, SlackApiDouble, SlackMessage
from bot.standins.slack_events import SlackSender
from bot.standins.stack import DEMO_ROSTER, INCIDENT_CHANNEL, SIGNING_SECRET, LocalStack, Process, wait_until
from bot.store import AuditLog, RequestStore

# Its own key prefix (and so its own RQ queues): another stack on the same Redis never runs these jobs.
KEY_PREFIX = "bg-e2e-slack"
DEADLINE = 90.0  # seconds for any one visible outcome; the stack normally needs well under one, a loaded machine 20+
# Seconds for everything an earlier test set going to finish (several jobs and publishes in a row).
SETTLE_DEADLINE = 180.0
REQUEST_ID = re.compile(rf"BG-[{REQUEST_ID_ALPHABET}]{{{REQUEST_ID_LENGTH}}}")
REFUSAL_MARK = ":no_entry_sign: "


@dataclass
class Live:
    """The running stack and the ways a test acts on it and reads it."""

    stack: LocalStack
    web: Process
    sender: SlackSender
    store: RequestStore
    audit: AuditLog
    progress: RedisProgress

    @property
    def slack(self) -> SlackApiDouble:
        return self.stack.slack

    def sender_for_team(self, team_id: str) -> SlackSender:
        return SlackSender(self.sender.events_url, SIGNING_SECRET, self.slack, team_id=team_id)

    # --- acting ---------------------------------------------------------------------------------

    def command(self, user: str, text: str, *, sender: SlackSender | None = None) -> Ephemeral:
        """``user`` types ``/breakglass text`` in the incident channel; the ephemeral answer they see."""
        before = len(self.slack.ephemerals(user))
        reply = (sender or self.sender).slash_command(user, text, channel_id=INCIDENT_CHANNEL)
        assert reply.status == 200, f"/breakglass {text!r} answered HTTP {reply.status}: {reply.text}"
        return self.next_ephemeral(user, before, f"the answer to /breakglass {text!r}")

    def click(self, user: str, action: str, request_id: str, root: SlackMessage, *, stale: bool = False) -> Ephemeral:
        """``user`` presses ``action`` on the request's root message; the ephemeral answer they see."""
        before = len(self.slack.ephemerals(user))
        reply = self.sender.click(user, action, request_id, root.ts, INCIDENT_CHANNEL, stale=stale)
        assert reply.status == 200, f"{user} pressing {action} answered HTTP {reply.status}: {reply.text}"
        return self.next_ephemeral(user, before, f"the answer to {user} pressing {action}")

    def next_ephemeral(self, user: str, before: int, what: str) -> Ephemeral:
        def arrived() -> Ephemeral | None:
            seen = self.slack.ephemerals(user)
            return seen[before] if len(seen) > before else None

        found: Ephemeral = self.wait(arrived, DEADLINE, what)
        return found

    def ask(self, user: str, text: str) -> tuple[str, SlackMessage]:
        """A request that is accepted: its id and its root message once fully published."""
        answer = self.command(user, text)
        found = REQUEST_ID.search(answer.text)
        assert found, f"no request id in the answer: {answer.text}"
        request_id = found.group(0)
        self.wait_published(request_id)
        return request_id, self.root(request_id)

    # --- reading --------------------------------------------------------------------------------

    def root(self, request_id: str) -> SlackMessage:
        """The request's one root message in the incident channel, as it reads now."""
        roots = [m for m in self.slack.messages(INCIDENT_CHANNEL) if m.text.startswith(f"{request_id}:")]
        assert len(roots) == 1, f"{len(roots)} root messages for {request_id}"
        return roots[0]

    def thread(self, root: SlackMessage) -> list[SlackMessage]:
        return self.slack.thread(INCIDENT_CHANNEL, root.ts)

    def seen(self, message: Any) -> str:
        """What a person reads: mentions as @name, entities shown as the characters they stand for."""
        return self.slack.render_text(message)

    def request(self, request_id: str) -> AccessRequest:
        found = self.store.get(request_id)
        assert found is not None, f"{request_id} is not in Redis"
        return found

    def entries(self, request_id: str) -> list[AuditEntry]:
        return self.audit.for_request(request_id)

    def entries_after(self, seq: int) -> list[AuditEntry]:
        return [e for e in self.audit.entries() if e.seq > seq]

    def head(self) -> int:
        return self.audit.head()[0]

    def binding_names(self) -> list[str]:
        return sorted(
            f"{cluster}:{b['metadata'].get('namespace', '')}/{b['metadata']['name']}"
            for cluster in self.stack.clusters
            for b in self.stack.bindings(cluster)
        )

    def world(self) -> dict[str, Any]:
        """Everything a refusal must leave as it was: requests and their states, bindings in every
        cluster, and the incident channel (root messages, their text and blocks, their threads).

        Read once the stack has settled: before an action, so that nothing set going earlier lands
        after the snapshot; after it, so that anything the action set going (which a refusal must
        not) has landed and shows."""
        self.wait_settled()
        return {
            "requests": {r.id: (r.state, r.approved_by, r.updated_at) for r in self.store.recent()},
            "bindings": self.binding_names(),
            "channel": [
                (m.ts, m.text, m.blocks, len(self.slack.thread(INCIDENT_CHANNEL, m.ts)))
                for m in self.slack.messages(INCIDENT_CHANNEL)
            ],
        }

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.stack.web_url(self.web)}/metrics", timeout=5) as reply:  # noqa: S310
            return str(reply.read().decode())

    # --- settling -------------------------------------------------------------------------------

    def in_flight(self) -> list[str]:
        """What the stack is still doing (empty once it has settled), each named: an RQ job queued or
        running (read from the jobs themselves, which also covers the moment a worker has taken one
        off its queue and not yet marked it started), a thread owed to Slack (the outbox, or an
        audit entry not yet published), an approved request whose grant has not run, and a binding
        in a cluster whose request has ended."""
        busy = [f"job {job} {status}" for job, status in self.jobs().items() if status in ("queued", "started")]
        busy += [f"{request_id} owed to Slack (outbox)" for request_id in self.store.outbox.owed()]
        requests = {r.id: r for r in self.store.recent()}
        for request in requests.values():
            if request.state == State.APPROVED:
                busy.append(f"{request.id} approved, not yet granted")
            shown = [e.seq for e in self.entries(request.id) if e.event != Event.REFUSED]
            done = self.progress.done(request.id)
            if shown and done < max(shown):
                busy.append(f"{request.id} published up to audit #{done} of #{max(shown)}")
        for cluster in self.stack.clusters:
            for binding in self.stack.bindings(cluster):
                owner = requests.get((binding["metadata"].get("labels") or {}).get(REQUEST_ID_LABEL, ""))
                if owner is not None and owner.state.terminal:
                    busy.append(
                        f"{cluster}: {binding['metadata']['name']} still there, its request {owner.state.label}"
                    )
        return busy

    def wait_settled(self) -> None:
        """Until nothing is in flight: an earlier test's grant, thread reply or revoke must not land in
        the middle of the next test's snapshot. Fails naming what is still busy."""
        busy: list[str] = []

        def settled() -> bool:
            busy[:] = self.in_flight()
            return not busy

        try:
            wait_until(settled, SETTLE_DEADLINE, "the stack to settle")
        except TimeoutError:
            pytest.fail(
                f"the stack did not settle within {SETTLE_DEADLINE:.0f}s; still busy: {'; '.join(busy)}\n{self.logs()}"
            )

    # --- waiting --------------------------------------------------------------------------------

    def wait(self, check: Any, timeout: float, what: str) -> Any:
        """``wait_until``, failing with what is still in flight and what the processes said last."""
        try:
            return wait_until(check, timeout, what)
        except TimeoutError as exc:
            jobs = ", ".join(f"{job} {status}" for job, status in self.jobs().items())
            pytest.fail(f"{exc}; in flight: {'; '.join(self.in_flight()) or 'nothing'}; RQ jobs: {jobs}\n{self.logs()}")

    def jobs(self) -> dict[str, str]:
        """Every RQ job in Redis and its status (a publish job retrying shows as scheduled)."""
        client = self.store.redis
        keys = [key for key in client.scan_iter("rq:job:*", count=1000) if str(key).count(":") == 2]
        return {str(key)[7:]: str(client.hget(key, "status")) for key in keys}

    def logs(self, tail: int = 6000) -> str:
        """The end of each process's output: what a failure report needs to tell a hang from a crash."""
        return "\n".join(
            f"----- {p.name} (last {tail} characters) -----\n{p.output()[-tail:]}" for p in self.stack.processes
        )

    def wait_published(self, request_id: str) -> None:
        """Until every audit entry of the request that belongs in Slack has its thread reply and DMs."""

        def published() -> bool:
            shown = [e.seq for e in self.entries(request_id) if e.event != Event.REFUSED]
            return bool(shown) and self.progress.done(request_id) >= max(shown)

        self.wait(published, DEADLINE, f"{request_id} to be published in Slack")

    def wait_for_event(self, request_id: str, event: Event) -> AuditEntry:
        def logged() -> AuditEntry | None:
            return next((e for e in self.entries(request_id) if e.event == event), None)

        entry: AuditEntry = self.wait(logged, DEADLINE, f"{request_id}: {event}")
        return entry


def refusal_sentence(answer: Ephemeral) -> str:
    """The refusal as one line of text, after checking it is shown as a refusal and only to its reader."""
    assert answer.text.startswith(REFUSAL_MARK), f"not a refusal: {answer.text}"
    assert answer.via in ("response_url", "command_reply"), f"refusal came as {answer.via}, not ephemeral"
    sentence = answer.text.removeprefix(REFUSAL_MARK)
    assert "\n" not in sentence, f"a refusal is one sentence, not several lines: {answer.text}"
    return sentence


@pytest.fixture(autouse=True)
def settled_before_each_test(live: Live) -> None:
    """Each test starts once the previous one's asynchronous work is done (jobs, Slack replies,
    grants, revokes), so what it sees and snapshots is its own doing."""
    live.wait_settled()


@pytest.fixture(autouse=True)
def nothing_went_wrong_on_our_side(live: Live, settled_before_each_test: None) -> Iterator[None]:
    """After each test: no web or worker process logged an error (a listener or job that raised is a
    bug even when the person saw a polite answer). Read from a settled stack to a settled stack, so
    what its own jobs log late counts against this test and nothing of the previous one's does."""
    offsets = {p.name: p.log_path.stat().st_size for p in live.stack.processes}
    yield
    live.wait_settled()
    for process in live.stack.processes:
        with process.log_path.open(encoding="utf-8", errors="replace") as log:
            log.seek(offsets.get(process.name, 0))
            errors = [line[:2000] for line in log if '"level": "error"' in line]
        assert not errors, f"{process.name} logged errors:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from running_live(redis_url, tmp_path_factory.mktemp("e2e-slack-stack"))


def running_live(
    redis_url: str,
    workdir: Path,
    roster: Mapping[str, Any] = DEMO_ROSTER,
    sweep_interval: str = "2s",
    *,
    socket_mode: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Live]:
    """The stack for one module (a module that needs another roster, Socket Mode instead of signed
    HTTP, or settings of its own such as the PagerDuty and Jira stand-ins', overrides ``live`` with this)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # fail, never skip: CI must start Redis
        pytest.fail(f"no Redis at {redis_url} ({exc}); start redis-server or set BREAKGLASS_TEST_REDIS_URL")
    client.flushdb()
    stack = LocalStack(
        workdir,
        redis_url=redis_url,
        # One stack serves a whole module, so one person's requests pile up past the default quota.
        roster={"max_pending_requests": 50, **roster},
        sweep_interval=sweep_interval,
        key_prefix=KEY_PREFIX,
        socket_mode=socket_mode,
        extra_env=extra_env or {},
    ).start()
    try:
        web = stack.start_web()
        stack.start_worker()
        stack.wait_for_workers(1)
        audit = AuditLog(client, lambda: datetime.now(UTC), prefix=KEY_PREFIX, key=stack.chain_key())
        yield Live(
            stack=stack,
            web=web,
            sender=stack.sender(web),
            store=RequestStore(client, audit, prefix=KEY_PREFIX),
            audit=audit,
            progress=RedisProgress(client, prefix=KEY_PREFIX),
        )
        for process in stack.processes:
            assert process.alive(), f"{process.name} died during the tests:\n{process.output()[-3000:]}"
    finally:
        stack.stop()
        client.flushdb()
        client.close()
