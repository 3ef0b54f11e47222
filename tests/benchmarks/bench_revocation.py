"""How fast access appears and how late it disappears, with real processes, real Redis and the doubles.

    .venv/bin/python -m tests.benchmarks.bench_revocation [--grants 100] [--burst 500] [--redis-url URL]

Not collected by pytest (the file name does not start with ``test_``). It starts the local stack
(an embedded ``redis-server`` on a free port unless ``--redis-url`` names one, which is then FLUSHED),
two ``breakglass worker`` processes, and measures:

- approve-to-binding: from the request turning "approved" in Redis to the API double storing its
  RoleBinding, one grant at a time (``--grants`` of them, self-service, five seconds each, after a
  few unmeasured ones that let each worker build its Kubernetes client);
- expiry-to-deletion: from each of those grants' expiry to the API double deleting its binding,
  against the expiry annotation (whole seconds, the contract) and against the exact expiry in Redis
  (RQ schedules on whole seconds and the revoke accepts running up to a second early, so this one
  can be below zero; never below the annotation);
- a burst: ``--burst`` grants made to expire in the same second (granted in this process by the
  product's own GrantService with a clock frozen at the start, so every expiry lands on one instant),
  and the time until the two workers have deleted every one of them; while they are all active, the
  time one reconcile sweep over them takes (the worker's sweep thread pays that every interval).

These machines are noisy, so two baselines are measured in the same run and every number is also
given as a multiple of each: a bare create+delete of one RoleBinding against the double with the
official client, and an RQ no-op job's enqueue-to-finish time on the same workers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubernetes import client, config

from bot.domain.ids import RequestId, SlackUserId
from bot.domain.lifecycle import State
from bot.domain.policy import Ask
from bot.roster_source import RosterFile
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.settings import load_settings
from bot.standins.kube import KubeApiServer
from bot.standins.kube.transport import Reply
from bot.standins.stack import ALICE, LocalStack, local_stack, wait_until
from bot.wiring import Core, build_core
from tests.fakes import RecordingJobs, RecordingNotifier
from workers.context import build_worker_context, kube_clusters

BINDINGS = "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings"
REASON = "INC-4411 revocation benchmark"
# Grants made before measuring: each worker's first job builds its Kubernetes client (about 0.8 s).
WARM_UP = 4


class ApiRecorder:
    """Wraps the double's request handler: the instant each binding was stored (201) and deleted (200)."""

    def __init__(self, server: KubeApiServer) -> None:
        self.created: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self.changed = threading.Condition()
        answer = server.handle

        def handle(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
            reply = answer(method, target, headers, body)
            if reply is not None and target.startswith(BINDINGS):
                at = time.time()
                if method == "POST" and reply.code == 201:
                    self._note(self.created, json.loads(reply.body)["metadata"]["name"], at)
                elif method == "DELETE" and reply.code == 200:
                    self._note(self.deleted, target.split("?")[0].rsplit("/", 1)[-1], at)
            return reply

        server.handle = handle  # type: ignore[method-assign]

    def _note(self, book: dict[str, float], name: str, at: float) -> None:
        with self.changed:
            book.setdefault(name, at)
            self.changed.notify_all()

    def wait_for(self, book: dict[str, float], names: Iterable[str], timeout: float) -> None:
        wanted = set(names)
        with self.changed:
            if not self.changed.wait_for(lambda: wanted <= book.keys(), timeout):
                missing = sorted(wanted - book.keys())
                raise TimeoutError(f"{len(missing)} bindings not seen in {timeout:.0f}s: {missing[:5]}…")


@dataclass(frozen=True)
class Stats:
    """Seconds, nearest-rank percentiles."""

    values: tuple[float, ...]

    def pct(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]

    @property
    def p50(self) -> float:
        return self.pct(50)

    @property
    def p99(self) -> float:
        return self.pct(99)

    @property
    def max(self) -> float:
        return max(self.values)


def binding_of(request_id: str) -> str:
    return f"breakglass-{request_id.lower()}"


# --- baselines -------------------------------------------------------------------------------------


def kube_round_trip(stack: LocalStack, times: int) -> Stats:
    """Create and delete one RoleBinding with the official client, as the adapter would."""
    api = config.new_client_from_config(config_file=str(stack.kubeconfig_path), context="prod", persist_config=False)
    rbac = client.RbacAuthorizationV1Api(api)
    body = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="bench-baseline"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"),
        subjects=[client.RbacV1Subject(kind="User", name="bench@example.com", api_group="rbac.authorization.k8s.io")],
    )
    spent = []
    for _ in range(times + 3):  # the first few warm the connection pool
        start = time.perf_counter()
        rbac.create_namespaced_role_binding("payments", body)
        rbac.delete_namespaced_role_binding("bench-baseline", "payments")
        spent.append(time.perf_counter() - start)
    api.close()
    return Stats(tuple(spent[3:]))


