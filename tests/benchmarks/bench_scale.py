"""breakglass at scale: the sweep over many live grants, expiries in one second, lateness after a
killed worker, Redis memory, ``audit verify`` throughput and the ``/breakglass`` ack under load.

    .venv/bin/python -m tests.benchmarks.bench_scale [--only sweep,burst,kill,verify,ack] [--grants 10000]

Not collected by pytest. Every part starts its own local stack (a private ``redis-server``, the
Kubernetes API double per cluster, the Slack double, real ``breakglass`` processes) and measures a
baseline in the same run, on the same machine, so each number is printed beside its ratio to that
baseline and its target (the machine is shared and loaded: the ratio is the number to compare):

- sweep: ``--grants`` live grants over ``--clusters`` clusters, made by the product's own
  GrantService; one reconcile pass over them (target 5 s, within the sweep's own per-cluster budget),
  against a bare list of every managed binding with the official client. Redis memory per live
  grant (its request, indexes and audit entries) and per audit entry, from ``used_memory``.
- burst: ``--burst`` grants expiring in the same second, cleared by two ``breakglass worker``
  processes (target 10 s to the last deletion); the one-at-a-time revoke lateness (p99 target 1 s,
  never more than 0.5 s early); and, with a second worker running, the lateness of a revoke due
  after the worker holding RQ's scheduler was SIGKILLed (target 5 s). Baseline: an RQ no-op job.
- verify: ``audit verify`` over ``--entries`` entries (target 100,000 entries/s), against reading the
  same stream with a bare XRANGE.
- ack: ``/breakglass`` answered by ``breakglass web`` with 16 and 64 requests in flight, against a
  bare Bolt app (``ack()`` and nothing else) under the same gunicorn settings (target p99 1.5x the
  bare app's at 16, every ack under 1 s at 64).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from kubernetes import client, config

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import State
from bot.domain.policy import Ask
from bot.roster_source import RosterFile
from bot.services.access import AccessService
from bot.services.grants import GrantService
from bot.settings import load_settings
from bot.standins.slack_events import SlackSender
from bot.standins.stack import ALICE, DEMO_ROSTER, SIGNING_SECRET, LocalStack, free_port, local_stack, wait_until
from bot.store import Draft
from bot.wiring import Core, build_core
from tests.benchmarks.bench_revocation import (
    ApiRecorder,
    Stats,
    _RevokesOnly,
    binding_of,
    burst,
    one_at_a_time,
    rq_noop,
)
from tests.fakes import RecordingJobs, RecordingNotifier
from workers.context import build_worker_context, kube_clusters

REASON = "INC-4412 scale benchmark"
BENCH_PEOPLE = [f"U0000BENCH{i:02d}" for i in range(16)]
ROLE = "emergency"  # the demo roster's self-service role
MANAGED = "app.kubernetes.io/managed-by=breakglass"


@dataclass(frozen=True)
class Row:
    measure: str
    value: float
    unit: str  # "s", "ms", "B", "/s"
    baseline: float | None = None  # same unit
    target: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        shown = {
            "ms": f"{self.value * 1000:.1f} ms",
            "s": f"{self.value:.2f} s",
            "B": f"{self.value:,.0f} B",
            "MiB": f"{self.value:,.1f} MiB",
        }
        value = shown.get(self.unit, f"{self.value:,.0f} {self.unit}")
        ratio = f"{self.value / self.baseline:.2f}x" if self.baseline else ""
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        return [self.measure, value, ratio, self.target, verdict]


def print_table(rows: list[Row], baselines: Mapping[str, str]) -> None:
    heads = ["measure", "value", "x baseline", "target", ""]
    lines = [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in [heads, *lines]) for i in range(len(heads))]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(
            "  ".join(
                c.rjust(w) if i in (1, 2) else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    print()
    for name, what in baselines.items():
        print(f"baseline {name}: {what}")


Part = Callable[[argparse.Namespace], tuple[list[Row], dict[str, str]]]


def parts_parser(prog: str, doc: str | None, parts: Mapping[str, Part]) -> argparse.ArgumentParser:
    """A benchmark's command line: its first paragraph as description, and ``--only`` to pick parts."""
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    parser.add_argument("--only", default=",".join(parts), help=f"parts to run (default all: {','.join(parts)})")
    return parser


def run_parts(parts: Mapping[str, Part], args: argparse.Namespace) -> None:
    """Run the parts ``args.only`` names, then print their table, the run's length and the machine's
    load (the 1-minute average, read before and after each part)."""
    started = time.time()
    loads = [os.getloadavg()[0]]
    rows: list[Row] = []
    baselines: dict[str, str] = {}
    for name in args.only.split(","):
        part_rows, part_baselines = parts[name.strip()](args)
        loads.append(os.getloadavg()[0])
        rows += part_rows
        baselines.update(part_baselines)
    print_table(rows, baselines)
    print(
        f"\nwhole run {time.time() - started:.0f}s on {os.cpu_count()} cores, "
        f"load {min(loads):.1f} to {max(loads):.1f} (1-minute average, before and after each part)"
    )


