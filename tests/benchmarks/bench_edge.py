"""The web process's edge under hostile clients: memory for oversized bodies, memory for a big audit
batch, and ``/healthz`` while slow clients hold connections (issue 10, findings 4, 5 and 19).

    .venv/bin/python -m tests.benchmarks.bench_edge [--only bodies,batch,slow] [--clients 20] [--seconds 30]

Not collected by pytest. It starts the local stack (a private ``redis-server``, the doubles) and a real
``breakglass web`` (gunicorn, 2 workers x 8 threads, the ``DeadlineWorker``), and measures each load
beside a baseline from the same run:

- bodies: ``--clients`` clients on ``/slack/events`` and as many on the audit webhook at once, each
  announcing a 64 MiB body and sending it until it is answered (413, before the body is read). The
  web process's peak RSS against its idle RSS.
- batch: one valid audit batch of ``--batch-mib`` MiB (15: under the 16 MiB limit), events of a
  holder with a grant, each carrying a request object as ``RequestResponse`` would. The RSS it adds
  at its peak, against the same body decoded whole with ``json.loads`` in a bare Python process (what
  the webhook did before the event-by-event reader; the review measured 84 MiB for 11 MiB).
- slow: ``/healthz`` latency, asked for ``--seconds`` by ``--probers`` clients one request at a time
  each, while 100 clients each send their headers and one byte of a promised body and then nothing
  (connecting again whenever they are dropped), against the same without them.

RSS is the web process's tree (the gunicorn arbiter and its workers) read from /proc; a peak is the
sum of each process's high-water mark (``VmHWM``, reset through ``clear_refs`` before the load), so
it is never lower than the tree's real peak. Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.domain.grants import format_instant
from bot.domain.webhook import cluster_webhook_token
from bot.standins.stack import AUDIT_WEBHOOK_TOKEN, LocalStack, Process, local_stack
from tests.benchmarks.bench_revocation import Stats
from tests.benchmarks.bench_scale import Part, Row, parts_parser, quiet_core, run_parts
from tests.benchmarks.bench_webhook import _grant

MiB = 1024 * 1024
SLOW_CLIENTS = 100
PROBE_TIMEOUT = 2.0  # deploy/base/web.yaml's livenessProbe timeoutSeconds
KUBE_USER = "alice@example.com"  # the demo roster's kube_user for ALICE


# --- the web process's memory ------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's workers), from /proc."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    return pids


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss(web: Process) -> int:
    """Bytes resident in the web process's tree now."""
    return sum(_status_kib(pid, "VmRSS") for pid in tree(web.popen.pid)) * 1024


def idle_rss(web: Process, seconds: float = 1.0) -> int:
    """The tree's resident bytes at rest: the median of samples over ``seconds``."""
    samples = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        samples.append(rss(web))
        time.sleep(0.05)
    return int(statistics.median(samples))


def peak_during(web: Process, load: Callable[[], Any]) -> tuple[int, Any]:
    """The tree's peak resident bytes while ``load`` runs (per-process high-water marks, reset
    first), and what ``load`` returned."""
    pids = tree(web.popen.pid)
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    result = load()
    return sum(_status_kib(pid, "VmHWM") for pid in pids) * 1024, result


def warm(stack: LocalStack, web: Process, token: str) -> None:
    """Every worker has served each route once (imports, first connections), so idle means idle."""
    for _ in range(8):
        _get(f"{stack.web_url(web)}/healthz", 10)
        _audit(stack, web, token, _event_list([]))


def _get(url: str, timeout: float) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - a loopback URL we started
        reply.read()
        assert reply.status == 200, reply.status
    return time.perf_counter() - started


