"""The RQ jobs. Each takes a request id (nothing pickled), finds the process's services and calls one.

Transient failures propagate so RQ retries them with backoff. A permanent failure cannot be fixed
by retrying: it is written to the audit log and posted to the request's thread, never swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.domain.audit import SYSTEM_ACTOR, Event
from bot.domain.ids import RequestId
from bot.ports import PermanentError
from bot.store import Draft
from workers.context import WorkerContext, current

log = logging.getLogger(__name__)


def _run(job: str, request_id: RequestId | None, work: Callable[[WorkerContext], Any]) -> None:
    context = current()
    try:
        work(context)
    except PermanentError as exc:
        log.error("%s failed permanently", job, extra={"request_id": request_id, "error": str(exc)})
        context.core.audit.append(Draft(Event.JOB_FAILED, SYSTEM_ACTOR, request_id, {"job": job, "error": str(exc)}))
        # Tell the thread, unless it is the thread that cannot be told: a publish that fails for
        # good (a revoked token, an archived channel) would otherwise queue itself for ever.
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


def reconcile() -> None:
    from workers.sweeper import sweep_once

    _run("reconcile", None, lambda c: sweep_once(c))
