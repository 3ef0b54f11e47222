"""What was done with the access: Kubernetes audit events matched to the grants they happened under.

The kube-apiserver's audit webhook posts ``audit.k8s.io/v1`` EventLists. An event belongs to a grant
when its user is the grant's subject (the person's ``kube_user``, or the grant's own ServiceAccount)
on that cluster, inside the grant's window and scope. Every action is recorded once, whatever the
API server retries (``auditID``); storage per grant is bounded (``bot.store.kube_actions``).

A grant's binding exists a moment before its grant is committed as active in Redis; events of that
moment arrive while the request is still ``approved``. They are held briefly and matched by a later
batch once the grant is active; and since the binding exists before ``granted_at`` is taken, a grant's
window is counted from its approval. The worker's clock also matches held events (``tick``), so they
are recorded without waiting for another batch, and ends idle grants on a silent cluster. Long-running
requests (exec, attach, port-forward, watch) are tracked from ``ResponseStarted``: one that never
completes is listed at the grant's end as possibly still open.
The thread hears of changes as a digest, at most one reply every ``DIGEST_EVERY``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.domain import kube_actions as kinds
from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.durations import format_duration
from bot.domain.end_reasons import EndCode, EndReason
from bot.domain.grants import SYSTEM_NAMESPACE, binding_name, format_instant, parse_instant
from bot.domain.ids import RequestId
from bot.domain.lifecycle import AccessRequest, State, transition
from bot.domain.roster import Roster
from bot.ports import BreakglassError, ClusterGateway, JobQueue
from bot.store import Change, Draft, RequestStore
from bot.store.kube_actions import EARLY_SECONDS

DIGEST_EVERY = timedelta(minutes=5)
# How far the API server's timestamps may be behind ours (and whole-second stamps round down).
CLOCK_SKEW = timedelta(seconds=5)


class InvalidEventList(ValueError):
    pass


class ActionRecorder:
    def __init__(
        self,
        store: RequestStore,
        roster: Callable[[], Roster],
        now: Callable[[], datetime],
        token_namespace: str = SYSTEM_NAMESPACE,
        jobs: JobQueue | None = None,
    ) -> None:
        self.store = store
        self.ledger = store.actions
        self.roster = roster
        self.now = now
        self.token_namespace = token_namespace
        self.jobs = jobs

    def record(self, cluster: str, body: Mapping[str, Any]) -> int:
        """Record the events of one webhook call (and those held from earlier calls that can now be
        matched); returns how many new actions were recorded."""
        if body.get("kind") != "EventList" or not str(body.get("apiVersion", "")).startswith("audit.k8s.io/"):
            raise InvalidEventList("expected an audit.k8s.io/v1 EventList")
        items = body.get("items")
        if not isinstance(items, list):
            raise InvalidEventList("the EventList has no items list")
        roster = self.roster()
        now = self.now()
        events = self.ledger.take_held(cluster)
        events += [item for item in items if isinstance(item, dict)]
        recorded = self._match(roster, cluster, events, now)
        self.ledger.heard(cluster, now)
        self._end_idle(roster, cluster, now)
        return recorded

    def tick(self) -> int:
        """What must happen without a new batch (the worker's clock calls this every second or so):
        held events whose grant is now committed are recorded, and grants idle for their role's
        ``idle_timeout`` are ended, even when the cluster has nothing more to send. Returns how many
        held actions were recorded."""
        roster = self.roster()
        now = self.now()
        recorded = 0
        for cluster in sorted(roster.clusters):
            held = self.ledger.take_held(cluster)
            if held:
                recorded += self._match(roster, cluster, held, now)
            self._end_idle(roster, cluster, now)
        return recorded

    def _match(self, roster: Roster, cluster: str, events: list[dict[str, Any]], now: datetime) -> int:
        """Record ``events`` against the grants they happened under; hold again those that came before
        their grant was committed (briefly). Returns how many new actions were recorded."""
        granted = [g for g in self.store.active() + self._recently_ended() if g.cluster == cluster]
        waiting = [r for r in self.store.approved() if r.cluster == cluster and not r.extends]
        by_subject: dict[str, list[AccessRequest]] = {}
        for grant in granted:
            subject = self._subject(roster, grant)
            if subject is not None:
                by_subject.setdefault(subject, []).append(grant)
        early_subjects = {s for r in waiting if (s := self._subject(roster, r)) is not None}

        matched: dict[str, list[dict[str, Any]]] = {}
        completed: dict[str, list[str]] = {}
        hold: list[dict[str, Any]] = []
        for event in events:
            stage = event.get("stage")
            if stage != kinds.STARTED and stage not in kinds.COMPLETE:
                continue
            at = _at(event)
            user = (event.get("user") or {}).get("username")
            if at is None or not isinstance(user, str):
                continue
            owner = _grant_for(by_subject.get(user, []), event, at)
            if owner is None:
                if user in early_subjects and now - at <= timedelta(seconds=EARLY_SECONDS):
                    hold.append(event)
                continue
            audit_id = str(event.get("auditID") or "")
            if stage == kinds.STARTED:
                if not kinds.is_session(event):
                    continue  # its ResponseComplete follows at once and is the one recorded
                if audit_id:
                    self.ledger.session_started(owner.id, audit_id, kinds.session_of(event))
            elif kinds.is_session(event) and audit_id:
                completed.setdefault(owner.id, []).append(audit_id)
            matched.setdefault(owner.id, []).append(kinds.action_of(event))
        self.ledger.hold(cluster, hold)
        recorded = 0
        for request_id, actions in matched.items():
            recorded += self.ledger.record(request_id, cluster, actions).kept
            self.ledger.sessions_completed(request_id, completed.get(request_id, []))
            self._digest(request_id, cluster)
        return recorded

    def _end_idle(self, roster: Roster, cluster: str, now: datetime) -> None:
        """End the cluster's grants whose holder has done nothing for their role's ``idle_timeout``.

        Only on a cluster that sends audit events, and only for a grant it has been heard from since
        the grant began (the audit policy logs the bot's own binding create, so a working webhook is
        heard at once): there, silence means the holder is idle. A cluster whose webhook never
        delivered during the grant says nothing about the holder, and the grant runs its course.
        Idleness counts from the latest of the grant, its last recorded action, and the moment the
        cluster began sending without a gap, so a webhook that was down (or newly configured) never
        makes a busy holder look idle when it is heard again.

        Security trade-off: a webhook that stops delivering mid-grant looks like an idle holder, and
        the grant ends early. That fails closed; the holder can ask again, and ``doctor`` shows when
        each cluster was last heard."""
        hearing = self.ledger.hearing(cluster)
        if hearing is None:
            return
        for grant in self.store.active():
            role = roster.roles.get(grant.role)
            if grant.cluster != cluster or role is None or role.idle_timeout is None or grant.granted_at is None:
                continue
            if hearing[1] < _approved_at(grant) - CLOCK_SKEW:
                continue  # not heard from since this grant began: its silence says nothing
            last = max(d for d in (grant.granted_at, self.ledger.last_action_at(grant.id), hearing[0]) if d)
            if now - last >= role.idle_timeout:
                end_idle(self.store, self.jobs, grant, role.idle_timeout, last, now)

    def _digest(self, request_id: str, cluster: str) -> None:
        taken = self.ledger.take_digest(request_id, int(DIGEST_EVERY.total_seconds()))
        if taken is None:
            return
        count, first = taken
        details = {"cluster": cluster, "count": count, "changes": first, "more": max(count - len(first), 0)}
        self.store.audit.append(Draft(Event.ACTIONS_DIGEST, SYSTEM_ACTOR, request_id, details))
        if self.jobs is not None:
            self.jobs.publish(RequestId(request_id))

    def _recently_ended(self) -> list[AccessRequest]:
        # The apiserver batches and may deliver a little after a grant ended.
        return [r for r in self.store.recent(200) if r.state in (State.EXPIRED, State.REVOKED) and r.granted_at]

    def _subject(self, roster: Roster, grant: AccessRequest) -> str | None:
        cluster = roster.clusters.get(grant.cluster)
        if cluster is not None and cluster.credentials == "token":
            return f"system:serviceaccount:{self.token_namespace}:{binding_name(grant.id)}"
        person = roster.people.get(grant.requester)
        return person.kube_user if person else None


def _at(event: Mapping[str, Any]) -> datetime | None:
    stamp = event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
    try:
        return parse_instant(str(stamp))
    except ValueError:
        return None


def _grant_for(grants: list[AccessRequest], event: Mapping[str, Any], at: datetime) -> AccessRequest | None:
    """The grant whose window and scope hold the event. The window opens when the binding is created,
    which is after the last approval and before the grant is committed (``granted_at`` is taken once the
    create has returned), so it is counted from the approval, less the clocks' possible skew."""
    namespace = (event.get("objectRef") or {}).get("namespace")
    for grant in grants:
        if grant.granted_at is None:
            continue
        start = _approved_at(grant) - CLOCK_SKEW
        end = grant.ended_at or grant.expires_at
        if at < start or (end is not None and at > end):
            continue
        if grant.namespace is None or namespace in (None, grant.namespace):
            return grant
    return None


def _approved_at(grant: AccessRequest) -> datetime:
    return grant.approvals[-1].at if grant.approvals else grant.created_at


def end_idle(
    store: RequestStore, jobs: JobQueue | None, grant: AccessRequest, timeout: timedelta, last: datetime, now: datetime
) -> bool:
    """Revoke ``grant`` for idleness (the thread says why); False when it had ended meanwhile."""
    why = EndReason(
        EndCode.IDLE,
        {"idle_timeout": format_duration(timeout), "cluster": grant.cluster, "last_action_at": format_instant(last)},
    )

    def decide(current: AccessRequest | None) -> Change[None]:
        if current is None or current.state is not State.ACTIVE:
            return Change(None)
        return Change(
            transition(current, State.REVOKED, now, note=why.sentence()),
            [Draft(Event.REVOKED, SYSTEM_ACTOR, current.id, why.details())],
        )

    applied = store.apply(grant.id, decide)
    if applied.entries and jobs is not None:
        jobs.revoke(grant.id)
        jobs.publish(grant.id)
    return bool(applied.entries)


def summary_draft(
    store: RequestStore, request_id: str, clusters: ClusterGateway | None = None, cluster: str | None = None
) -> Draft | None:
    """The ``actions_summary`` entry for a grant whose access has just been removed: what was done,
    the sessions started and not completed, and (given the cluster) what the holder created that grants
    access and is still there. None when the cluster told of nothing at all."""
    recorded = [
        action
        for entry in store.audit.for_request(request_id)
        if entry.event == Event.ACTIONS_RECORDED
        for action in entry.details.get("actions") or []
        if isinstance(action, dict)
    ]
    _, dropped = store.actions.counts(request_id)
    sessions = store.actions.open_sessions(request_id)
    if not recorded and not dropped and not sessions:
        return None
    details = kinds.summary(recorded, dropped, sessions)
    if clusters is not None and cluster is not None:
        lingering = still_granting_access(clusters, cluster, kinds.access_granting(recorded))
        if lingering:
            details["still_granting_access"] = lingering
    return Draft(Event.ACTIONS_SUMMARY, SYSTEM_ACTOR, request_id, details)


def still_granting_access(
    clusters: ClusterGateway, cluster: str, created: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Of what the holder created that may grant access, what is still there as the grant ends.
    Bindings are looked up (the bot may read them); a token lives until it expires; Secrets and Pods
    are listed as made, since the bot may not read them (reading Secrets everywhere would make it far
    more powerful than what it guards against): a person checks their type and ServiceAccount."""
    lingering = []
    for item in created:
        if item["resource"] in kinds.BINDINGS and item.get("name"):
            namespace = item.get("namespace") if item["resource"] == "rolebindings" else None
            try:
                if not clusters.binding_exists(cluster, namespace, str(item["name"])):
                    continue
            except BreakglassError:
                item = {**item, "unchecked": True}  # cannot tell: flagged, never dropped
        lingering.append(item)
    return lingering