def quiet_core(stack: LocalStack) -> Core:
    """The shared parts, with the audit log's mirror of every entry to stdout turned off."""
    core = build_core(load_settings(stack.env()))
    core.audit._out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark
    return core


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


# --- sweep over many grants ------------------------------------------------------------------------


def roster_of(clusters: int) -> dict[str, Any]:
    roster = {key: value for key, value in DEMO_ROSTER.items()}
    names = [f"c{i:02d}" for i in range(clusters)]
    roster["clusters"] = {name: {"context": name, "credentials": "user"} for name in names}
    roster["entitlements"] = [{**e, "clusters": names} for e in DEMO_ROSTER["entitlements"]]
    # Several requesters: each person may have only a few requests in flight at once.
    roster["people"] = {**DEMO_ROSTER["people"], **{p: {"kube_user": f"{p.lower()}@example.com"} for p in BENCH_PEOPLE}}
    roster["groups"] = {
        **DEMO_ROSTER["groups"],
        "payments-devs": [*DEMO_ROSTER["groups"]["payments-devs"], *BENCH_PEOPLE],
    }
    return roster


def make_grants(stack: LocalStack, core: Core, count: int, duration: timedelta) -> list[str]:
    """``count`` live grants spread over every cluster, made as the worker makes them, each with its
    revoke scheduled in RQ (the other jobs of the set-up are left out)."""
    roster = RosterFile(stack.roster_path)
    settings = load_settings(stack.env())
    clusters = kube_clusters(settings, roster)
    access = AccessService(core.store, roster, RecordingJobs(), core.now)
    grants = GrantService(core.store, roster, clusters, _RevokesOnly(core), RecordingNotifier(), core.now)
    names = sorted(stack.clusters)

    def one(i: int) -> str:
        cluster = names[i % len(names)]
        requester = SlackUserId(BENCH_PEOPLE[i % len(BENCH_PEOPLE)])
        request = access.submit(Ask(requester, cluster, "payments", ROLE, duration, REASON))
        assert request.state is State.APPROVED, request
        active = grants.grant(request.id)
        assert active is not None, request
        assert active.state is State.ACTIVE, active
        return request.id

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(one, range(count)))
    clusters.close()
    return made


def list_everything(stack: LocalStack) -> float:
    """Baseline: list every managed RoleBinding of every cluster with the official client, one by one."""
    started = time.perf_counter()
    for name in sorted(stack.clusters):
        api = config.new_client_from_config(config_file=str(stack.kubeconfig_path), context=name, persist_config=False)
        client.RbacAuthorizationV1Api(api).list_role_binding_for_all_namespaces(label_selector=MANAGED)
        api.close()
    return time.perf_counter() - started


