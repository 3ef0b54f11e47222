"""The RQ jobs under a real ``SimpleWorker`` on real Redis: a permanent failure is audited and told to
the thread, a long Retry-After is waited out, and a job whose last retry fails says so.

The services behind the jobs are the real ones, with the fakes at our own ports (a ``FakeCluster``, a
recording Slack notifier) and the injected clock; RQ itself, its retries, callbacks and scheduled
registry are real, so what is asserted is what a worker process would do.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq import Callback, Queue, Retry
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry

import workers.context
import workers.jobs as job_functions
import workers.queueing as queueing
from bot.domain.audit import AuditEntry, Event
from bot.domain.ids import SlackUserId
from bot.domain.lifecycle import AccessRequest, State
from bot.domain.policy import Ask
from bot.ports import ClusterRefused, ClusterUnavailable, PermanentError, TemporaryError
from bot.roster_source import FixedRoster
from bot.settings import load_settings
from bot.wiring import build_core
from tests.conftest import TEST_SIGNING_KEY, FakeClock
from tests.fakes import ALICE, BOB, FakeCluster, RecordingNotifier, example_roster
from workers.context import WorkerContext, build_worker_context, install

REASON = "INC-4411 checkout pods crash-looping"


class SlackAnswers(RecordingNotifier):
    """The recording notifier, told how Slack answers the next publishes: ``(error or None)`` each."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Exception] = []

    def publish(self, request: AccessRequest, entries: Sequence[AuditEntry]) -> str | None:
        if self.answers:
            self.attempts += 1
            raise self.answers.pop(0)
        return super().publish(request, entries)


@pytest.fixture
def cluster(clock: FakeClock) -> FakeCluster:
    return FakeCluster(clock=clock)


@pytest.fixture
def slack() -> SlackAnswers:
    return SlackAnswers()


@pytest.fixture
def context(
    real_redis: redis.Redis, redis_url: str, clock: FakeClock, cluster: FakeCluster, slack: SlackAnswers
) -> Iterator[WorkerContext]:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-not-a-real-token",
            "SLACK_SIGNING_SECRET": "not-a-real-signing-secret",
            "BREAKGLASS_REDIS_URL": redis_url,
            "BREAKGLASS_KEY_PREFIX": "bg-jobs",
            "BREAKGLASS_SIGNING_KEY": TEST_SIGNING_KEY,
        }
    )
    core = build_core(settings, roster=FixedRoster(example_roster()), now=clock)
    core.audit._out = io.StringIO()  # the structured log copy: not this test's subject
    context = build_worker_context(settings, core=core, clusters=cluster, notifier=slack)
    previous = workers.context._context
    install(context)
    yield context
    workers.context._context = previous
    core.rq_redis.close()


def work(context: WorkerContext) -> None:
    """Run every job that is due now, as a worker process would, then stop."""
    jobs = context.core.jobs
    jobs.worker().work(burst=True, logging_level="ERROR")


def approved(context: WorkerContext) -> AccessRequest:
    access = context.core.access
    request = access.submit(Ask(SlackUserId(ALICE), "prod", "payments", "view", timedelta(hours=1), REASON))
    return access.approve(request.id, SlackUserId(BOB)).request


def events(context: WorkerContext, request_id: str) -> list[str]:
    return [e.event for e in context.core.audit.for_request(request_id)]


def posted(slack: SlackAnswers, request_id: str) -> list[str]:
    thread = slack.threads.get(request_id)
    return [e.event for e in thread.entries] if thread else []


def scheduled_at(context: WorkerContext, job_id: str) -> float | None:
    registry = ScheduledJobRegistry(queue=context.core.jobs.slack)
    score = context.core.jobs.connection.zscore(registry.key, job_id)
    return float(score) if score is not None else None


# --- permanent failures ----------------------------------------------------------------------------


