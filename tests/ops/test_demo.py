"""``breakglass demo`` as a user runs it: a real subprocess, its output read as a person would, and
afterwards a look at the machine for anything it left behind."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.ops.conftest import Spawned, port_open, processes_mentioning

pytestmark = pytest.mark.slow  # real `breakglass demo` processes (gunicorn, a worker, redis-server)

# An operator's shell may point at their own Redis; the demo must start its own anyway.
OPERATOR_REDIS = "redis://127.0.0.1:6379/0"


def _demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BREAKGLASS_"))}
    env["BREAKGLASS_REDIS_URL"] = OPERATOR_REDIS
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _what_it_started(output: str) -> tuple[Path, list[int], list[int], int]:
    """The work dir, the ports, the process ids and the Redis port the demo announced."""
    workdir = re.search(r"Files\s+(\S+)", output)
    redis_port = re.search(r"Redis\s+redis://127\.0\.0\.1:(\d+)/0\s+\(a private redis-server\)", output)
    assert workdir, output
    assert redis_port, output
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", output)]
    pids = [int(p) for p in re.findall(r"pid (\d+)", output)]
    return Path(workdir.group(1)), ports, pids, int(redis_port.group(1))


def _assert_nothing_left(output: str) -> None:
    workdir, ports, pids, redis_port = _what_it_started(output)
    assert not workdir.exists(), f"{workdir} was left behind"
    assert not [p for p in ports if port_open(p)], f"ports still open: {[p for p in ports if port_open(p)]}"
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert processes_mentioning(str(workdir)) == []
    assert processes_mentioning(f"--port {redis_port} ") == []


def _section(output: str, number: str) -> str:
    start = output.index(f"━━ {number}")
    end = output.find("━━ ", start + 5)
    return output[start : end if end != -1 else None]


def test_demo_walks_requests_through_extension_revoke_denial_expiry_and_review_then_leaves_nothing() -> None:
    demo = Spawned(["demo"], _demo_env())
    try:
        code = demo.wait(timeout=300)  # about 20 s on a quiet machine; no test asserts how fast
    finally:
        demo.kill_group()
    output = demo.output
    assert code == 0, output
    assert "✓ every step happened as expected" in output

    # Its own Redis, never the operator's.
    _, _, _, redis_port = _what_it_started(output)
    assert redis_port != 6379

    # What people saw, step by step, rendered for a terminal within 100 columns.
    assert max(len(line) for line in output.splitlines()) <= 100
    assert ":inbox_tray:" not in output
    assert "*admin*" not in output
    assert "audit #" not in output  # one time per reply, and no sequence numbers with a gap
    assert "prod/payments breakglass " not in output  # the role is not named after the product
    assert "Alice sees" in _section(output, "2.")  # her own approval, refused
    assert "Bob sees" in _section(output, "3.")
    assert "Carol sees" in _section(output, "4.")
    assert "Alice sees" in _section(output, "6.")  # the answer to her revoke

    # The cluster at each step, and what the API server says Alice may do.
    assert _section(output, "1.").count("In cluster prod: no breakglass bindings.") == 1
    granted = _section(output, "4.")
    assert re.search(r"RoleBinding payments/breakglass-bg-[a-z0-9]{6}\n", granted), granted
    assert "role: ClusterRole admin   subject: User alice@example.com" in granted
    assert re.search(r"expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 29m\d\ds\)", granted), granted
    extended = _section(output, "5.")
    assert re.search(r"expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 59m\d\ds\)", extended), extended
    break_glass = _section(output, "8.")
    assert "role: ClusterRole edit   subject: User alice@example.com" in break_glass
    assert "In cluster prod: no breakglass bindings." in _section(output, "6.")
    assert break_glass.rstrip().count("In cluster prod: no breakglass bindings.") == 1  # after the expiry
    answers = re.findall(r"may alice@example\.com delete pods in payments\? (yes|no)", output)
    assert answers == ["no", "yes", "no", "yes", "no"]
    assert re.search(r"The binding was gone at [\d:.]+ UTC, \d+\.\ds after its expiry\.", break_glass), break_glass

    # Each incident thread: what changed on the request message, then one reply per step.
    first_thread = _section(output, "6.").split("The incident thread of", 1)[1]
    assert first_thread.count("↳") >= 7, first_thread
    assert "@bob" in first_thread
    assert "@carol" in first_thread
    assert "Requester" not in first_thread  # the request message is shown whole once, when posted
    assert "[Approve]" not in first_thread  # decided: the buttons are gone from the root
    assert "Denied by @bob: admin was granted for this incident already" in _section(output, "7.")
    second_thread = break_glass.split("The incident thread of", 1)[1]
    assert second_thread.count("↳") >= 6, second_thread
    assert "Review by @bob" in second_thread

    # Everyone's DMs, Bob's Home tab, and the audit log with one exported entry.
    dms = _section(output, "9.")
    assert dms.count("BG-") >= 4
    assert "Bob:" in dms
    assert "Carol:" in dms
    assert "Waiting for your approval" in _section(output, "10.")
    log = _section(output, "11.")
    assert "the chain is intact" in log
    assert '"event": "requested"' in log
    step_up = _section(output, "12.")  # someone known only through a Slack user group, verified at the IdP
    assert "[Verify with Stand-in IdP]" in step_up
    assert "You can return to Slack." in step_up
    assert "@erin verified at Stand-in IdP (pwd, otp)" in step_up
    automatic = _section(output, "13.")  # approved by a rule: PagerDuty's stand-in says Alice is on call
    assert "automatic (rule primary-on-call)" in automatic
    assert "Approved automatically: @alice is primary on call for Payments until" in automatic
    assert '"automatic": true' in automatic
    assert '"schedule": "PSCHED01"' in automatic
    assert "role: ClusterRole edit   subject: User alice@example.com" in automatic

    _assert_nothing_left(output)


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [
        (signal.SIGINT, True),  # Ctrl-C: the terminal signals the whole foreground process group
        (signal.SIGTERM, False),  # a supervisor stopping the demo's own process only
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_demo_stopped_by_a_signal_removes_everything_it_started(signum: signal.Signals, to_group: bool) -> None:
    demo = Spawned(["demo"], _demo_env())
    try:
        demo.wait_for_line("━━ 1.", timeout=40)  # the processes are up and a request is on its way
        workdir, ports, _, _ = _what_it_started(demo.output)
        assert len(processes_mentioning(str(workdir))) >= 2  # the check below can see what it looks for
        assert all(port_open(p) for p in ports)
        if to_group:
            os.killpg(demo.popen.pid, signum)
        else:
            demo.popen.send_signal(signum)
        code = demo.wait(timeout=30)
    finally:
        demo.kill_group()
    output = demo.output
    assert code == 128 + signum, output
    assert f"✗ stopped by {signum.name}" in output
    _assert_nothing_left(output)


def test_demo_without_redis_server_says_in_one_line_what_to_install() -> None:
    env = _demo_env() | {"PATH": "/nonexistent"}  # no redis-server to be found; python is run by its path
    demo = Spawned(["demo"], env)
    try:
        code = demo.wait(timeout=30)
    finally:
        demo.kill_group()
    assert code != 0
    assert demo.lines == [demo.lines[0]], demo.output
    assert "install" in demo.lines[0]
    assert "redis-server" in demo.lines[0]


def test_demo_with_an_unreachable_redis_says_so_in_one_line_at_once() -> None:
    demo = Spawned(["demo", "--redis-url", "redis://127.0.0.1:1/0"], _demo_env())
    try:
        code = demo.wait(timeout=30)
    finally:
        demo.kill_group()
    assert code != 0
    assert [line.strip() for line in demo.lines] == [
        "breakglass demo: cannot reach Redis at redis://127.0.0.1:1/0 (ConnectionError); start it, "
        "or leave out --redis-url to use a private one"
    ], demo.output


def _listening_addresses(ports: list[int]) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* writes them) something listens on at ``ports``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and int(port, 16) in ports:  # 0A: LISTEN
                found.add(address)
    return found


def test_demo_listens_on_loopback_with_its_own_secrets_and_dies_whole_with_kill_9() -> None:
    import redis

    from bot.standins.stack import AUDIT_WEBHOOK_TOKEN, SIGNING_SECRET
    from bot.standins.stack import wait_until as poll

    demo = Spawned(["demo"], _demo_env())
    try:
        demo.wait_for_line("━━ 1.", timeout=40)
        workdir, ports, _, redis_port = _what_it_started(demo.output)
        started = processes_mentioning(str(workdir))
        assert len(started) >= 2
        # Every local user can reach loopback: nothing listens beyond it, the fixed test secrets are
        # not the demo's, and its Redis wants a password.
        assert _listening_addresses(ports) <= {"0100007F", "00000000000000000000000001000000"}, ports
        for line in started:
            environ = Path(f"/proc/{line.split(':')[0]}/environ").read_bytes()
            assert SIGNING_SECRET.encode() not in environ
            assert AUDIT_WEBHOOK_TOKEN.encode() not in environ
        with pytest.raises(redis.RedisError):
            redis.Redis(port=redis_port, socket_timeout=5).ping()
        os.kill(demo.popen.pid, signal.SIGKILL)  # the demo alone, as `kill -9 <pid>` would
        demo.wait(timeout=30)
        poll(lambda: processes_mentioning(str(workdir)) == [], 60, "the demo's processes to end with it")
        assert not port_open(redis_port)
    finally:
        demo.kill_group()
        for line in processes_mentioning(str(workdir)) if "workdir" in locals() else []:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
