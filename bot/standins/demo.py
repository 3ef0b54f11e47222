"""``breakglass demo``: one emergency request walked through its whole life, on this machine.

It runs the real app — ``breakglass web`` under gunicorn, ``breakglass worker`` with its scheduler and
reconcile sweep, the real jobs — against the local stand-ins of ``bot.standins.stack``: a Slack Web API
double seeded with Alice (who asks) and Bob and Carol (who approve), a Kubernetes API double per roster
cluster, and a private ``redis-server``. It prints what each person sees, each incident thread as
Slack shows it, and what exists in the cluster at every step, with SubjectAccessReviews that show
what Alice may do. Each step is checked, and the exit status says whether all happened as expected,
so the demo is also a smoke test of a fresh install.

What it must not do: touch a Redis, Slack workspace or cluster it was not given (without
``--redis-url`` it starts its own ``redis-server`` on a free port, even when one answers on 6379), or
leave anything behind. Processes, ports and temporary directories are removed on success, on failure,
and on Ctrl-C, SIGTERM or SIGHUP; a signal that arrives while a part is starting or while everything is
being removed waits until that is done, so nothing is orphaned half-started.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

import redis
import requests

from bot.domain.audit import AuditEntry, Event
from bot.domain.grants import EXPIRES_AT_ANNOTATION, binding_name, parse_instant
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest, State
from bot.ports import AccessCheck, BreakglassError
from bot.settings import url_without_password
from bot.slack.blocks import (
    APPROVE_ACTION,
    DENY_ACTION,
    DENY_CALLBACK,
    DENY_REASON_INPUT,
    REVIEW_ACTION,
    REVIEW_CALLBACK,
)
from bot.standins import pagerduty as pagerduty_standin
from bot.standins.oidc import CLIENT_ID, CLIENT_SECRET, OidcProviderDouble
from bot.standins.pagerduty import PagerDutyDouble
from bot.standins.slack_events import SlackSender
from bot.standins.stack import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    DEMO_ROSTER,
    GUEST,
    INCIDENT_CHANNEL,
    LocalStack,
    random_secrets,
    wait_until,
)
from bot.standins.terminal import WIDTH, to_terminal, wrapped
from bot.store import AuditLog, RequestStore
from bot.store.progress import RedisProgress
from workers.kube import ClusterTarget, KubeClusters

EXIT_FAILED = 1
EXIT_NO_REDIS = 3

CLUSTER = "prod"
NAMESPACE = "payments"
REQUEST = f"{CLUSTER}/{NAMESPACE} admin 30m INC-4411 checkout pods crash-looping"
EXTEND_BY = "30m INC-4411 the rollback needs longer"
DENIED = f"{CLUSTER}/{NAMESPACE} view 2h INC-4411 read the consumer logs"
# The self-service role's min_duration is 5s; 10s is long enough to see the binding and short enough
# to watch it expire.
BREAK_GLASS = f"{CLUSTER}/{NAMESPACE} emergency 10s INC-4411 restart the stuck payment consumer"
DENY_REASON = "admin was granted for this incident already; use that."
REVIEW = "Warranted by INC-4411: the consumer was stuck and a restart was the fix."
# A reply's own footer (its date and audit sequence number): the demo shows each reply's time once, and
# no sequence numbers (a refusal is in the audit log but not in the channel, so they would skip one).
_REPLY_FOOTER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC · audit #\d+$")
DELETE_PODS = AccessCheck(user="alice@example.com", verb="delete", resource="pods", namespace=NAMESPACE)
SWEEP_INTERVAL = "2s"  # the production default is 30s; short here so the sweep's work is seen promptly
STEP_TIMEOUT = 20.0
EXPIRY_GRACE = timedelta(seconds=10)  # how late after its expiry a binding may still be there
ERIN = "U00000ERIN"  # in the payments-devs Slack user group, nowhere under the roster's people
PAYMENTS_DEVS = "S0PAYDEVS"
STEP_UP = f"{CLUSTER}/{NAMESPACE} debug 30m INC-4411 read the consumer's logs"
ON_CALL = f"{CLUSTER}/{NAMESPACE} oncall 15m INC-4411 roll back the bad deploy"
ON_CALL_SCHEDULE, ON_CALL_POLICY = "PSCHED01", "PPOLICY1"
PAGERDUTY_FROM = "breakglass@example.com"
NAMES = {ALICE: "Alice", BOB: "Bob", CAROL: "Carol", ERIN: "Erin"}


def demo_roster(issuer: str) -> dict[str, Any]:
    """The stack's roster, plus identity from the identity provider: payments-devs kept in a Slack user
    group whose members need not be listed under people (their confirmed Slack email is their
    kube_user), and a ``debug`` role whose requests need step-up MFA (mfa: oidc) at the stand-in IdP."""
    roster = json.loads(json.dumps(DEMO_ROSTER))
    roster["mfa"] = "oidc"
    roster["oidc"] = {"issuer": issuer, "client_id": CLIENT_ID, "name": "Stand-in IdP", "max_age": "5m",
                      "amr": ["otp", "mfa"], "step_up": []}  # fmt: skip
    roster["roles"]["debug"] = {**roster["roles"]["view"], "step_up": ["request"]}
    roster["entitlements"][0]["roles"].append("debug")
    roster["identity"] = {"kube_user_from": "email"}
    roster["groups"]["payments-devs"] = {"slack_usergroup": PAYMENTS_DEVS}
    # Approved without a click for whoever PagerDuty says is primary on call for Payments.
    rule = {"name": "primary-on-call", "pagerduty_oncall": {"schedules": [ON_CALL_SCHEDULE], "max_level": 1},
            "max_duration": "30m", "max_per_day": 3}  # fmt: skip
    roster["roles"]["oncall"] = {**roster["roles"]["admin"], "cluster_role": "edit", "auto_approve": [rule]}
    roster["entitlements"][0]["roles"].append("oncall")
    return roster


def on_call_pagerduty() -> PagerDutyDouble:
    """The PagerDuty stand-in, with Alice primary on call for Payments from an hour ago for eight hours."""
    pagerduty = PagerDutyDouble().start()
    pagerduty.add_user(PAGERDUTY_FROM, "breakglass")
    pagerduty.add_escalation_policy("Payments escalation", id=ON_CALL_POLICY)
    pagerduty.add_schedule("Payments", id=ON_CALL_SCHEDULE)
    now = datetime.now(UTC)
    pagerduty.put_on_call("alice@example.com", escalation_policy_id=ON_CALL_POLICY, level=1,
                          schedule_id=ON_CALL_SCHEDULE, start=now - timedelta(hours=1),
                          end=now + timedelta(hours=8))  # fmt: skip
    return pagerduty


def pagerduty_env(pagerduty: PagerDutyDouble) -> dict[str, str]:
    return {
        **pagerduty.trust_environ,
        "BREAKGLASS_PAGERDUTY_TOKEN": pagerduty_standin.TOKEN,
        "BREAKGLASS_PAGERDUTY_API_URL": pagerduty.base_url,
        "BREAKGLASS_PAGERDUTY_FROM": PAGERDUTY_FROM,
    }


T = TypeVar("T")


class DemoFailed(Exception):
    """A step did not happen as expected."""


class Stopped(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP: stop the demo through its cleanup."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """Turns SIGINT, SIGTERM and SIGHUP into ``Stopped``, at once or, inside ``shielded()``, as soon
    as the shielded part is done. The first signal counts; later ones are ignored so the cleanup they
    would interrupt runs to the end."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: int | None = None
        self._depth = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if self._depth == 0:
            raise Stopped(signum)

    @contextlib.contextmanager
    def shielded(self, then_stop: bool = True) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if then_stop and self._depth == 0 and self.received is not None:
            raise Stopped(self.received)