def test_a_job_hitting_a_permanent_error_writes_job_failed_and_tells_the_thread(
    context: WorkerContext, cluster: FakeCluster, slack: SlackAnswers, clock: FakeClock
) -> None:
    request = approved(context)
    work(context)
    assert context.core.store.get(request.id).state is State.ACTIVE  # type: ignore[union-attr]
    context.core.access.revoke(request.id, SlackUserId(ALICE))
    cluster.fail_next(1, ClusterRefused, operations=["remove_grant"])  # e.g. the bot lost `delete`
    work(context)

    failed = [e for e in context.core.audit.for_request(request.id) if e.event == Event.JOB_FAILED]
    assert [(e.actor, e.details) for e in failed] == [
        ("system", {"job": "revoke", "error": "fake remove_grant on prod failed"})
    ]
    assert Event.JOB_FAILED in posted(slack, request.id)  # a person reads it in the thread
    assert cluster.binding("prod", request.id) is not None  # still there: the sweep's to end now


def test_a_publish_that_fails_for_good_is_audited_and_does_not_queue_itself_again(
    context: WorkerContext, slack: SlackAnswers
) -> None:
    request = approved(context)
    context.core.jobs.cluster.empty()  # only the Slack side is under test here
    slack.answers = [PermanentError("Slack said channel_not_found for chat.postMessage")]
    work(context)
    failed = [e for e in context.core.audit.for_request(request.id) if e.event == Event.JOB_FAILED]
    assert [e.details["job"] for e in failed] == ["publish"]
    assert context.core.jobs.slack.get_job_ids() == []
    assert ScheduledJobRegistry(queue=context.core.jobs.slack).get_job_ids() == []


# --- Retry-After -----------------------------------------------------------------------------------


def test_a_long_retry_after_schedules_the_retry_no_earlier_than_asked(
    context: WorkerContext, slack: SlackAnswers
) -> None:
    request = approved(context)
    context.core.jobs.cluster.empty()
    slack.answers = [TemporaryError("Slack rate-limited chat.postMessage; retry in 120s", delay=120)]
    before = time.time()
    work(context)

    job_id = f"publish-{request.id}"
    at = scheduled_at(context, job_id)
    assert at is not None, "the publish is waiting for its retry"
    assert at >= before + 120
    assert at <= time.time() + 122
    job = context.core.jobs.fetch(job_id)
    assert job.retries_left == queueing.SLACK_RETRY.max - 1  # one retry spent, as for any failure
    assert job.retry_intervals is not None
    assert job.retry_intervals[1:] == queueing.SLACK_RETRY.intervals[1:]  # later retries keep the backoff
    assert slack.attempts == 1  # not called again after 1 s, 2 s, 4 s


def test_a_failure_without_retry_after_keeps_the_backoff(context: WorkerContext, slack: SlackAnswers) -> None:
    request = approved(context)
    context.core.jobs.cluster.empty()
    slack.answers = [TemporaryError("Slack answered 503", delay=0)]
    before = time.time()
    work(context)
    at = scheduled_at(context, f"publish-{request.id}")
    assert at is not None
    assert int(before) + queueing.SLACK_RETRY.intervals[0] <= at <= time.time() + queueing.SLACK_RETRY.intervals[0]


def test_a_retry_after_within_a_second_of_the_backoff_still_waits_at_least_that_long(
    context: WorkerContext, slack: SlackAnswers
) -> None:
    # rq runs a job scheduled n seconds out after as little as n - 1 (it scores by whole seconds).
    request = approved(context)
    context.core.jobs.cluster.empty()
    slack.answers = [TemporaryError("Slack rate-limited chat.postMessage; retry in 1s", delay=1)]
    before = time.time()
    work(context)
    at = scheduled_at(context, f"publish-{request.id}")
    assert at is not None
    assert at >= before + 1


def test_an_absurd_retry_after_is_waited_out_for_five_minutes_at_most(
    context: WorkerContext, slack: SlackAnswers
) -> None:
    request = approved(context)
    context.core.jobs.cluster.empty()
    slack.answers = [TemporaryError("a proxy said: retry in 3600s", delay=3600)]
    before = time.time()
    work(context)
    at = scheduled_at(context, f"publish-{request.id}")
    assert at is not None
    assert before + job_functions.MAX_RETRY_WAIT <= at <= time.time() + job_functions.MAX_RETRY_WAIT + 2


def test_asking_again_while_a_retry_waits_out_retry_after_runs_once(
    context: WorkerContext, slack: SlackAnswers
) -> None:
    request = approved(context)
    context.core.jobs.cluster.empty()
    slack.answers = [TemporaryError("Slack rate-limited chat.postMessage; retry in 60s", delay=60)]
    work(context)
    assert context.core.jobs.publish(request.id) is False  # the waiting retry will post everything
    assert context.core.jobs.slack.get_job_ids() == []
    assert ScheduledJobRegistry(queue=context.core.jobs.slack).get_job_ids() == [f"publish-{request.id}"]


