"""The JobQueue port on RQ: deterministic job ids, so that asking twice runs once.

Job ids are ``<job>-<request id>`` for work that should happen now and ``<job>-<request id>-<epoch>``
for work scheduled at an instant (a revoke at expiry, a reminder). rq 3 refuses a second job with an
existing id atomically (``unique=True``, also for scheduled jobs). A finished or failed job keeps its
id for a while, so such a leftover is deleted and the job queued afresh; a job already *running* may
have read the request before the change that prompted this call, so a follow-up is queued behind it.

Jobs are enqueued by reference to their function in ``workers.jobs``; RQ stores the function's dotted
name, so a job scheduled before this (by that name, as a string) is the same job and still runs.

Every job with a retry policy also has ``workers.jobs.on_failure`` as its failure callback: it makes
the next attempt wait at least as long as a ``TemporaryError`` asked (a Slack ``Retry-After``), and
reports the job when its last attempt fails.

Whoever can write Redis can write a job. The worker holds cluster credentials that may bind
``cluster-admin``, so a job must never be able to name the code it runs: payloads are JSON (RQ's
``JSONSerializer``; rq's default unpickles, which runs code), and ``OwnJob`` runs only the project's
own job functions, with at most one string argument (a request id), and only its own failure
callback. Anything else fails as a job, running nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Callback, Queue, Retry, SimpleWorker
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import resolve_function_reference

from bot.domain.ids import RequestId
from workers import jobs

log = logging.getLogger(__name__)

JOB_TIMEOUT = 120
# Transient failures (API down, 5xx, 429) retry with backoff for about ten minutes; the sweep
# covers anything longer.
CLUSTER_RETRY = Retry(max=12, interval=[1, 2, 4, 8, 15, 30, 60, 60, 60, 120, 120, 120])
SLACK_RETRY = Retry(max=10, interval=[1, 2, 4, 8, 15, 30, 60, 60, 120, 120])

_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
_UNDER_WAY = {*_WAITING, JobStatus.STARTED}
ON_FAILURE = Callback(jobs.on_failure)


def stored_name(function: Callable[..., Any]) -> str:
    """The name RQ stores for a job enqueued by reference to ``function``."""
    return resolve_function_reference(function)[1]


# The only functions a job may run, and the only failure callback, by the name stored in Redis:
# everything else RQ would import by that name. Their names are the dotted strings jobs were enqueued
# by before (``workers.jobs.grant``), so a job already scheduled in a running installation resolves
# to the same function; no other name does.
JOB_FUNCTIONS: dict[str, Callable[..., None]] = {
    stored_name(function): function
    for function in (
        jobs.grant,
        jobs.revoke,
        jobs.remind,
        jobs.publish,
        jobs.reconcile,
        jobs.escalate,
        jobs.settle_escalation,
    )
}
FAILURE_CALLBACKS: dict[str, Callable[..., None]] = {stored_name(jobs.on_failure): jobs.on_failure}
SERIALIZER = JSONSerializer


class ForeignJob(RuntimeError):
    """A job this project did not write (an unknown function, an instance, odd arguments): not run."""


class OwnJob(Job):
    """An RQ job that resolves only the project's own job functions and callbacks."""

    @property
    def func(self) -> Any:
        name = self.func_name
        function = JOB_FUNCTIONS.get(name or "")
        if function is None or self.instance is not None:
            raise ForeignJob(f"job {self.id} names {name!r}, which is not one of breakglass's jobs; not run")
        args, kwargs = self.args, self.kwargs
        if kwargs or len(args) > 1 or not all(isinstance(arg, str) for arg in args):
            raise ForeignJob(f"job {self.id} has arguments breakglass's jobs never take; not run")
        return function

    @property
    def failure_callback(self) -> Any:
        name = self._failure_callback_name
        if not name:
            return None
        callback = FAILURE_CALLBACKS.get(name)
        if callback is None:
            log.error("job %s names the failure callback %r, which is not breakglass's; not run", self.id, name)
        return callback

    @property
    def success_callback(self) -> Any:
        return self._refused_callback("success", self._success_callback_name)

    @property
    def stopped_callback(self) -> Any:
        return self._refused_callback("stopped", self._stopped_callback_name)

    def _refused_callback(self, kind: str, name: str | None) -> None:
        # breakglass sets neither; one found in Redis was written by someone else.
        if name:
            log.error("job %s names a %s callback %r, which breakglass never sets; not run", self.id, kind, name)
        return None


