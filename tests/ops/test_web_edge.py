"""The web process's edge, through a real ``breakglass web``: body limits, slow clients, unsigned and
malformed requests, the audit webhook's per-cluster tokens, and what ``/readyz`` tells a stranger."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from bot.domain.webhook import cluster_webhook_token
from bot.slow_clients import REQUEST_READ_SECONDS
from bot.standins.stack import AUDIT_WEBHOOK_TOKEN, LocalStack, Process, local_stack

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def edge() -> Iterator[tuple[LocalStack, Process]]:
    with local_stack() as stack:
        yield stack, stack.start_web()


def _raw(port: int, head: str, body: bytes = b"", timeout: float = 20) -> tuple[int, bytes]:
    """Send ``head`` (and ``body``) on a fresh connection; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        return _answer(sock)


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        part = sock.recv(65536)
        if not part:
            break
        received += part
    head, _, rest = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(rest) < length:
        part = sock.recv(65536)
        if not part:
            break
        rest += part
    return status, rest


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=20) as reply:  # noqa: S310
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_an_unsigned_slack_body_over_one_mebibyte_is_refused_before_it_is_sent(
    edge: tuple[LocalStack, Process],
) -> None:
    _, web = edge
    assert web.port is not None
    # The headers promise 64 MiB and nothing follows: the answer can only come before the body is read.
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {64 * MiB}\r\n"
    )
    status, body = _raw(web.port, head)
    assert status == 413, body