# --- the last retry --------------------------------------------------------------------------------


def at_once(message: str) -> ClusterUnavailable:
    """The API is down, and says nothing of when to come back (no Retry-After to wait out)."""
    return ClusterUnavailable(message, delay=0)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Retry:
    """Two immediate retries, so that a burst worker runs a job to its last attempt in one go."""
    retry = Retry(max=2, interval=[0, 0])
    monkeypatch.setattr(queueing, "CLUSTER_RETRY", retry)
    monkeypatch.setattr(queueing, "SLACK_RETRY", retry)
    return retry


def test_a_grant_whose_last_retry_fails_is_audited_and_told_to_the_thread(
    context: WorkerContext, cluster: FakeCluster, slack: SlackAnswers, quick_retries: Retry
) -> None:
    request = approved(context)
    cluster.fail_next(3, at_once, operations=["apply_grant"])  # down for every attempt
    work(context)

    assert cluster.calls.count(("apply_grant", "prod")) == 3
    gave_up = [e for e in context.core.audit.for_request(request.id) if e.event == Event.JOB_GAVE_UP]
    assert [(e.actor, e.details) for e in gave_up] == [
        ("system", {"job": "grant", "attempts": 3, "error": "fake apply_grant on prod failed"})
    ]
    assert Event.JOB_GAVE_UP in posted(slack, request.id)
    still = context.core.store.get(request.id)
    assert still is not None
    assert still.state is State.APPROVED  # the sweep queues it again while the approval is fresh


def test_a_revoke_whose_retries_run_out_is_reported_and_the_sweep_still_ends_the_grant(
    context: WorkerContext, cluster: FakeCluster, slack: SlackAnswers, clock: FakeClock, quick_retries: Retry
) -> None:
    request = approved(context)
    work(context)
    context.core.access.revoke(request.id, SlackUserId(ALICE))
    cluster.fail_next(3, at_once, operations=["remove_grant"])
    work(context)
    assert cluster.binding("prod", request.id) is not None
    assert Event.JOB_GAVE_UP in events(context, request.id)
    assert Event.JOB_GAVE_UP in posted(slack, request.id)

    context.reconciler.sweep()  # the cluster answers again: revocation is never abandoned
    assert cluster.binding("prod", request.id) is None
    assert events(context, request.id)[-1] == Event.SWEEP_DELETED


def test_an_unexpected_error_is_reported_by_its_type_only(
    context: WorkerContext, cluster: FakeCluster, slack: SlackAnswers, quick_retries: Retry
) -> None:
    request = approved(context)
    cluster.fail_next(3, lambda _: KeyError("xoxb-leaked-in-a-bug"), operations=["apply_grant"])  # type: ignore[arg-type,return-value]
    work(context)
    (gave_up,) = [e for e in context.core.audit.for_request(request.id) if e.event == Event.JOB_GAVE_UP]
    assert gave_up.details["error"] == "unexpected KeyError"


def test_a_grant_that_finally_runs_after_the_request_timeout_is_refused_not_made_late(
    context: WorkerContext, cluster: FakeCluster, slack: SlackAnswers, clock: FakeClock, quick_retries: Retry
) -> None:
    request = approved(context)
    cluster.fail_next(3, at_once, operations=["apply_grant"])
    work(context)
    clock.advance(minutes=31)  # a long outage: the sweep queues the grant again once the API is back
    assert context.core.jobs.grant(request.id) is True
    work(context)

    failed = context.core.store.get(request.id)
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.note is not None
    assert failed.note.startswith("it was approved 31m ago, longer than the request timeout (30m)")
    assert cluster.binding("prod", request.id) is None
    assert cluster.calls.count(("apply_grant", "prod")) == 3  # not even asked again
    assert posted(slack, request.id)[-1] == Event.GRANT_FAILED


# --- jobs written by someone else: whoever can write Redis can write a job -------------------------

CALLED: list[str] = []


def not_breakglass_callback(*args: object) -> None:
    """A function any job could name: importable in this process, with a visible effect."""
    CALLED.append("called")