def rq_noop(core: Core, times: int) -> Stats:
    """A no-op job on the grant/revoke queue: enqueue to ended, by RQ's own stamps. ``os.getpid`` is
    not one of breakglass's jobs, so the worker refuses it without running anything: RQ's dequeue and
    bookkeeping alone, which is what a no-op measures."""
    spent = []
    for i in range(times):
        job = core.jobs.cluster.enqueue("os.getpid", job_id=f"bench-noop-{i}", result_ttl=60)
        wait_until(
            lambda job=job: job.get_status(refresh=True) in ("finished", "failed"), 10, "the no-op job", interval=0.002
        )
        done = core.jobs.fetch(job.id)
        assert done.enqueued_at is not None
        assert done.ended_at is not None
        spent.append((done.ended_at - done.enqueued_at).total_seconds())
    return Stats(tuple(spent))


# --- grants one at a time --------------------------------------------------------------------------


def one_at_a_time(core: Core, api: ApiRecorder, count: int, seconds: int) -> tuple[Stats, Stats, Stats]:
    """(approve-to-binding, deletion after the expiry annotation, deletion after the exact expiry)."""
    approved: dict[str, float] = {}
    for i in range(count + WARM_UP):
        request = core.access.submit(
            Ask(SlackUserId(ALICE), "prod", "payments", "emergency", timedelta(seconds=seconds), REASON)
        )
        assert request.state is State.APPROVED  # self-service: approved as it is made
        api.wait_for(api.created, [binding_of(request.id)], timeout=30)
        if i >= WARM_UP:
            approved[request.id] = request.updated_at.timestamp()
    api.wait_for(api.deleted, [binding_of(r) for r in approved], timeout=seconds + 60)

    to_binding, after_annotation, after_exact = [], [], []
    for request_id, at in approved.items():
        name = binding_of(request_id)
        ended = core.store.get(request_id)
        assert ended is not None, request_id
        assert ended.expires_at is not None, request_id
        exact = ended.expires_at.timestamp()
        to_binding.append(api.created[name] - at)
        after_annotation.append(api.deleted[name] - math.floor(exact))
        after_exact.append(api.deleted[name] - exact)
    return Stats(tuple(to_binding)), Stats(tuple(after_annotation)), Stats(tuple(after_exact))


# --- the burst -------------------------------------------------------------------------------------


class _RevokesOnly(RecordingJobs):
    """Setting up the burst: the revoke at expiry is scheduled in RQ for real; the publish and
    reminder jobs of the setup are left out, so the workers start the burst idle."""

    def __init__(self, core: Core) -> None:
        super().__init__()
        self.core = core

    def revoke(self, request_id: RequestId, at: datetime | None = None) -> bool:
        return self.core.jobs.revoke(request_id, at)


@dataclass(frozen=True)
class Burst:
    cleared: float  # seconds from the shared expiry until the last binding was deleted
    late: Stats  # each binding's deletion after the shared expiry
    setup: float  # seconds it took to make them
    sweep: float | None  # one reconcile pass over them all while active (None: no time left to measure)


def burst(stack: LocalStack, core: Core, api: ApiRecorder, count: int) -> Burst:
    """``count`` grants expiring at one instant, cleared by the two workers."""
    setup_started = time.time()
    budget = max(8.0, count * 0.03)  # time to make them all before they expire (about 2x what it takes)
    frozen = datetime.fromtimestamp(math.floor(setup_started), UTC)
    expiry = frozen + timedelta(seconds=math.ceil(budget))
    now: Callable[[], datetime] = lambda: frozen  # noqa: E731 - a clock stopped at the setup's start
    roster = RosterFile(stack.roster_path)
    jobs = _RevokesOnly(core)
    access = AccessService(core.store, roster, RecordingJobs(), now)
    settings = load_settings(stack.env())
    clusters = kube_clusters(settings, roster)
    grants = GrantService(core.store, roster, clusters, jobs, RecordingNotifier(), now)
    names = []
    for _ in range(count):
        request = access.submit(Ask(SlackUserId(ALICE), "prod", "payments", "emergency", expiry - frozen, REASON))
        active = grants.grant(request.id)
        assert active is not None, request.id
        assert active.expires_at == expiry, active
        names.append(binding_of(request.id))
    setup = time.time() - setup_started
    if time.time() >= expiry.timestamp():
        raise SystemExit(f"the burst's setup took {setup:.1f}s, past the shared expiry; raise its budget")
    # What one sweep costs with this many grants active (the workers' sweep thread pays it every
    # interval): measured here, in this process, while there is time before they all expire.
    sweep = None
    if expiry.timestamp() - time.time() > 4:
        reconciler = build_worker_context(settings, core=core, clusters=clusters, notifier=RecordingNotifier())
        start = time.perf_counter()
        report = reconciler.reconciler.sweep()
        sweep = time.perf_counter() - start
        assert report.corrections == 0, report
    clusters.close()
    api.wait_for(api.deleted, names, timeout=expiry.timestamp() - time.time() + 300)
    late = Stats(tuple(api.deleted[n] - expiry.timestamp() for n in names))
    return Burst(late.max, late, setup, sweep)