class Printer:
    """The demo's output: sections, indented lines within 100 columns, Slack's mrkdwn rendered for a
    terminal, flushed as they come (someone is watching)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.styled = bool(getattr(out, "isatty", lambda: False)())

    def section(self, title: str) -> None:
        self.line("")
        self.line(f"━━ {title} " + "━" * max(3, WIDTH - 4 - len(title)))

    def line(self, text: str = "", indent: int = 0) -> None:
        for part in wrapped(text, indent):
            self.out.write(part + "\n")
        self.out.flush()

    def one_line(self, text: str) -> None:
        """A refusal to start: one line, however long, so it reads (and greps) as one."""
        self.out.write(text + "\n")
        self.out.flush()

    def slack(self, mrkdwn: str, indent: int = 0) -> None:
        """Text as Slack shows it: bold, emoji and code rendered, not their markers."""
        self.line(to_terminal(mrkdwn, styled=self.styled), indent)


@dataclass
class Walk:
    """The demo's steps over a started ``LocalStack``; each step checks what it shows."""

    stack: LocalStack
    show: Printer
    guard: SignalGuard
    own_redis: bool
    redis: redis.Redis = field(init=False)
    store: RequestStore = field(init=False)
    audit: AuditLog = field(init=False)
    kube: KubeClusters = field(init=False)
    sender: SlackSender = field(init=False)
    _seen_ephemerals: dict[str, int] = field(default_factory=dict, init=False)
    _cards: dict[str, list[str]] = field(default_factory=dict, init=False)  # each request message as first shown

    def __post_init__(self) -> None:
        client = self.stack.redis_client()
        prefix = self.stack.key_prefix
        self.redis = client
        self.audit = AuditLog(client, lambda: datetime.now(UTC), prefix=prefix, key=self.stack.chain_key())
        self.store = RequestStore(client, self.audit, prefix=prefix)
        targets = {
            name: ClusterTarget(c["context"], c["credentials"]) for name, c in self.stack.roster["clusters"].items()
        }
        self.kube = KubeClusters(targets, kubeconfig=self.stack.kubeconfig_path)

    # --- the story ---------------------------------------------------------------------------

    def run(self) -> None:
        self.start_processes()
        slack = self.sender
        rid = self.ask(REQUEST, "1. Alice asks for admin on prod/payments (two approvals needed)")
        request = self.request(rid)
        self.cluster_state()
        self.access_review(expected=False)

        self.show.section("2. Alice tries to approve her own request")
        slack.click(ALICE, APPROVE_ACTION, rid, request.message_ts, INCIDENT_CHANNEL)
        self.expect(
            lambda: self.audit_event(rid, Event.REFUSED, ALICE), "Alice's self-approval refused in the audit log"
        )
        self.ephemerals(ALICE, answer_to="her own approval")
        still = self.request(rid)
        if still.state != State.PENDING or still.approvals:
            raise DemoFailed(
                f"after Alice's own click the request is {still.state.label} with {len(still.approvals)} approvals"
            )
        self.show.line("Refused: the request is still pending with 0 of 2 approvals.", 2)

        self.show.section("3. Bob approves")
        slack.click(BOB, APPROVE_ACTION, rid, request.message_ts, INCIDENT_CHANNEL)
        self.expect(lambda: len(self.request(rid).approvals) == 1, "Bob's approval recorded (1 of 2)")
        self.ephemerals(BOB, answer_to="his approval")
        self.show.line("Pending: 1 of 2 approvals (Bob). Nothing is granted yet.", 2)
        self.cluster_state()

        self.show.section("4. Carol approves: the worker creates the binding")
        slack.click(CAROL, APPROVE_ACTION, rid, request.message_ts, INCIDENT_CHANNEL)
        self.expect(lambda: self.request(rid).state == State.ACTIVE, "the grant to become active")
        self.ephemerals(CAROL, answer_to="her approval")
        first_expiry = self.expect_binding(rid, "admin")
        self.cluster_state()
        self.access_review(expected=True)

        self.show.section(f"5. Alice asks for 30 more minutes: /breakglass extend {rid} 30m …")
        self.show.line(f"Alice types: /breakglass extend {rid} {EXTEND_BY}", 2)
        before = set(self.store.ids())
        slack.slash_command(ALICE, f"extend {rid} {EXTEND_BY}", channel_id=INCIDENT_CHANNEL)
        xid: RequestId = self.expect(lambda: next(iter(set(self.store.ids()) - before), None), "the extension")
        self.ephemerals(ALICE, answer_to="/breakglass extend")
        extension = self.expect(lambda: self.posted(xid), "the extension's message in #incidents")
        for approver in (BOB, CAROL):
            slack.click(approver, APPROVE_ACTION, xid, extension.message_ts, INCIDENT_CHANNEL)
            self.ephemerals(approver, answer_to="the extension")
        self.expect(lambda: self.expect_binding(rid, "admin") > first_expiry, "the binding's expiry to move")
        self.show.line(f"Bob and Carol approved {xid}; the same binding now ends 30 minutes later.", 2)
        self.cluster_state()

        self.show.section(f"6. Alice is done early: /breakglass revoke {rid}")
        self.show.line(f"Alice types: /breakglass revoke {rid}", 2)
        slack.slash_command(ALICE, f"revoke {rid}", channel_id=INCIDENT_CHANNEL)
        self.expect(lambda: self.request(rid).state == State.REVOKED, "the request to be revoked")
        self.ephemerals(ALICE, answer_to="/breakglass revoke")
        self.expect(lambda: not self.binding(rid), "the binding to be deleted")
        self.expect(lambda: self.removal_recorded(rid), "the binding's removal in the audit log")
        self.cluster_state()
        self.access_review(expected=False)
        self.thread(rid)

        did = self.ask(DENIED, "7. A denial: Alice asks for view, Bob denies it with a reason")
        opened = len(self.stack.slack.views_opened(user_id=BOB))
        slack.click(BOB, DENY_ACTION, did, self.request(did).message_ts, INCIDENT_CHANNEL)
        self.expect(lambda: len(self.stack.slack.views_opened(user_id=BOB)) > opened or None, "Bob's deny form")
        self.show.line(f"Bob presses Deny, confirms, and gives a reason in the form that opens: {DENY_REASON}", 2)
        slack.submit_view(BOB, DENY_CALLBACK, {DENY_REASON_INPUT: {DENY_REASON_INPUT: DENY_REASON}})
        self.expect(lambda: self.request(did).state == State.DENIED, "the request to be denied")
        self.thread(did)

        rid2 = self.ask(BREAK_GLASS, "8. Self-service break-glass: granted at once, ends by itself, reviewed")
        self.expect(lambda: self.request(rid2).state == State.ACTIVE, "the self-service grant to become active")
        expires = self.expect_binding(rid2, "edit")
        self.cluster_state()
        self.access_review(expected=True)
        self.watch_expiry(rid2, expires)
        self.cluster_state()
        self.access_review(expected=False)
        self.write_review(BOB, rid2)
        self.thread(rid2)

        self.show.section("9. What each person got by direct message")
        for person in (ALICE, BOB, CAROL):
            self.show.line(f"{NAMES[person]}:", 2)
            for message in self.stack.slack.dm(person):
                self.message(f"{_clock(message.ts)}  ", self.stack.slack.render_text(message).splitlines(), 4)

        self.show.section("10. Bob's Home tab in the breakglass app")
        slack.open_home(BOB)
        home = self.expect(lambda: self.stack.slack.home_view(BOB), "Bob's Home tab")
        self.show.slack(self.stack.slack.render_text(home), 2)

        self.show.section("11. The audit log")
        verdict = self.audit.verify()
        if not verdict.ok:
            raise DemoFailed(f"the audit log's hash chain is broken at entry {verdict.bad_seq}: {verdict.problem}")
        for request_id in (rid, xid, did, rid2):
            events = ", ".join(str(e.event) for e in self.audit.for_request(request_id))
            self.show.line(f"{request_id}: {events}", 2)
        self.show.line(
            f"{verdict.checked} entries, each carrying a keyed hash of the one before: the chain is intact. "
            "Alice's refused self-approval is in the log, though never in the channel.",
            2,
        )
        first = self.audit.for_request(rid)[0]
        self.show.line(f"breakglass audit export --request {rid} prints a JSON line per entry; the first:", 2)
        self.show.line(json.dumps(first.to_dict(), indent=2, ensure_ascii=False), 4)

        self.step_up()
        self.automatic()

    def automatic(self) -> None:
        """13: an on-call engineer's request approved by a rule, with PagerDuty's word as evidence."""
        rid = self.ask(ON_CALL, "13. An automatic approval: Alice is primary on call for Payments (PagerDuty)")
        self.expect(lambda: self.request(rid).state == State.ACTIVE, "the automatically approved grant")
        approved = self.expect(lambda: self.audit_event(rid, Event.APPROVED, "system"), "the approved entry")
        if not approved.details.get("automatic"):
            raise DemoFailed(f"{rid} was approved, but not by its rule: {approved.details}")
        self.expect_binding(rid, "edit")
        self.show.line(
            "Nobody clicked: the web process asked PagerDuty who is on call (GET /oncalls), the role's rule "
            "primary-on-call held, and the worker made the binding. Bob and Carol were told by DM.",
            2,
        )
        self.cluster_state()
        self.thread(rid)
        self.show.line("The audit log's approved entry (actor system), with the evidence as PagerDuty gave it:", 2)
        self.show.line(json.dumps(approved.details, indent=2, ensure_ascii=False), 4)

    def step_up(self) -> None:
        """12: someone known only through a Slack user group, and an action that needs a fresh
        multi-factor login at the identity provider."""
        self.show.section("12. Step-up MFA: Erin, known only through a Slack user group, asks for debug")
        self.show.line(
            "Erin is in the payments-devs user group (S0PAYDEVS), not under the roster's people; her "
            "confirmed Slack email is her kube_user. Requests for debug need a fresh multi-factor login.",
            2,
        )
        self.show.line(f"Erin types in #incidents: /breakglass {STEP_UP}", 2)
        before = set(self.store.ids())
        seen = self._seen_ephemerals.get(ERIN, 0)
        self.sender.slash_command(ERIN, STEP_UP, channel_id=INCIDENT_CHANNEL)
        self.ephemerals(ERIN, answer_to="/breakglass")
        answer = self.stack.slack.ephemerals(user_id=ERIN)[seen]
        url = next(
            (e["url"] for b in answer.blocks if b.get("type") == "actions" for e in b["elements"] if e.get("url")),
            None,
        )
        if url is None or set(self.store.ids()) != before:
            raise DemoFailed("Erin's request was not held for verification")
        self.show.line("Nothing is posted yet. Erin presses the button; her browser goes to breakglass, then", 2)
        self.show.line("to the stand-in IdP (which signs her in with a one-time code), and back:", 2)
        started = time.monotonic()
        page = requests.get(url, timeout=STEP_TIMEOUT)
        rid: RequestId = self.expect(lambda: next(iter(set(self.store.ids()) - before), None), "the request")
        took = time.monotonic() - started
        if page.status_code != 200:
            raise DemoFailed(f"the verification page answered {page.status_code}: {page.text[:200]}")
        said = re.search(r"<p>(.*?)</p>", page.text)
        self.show.line(f"The browser shows: {said.group(1) if said else page.text[:200]}  ({took * 1000:.0f} ms)", 4)
        verified = self.expect(lambda: self.audit_event(rid, Event.IDENTITY_VERIFIED, ERIN), "identity_verified")
        shown = {k: verified.details[k] for k in ("issuer", "subject", "amr", "auth_time")}
        self.show.line(f"The audit log's identity_verified entry: {json.dumps(shown)}", 2)
        request = self.expect(lambda: self.posted(rid), "the request's message in #incidents")
        root = self.stack.slack.message(INCIDENT_CHANNEL, request.message_ts or "")
        if root is not None:
            card = self.stack.slack.render_text(root)
            self._cards[rid] = card.splitlines()
            self.show.line("Posted in #incidents:", 2)
            self.show.slack(card, 4)
        self.thread(rid)

    # --- steps -------------------------------------------------------------------------------

    def start_processes(self) -> None:
        stack = self.stack
        self.show.section("The stand-ins and the real processes")
        redis_where = urlsplit(stack.redis_url or "")
        if self.own_redis:
            self.show.line(
                f"Redis          redis://{redis_where.hostname}:{redis_where.port}/0  (a private redis-server)", 2
            )
        else:
            self.show.line(
                f"Redis          {redis_where.hostname}:{redis_where.port}  (yours; keys under '{stack.key_prefix}:', removed at the end)",
                2,
            )
        self.show.line(f"Slack Web API  {stack.slack.api_url}  (a double of one workspace)", 2)
        for name, server in stack.clusters.items():
            self.show.line(f"Kubernetes     {server.url}  (a double of cluster '{name}')", 2)
        self.show.line(f"Files          {stack.workdir}  (roster.yaml, kubeconfig, process logs)", 2)
        try:
            with self.guard.shielded():
                web = stack.start_web()
            with self.guard.shielded():
                worker = stack.start_worker("worker")
            self.wait_for_worker()
        except (RuntimeError, TimeoutError) as exc:
            raise DemoFailed(f"the breakglass processes did not start: {exc}") from None
        self.show.line(f"breakglass web     pid {web.popen.pid}, http://127.0.0.1:{web.port}  (gunicorn)", 2)
        self.show.line(
            f"breakglass worker  pid {worker.popen.pid}  (RQ worker, scheduler, sweep every {SWEEP_INTERVAL})", 2
        )
        self.sender = stack.sender(web)

    def wait_for_worker(self) -> None:
        from rq import Queue, Worker

        connection = redis.Redis.from_url(self.stack.redis_url or "")
        ours = Queue(f"{self.stack.key_prefix}-cluster", connection=connection)
        self.expect(lambda: Worker.all(connection=connection, queue=ours), "the worker to listen on its queues", 30)

    def ask(self, text: str, title: str, who: str = ALICE) -> RequestId:
        self.show.section(title)
        self.show.line(f"{NAMES[who]} types in #incidents: /breakglass {text}", 2)
        before = set(self.store.ids())
        reply = self.sender.slash_command(who, text, channel_id=INCIDENT_CHANNEL)
        if reply.status != 200:
            raise DemoFailed(f"the app answered the slash command with HTTP {reply.status}")
        rid: RequestId = self.expect(
            lambda: next(iter(set(self.store.ids()) - before), None), "the request to be stored"
        )
        self.ephemerals(who, answer_to="/breakglass")
        request = self.expect(lambda: self.posted(rid), "the request's message in #incidents")
        root = self.stack.slack.message(INCIDENT_CHANNEL, request.message_ts or "")
        if root is not None:
            card = self.stack.slack.render_text(root)
            self._cards[rid] = card.splitlines()
            self.show.line("Posted in #incidents:", 2)
            self.show.slack(card, 4)
        return rid

    def watch_expiry(self, rid: RequestId, expires: datetime) -> None:
        self.show.line(f"Waiting for the expiry at {expires:%H:%M:%S} UTC; nobody does anything…", 2)
        deadline = expires + EXPIRY_GRACE
        with_binding = True
        while with_binding:
            with_binding = bool(self.binding(rid))
            if with_binding and datetime.now(UTC) > deadline:
                raise DemoFailed(f"the binding of {rid} is still there {EXPIRY_GRACE.seconds}s after its expiry")
            if with_binding:
                self.check_processes()
                time.sleep(0.1)
        gone = datetime.now(UTC)
        # The expiry on the binding is whole seconds (as Kubernetes writes times): allow that much early.
        if gone < expires - timedelta(seconds=1):
            raise DemoFailed(f"the binding of {rid} was removed at {gone:%H:%M:%S.%f}, before its expiry")
        self.expect(lambda: self.request(rid).state == State.EXPIRED, "the request to be marked expired")
        self.expect(lambda: self.removal_recorded(rid), "the binding's removal in the audit log")
        late = max((gone - expires).total_seconds(), 0.0)
        self.show.line(f"The binding was gone at {gone:%H:%M:%S.%f}"[:-5] + f" UTC, {late:.1f}s after its expiry.", 2)

    def expect_binding(self, rid: RequestId, cluster_role: str) -> datetime:
        found = self.expect(lambda: self.binding(rid), f"the binding {binding_name(rid)} in {CLUSTER}")
        subjects = [(s.get("kind"), s.get("name")) for s in found.get("subjects") or []]
        role = (found.get("roleRef") or {}).get("name")
        if subjects != [("User", DELETE_PODS.user)] or role != cluster_role:
            raise DemoFailed(
                f"{binding_name(rid)} binds {subjects} to {role}, not User {DELETE_PODS.user} to {cluster_role}"
            )
        annotations = found["metadata"].get("annotations") or {}
        try:
            return parse_instant(annotations[EXPIRES_AT_ANNOTATION])
        except (KeyError, ValueError):
            raise DemoFailed(f"{binding_name(rid)} carries no readable expiry annotation") from None

    # --- what is shown -----------------------------------------------------------------------

    def cluster_state(self) -> None:
        bindings = self.stack.bindings(CLUSTER)
        if not bindings:
            self.show.line(f"In cluster {CLUSTER}: no breakglass bindings.", 2)
            return
        self.show.line(f"In cluster {CLUSTER}:", 2)
        now = datetime.now(UTC)
        for found in bindings:
            meta = found["metadata"]
            where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            subjects = ", ".join(f"{s['kind']} {s['name']}" for s in found.get("subjects") or [])
            expires = (meta.get("annotations") or {}).get(EXPIRES_AT_ANNOTATION, "?")
            try:
                left = f" (in {_span(parse_instant(expires) - now)})"
            except ValueError:
                left = ""
            self.show.line(f"{found['kind']} {where}", 4)
            self.show.line(f"role: ClusterRole {found['roleRef']['name']}   subject: {subjects}", 6)
            self.show.line(f"expires: {expires}{left}   request: {meta['labels'].get('breakglass.dev/request-id')}", 6)

    def access_review(self, expected: bool) -> None:
        try:
            allowed = self.kube.review_access(CLUSTER, DELETE_PODS)
        except BreakglassError as exc:
            raise DemoFailed(f"the SubjectAccessReview failed: {exc}") from None
        self.show.line(
            f"SubjectAccessReview: may {DELETE_PODS.user} delete pods in {NAMESPACE}? "
            + ("yes, allowed" if allowed else "no, denied"),
            2,
        )
        if allowed != expected:
            raise DemoFailed(
                f"the API server says {DELETE_PODS.user} {'may' if allowed else 'may not'} delete pods now"
            )

    def ephemerals(self, user: str, answer_to: str | None = None) -> None:
        """What ``user`` was shown that only they can see since the last look; with ``answer_to``, wait
        for at least one such message (answers may come later, through the response URL)."""
        seen = self._seen_ephemerals.get(user, 0)
        if answer_to is not None:
            self.expect(
                lambda: len(self.stack.slack.ephemerals(user_id=user)) > seen, f"{NAMES[user]}'s answer to {answer_to}"
            )
        shown = self.stack.slack.ephemerals(user_id=user)
        for ephemeral in shown[seen:]:
            self.show.line(f"{NAMES.get(user, user)} sees (only visible to them):", 2)
            self.show.slack(self.stack.slack.render_text(ephemeral), 4)
        self._seen_ephemerals[user] = len(shown)

    def thread(self, rid: RequestId) -> None:
        """The thread as Slack shows it: what changed on the request message since it was shown, then
        each reply with its time, once."""
        request = self.expect(lambda: self.published(rid), "the thread to show every step")
        ts = request.message_ts or ""
        self.show.line("")
        self.show.line(f"The incident thread of {rid}, as Slack shows it:", 2)
        root = self.stack.slack.message(INCIDENT_CHANNEL, ts)
        if root is not None:
            changed = _changed_lines(self._cards.get(rid, []), self.stack.slack.render_text(root).splitlines())
            if changed:
                self.show.line("The request message, updated in place, now says:", 4)
                self.show.slack("\n".join(changed), 6)
        for reply in self.stack.slack.thread(INCIDENT_CHANNEL, ts):
            body = [line for line in self.stack.slack.render_text(reply).splitlines() if not _REPLY_FOOTER.match(line)]
            self.message(f"↳ {_clock(reply.ts)}  ", body, 4)

    def message(self, prefix: str, lines: list[str], indent: int) -> None:
        """One Slack message after ``prefix`` (its time), its further lines set under its first."""
        self.show.slack(prefix + (lines[0] if lines else ""), indent)
        if lines[1:]:
            self.show.slack("\n".join(lines[1:]), indent + len(prefix))

    def write_review(self, approver: str, rid: RequestId) -> None:
        """``approver`` presses Write review in their DM and saves the form that opens."""
        dm_channel = self.stack.slack.dm_channel_id(approver)

        def review_dm() -> Any:
            return next(
                (m for m in reversed(self.stack.slack.dm(approver)) if _has_button(m.blocks, REVIEW_ACTION, rid)),
                None,
            )

        message = self.expect(review_dm, f"{NAMES[approver]}'s DM asking for a review of {rid}")
        opened = len(self.stack.slack.views_opened(user_id=approver))
        self.sender.click(approver, REVIEW_ACTION, rid, message.ts, dm_channel)
        self.expect(
            lambda: len(self.stack.slack.views_opened(user_id=approver)) > opened or None,
            f"{NAMES[approver]}'s review form",
        )
        self.show.line(f"{NAMES[approver]} presses Write review in his DM and saves: {REVIEW}", 2)
        self.sender.submit_view(approver, REVIEW_CALLBACK, {"review": {"review": REVIEW}})
        self.expect(lambda: not self.request(rid).review_owed, "the review to close the break-glass use")

    # --- reading state -----------------------------------------------------------------------

    def request(self, rid: RequestId) -> AccessRequest:
        found = self.store.get(rid)
        if found is None:
            raise DemoFailed(f"{rid} is not in the store")
        return found

    def posted(self, rid: RequestId) -> AccessRequest | None:
        found = self.request(rid)
        return found if found.message_ts else None

    def published(self, rid: RequestId) -> AccessRequest | None:
        """The request, once every audit entry of it is in Slack (the publisher's cursor has reached it)."""
        entries = self.audit.for_request(rid)
        cursor = RedisProgress(self.redis, self.stack.key_prefix).done(rid)
        return self.posted(rid) if entries and cursor >= entries[-1].seq else None

    def audit_event(self, rid: RequestId, event: Event, actor: str) -> AuditEntry | None:
        return next((e for e in self.audit.for_request(rid) if e.event == event and e.actor == actor), None)

    def removal_recorded(self, rid: RequestId) -> bool:
        return any(e.event in (Event.BINDING_DELETED, Event.SWEEP_DELETED) for e in self.audit.for_request(rid))

    def binding(self, rid: RequestId) -> dict[str, Any] | None:
        name = binding_name(rid)
        return next((b for b in self.stack.bindings(CLUSTER) if b["metadata"]["name"] == name), None)

    def check_processes(self) -> None:
        for process in self.stack.processes:
            if not process.alive():
                raise DemoFailed(f"breakglass {process.name} exited with status {process.popen.returncode}")

    def expect(self, check: Callable[[], T | None], what: str, timeout: float = STEP_TIMEOUT) -> T:
        def checked() -> T | None:
            self.check_processes()
            return check()

        try:
            result: T = wait_until(checked, timeout, what)
        except TimeoutError:
            raise DemoFailed(f"waited {timeout:.0f}s for {what}") from None
        return result

    def close(self) -> None:
        self.kube.close()
        self.redis.close()