def _audit(stack: LocalStack, web: Process, token: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL we started
        f"{stack.web_url(web)}/k8s/audit/prod",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as reply:  # noqa: S310
        answer: dict[str, Any] = json.loads(reply.read())
        return answer


def _event_list(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode()


# --- oversized bodies -----------------------------------------------------------------------------


def announce(port: int, path: str, headers: str, size: int) -> tuple[int, int]:
    """Announce a ``size`` body and send it until the server answers: its status, and how many body
    bytes got out (into the kernel's buffers) before the answer."""
    chunk = b"a" * 65536
    sent = 0
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {size}\r\n\r\n".encode())
        sock.setblocking(False)
        received = b""
        deadline = time.monotonic() + 60
        while b"\r\n" not in received and time.monotonic() < deadline:
            try:
                part = sock.recv(4096)
            except BlockingIOError:
                pass
            except OSError:
                break  # reset: whatever was answered has been read
            else:
                if not part:
                    break
                received += part
                continue
            if sent < size and not closed:
                try:
                    sent += sock.send(chunk[: size - sent])
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:
                    closed = True  # the server closed its side: read what it answered
            else:
                time.sleep(0.001)
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/") else 0
    return status, sent


def part_bodies(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    with local_stack() as stack:
        web = stack.start_web()
        assert web.port is not None
        token = cluster_webhook_token(AUDIT_WEBHOOK_TOKEN, "prod")
        warm(stack, web, token)
        idle = idle_rss(web)
        slack = "Content-Type: application/x-www-form-urlencoded\r\n"
        hook = f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        targets = [("/slack/events", slack)] * args.clients + [("/k8s/audit/prod", hook)] * args.clients

        def load() -> list[tuple[int, int]]:
            with ThreadPoolExecutor(len(targets)) as pool:
                return list(pool.map(lambda t: announce(web.port or 0, t[0], t[1], 64 * MiB), targets))

        peak, answers = peak_during(web, load)
    statuses = sorted({status for status, _ in answers})
    assert statuses == [413], statuses
    most = max(sent for _, sent in answers)
    rows = [
        Row(
            f"web RSS peak, {len(targets)} clients announcing 64 MiB ({args.clients} Slack, {args.clients} webhook)",
            peak / MiB,
            "MiB",
            idle / MiB,
            "all 413, < idle + 64 MiB",
            peak < idle + 64 * MiB,
        ),
        Row("  RSS added at the peak", (peak - idle) / MiB, "MiB"),
        Row("  most body bytes one client got out before its 413", most / MiB, "MiB"),
    ]
    return rows, {"idle": f"the same web process at rest, warmed: RSS {idle / MiB:.0f} MiB"}


# --- a big, valid audit batch -----------------------------------------------------------------------


def big_batch(mib: float) -> tuple[bytes, int]:
    """A valid EventList just under ``mib`` MiB of a holder's changes, each event with a request
    object (a ConfigMap of about 1 KiB), as ``RequestResponse`` logs them; and its event count."""
    at = format_instant(datetime.now(UTC))
    data = {f"key-{k}": "v" * 40 for k in range(20)}

    def event(n: int) -> dict[str, Any]:
        return {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": f"bench-edge-{n:08d}",
            "stage": "ResponseComplete",
            "requestURI": f"/api/v1/namespaces/payments/configmaps/cm-{n}",
            "verb": "update",
            "user": {"username": KUBE_USER, "groups": ["system:authenticated", "oidc:payments-devs"]},
            "sourceIPs": ["10.0.0.7"],
            "userAgent": "kubectl/v1.31.0 (linux/amd64) kubernetes/abcdef0",
            "objectRef": {"resource": "configmaps", "namespace": "payments", "name": f"cm-{n}", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestObject": {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {"name": f"cm-{n}", "namespace": "payments", "labels": {"app": "payments", "tier": "web"}},
                "data": data,
            },
            "requestReceivedTimestamp": at,
            "stageTimestamp": at,
            "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
        }

    one = len(json.dumps(event(0)).encode()) + 2
    count = int(mib * MiB) // one
    body = _event_list([event(n) for n in range(count)])
    while len(body) > mib * MiB:
        count -= 1
        body = _event_list([event(n) for n in range(count)])
    return body, count


_BARE_PARSE = """
import json, sys
from pathlib import Path

def kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

before = kib("VmRSS")
batch = json.loads(Path(sys.argv[1]).read_bytes())
assert batch["items"]
print((kib("VmHWM") - before) * 1024)
"""


def bare_parse(body: bytes) -> int:
    """Bytes a bare Python process adds at its peak reading ``body`` and decoding it whole."""
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(body)
        file.flush()
        out = subprocess.run([sys.executable, "-c", _BARE_PARSE, file.name], capture_output=True, check=True, text=True)
    return int(out.stdout)


def part_batch(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    with local_stack() as stack:
        core = quiet_core(stack)
        _grant(core.store, "payments")  # the events fall in its window: built after it
        body, count = big_batch(args.batch_mib)
        whole = bare_parse(body)
        web = stack.start_web()
        token = cluster_webhook_token(AUDIT_WEBHOOK_TOKEN, "prod")
        warm(stack, web, token)
        idle = idle_rss(web)
        peak, answer = peak_during(web, lambda: _audit(stack, web, token, body))
        settled = idle_rss(web)
    assert answer.get("recorded", 0) > 0, answer
    size = f"{len(body) / MiB:.1f} MiB"
    rows = [
        Row(
            f"RSS added at the peak, one valid {size} audit batch ({count:,} events)",
            (peak - idle) / MiB,
            "MiB",
            whole / MiB,
            "< json.loads whole",
            peak - idle < whole,
        ),
        Row("  web RSS at rest after it", settled / MiB, "MiB", idle / MiB),
    ]
    return rows, {
        "json.loads": f"the same {size} read and decoded whole by a bare Python process: {whole / MiB:.0f} MiB added",
        "idle (batch)": f"the web process at rest, warmed: RSS {idle / MiB:.0f} MiB",
    }


# --- slow clients -----------------------------------------------------------------------------------


@contextlib.contextmanager
def slow_clients(port: int, count: int) -> Iterator[list[int]]:
    """``count`` clients each sending headers and one byte of a 1000-byte body, then nothing; each
    connects again as soon as the server drops it. Yields a one-item list: how many drops so far."""
    stop = threading.Event()
    dropped = [0]
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 1000\r\n\r\np"
    )

    def one() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(head)
                    sock.settimeout(0.5)
                    while not stop.is_set():
                        try:
                            if not sock.recv(4096):
                                break
                        except TimeoutError:
                            continue
                dropped[0] += 1
            except OSError:
                time.sleep(0.05)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)  # let them take every thread
        yield dropped
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)


def healthz_for(url: str, seconds: float, probers: int) -> Stats:
    """``/healthz`` asked for ``seconds`` by ``probers`` clients, each one request at a time: every
    answer's latency."""
    until = time.monotonic() + seconds

    def probe(_: int) -> list[float]:
        times: list[float] = []
        while time.monotonic() < until or not times:
            times.append(_get(url, 120))
        return times

    with ThreadPoolExecutor(probers) as pool:
        return Stats(tuple(t for times in pool.map(probe, range(probers)) for t in times))


def part_slow(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    from bot.slow_clients import REQUEST_READ_SECONDS

    with local_stack() as stack:
        web = stack.start_web()
        assert web.port is not None
        url = f"{stack.web_url(web)}/healthz"
        warm(stack, web, cluster_webhook_token(AUDIT_WEBHOOK_TOKEN, "prod"))
        quiet = healthz_for(url, args.seconds, args.probers)
        with slow_clients(web.port, SLOW_CLIENTS) as dropped:
            loaded = healthz_for(url, args.seconds, args.probers)
        drops = dropped[0]
    bound = 2 * REQUEST_READ_SECONDS
    rows = [
        Row(f"/healthz p50, {SLOW_CLIENTS} slow clients (n={len(loaded.values)})", loaded.p50, "ms", quiet.p50),
        Row(
            f"/healthz p99, {SLOW_CLIENTS} slow clients",
            loaded.p99,
            "ms",
            quiet.p99,
            f"every answer < {bound:.0f} s",
            loaded.max < bound,
        ),
        Row(f"/healthz max, {SLOW_CLIENTS} slow clients", loaded.max, "ms", quiet.max),
        Row(
            f"  answers slower than the liveness probe's {PROBE_TIMEOUT:.0f} s timeout",
            sum(t > PROBE_TIMEOUT for t in loaded.values) / len(loaded.values) * 100,
            "%",
        ),
        Row(f"  slow connections dropped by the server in {args.seconds:.0f} s", drops, "drops"),
    ]
    return rows, {
        "no slow clients": f"/healthz by {args.probers} clients for {args.seconds:.0f} s (n={len(quiet.values)}): "
        f"p50 {quiet.p50 * 1000:.1f} ms, p99 {quiet.p99 * 1000:.1f} ms, max {quiet.max * 1000:.1f} ms"
    }


PARTS: dict[str, Part] = {
    "bodies": part_bodies,
    "batch": part_batch,
    "slow": part_slow,
}


def main(argv: list[str] | None = None) -> int:
    parser = parts_parser("bench_edge", __doc__, PARTS)
    parser.add_argument("--clients", type=int, default=20, help="clients per route announcing 64 MiB (default 20)")
    parser.add_argument("--batch-mib", type=float, default=15, help="size of the valid audit batch (default 15)")
    parser.add_argument("--seconds", type=float, default=60, help="how long /healthz is asked, each way (default 60)")
    parser.add_argument(
        "--probers", type=int, default=4, help="clients asking /healthz, one at a time each (default 4)"
    )
    run_parts(PARTS, parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
