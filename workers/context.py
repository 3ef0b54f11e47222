"""The worker process's parts, built once per process on first use (jobs take ids, not objects)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.keys import Purpose
from bot.domain.roster import Roster
from bot.integrations.s3_audit_sink import sink_from_settings
from bot.ports import AuditSink, ClusterGateway, Notifier
from bot.services.audit_sink import AuditShipper
from bot.services.grants import GrantService
from bot.services.kube_actions import ActionRecorder
from bot.services.publishing import Publisher
from bot.services.reconcile import Reconciler
from bot.settings import Settings, load_settings
from bot.wiring import Core, build_core
from workers.known_clusters import KnownClusters, remembering
from workers.kube import ClusterTarget, KubeClusters


@dataclass
class WorkerContext:
    core: Core
    clusters: ClusterGateway
    notifier: Notifier
    grants: GrantService
    publisher: Publisher
    reconciler: Reconciler
    actions: ActionRecorder
    shipper: AuditShipper | None = None  # with BREAKGLASS_AUDIT_SINK: copies the audit log (workers.audit_sink)


def cluster_targets(roster: Roster) -> dict[str, ClusterTarget]:
    return {name: ClusterTarget(c.context, c.credentials) for name, c in roster.clusters.items()}


def kube_clusters(settings: Settings, roster: Callable[[], Roster], known: KnownClusters | None = None) -> KubeClusters:
    """The adapter, following the roster as it is reloaded: a cluster added mid-run is reachable at
    once, and one removed is still swept until its managed bindings are gone, also across a restart
    when ``known`` remembers it."""
    follow: Callable[[], dict[str, ClusterTarget]] = lambda: cluster_targets(roster())  # noqa: E731
    targets = cluster_targets(roster())
    if known is not None:
        follow = remembering(roster, known, cluster_targets)
        targets = {**known.recall(), **follow()}
    return KubeClusters(
        targets,
        kubeconfig=settings.kubeconfig,
        token_namespace=settings.token_namespace,
        request_timeout=kube_request_timeout(settings),
        follow=follow,
        warrant_key=settings.keys().derive(Purpose.WARRANT),
        installation=settings.installation,
    )


def kube_request_timeout(settings: Settings) -> tuple[float, float]:
    """(connect, read) seconds: BREAKGLASS_KUBE_TIMEOUT for the answer, at most 3 s to connect."""
    read = max(settings.kube_timeout.total_seconds(), 0.1)
    return (min(3.0, read), read)


def build_worker_context(
    settings: Settings,
    core: Core | None = None,
    clusters: ClusterGateway | None = None,
    notifier: Notifier | None = None,
    sink: AuditSink | None = None,
) -> WorkerContext:
    core = core or build_core(settings)
    known = KnownClusters(core.redis, settings.key_prefix)
    clusters = clusters or kube_clusters(settings, core.roster, known)
    if notifier is None:
        from bot.slack.notifier import SlackNotifier  # Slack stays out of processes that are given one

        notifier = SlackNotifier.from_settings(settings, core.roster, core.now)
    grants = GrantService(core.store, core.roster, clusters, core.jobs, notifier, core.now)
    publisher = Publisher(core.store, notifier)
    # A grant still "approved" after two sweeps lost its job (a killed worker): queue it again.
    grace = max(settings.sweep_interval * 2, timedelta(seconds=10))
    reconciler = Reconciler(
        core.store, core.roster, clusters, core.jobs, grants, core.access, core.now, grace, on_cleared=known.forget
    )
    actions = ActionRecorder(core.store, core.roster, core.now, settings.token_namespace, core.jobs)
    sink = sink or sink_from_settings(settings)
    shipper = None
    if sink is not None:
        key = settings.keys().derive(Purpose.AUDIT_CHAIN)
        shipper = AuditShipper(core.audit, sink, key, core.now, settings.audit_sink_retention)
    return WorkerContext(core, clusters, notifier, grants, publisher, reconciler, actions, shipper)


_lock = threading.Lock()
_context: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    """Use ``context`` for this process's jobs (the worker main, ``serve`` and the demo call this)."""
    global _context
    with _lock:
        _context = context


def current() -> WorkerContext:
    global _context
    with _lock:
        if _context is None:
            _context = build_worker_context(load_settings())
        return _context
