"""Prometheus metrics kept in Redis, so any web replica's ``/metrics`` shows the whole installation.

Exposed through ``prometheus_client``: a custom collector reads the counts from Redis at each
scrape, and the library writes the text or OpenMetrics format (as the scraper's Accept asks) and
adds the standard process metrics of the process that answers.

Web and worker processes come and go (and gunicorn forks several of each); counting in Redis gives
one set of numbers for all of them without a multiprocess directory. Workflow metrics are derived
from audit entries as they are written (one source of truth); API errors are counted by the adapters
through ``count_error``. Counting never raises: a metrics hiccup must not fail a revoke.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from bot.domain.audit import AuditEntry, Event
from bot.store.keys import Keys

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
HISTOGRAMS = {
    "breakglass_approval_latency_seconds": "From request to its last needed approval.",
    "breakglass_grant_latency_seconds": "From approval to the binding being in place.",
    "breakglass_revoke_lateness_seconds": "From a grant's expiry to its binding's deletion.",
}
COUNTERS = {
    "breakglass_requests_total": "Requests by outcome.",
    "breakglass_refusals_total": "Refused attempts (wrong approver, own request, identity).",
    "breakglass_sweep_corrections_total": "Changes the reconcile sweep made, by kind.",
    "breakglass_api_errors_total": "Slack and Kubernetes API errors callers saw, by system and kind.",
    "breakglass_audit_webhook_refused_batches_total": "Audit webhook batches refused (their events are lost).",
    "breakglass_audit_sink_copied_entries_total": "Audit entries copied to the durable sink (BREAKGLASS_AUDIT_SINK).",
    "breakglass_audit_sink_failures_total": "Rounds copying to the audit sink that failed, by kind (retried).",
}
REFUSED_BATCHES = "breakglass_audit_webhook_refused_batches_total"
_OUTCOMES = {
    Event.REQUESTED: "requested",
    Event.DENIED: "denied",
    Event.CANCELLED: "cancelled",
    Event.TIMED_OUT: "timed_out",
    Event.GRANTED: "granted",
    Event.GRANT_FAILED: "failed",
    Event.EXPIRED: "expired",
    Event.REVOKED: "revoked",
}

# Every change the reconcile sweep makes, by kind. Each is an audit entry the sweep (and only the
# sweep) writes; a grant it adopts is recorded as granted, marked ``found_by_sweep``.
_SWEEP_CORRECTIONS = {
    Event.SWEEP_DELETED: "deleted",
    Event.SWEEP_REVOKED_OVERDUE: "revoked_overdue",
    Event.SWEEP_RESCHEDULED: "revoke_rescheduled",
    Event.SWEEP_GRANT_REQUEUED: "grant_requeued",
    Event.SWEEP_SERVICE_ACCOUNT_DELETED: "service_account_deleted",
    Event.SWEEP_RECOVERED: "recovered",
    Event.TIMED_OUT: "timed_out",  # pending requests are timed out by the sweep alone
}


def _sweep_correction(entry: AuditEntry) -> str | None:
    if entry.event == Event.GRANTED and entry.details.get("found_by_sweep"):
        return "adopted"
    return _SWEEP_CORRECTIONS.get(entry.event)  # type: ignore[call-overload]  # Event is a str


class Metrics:
    def __init__(self, client: redis.Redis, prefix: str = "breakglass") -> None:
        self.redis = client
        self.key = Keys(prefix).metrics
        self.active_key = Keys(prefix).active  # the store's grant schedule, read for the gauge
        self.sink_key = Keys(prefix).audit_sink  # the audit sink's progress (bot.store.audit_sink)

    def inc(self, name: str, labels: str = "", by: float = 1) -> None:
        try:
            self.redis.hincrbyfloat(f"{self.key}:{name}", labels, by)
        except redis.RedisError:
            log.warning("metric %s not counted: Redis unavailable", name)

    def observe(self, name: str, value: float) -> None:
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for bound in LATENCY_BUCKETS:
                    if value <= bound:
                        pipe.hincrby(f"{self.key}:{name}", f"le={bound}", 1)
                pipe.hincrby(f"{self.key}:{name}", "le=+Inf", 1)
                pipe.hincrbyfloat(f"{self.key}:{name}", "sum", value)
                pipe.hincrby(f"{self.key}:{name}", "count", 1)
                pipe.execute()
        except redis.RedisError:
            log.warning("metric %s not observed: Redis unavailable", name)

    def record_entries(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            outcome = _OUTCOMES.get(entry.event)  # type: ignore[call-overload]  # Event is a str
            if outcome and not (entry.event == Event.GRANTED and entry.details.get("extends")):
                self.inc("breakglass_requests_total", f'outcome="{outcome}"')
            if entry.event == Event.REFUSED:
                self.inc("breakglass_refusals_total", f'action="{label_value(entry.details.get("action", "unknown"))}"')
            correction = _sweep_correction(entry)
            if correction:
                self.inc("breakglass_sweep_corrections_total", f'kind="{correction}"')
            for key, histogram in (
                ("waited_seconds", "breakglass_approval_latency_seconds"),
                ("latency_seconds", "breakglass_grant_latency_seconds"),
                ("late_by_seconds", "breakglass_revoke_lateness_seconds"),
            ):
                value = entry.details.get(key)
                if isinstance(value, int | float):
                    self.observe(histogram, float(value))

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type): Prometheus text or OpenMetrics, as the scraper's Accept asks.

        The numbers are the installation's (read from Redis); the standard process and platform
        metrics are this process's. A Redis error propagates: ``/metrics`` answers 503, not a part."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(RedisCollector(self))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        encode, content_type = choose_encoder(accept or "")
        return encode(registry), content_type


class RedisCollector(Collector):
    """The installation's numbers, read from Redis at each scrape (one set for every process)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        r = self.metrics.redis
        for name, help_text in COUNTERS.items():
            names = _LABEL_NAMES[name]
            counter = CounterMetricFamily(name, help_text, labels=names)
            for raw_labels, value in sorted(r.hgetall(f"{self.metrics.key}:{name}").items()):
                labels = _parse_labels(str(raw_labels))
                counter.add_metric([labels.get(n, "") for n in names], float(value))
            yield counter
        for name, help_text in HISTOGRAMS.items():
            data = r.hgetall(f"{self.metrics.key}:{name}")
            buckets = [(floatToGoString(b), float(data.get(f"le={b}", 0))) for b in LATENCY_BUCKETS]
            buckets.append(("+Inf", float(data.get("le=+Inf", 0))))
            yield HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=float(data.get("sum", 0)))
        yield GaugeMetricFamily(
            "breakglass_active_grants", "Grants whose binding is in place now.", value=r.zcard(self.metrics.active_key)
        )
        yield from _sink_gauges(r.hgetall(self.metrics.sink_key))