def test_a_chunked_slack_body_is_refused_once_it_passes_one_mebibyte(edge: tuple[LocalStack, Process]) -> None:
    _, web = edge
    assert web.port is not None
    with socket.create_connection(("127.0.0.1", web.port), timeout=20) as sock:
        sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 65536
        with contextlib.suppress(OSError):  # the server may stop reading (and close) once it has answered
            for _ in range(64 * MiB // len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, body = _answer(sock)
    assert status == 413, body


def _oversized_batch(web: Process, cluster: str) -> int:
    """The status a batch promising 16 MiB + 1 byte at ``cluster``'s webhook gets (no body byte sent)."""
    assert web.port is not None
    token = cluster_webhook_token(AUDIT_WEBHOOK_TOKEN, cluster)
    head = (
        f"POST /k8s/audit/{cluster} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {16 * MiB + 1}\r\n"
    )
    return _raw(web.port, head)[0]


def test_an_audit_batch_over_sixteen_mebibytes_is_refused_and_counted(edge: tuple[LocalStack, Process]) -> None:
    stack, web = edge
    assert _oversized_batch(web, "prod") == 413
    scrape = urllib.request.urlopen(f"{stack.web_url(web)}/metrics", timeout=10).read().decode()  # noqa: S310
    assert 'breakglass_audit_webhook_refused_batches_total{cluster="prod",status="413"} 1' in scrape


def test_the_alert_on_refused_batches_reads_a_metric_this_process_exposes(edge: tuple[LocalStack, Process]) -> None:
    """deploy/components/alerts (and the chart's copy) must name the counter as ``/metrics`` spells
    it: an alert on a misspelt metric never fires."""
    from prometheus_client.parser import text_string_to_metric_families

    from tests.deploy.test_alerts import alert, metric_names, rule_file

    stack, web = edge
    assert _oversized_batch(web, "staging") == 413
    scrape = urllib.request.urlopen(f"{stack.web_url(web)}/metrics", timeout=10).read().decode()  # noqa: S310
    exposed = {sample.name for family in text_string_to_metric_families(scrape) for sample in family.samples}
    named = metric_names(alert(rule_file())["expr"])
    assert named
    assert named <= exposed, f"the alert names {sorted(named - exposed)}, which /metrics does not show"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"payload=%7Bnot-json", {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"}),
        (b"payload=%7Bnot-json", {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}),
        (b"\xff\xfe\x00garbage", {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}),
        (b"command=%2Fbreakglass&text=list", {}),
        (b"{", {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": ""}),
    ],
    ids=["bad-timestamp", "bad-json", "not-utf8", "no-signature", "json-body"],
)
def test_a_malformed_unsigned_slack_request_gets_401(
    edge: tuple[LocalStack, Process], body: bytes, headers: dict[str, str]
) -> None:
    stack, web = edge
    status, text = _post(
        f"{stack.web_url(web)}/slack/events", body, {"Content-Type": "application/x-www-form-urlencoded", **headers}
    )
    assert status == 401, text


def _audit_post(stack: LocalStack, web: Process, cluster: str, token: str, items: list[object]) -> tuple[int, str]:
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return _post(f"{stack.web_url(web)}/k8s/audit/{cluster}", body, headers)


def test_each_cluster_has_its_own_webhook_token(edge: tuple[LocalStack, Process]) -> None:
    stack, web = edge
    prod = cluster_webhook_token(AUDIT_WEBHOOK_TOKEN, "prod")
    assert _audit_post(stack, web, "prod", prod, [])[0] == 200
    assert _audit_post(stack, web, "staging", prod, [])[0] == 401
    assert _audit_post(stack, web, "staging", cluster_webhook_token(AUDIT_WEBHOOK_TOKEN, "staging"), [])[0] == 200
    assert _audit_post(stack, web, "prod", AUDIT_WEBHOOK_TOKEN, [])[0] == 401  # the secret itself is no token


def test_audit_events_of_odd_shapes_are_skipped_not_a_server_error(edge: tuple[LocalStack, Process]) -> None:
    stack, web = edge
    token = cluster_webhook_token(AUDIT_WEBHOOK_TOKEN, "prod")
    odd = [
        {"stage": "ResponseComplete", "user": "alice@example.com", "objectRef": {"namespace": "payments"}},
        {"stage": "ResponseComplete", "user": {"username": "alice@example.com"}, "objectRef": ["payments"]},
        {"stage": "ResponseComplete", "user": {"username": ["x"]}, "objectRef": "pods", "verb": {"a": 1}},
        "not an event",
    ]
    status, text = _audit_post(stack, web, "prod", token, odd)
    assert (status, json.loads(text)) == (200, {"recorded": 0})


def test_slow_clients_do_not_stop_the_web_process_answering(edge: tuple[LocalStack, Process]) -> None:
    """More connections than the server has threads, each sending its headers and one byte of the
    promised body and then nothing: /healthz is still answered, and the slow ones are dropped."""
    _, web = edge
    assert web.port is not None
    slow: list[socket.socket] = []
    try:
        for _ in range(100):  # `web` runs 2 workers x 8 threads; the kernel shares the connections between them
            sock = socket.create_connection(("127.0.0.1", web.port), timeout=5)
            sock.sendall(
                b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 1000\r\n\r\np"
            )
            slow.append(sock)
        time.sleep(1)  # let them take every thread
        answered: list[int] = []

        def healthz() -> None:
            with urllib.request.urlopen(f"http://127.0.0.1:{web.port}/healthz", timeout=120) as reply:
                answered.append(reply.status)

        asking = threading.Thread(target=healthz, daemon=True)
        asking.start()
        asking.join(timeout=8 * REQUEST_READ_SECONDS)  # generous: slow ones are let go after REQUEST_READ_SECONDS
        assert answered == [200], "/healthz was not answered while slow clients held the connections"
    finally:
        for sock in slow:
            sock.close()


def test_the_printed_webhook_config_is_accepted_for_its_cluster_alone(edge: tuple[LocalStack, Process]) -> None:
    import subprocess
    import sys

    import yaml

    stack, web = edge
    printed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "webhook-config", "prod", "--server", stack.web_url(web)],
        env={**stack.env()},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config = yaml.safe_load(printed)
    server = config["clusters"][0]["cluster"]["server"]
    token = config["users"][0]["user"]["token"]
    assert server == f"{stack.web_url(web)}/k8s/audit/prod"
    assert AUDIT_WEBHOOK_TOKEN not in printed
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert _post(server, body, headers)[0] == 200
    assert _post(server.replace("/prod", "/staging"), body, headers)[0] == 401
