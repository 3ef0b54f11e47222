"""The RQ jobs. Each takes a request id (nothing pickled), finds the process's services and calls one.

Transient failures propagate so RQ retries them with backoff; ``on_failure`` (RQ's failure callback,
run after every failed attempt) makes a retry wait at least the ``TemporaryError``'s delay, and when
the last retry has failed too, records and reports that the job gave up. A permanent failure cannot be
fixed by retrying: it is written to the audit log and posted to the request's thread, never swallowed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rq.job import Job

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.ids import RequestId
from bot.ports import BreakglassError, PermanentError, TemporaryError
from bot.store import Draft

if TYPE_CHECKING:
    from workers.context import WorkerContext

log = logging.getLogger(__name__)

MAX_RETRY_WAIT = 300  # seconds


def current() -> WorkerContext:
    """The worker's parts, imported only when a job runs: the queue imports this module to name its
    jobs by reference, and a process that only enqueues (the web half) must not load the worker's
    clients for that."""
    from workers import context

    return context.current()


def _run(job: str, request_id: RequestId | None, work: Callable[[WorkerContext], Any]) -> None:
    context = current()
    try:
        work(context)
    except PermanentError as exc:
        log.error("%s failed permanently", job, extra={"request_id": request_id, "error": str(exc)})
        context.core.audit.append(Draft(Event.JOB_FAILED, SYSTEM_ACTOR, request_id, {"job": job, "error": str(exc)}))
        _tell_thread(context, job, request_id)


def _tell_thread(context: WorkerContext, job: str, request_id: RequestId | None) -> None:
    # Unless it is the thread that cannot be told: a publish that fails for good (a revoked token, an
    # archived channel) would otherwise queue itself for ever. Its entry waits for the next publish.
    if request_id is not None and job != "publish":
        context.core.jobs.publish(request_id)


def grant(request_id: RequestId) -> None:
    _run("grant", request_id, lambda c: c.grants.grant(request_id))


def revoke(request_id: RequestId) -> None:
    _run("revoke", request_id, lambda c: c.grants.revoke(request_id))


def remind(request_id: RequestId) -> None:
    _run("remind", request_id, lambda c: c.grants.remind(request_id))


def publish(request_id: RequestId) -> None:
    _run("publish", request_id, lambda c: c.publisher.publish(request_id))


def escalate(request_id: RequestId) -> None:
    _run("escalate", request_id, lambda c: c.core.automation.escalate(request_id, c.core.roster()))


def settle_escalation(request_id: RequestId) -> None:
    _run("settle_escalation", request_id, lambda c: c.core.automation.settle(request_id))


def reconcile() -> None:
    from workers.sweeper import sweep_once

    _run("reconcile", None, lambda c: sweep_once(c))


# --- after a failed attempt -------------------------------------------------------------------------


def on_failure(
    job: Job,
    connection: object,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ calls this after each failed attempt, before it decides whether and when to retry."""
    if job.retries_left:
        if isinstance(exc, TemporaryError) and exc.delay > 0:
            # Slack's or the API server's Retry-After: asking again sooner only earns another 429.
            waits = wait_at_least(job, exc.delay)
            log.info("%s retries in %ss", job.id, waits, extra={"request_id": _request_id(job), "delay": exc.delay})
        return
    gave_up(job, exc)


def gave_up(job: Job, exc: BaseException | None) -> None:
    """The last attempt failed: write it to the audit log and tell the thread, so that nothing ends
    silently after a long outage. What happens next is the sweep's, which never abandons a revoke
    (it ends every binding past its expiry or of an ended request) and queues a lost grant again."""
    kind = (job.func_name or "?").rsplit(".", 1)[-1]
    request_id = _request_id(job)
    error = _described(exc)
    attempts = int(job.meta.get("retries", 0)) + 1
    log.error("%s gave up after %d attempts", kind, attempts, extra={"request_id": request_id, "error": error})
    context = current()
    context.core.audit.append(
        Draft(Event.JOB_GAVE_UP, SYSTEM_ACTOR, request_id, {"job": kind, "attempts": attempts, "error": error})
    )
    _tell_thread(context, kind, request_id)


def wait_at_least(job: Job, seconds: float) -> int:
    """Make the retry RQ is about to schedule for ``job`` wait at least ``seconds``; the seconds it will wait.

    Called from the failure callback, which RQ runs on the job before ``Job.retry`` picks the interval
    for this attempt (``retry_intervals[len - retries_left]``, as in rq 3's ``Job.get_retry_interval``).
    Only this attempt's interval grows: the ones after it keep the backoff, and the retry budget is
    spent as usual. tests/workers/test_jobs.py checks the scheduled time on a real worker.
    """
    if not job.retries_left or not job.retry_intervals:
        return 0
    intervals = list(job.retry_intervals)
    index = min(max(len(intervals) - job.retries_left, 0), len(intervals) - 1)
    # A Retry-After past this (a proxy's 3600) would park a grant or a revoke's report for an hour;
    # asking again after five minutes costs at most one more refusal.
    wanted = min(seconds, MAX_RETRY_WAIT)
    # rq scores a scheduled job by the whole second it falls in (rounded down), so an interval of n
    # may run after only n - 1 seconds: the interval must exceed the wait by a second.
    if wanted > intervals[index] - 1:
        intervals[index] = math.ceil(wanted) + 1
    job.retry_intervals = intervals
    return intervals[index]


def _request_id(job: Job) -> RequestId | None:
    return RequestId(str(job.args[0])) if job.args else None


def _described(exc: BaseException | None) -> str:
    # Our own errors are worded by their adapters, which keep credentials out of them. Anything else
    # is a bug whose text may quote anything (a payload, a token): its type only; the log has the rest.
    if isinstance(exc, BreakglassError):
        return str(exc)
    return f"unexpected {type(exc).__name__}" if exc is not None else "unknown error"