def part_sweep(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    rows: list[Row] = []
    with local_stack(roster=roster_of(args.clusters)) as stack:
        core = quiet_core(stack)
        r = stack.redis_client()
        before = used_memory(r)
        entries_before = core.audit.head()[0]
        started = time.time()
        made = make_grants(stack, core, args.grants, timedelta(minutes=30))
        setup = time.time() - started
        grant_bytes = (used_memory(r) - before) / len(made)
        per_grant_entries = (core.audit.head()[0] - entries_before) / len(made)
        print(f"sweep: {len(made)} grants over {args.clusters} clusters made in {setup:.0f}s", file=sys.stderr)

        before = used_memory(r)
        batch = [Draft(Event.JOB_FAILED, SYSTEM_ACTOR, None, {"job": "bench", "error": "x" * 40}) for _ in range(1000)]
        for _ in range(10):
            core.audit.append(*batch)
        entry_bytes = (used_memory(r) - before) / 10_000

        baseline = min(list_everything(stack) for _ in range(3))
        settings = load_settings(stack.env())
        context = build_worker_context(settings, core=core, notifier=RecordingNotifier())
        spent = []
        for _ in range(3):
            start = time.perf_counter()
            report = context.reconciler.sweep()
            spent.append(time.perf_counter() - start)
            assert report.corrections == 0, report
            assert not report.cut_short, report
            assert not report.unreachable, report
        sweep = min(spent)
        budget = context.reconciler.cluster_budget
        rows.append(
            Row(
                f"one sweep pass, {len(made)} live grants over {args.clusters} clusters (best of 3)",
                sweep,
                "s",
                baseline,
                f"<= 5 s and < budget {budget:.0f} s",
                sweep <= 5 and sweep < budget,
            )
        )
        rows.append(Row("Redis memory per live grant (request, indexes, its audit entries)", grant_bytes, "B"))
        rows.append(Row(f"  of which audit entries per grant: {per_grant_entries:.1f}", per_grant_entries, "entries"))
        rows.append(Row("Redis memory per audit entry", entry_bytes, "B"))
    return rows, {
        "list all": f"listing every managed binding of {args.clusters} clusters, official client: {baseline:.2f} s"
    }


# --- expiries, lateness, a killed scheduler ---------------------------------------------------------


def scheduler_holder(stack: LocalStack, core: Core) -> Any:
    """The worker process whose RQ scheduler holds the lock for the grant/revoke queue (the scheduler
    runs in a child of the worker, in the worker's process group)."""
    r = redis.Redis.from_url(stack.redis_url or "", decode_responses=True)
    key = f"rq:scheduler-lock:{core.jobs.cluster.name}"
    name = wait_until(lambda: r.get(key), 30, "an RQ scheduler to take its lock")
    pid = int(wait_until(lambda: r.hget(f"rq:scheduler:{name}", "pid"), 10, "the scheduler's pid"))
    group = os.getpgid(pid)
    for process in stack.processes:
        if process.popen.pid == group:
            return process
    raise RuntimeError(f"no worker process leads the group of scheduler pid {pid}")


def killed_scheduler_lateness(stack: LocalStack, core: Core, api: ApiRecorder, count: int) -> Stats:
    """SIGKILL the worker holding the scheduler, then grants expiring a few seconds later: how late
    their bindings go, with only the second worker left."""
    holder = scheduler_holder(stack, core)
    os.killpg(holder.popen.pid, signal.SIGKILL)
    holder.popen.wait(10)
    requests = []
    for _ in range(count):
        request = core.access.submit(Ask(SlackUserId(ALICE), "prod", "payments", ROLE, timedelta(seconds=5), REASON))
        requests.append(request.id)
    api.wait_for(api.created, [binding_of(r) for r in requests], timeout=60)
    api.wait_for(api.deleted, [binding_of(r) for r in requests], timeout=120)
    late = []
    for request_id in requests:
        ended = core.store.get(request_id)
        assert ended is not None
        assert ended.expires_at is not None
        late.append(api.deleted[binding_of(request_id)] - ended.expires_at.timestamp())
    return Stats(tuple(late))


def part_burst(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    rows: list[Row] = []
    with local_stack(sweep_interval=args.sweep_interval) as stack:
        api = ApiRecorder(stack.clusters["prod"])
        core = quiet_core(stack)
        for name in ("worker-a", "worker-b"):
            stack.start_worker(name)
        stack.wait_for_workers(2)
        noop = rq_noop(core, 50)
        _, _, after_exact = one_at_a_time(core, api, args.lateness, 5)
        print(f"burst: lateness of {args.lateness} measured; setting up {args.burst}", file=sys.stderr)
        many = burst(stack, core, api, args.burst)
        print("burst: cleared; killing the scheduler's worker", file=sys.stderr)
        killed = killed_scheduler_lateness(stack, core, api, args.killed)
    base = noop.p50
    rows += [
        Row(
            f"{args.burst} expiries in one second, 2 workers: expiry -> last deletion",
            many.cleared,
            "s",
            base,
            "<= 10 s",
            many.cleared <= 10,
        ),
        Row(f"revoke lateness p99 (n={args.lateness})", after_exact.p99, "s", base, "<= 1 s", after_exact.p99 <= 1),
        Row(
            f"revoke earliest (n={args.lateness})",
            min(after_exact.values),
            "s",
            base,
            ">= -0.5 s",
            min(after_exact.values) >= -0.5,
        ),
        Row(
            f"revoke lateness after SIGKILL of the scheduler's worker, max (n={args.killed})",
            killed.max,
            "s",
            base,
            "<= 5 s",
            killed.max <= 5,
        ),
    ]
    return rows, {"rq no-op": f"an RQ no-op job, enqueue -> finished, p50 {base * 1000:.1f} ms"}


# --- audit verify --------------------------------------------------------------------------------------


def part_verify(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    with local_stack() as stack:
        core = quiet_core(stack)
        batch = [Draft(Event.JOB_FAILED, SYSTEM_ACTOR, None, {"job": "bench", "error": "x" * 40}) for _ in range(1000)]
        for _ in range(math.ceil(args.entries / 1000)):
            core.audit.append(*batch)
        r = stack.redis_client()
        started = time.perf_counter()
        read = 0
        last = "-"
        while True:
            rows = r.xrange(core.audit.stream_key, min=last, count=10_000)
            if last != "-":
                rows = rows[1:]
            if not rows:
                break
            read += len(rows)
            last = rows[-1][0]
        bare = time.perf_counter() - started
        spent = []
        for _ in range(3):
            started = time.perf_counter()
            verdict = core.audit.verify()
            spent.append(time.perf_counter() - started)
            assert verdict.ok, verdict
        rate = verdict.checked / min(spent)
    bare_rate = read / bare
    return (
        [
            Row(
                f"audit verify over {verdict.checked:,} entries (best of 3)",
                rate,
                "entries/s",
                bare_rate,
                ">= 100,000/s",
                rate >= 100_000,
            )
        ],
        {"xrange": f"reading the same stream with bare XRANGE: {bare_rate:,.0f} entries/s"},
    )


# --- the /breakglass ack -------------------------------------------------------------------------------


@contextmanager
def bare_bolt(stack: LocalStack) -> Iterator[str]:
    """A Bolt app that acks /breakglass and does nothing else, under the web process's gunicorn settings."""
    port = free_port()
    env = {**stack.env(), "PYTHONPATH": os.getcwd()}
    popen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--log-level",
            "warning",
            "tests.benchmarks.bare_bolt:app",
        ],
        env=env,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _answers(port), 30, "the bare Bolt app")
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        os.killpg(popen.pid, signal.SIGTERM)
        popen.wait(20)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def acks(sender: SlackSender, concurrent: int, per_thread: int) -> Stats:
    """Ack times with ``concurrent`` requests in flight. This process's garbage collector is off while
    they are timed (as ``timeit`` does): it also runs the Slack double, whose stored views made a full
    collection of 80-100 ms stall every client thread at once, and that pause landed in whichever
    app's p99 was being timed, the bare app's as often as ours."""

    def run(_: int) -> list[float]:
        times = []
        for _ in range(per_thread):
            reply = sender.slash_command(ALICE, "")
            assert reply.status == 200, reply
            times.append(reply.elapsed)
        return times

    gc.collect()
    gc.disable()
    try:
        with ThreadPoolExecutor(concurrent) as pool:
            return Stats(tuple(t for chunk in pool.map(run, range(concurrent)) for t in chunk))
    finally:
        gc.enable()


def part_ack(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    rows: list[Row] = []
    with local_stack() as stack:
        web = stack.start_web()
        ours = stack.sender(web)
        with bare_bolt(stack) as url:
            bare = SlackSender(url, SIGNING_SECRET, stack.slack)
            for sender in (ours, bare):
                acks(sender, 4, 5)  # warm both: connections, first imports
            measured: dict[int, tuple[Stats, Stats]] = {}
            for n in (16, 64):
                measured[n] = (acks(bare, n, args.acks), acks(ours, n, args.acks))
    base16, ours16 = measured[16]
    base64, ours64 = measured[64]
    rows += [
        Row(
            "/breakglass ack p99, 16 in flight",
            ours16.p99,
            "ms",
            base16.p99,
            "<= 1.5x bare",
            ours16.p99 <= 1.5 * base16.p99,
        ),
        Row("/breakglass ack p99, 64 in flight", ours64.p99, "ms", base64.p99, "every ack < 1 s", ours64.max < 1.0),
        Row("/breakglass ack max, 64 in flight", ours64.max, "ms", base64.max, "< 1 s", ours64.max < 1.0),
    ]
    return rows, {
        "bare bolt": f"a Bolt app that only acks, same gunicorn settings: p99 {base16.p99 * 1000:.1f} ms at 16, "
        f"{base64.p99 * 1000:.1f} ms at 64"
    }


PARTS: dict[str, Part] = {
    "sweep": part_sweep,
    "burst": part_burst,
    "verify": part_verify,
    "ack": part_ack,
}


def main(argv: list[str] | None = None) -> int:
    parser = parts_parser("bench_scale", __doc__, PARTS)
    parser.add_argument("--grants", type=int, default=10_000, help="live grants for the sweep (default 10000)")
    parser.add_argument("--clusters", type=int, default=50, help="clusters they spread over (default 50)")
    parser.add_argument("--burst", type=int, default=1000, help="grants expiring in the same second (default 1000)")
    parser.add_argument("--lateness", type=int, default=50, help="grants for the revoke lateness (default 50)")
    parser.add_argument("--killed", type=int, default=5, help="grants expiring after the scheduler dies (default 5)")
    parser.add_argument("--entries", type=int, default=100_000, help="audit entries to verify (default 100000)")
    parser.add_argument("--acks", type=int, default=10, help="acks per client thread (default 10)")
    parser.add_argument("--sweep-interval", default="30s", help="the workers' BREAKGLASS_SWEEP_INTERVAL (default 30s)")
    run_parts(PARTS, parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
