"""Command to binding for an on-call automatic approval, against the PagerDuty stand-in, with real processes.

    .venv/bin/python -m tests.benchmarks.bench_auto_approval [--rounds 30] [--redis-url URL]

Not collected by pytest. It starts the local stack (an embedded ``redis-server`` unless ``--redis-url``
names one, which is then FLUSHED), the PagerDuty stand-in over HTTPS with Alice primary on call for
Payments, the real ``breakglass web`` (gunicorn) and one ``breakglass worker``, and measures, from the
moment the signed ``/breakglass`` command is sent to the web process to the moment the Kubernetes API
double stores the RoleBinding:

- auto: ``admin``, approved by the on-call rule (the web process asks PagerDuty ``GET /oncalls``
  before it stores the request; the worker's grant job re-checks the rule and creates the binding);
- baseline: ``emergency``, self-service break-glass (no lookup, no rule), measured in the same run,
  interleaved with the other so both see the same load.

Each automatic grant is revoked before the next round, so the daily cap and the pending quota never
interfere. The machine's load average is printed with the numbers: these machines are shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.standins import pagerduty as pagerduty_standin
from bot.standins.pagerduty import PagerDutyDouble
from bot.standins.stack import ALICE, DEMO_ROSTER, INCIDENT_CHANNEL, LocalStack, local_stack, wait_until
from tests.benchmarks.bench_revocation import ApiRecorder, Stats, binding_of

SCHEDULE, POLICY = "PSCHED01", "PPOLICY1"
AUTO = "prod/payments admin 30m INC-4411 on-call benchmark"
BASELINE = "prod/payments emergency 5m INC-4411 self-service benchmark"
WARM_UP = 3  # rounds first, unmeasured: each process builds its clients on first use
ROSTER: dict[str, Any] = {
    **DEMO_ROSTER,
    "max_pending_requests": 100,
    "roles": {
        **DEMO_ROSTER["roles"],
        "admin": {
            **DEMO_ROSTER["roles"]["admin"],
            "auto_approve": [{"name": "primary", "pagerduty_oncall": {"schedules": [SCHEDULE]}, "max_per_day": 100}],
        },
    },
}


def command_to_binding(stack: LocalStack, sender: Any, recorder: ApiRecorder, text: str) -> tuple[str, float]:
    before = set(stack.redis_client().zrange(f"{stack.key_prefix}:requests", 0, -1))
    started = time.time()
    reply = sender.slash_command(ALICE, text, channel_id=INCIDENT_CHANNEL)
    assert reply.status == 200, reply.text

    def new_request() -> str | None:
        now = set(stack.redis_client().zrange(f"{stack.key_prefix}:requests", 0, -1))
        return next(iter(now - before), None)

    request_id: str = wait_until(new_request, 60, "the request to be stored")
    recorder.wait_for(recorder.created, [binding_of(request_id)], 60)
    return request_id, recorder.created[binding_of(request_id)] - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_auto_approval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    pagerduty = PagerDutyDouble().start()
    now = datetime.now(UTC)
    pagerduty.put_on_call("alice@example.com", escalation_policy_id=POLICY, level=1, schedule_id=SCHEDULE,
                          start=now - timedelta(hours=1), end=now + timedelta(hours=12))  # fmt: skip
    env = {
        **pagerduty.trust_environ,
        "BREAKGLASS_PAGERDUTY_TOKEN": pagerduty_standin.TOKEN,
        "BREAKGLASS_PAGERDUTY_API_URL": pagerduty.base_url,
    }
    try:
        with local_stack(roster=ROSTER, redis_url=args.redis_url, extra_env=env, sweep_interval="30s") as stack:
            if args.redis_url:
                stack.redis_client().flushdb()
            recorder = ApiRecorder(stack.clusters["prod"])
            web = stack.start_web()
            stack.start_worker()
            stack.wait_for_workers(1)
            sender = stack.sender(web)
            auto: list[float] = []
            baseline: list[float] = []
            for round_ in range(WARM_UP + args.rounds):
                request_id, took = command_to_binding(stack, sender, recorder, AUTO)
                sender.slash_command(ALICE, f"revoke {request_id}", channel_id=INCIDENT_CHANNEL)
                _, base = command_to_binding(stack, sender, recorder, BASELINE)
                if round_ >= WARM_UP:
                    auto.append(took)
                    baseline.append(base)
            lookups = len(pagerduty.calls_to("GET", "/oncalls"))
    finally:
        pagerduty.stop()
    a, b = Stats(tuple(auto)), Stats(tuple(baseline))
    load = os.getloadavg()
    print(f"command -> binding, {args.rounds} rounds each (after {WARM_UP} unmeasured), seconds:")
    print(f"{'':28}{'p50':>8}{'p90':>8}{'max':>8}")
    print(f"{'on-call auto-approval':28}{a.p50:8.3f}{a.pct(90):8.3f}{a.max:8.3f}")
    print(f"{'self-service (baseline)':28}{b.p50:8.3f}{b.pct(90):8.3f}{b.max:8.3f}")
    print(f"{'ratio auto / baseline':28}{a.p50 / b.p50:8.2f}{a.pct(90) / b.pct(90):8.2f}{a.max / b.max:8.2f}")
    print(f"PagerDuty GET /oncalls calls: {lookups}")
    print(f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