def run_demo(out: TextIO, redis_url: str | None = None) -> int:
    """Run the demo, printing to ``out``; 0 when every step happened as expected."""
    show = Printer(out)
    if redis_url is None and shutil.which("redis-server") is None:
        show.one_line(
            "breakglass demo needs redis-server: install it (apt-get install redis-server, brew install redis) "
            "or pass --redis-url of a Redis it may use"
        )
        return EXIT_NO_REDIS
    if redis_url is not None:
        unreachable = _redis_unreachable(redis_url)
        if unreachable:
            show.one_line(f"breakglass demo: {unreachable}; start it, or leave out --redis-url to use a private one")
            return EXIT_NO_REDIS
    started = time.monotonic()
    show.line("breakglass demo: the real web app, worker and jobs, against local stand-ins of Slack, Kubernetes")
    show.line("and Redis. No Slack workspace, no cluster; everything started here is removed at the end.")
    # A Redis that was given may hold other data: the demo's keys get a prefix of their own.
    prefix = "breakglass" if redis_url is None else f"breakglass-demo-{secrets.token_hex(4)}"
    workdir = Path(tempfile.mkdtemp(prefix="breakglass-stack-"))
    signing_secret, audit_webhook_token = random_secrets()
    provider = OidcProviderDouble().start()
    pagerduty = on_call_pagerduty()
    stack = LocalStack(
        workdir,
        redis_url=redis_url,
        key_prefix=prefix,
        sweep_interval=SWEEP_INTERVAL,
        signing_secret=signing_secret,
        audit_webhook_token=audit_webhook_token,
        roster=demo_roster(provider.issuer),
        extra_env={"BREAKGLASS_OIDC_CLIENT_SECRET": CLIENT_SECRET, **pagerduty_env(pagerduty)},
    )
    code = 0
    failure: str | None = None
    with SignalGuard() as guard:
        walk: Walk | None = None
        try:
            with guard.shielded():
                stack.start()
                stack.slack.add_user(ERIN, name="erin", tz="Europe/Amsterdam", email="erin@example.com")
                stack.slack.set_usergroup(PAYMENTS_DEVS, [ALICE, DAVE, GUEST, ERIN])
            walk = Walk(stack, show, guard, own_redis=redis_url is None)
            walk.run()
        except DemoFailed as exc:
            code, failure = EXIT_FAILED, str(exc)
            _show_logs(show, stack)
        except (RuntimeError, TimeoutError, OSError, redis.RedisError) as exc:
            code, failure = EXIT_FAILED, f"the stand-ins did not start: {exc}"
        except Stopped as exc:
            code, failure = 128 + exc.signum, f"stopped by {exc}"
        finally:
            with guard.shielded(then_stop=False):
                if walk is not None:
                    walk.close()
                stack.stop()
                provider.stop()
                pagerduty.stop()
                if redis_url is not None:
                    _forget_keys(stack, prefix)
                shutil.rmtree(workdir, ignore_errors=True)
    show.section("Done")
    elapsed = time.monotonic() - started
    if failure is None:
        show.line(f"✓ every step happened as expected, in {elapsed:.1f}s.", 2)
    else:
        show.line(f"✗ {failure}", 2)
    show.line(f"Stopped the web and worker processes and the stand-ins; removed {workdir}.", 2)
    return code