# --- the report ------------------------------------------------------------------------------------


def table(rows: list[tuple[str, float]], baselines: Mapping[str, float]) -> str:
    """Milliseconds, and each as a multiple of every baseline."""
    heads = ["measure", "ms", *[f"x {name}" for name in baselines]]
    lines = [
        [label, f"{value * 1000:.1f}", *[f"{value / base:.1f}" for base in baselines.values()]] for label, value in rows
    ]
    widths = [max(len(r[i]) for r in [heads, *lines]) for i in range(len(heads))]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)), "  ".join("-" * w for w in widths)]
    for line in lines:
        out.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_revocation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grants", type=int, default=100, help="grants measured one at a time (default 100)")
    parser.add_argument("--burst", type=int, default=500, help="grants expiring in the same second (default 500)")
    parser.add_argument("--seconds", type=int, default=5, help="duration of the one-at-a-time grants (min 5)")
    parser.add_argument("--sweep-interval", default="2s", help="BREAKGLASS_SWEEP_INTERVAL of the workers")
    parser.add_argument("--redis-url", default=None, help="a Redis to use and FLUSH (default: a private one)")
    args = parser.parse_args(argv)

    started = time.time()
    with local_stack(redis_url=args.redis_url, sweep_interval=args.sweep_interval) as stack:
        if args.redis_url:
            stack.redis_client().flushdb()
        api = ApiRecorder(stack.clusters["prod"])
        core = build_core(load_settings(stack.env()))
        for name in ("worker-a", "worker-b"):
            stack.start_worker(name)
        stack.wait_for_workers(2)
        print(f"stack up: 2 workers, sweep every {args.sweep_interval}, Redis {stack.redis_url}", file=sys.stderr)

        kube = kube_round_trip(stack, 50)
        noop = rq_noop(core, 50)
        print("baselines measured; granting one at a time…", file=sys.stderr)
        to_binding, after_annotation, after_exact = one_at_a_time(core, api, args.grants, args.seconds)
        print(f"{args.grants} grants measured; setting up {args.burst} to expire together…", file=sys.stderr)
        many = burst(stack, core, api, args.burst)
        verdict = core.audit.verify()

    baselines = {"kube create+delete": kube.p50, "rq no-op": noop.p50}
    rows = [
        ("baseline: kube create+delete RoleBinding p50", kube.p50),
        ("baseline: RQ no-op job enqueue->done p50", noop.p50),
        (f"approve->binding p50 (n={args.grants})", to_binding.p50),
        (f"approve->binding p99 (n={args.grants})", to_binding.p99),
        (f"expiry annotation->deletion p50 (n={args.grants})", after_annotation.p50),
        (f"expiry annotation->deletion p99 (n={args.grants})", after_annotation.p99),
        (f"exact expiry->deletion p50 (n={args.grants})", after_exact.p50),
        (f"exact expiry->deletion p99 (n={args.grants})", after_exact.p99),
        (f"burst: expiry->last of {args.burst} deleted (2 workers)", many.cleared),
        (f"burst: expiry->deletion p50 (n={args.burst})", many.late.p50),
        (f"burst: expiry->deletion p99 (n={args.burst})", many.late.p99),
    ]
    if many.sweep is not None:
        rows.append((f"one sweep pass over {args.burst} active grants", many.sweep))
    print(table(rows, baselines))
    print(
        f"\nburst setup {many.setup:.1f}s; audit chain {'intact' if verdict.ok else 'BROKEN'} "
        f"({verdict.checked} entries); whole run {time.time() - started:.0f}s"
    )
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