def _sink_gauges(progress: Mapping[Any, Any]) -> Iterator[Metric]:
    """The audit sink's state, from the record the copying worker keeps (nothing when no sink is set)."""
    if not progress:
        return
    yield GaugeMetricFamily(
        "breakglass_audit_sink_behind_entries",
        "Audit entries in Redis not yet in the sink, when the copying worker last looked.",
        value=float(progress.get("behind") or 0),
    )
    yield GaugeMetricFamily(
        "breakglass_audit_sink_failing",
        "1 while copying to the audit sink fails (the entries wait in Redis), else 0.",
        value=1.0 if progress.get("failing_since") else 0.0,
    )
    copied_at = progress.get("copied_at")
    if copied_at:
        yield GaugeMetricFamily(
            "breakglass_audit_sink_last_copy_timestamp_seconds",
            "When the sink last held every entry the copying worker had seen (Unix time).",
            value=datetime.fromisoformat(copied_at).timestamp(),
        )


_LABELS = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_LABEL_NAMES = {
    "breakglass_requests_total": ["outcome"],
    "breakglass_refusals_total": ["action"],
    "breakglass_sweep_corrections_total": ["kind"],
    "breakglass_api_errors_total": ["system", "kind"],
    REFUSED_BATCHES: ["cluster", "status"],
    "breakglass_audit_sink_copied_entries_total": [],
    "breakglass_audit_sink_failures_total": ["kind"],
}


def _parse_labels(raw: str) -> dict[str, str]:
    """``outcome="granted"`` as stored by ``inc`` back into names and (unescaped) values."""
    return {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABELS.findall(raw)}


def label_value(value: object) -> str:
    """A Prometheus label value: escaped, one line, at most 64 characters."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")[:64]


# --- errors counted by adapters, wherever they run -----------------------------------------------

_installed: Metrics | None = None
_install_lock = threading.Lock()


def install(metrics: Metrics | None) -> None:
    """Make ``metrics`` the store ``count_error`` counts into (None: count nothing, as before any install)."""
    global _installed
    with _install_lock:
        _installed = metrics


def count_error(system: str, kind: str) -> None:
    """Count an API error (``system``: slack or kubernetes; ``kind``: e.g. ratelimited, NotFound, timeout).

    The adapters' translators call this for every error they turn into ours. An answer the adapter
    expects and absorbs before translating is not an error and is not counted: a 404 when deleting or
    reading a binding that is already gone (the revoke succeeds), an AlreadyExists that is adopted,
    the ``hash_conflict`` a guarded ``views.update`` asks to hear (``translated(expected=…)``).
    Only what reaches a caller as a failure counts, so the counter tracks trouble, not routine. The
    kind is Slack's error code (``ratelimited``, ``channel_not_found``) or the Kubernetes Status reason
    (``NotFound``, ``Conflict``, ``ServiceUnavailable``), else its class (``5xx``), ``timeout`` or
    ``unreachable``.
    """
    metrics = _installed
    if metrics is not None:
        metrics.inc("breakglass_api_errors_total", f'system="{label_value(system)}",kind="{label_value(kind)}"')