class TouchesOnUnpickling:
    """A payload that runs code the moment it is unpickled (as rq's default serializer would)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


def foreign_queue(context: WorkerContext, serializer: object = "the worker's") -> Queue:
    # What someone with write access to Redis can do: use rq itself against the worker's queue, in
    # the format the worker reads (or any other).
    ours = context.core.jobs.cluster
    chosen = ours.serializer if serializer == "the worker's" else serializer
    return Queue(ours.name, connection=context.core.jobs.connection, serializer=chosen)


def test_a_job_naming_any_other_function_is_not_run(context: WorkerContext, tmp_path: Path) -> None:
    victim = tmp_path / "kept"
    victim.write_text("x")
    job = foreign_queue(context).enqueue("os.remove", str(victim), job_id="forged")
    work(context)
    assert victim.exists()
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert "not one of breakglass's jobs" in (job.latest_result().exc_string or "")  # type: ignore[union-attr]


def test_a_pickled_job_is_never_unpickled(context: WorkerContext, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    foreign_queue(context, serializer=None).enqueue("workers.jobs.publish", TouchesOnUnpickling(marker), job_id="pkl")
    work(context)
    assert not marker.exists()


@pytest.mark.parametrize("args", [(1,), ("BG-7K2QXM", "BG-9PQRST")], ids=["not-a-string", "two-arguments"])
def test_one_of_our_functions_with_other_arguments_is_not_run(context: WorkerContext, args: tuple[object, ...]) -> None:
    job = foreign_queue(context).enqueue("workers.jobs.revoke", *args, job_id="odd-args")
    work(context)
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert "arguments breakglass's jobs never take" in (job.latest_result().exc_string or "")  # type: ignore[union-attr]


def test_callbacks_other_than_ours_are_never_called(context: WorkerContext) -> None:
    CALLED.clear()
    callback = Callback(f"{__name__}.not_breakglass_callback")
    foreign_queue(context).enqueue("os.getpid", job_id="cb-fail", on_failure=callback, on_stopped=callback)
    foreign_queue(context).enqueue("workers.jobs.reconcile", job_id="cb-ok", on_success=callback)
    work(context)
    assert CALLED == []


# --- jobs by reference, and the names already scheduled ---------------------------------------------


def test_a_job_scheduled_by_its_old_dotted_name_still_runs(context: WorkerContext) -> None:
    # What a running installation holds from before jobs were enqueued by reference: the same names,
    # written as strings.
    request = approved(context)
    context.core.jobs.cluster.empty()
    job = foreign_queue(context).enqueue(
        "workers.jobs.grant", request.id, job_id=f"grant-{request.id}", on_failure=Callback("workers.jobs.on_failure")
    )
    work(context)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert context.core.store.get(request.id).state is State.ACTIVE  # type: ignore[union-attr]
    assert Event.GRANTED in events(context, request.id)


def test_a_job_enqueued_by_reference_is_stored_under_its_functions_dotted_name_and_runs(
    context: WorkerContext,
) -> None:
    request = approved(context)  # the approval enqueued the grant, by reference to workers.jobs.grant
    job = context.core.jobs.fetch(f"grant-{request.id}")
    assert (job.func_name, job._failure_callback_name) == ("workers.jobs.grant", "workers.jobs.on_failure")
    assert job.func is job_functions.grant
    work(context)
    assert context.core.store.get(request.id).state is State.ACTIVE  # type: ignore[union-attr]


def test_the_allow_list_is_the_job_functions_and_nothing_else() -> None:
    names = {"grant", "revoke", "remind", "publish", "reconcile", "escalate", "settle_escalation"}
    assert {f"workers.jobs.{name}": getattr(job_functions, name) for name in names} == queueing.JOB_FUNCTIONS
    assert {"workers.jobs.on_failure": job_functions.on_failure} == queueing.FAILURE_CALLBACKS


@pytest.mark.parametrize(
    "name", ["workers.jobs.gave_up", "workers.jobs.current", "workers.jobs._run", "workers.jobs.on_failure"]
)
def test_another_function_of_the_jobs_module_is_not_run_as_a_job(context: WorkerContext, name: str) -> None:
    job = foreign_queue(context).enqueue(name, "BG-7K2QXM", job_id="not-a-job")
    work(context)
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert "not one of breakglass's jobs" in (job.latest_result().exc_string or "")  # type: ignore[union-attr]
