"""The RQ job queue against a real Redis: asking twice runs once, and leftovers never block a job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

import workers.queueing as queueing
from bot.domain.ids import RequestId
from workers.queueing import RqJobQueue, rq_connection

RID = RequestId("BG-7K2QXM")


@pytest.fixture
def connection(real_redis: redis.Redis, redis_url: str) -> Iterator[redis.Redis]:
    client = rq_connection(redis_url)
    yield client
    client.close()


@pytest.fixture
def jobs(connection: redis.Redis) -> RqJobQueue:
    return RqJobQueue(connection, prefix="bg-test")


def queued_ids(jobs: RqJobQueue) -> list[str]:
    return jobs.cluster.get_job_ids() + jobs.slack.get_job_ids()


def test_asking_for_the_same_grant_twice_queues_one_job(jobs: RqJobQueue) -> None:
    assert jobs.grant(RID) is True
    assert jobs.grant(RID) is False
    assert queued_ids(jobs) == [f"grant-{RID}"]


def test_job_ids_are_ones_rq_accepts_and_name_the_request(jobs: RqJobQueue) -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    jobs.grant(RID)
    jobs.revoke(RID)
    jobs.revoke(RID, at=at)
    jobs.remind(RID, at=at - timedelta(minutes=10))
    jobs.publish(RID)
    scheduled = ScheduledJobRegistry(queue=jobs.cluster).get_job_ids()
    assert set(queued_ids(jobs)) == {f"grant-{RID}", f"revoke-{RID}", f"publish-{RID}"}
    assert scheduled == [f"revoke-{RID}-{int(at.timestamp())}"]


def test_a_revoke_scheduled_twice_for_the_same_instant_is_scheduled_once(jobs: RqJobQueue) -> None:
    at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert jobs.revoke(RID, at=at) is True
    assert jobs.revoke(RID, at=at) is False
    assert ScheduledJobRegistry(queue=jobs.cluster).get_job_ids() == [f"revoke-{RID}-{int(at.timestamp())}"]


def test_revokes_waiting_names_the_grants_whose_revoke_at_that_expiry_is_scheduled(jobs: RqJobQueue) -> None:
    at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    other = RequestId("BG-OTHER2")
    jobs.revoke(RID, at=at)
    assert jobs.revokes_waiting([(RID, at), (other, at), (RID, at + timedelta(minutes=30))]) == {RID}


def test_a_revoke_for_now_is_under_way_while_queued_or_running_and_not_once_finished(jobs: RqJobQueue) -> None:
    assert not jobs.revoke_under_way(RID)
    jobs.revoke(RID, at=datetime(2030, 1, 1, 12, tzinfo=UTC))
    assert not jobs.revoke_under_way(RID), "a revoke at an expiry is the schedule, not a revoke under way"
    jobs.revoke(RID)
    assert jobs.revoke_under_way(RID)
    job = jobs.fetch(f"revoke-{RID}")
    jobs.cluster.remove(job)
    job.set_status(JobStatus.STARTED)
    assert jobs.revoke_under_way(RID)
    job.set_status(JobStatus.FINISHED)
    assert not jobs.revoke_under_way(RID)


def test_an_extension_schedules_a_second_revoke_at_the_new_expiry(jobs: RqJobQueue) -> None:
    first = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert jobs.revoke(RID, at=first)
    assert jobs.revoke(RID, at=first + timedelta(minutes=30))
    assert len(ScheduledJobRegistry(queue=jobs.cluster).get_job_ids()) == 2


def test_a_finished_job_with_the_same_id_is_replaced_by_a_new_one(jobs: RqJobQueue, connection: redis.Redis) -> None:
    jobs.grant(RID)
    job = jobs.fetch(f"grant-{RID}")
    jobs.cluster.remove(job)
    job.set_status(JobStatus.FINISHED)
    assert jobs.grant(RID) is True  # the sweep re-asking after a lost worker must not be blocked
    assert queued_ids(jobs) == [f"grant-{RID}"]
    assert jobs.fetch(f"grant-{RID}").get_status() == JobStatus.QUEUED


def test_a_running_job_gets_a_follow_up_that_reads_the_newer_state(jobs: RqJobQueue, connection: redis.Redis) -> None:
    jobs.revoke(RID)
    job = jobs.fetch(f"revoke-{RID}")
    jobs.cluster.remove(job)
    job.set_status(JobStatus.STARTED)
    assert jobs.revoke(RID) is True
    assert queued_ids(jobs) == [f"revoke-{RID}-followup"]
    assert jobs.revoke(RID) is False  # the follow-up is waiting: nothing more to add


def test_a_job_deleted_by_another_process_mid_check_counts_as_gone(
    jobs: RqJobQueue, connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs.publish(RID)
    job = jobs.fetch(f"publish-{RID}")
    jobs.slack.remove(job)
    job.set_status(JobStatus.FINISHED)
    real_fetch = queueing.OwnJob.fetch

    def fetch_then_lose(job_id: str, connection: redis.Redis, serializer: object) -> Job:
        fetched = real_fetch(job_id, connection=connection, serializer=serializer)
        connection.delete(fetched.key)  # another web worker deletes it between our two reads
        return fetched

    monkeypatch.setattr(queueing.OwnJob, "fetch", staticmethod(fetch_then_lose))
    assert jobs.publish(RID) is True
    monkeypatch.undo()
    assert queued_ids(jobs) == [f"publish-{RID}"]