def _redis_unreachable(url: str) -> str | None:
    """Why the Redis at ``url`` cannot be used, in a few words, or None. Asked before anything starts,
    so an unreachable one is named at once instead of by a web process that timed out waiting on it."""
    shown = url_without_password(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    except ValueError:
        return f"--redis-url {shown} is not a Redis URL"
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"cannot reach Redis at {shown} ({type(exc).__name__})"
    finally:
        client.close()
    return None


def _show_logs(show: Printer, stack: LocalStack, lines: int = 30) -> None:
    for process in stack.processes:
        with contextlib.suppress(OSError):
            tail = process.output().splitlines()[-lines:]
            show.section(f"The last {len(tail)} lines of breakglass {process.name}'s log")
            show.line("\n".join(tail), 2)


def _forget_keys(stack: LocalStack, prefix: str) -> None:
    """Remove what the demo wrote to a Redis it was given, once its processes are stopped: its own keys,
    its RQ queues, jobs (their ids carry the request ids) and worker records; nothing else."""
    with contextlib.suppress(redis.RedisError):
        client = stack.redis_client()
        audit = AuditLog(client, lambda: datetime.now(UTC), prefix=prefix, key=stack.chain_key())
        request_ids = RequestStore(client, audit, prefix=prefix).ids()
        for pattern in (f"{prefix}:*", f"rq:*{prefix}-*", *(f"rq:*{rid}*" for rid in request_ids)):
            for key in client.scan_iter(match=pattern, count=500):
                client.delete(key)
        for key in client.scan_iter(match="rq:worker:*", count=500):
            if str(client.hget(key, "queues") or "").startswith(f"{prefix}-"):
                client.delete(key, f"{key}:executions")
                client.srem("rq:workers", key)
        client.srem("rq:queues", *(f"rq:queue:{prefix}-{kind}" for kind in ("cluster", "slack")))
        client.close()


_FIELD_LABEL = re.compile(r"^\*[^*]+\*$")


def _changed_lines(before: list[str], now: list[str]) -> list[str]:
    """The lines of ``now`` not in ``before``; a field's new value is named by its label."""
    shown = set(before)
    changed = []
    for i, line in enumerate(now):
        if line in shown:
            continue
        label = now[i - 1] if i and _FIELD_LABEL.match(now[i - 1]) else None
        changed.append(f"{label}: {line}" if label else line)
    return changed


def _has_button(blocks: Any, action_id: str, value: str) -> bool:
    for block in blocks or []:
        for element in block.get("elements") or [block.get("accessory") or {}]:
            if isinstance(element, dict) and element.get("action_id") == action_id and element.get("value") == value:
                return True
    return False


def _clock(ts: str) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M:%S")


def _span(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n) or "0s"
