"""The latency step-up MFA adds to a request, with the OIDC provider stand-in and real processes.

    .venv/bin/python -m tests.benchmarks.bench_step_up [--rounds 20] [--redis-url URL]

Not collected by pytest. It starts the local stack (an embedded ``redis-server`` unless ``--redis-url``
names one, which is then FLUSHED), the OIDC provider stand-in and the real ``breakglass web``
(gunicorn), and measures, from the moment the signed ``/breakglass`` command is sent to the moment the
request is stored:

- step-up: ``admin`` (``step_up: [request]``): the command's answer carries the "Verify with …" link,
  which is followed as a browser would (``/oidc/start`` 302 → the provider's authorize 302 →
  ``/oidc/callback``, where discovery, the code exchange with PKCE, the JWKS and the ID token's checks
  run) until the request is stored; the link-following part is also reported alone;
- baseline: ``view`` (``step_up: []``), stored by the command itself, in the same run, interleaved.

A person's own time at the provider's sign-in page is not counted: the stand-in signs in at once.
The machine's load average is printed with the numbers: these machines are shared.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any

import requests

from bot.standins.oidc import CLIENT_ID, CLIENT_SECRET, OidcProviderDouble
from bot.standins.stack import ALICE, DEMO_ROSTER, INCIDENT_CHANNEL, LocalStack, local_stack, wait_until
from tests.benchmarks.bench_revocation import Stats

WARM_UP = 3
START = re.compile(r"https?://[^\s\"'>|]+/oidc/start/[A-Za-z0-9_-]+")


def _roster(provider: OidcProviderDouble) -> dict[str, Any]:
    roles = DEMO_ROSTER["roles"]
    return {
        **DEMO_ROSTER,
        "mfa": "oidc",
        "oidc": {"issuer": provider.issuer, "client_id": CLIENT_ID, "name": "Stand-in IdP", "max_age": "5m",
                 "amr": ["otp"], "step_up": []},
        "max_pending_requests": 100,
        "roles": {**roles, "admin": {**roles["admin"], "step_up": ["request"]}},
    }  # fmt: skip


def _stored(stack: LocalStack, before: set[str]) -> str:
    def new() -> str | None:
        now = set(stack.redis_client().zrange(f"{stack.key_prefix}:requests", 0, -1))
        return next(iter(now - before), None)

    found: str = wait_until(new, 60, "the request to be stored")
    return found


def one_request(stack: LocalStack, sender: Any, role: str) -> tuple[float, float]:
    """(command → stored, the link-following part alone) in seconds; the second is 0 without step-up."""
    before = set(stack.redis_client().zrange(f"{stack.key_prefix}:requests", 0, -1))
    started = time.perf_counter()
    reply = sender.slash_command(ALICE, f"prod/payments {role} 30m INC-4411 step-up benchmark",
                                 channel_id=INCIDENT_CHANNEL)  # fmt: skip
    assert reply.status == 200, reply.text
    if role == "view":
        _stored(stack, before)
        return time.perf_counter() - started, 0.0
    url = wait_until(lambda: _link(stack), 60, "the Verify link")
    followed = time.perf_counter()
    page = requests.get(url, timeout=30)
    assert page.status_code == 200, page.text
    _stored(stack, before)
    done = time.perf_counter()
    return done - started, done - followed


_seen: set[str] = set()


def _link(stack: LocalStack) -> str | None:
    for answer in stack.slack.ephemerals(user_id=ALICE):
        for url in START.findall(str(answer.blocks) + answer.text):
            if url not in _seen:
                _seen.add(url)
                return url
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_step_up", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    provider = OidcProviderDouble().start()
    env = {"BREAKGLASS_OIDC_CLIENT_SECRET": CLIENT_SECRET}
    try:
        with local_stack(roster=_roster(provider), redis_url=args.redis_url, extra_env=env) as stack:
            if args.redis_url:
                stack.redis_client().flushdb()
            web = stack.start_web()
            sender = stack.sender(web)
            stepped: list[float] = []
            followed: list[float] = []
            baseline: list[float] = []
            for round_ in range(WARM_UP + args.rounds):
                total, part = one_request(stack, sender, "admin")
                base, _ = one_request(stack, sender, "view")
                if round_ >= WARM_UP:
                    stepped.append(total)
                    followed.append(part)
                    baseline.append(base)
    finally:
        provider.stop()
    s, f, b = Stats(tuple(stepped)), Stats(tuple(followed)), Stats(tuple(baseline))
    load = os.getloadavg()
    print(f"command -> request stored, {args.rounds} rounds each (after {WARM_UP} unmeasured), seconds:")
    print(f"{'':34}{'p50':>8}{'p90':>8}{'max':>8}")
    print(f"{'with step-up (stand-in provider)':34}{s.p50:8.3f}{s.pct(90):8.3f}{s.max:8.3f}")
    print(f"{'  of which the link, followed':34}{f.p50:8.3f}{f.pct(90):8.3f}{f.max:8.3f}")
    print(f"{'without step-up (baseline)':34}{b.p50:8.3f}{b.pct(90):8.3f}{b.max:8.3f}")
    print(f"{'added by step-up (p50 difference)':34}{s.p50 - b.p50:8.3f}")
    print(f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