class RqJobQueue:
    def __init__(self, connection: redis.Redis, prefix: str = "breakglass") -> None:
        self.connection = connection
        options: dict[str, Any] = {
            "connection": connection,
            "default_timeout": JOB_TIMEOUT,
            "job_class": OwnJob,
            "serializer": SERIALIZER,
        }
        self.cluster = Queue(f"{prefix}-cluster", **options)
        self.slack = Queue(f"{prefix}-slack", **options)

    @property
    def queues(self) -> list[Queue]:
        """In priority order: a backlog of Slack posts must never delay a revoke."""
        return [self.cluster, self.slack]

    def worker(self) -> SimpleWorker:
        """A worker on these queues that reads JSON and runs only ``OwnJob``s.

        SimpleWorker runs jobs in this process: the clients built once are reused by every job (a
        forking worker would rebuild them per job, or worse, share sockets across the fork)."""
        return SimpleWorker(self.queues, connection=self.connection, job_class=OwnJob, serializer=SERIALIZER)

    def fetch(self, job_id: str) -> Job:
        """The job stored under ``job_id``, as an ``OwnJob`` (rq's NoSuchJobError when there is none)."""
        return OwnJob.fetch(job_id, connection=self.connection, serializer=SERIALIZER)

    def grant(self, request_id: RequestId) -> bool:
        return self._enqueue(self.cluster, f"grant-{request_id}", jobs.grant, request_id, CLUSTER_RETRY)

    def revoke(self, request_id: RequestId, at: datetime | None = None) -> bool:
        if at is None:
            return self._enqueue(self.cluster, f"revoke-{request_id}", jobs.revoke, request_id, CLUSTER_RETRY)
        job_id = f"revoke-{request_id}-{int(at.timestamp())}"
        return self._enqueue(self.cluster, job_id, jobs.revoke, request_id, CLUSTER_RETRY, at=at)

    def revokes_waiting(self, ends: Sequence[tuple[RequestId, datetime]]) -> set[RequestId]:
        registry = self.cluster.scheduled_job_registry.key
        with self.connection.pipeline(transaction=False) as pipe:
            for request_id, at in ends:
                pipe.zscore(registry, f"revoke-{request_id}-{int(at.timestamp())}")
            scores = pipe.execute()
        return {request_id for (request_id, _), score in zip(ends, scores, strict=True) if score is not None}

    def revoke_under_way(self, request_id: RequestId) -> bool:
        return any(
            _status(self.connection, job_id) in _UNDER_WAY
            for job_id in (f"revoke-{request_id}", f"revoke-{request_id}-followup")
        )

    def remind(self, request_id: RequestId, at: datetime) -> bool:
        job_id = f"remind-{request_id}-{int(at.timestamp())}"
        return self._enqueue(self.slack, job_id, jobs.remind, request_id, SLACK_RETRY, at=at)

    def publish(self, request_id: RequestId) -> bool:
        return self._enqueue(self.slack, f"publish-{request_id}", jobs.publish, request_id, SLACK_RETRY)

    def escalate(self, request_id: RequestId, at: datetime) -> bool:
        # One per request, whenever it falls due: paging twice for one request helps nobody.
        job_id = f"escalate-{request_id}"
        return self._enqueue(self.slack, job_id, jobs.escalate, request_id, SLACK_RETRY, at=at)

    def settle_escalation(self, request_id: RequestId) -> bool:
        job_id = f"settle-escalation-{request_id}"
        return self._enqueue(self.slack, job_id, jobs.settle_escalation, request_id, SLACK_RETRY)

    def reconcile(self) -> bool:
        return self._enqueue(self.cluster, "reconcile-now", jobs.reconcile, None, None)

    def _enqueue(
        self,
        queue: Queue,
        job_id: str,
        func: Callable[..., None],
        request_id: RequestId | None,
        retry: Retry | None,
        at: datetime | None = None,
    ) -> bool:
        args: tuple[Any, ...] = (request_id,) if request_id is not None else ()
        for candidate in (job_id, f"{job_id}-followup"):
            outcome = self._try(queue, candidate, func, args, retry, at)
            if outcome is not None:
                return outcome
        return False  # a job and its follow-up are both running: the follow-up reads the newest state

    def _try(
        self,
        queue: Queue,
        job_id: str,
        func: Callable[..., None],
        args: tuple[Any, ...],
        retry: Retry | None,
        at: datetime | None,
    ) -> bool | None:
        """True: queued. False: an equal job is waiting. None: one is running; try the follow-up id."""
        for _ in range(2):
            try:
                options: dict[str, Any] = {
                    "job_id": job_id,
                    "unique": True,
                    "retry": retry,
                    "result_ttl": 300,
                    "failure_ttl": 7 * 24 * 3600,
                }
                if retry is not None:
                    options["on_failure"] = ON_FAILURE
                    options["meta"] = {"retries": retry.max}  # rq keeps no count of them for the report
                if at is not None:
                    queue.enqueue_at(at.astimezone(UTC), func, *args, **options)
                else:
                    queue.enqueue(func, *args, **options)
                return True
            except DuplicateJobError:
                status = _status(self.connection, job_id)
                if status in _WAITING:
                    return False
                if status == JobStatus.STARTED:
                    return None
                _delete(self.connection, job_id)  # finished, failed, stopped or vanished: start over
        return False


# Another process (a second web worker enqueuing the same job) may delete a finished job between our
# fetch and our next read of it; rq then raises InvalidJobOperation. That job has vanished: start over.
_GONE = (NoSuchJobError, InvalidJobOperation)


def _status(connection: redis.Redis, job_id: str) -> JobStatus | None:
    try:
        return OwnJob.fetch(job_id, connection=connection, serializer=SERIALIZER).get_status(refresh=True)
    except _GONE:
        return None


def _delete(connection: redis.Redis, job_id: str) -> None:
    with contextlib.suppress(*_GONE):
        OwnJob.fetch(job_id, connection=connection, serializer=SERIALIZER).delete()


def rq_connection(url: str) -> redis.Redis:
    """RQ stores its payloads as bytes, so its connection must not decode responses."""
    return redis.Redis.from_url(url, decode_responses=False, health_check_interval=30)
