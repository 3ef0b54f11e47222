"""The fakes answer as the ports promise; a fake that drifts would make every service test lie."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.grants import BindingSpec
from bot.domain.ids import RequestId, SlackUserId
from bot.ports import (
    BindingConflict,
    BindingNotFound,
    ClusterRefused,
    ClusterUnavailable,
    TemporaryError,
    UnknownCluster,
)
from tests.fakes import ALICE, T0, FakeCluster, RecordingJobs, RecordingNotifier, access_request


def spec(request_id: str = "BG-222222", cluster: str = "prod", hours: int = 1) -> BindingSpec:
    return BindingSpec(
        request_id=RequestId(request_id),
        cluster=cluster,
        namespace="payments",
        cluster_role="view",
        credentials="user",
        kube_user="alice@example.com",
        requester=SlackUserId(ALICE),
        approvers=(),
        reason="INC-4411 checkout pods crash-looping",
        expires_at=T0 + timedelta(hours=hours),
    )


def test_apply_grant_is_idempotent_and_moves_the_expiry() -> None:
    cluster = FakeCluster()
    cluster.apply_grant(spec())
    cluster.apply_grant(spec(hours=2))
    assert len(cluster.bindings) == 1
    assert cluster.binding("prod", "BG-222222").expires_at == T0 + timedelta(hours=2)  # type: ignore[union-attr]


def test_a_name_taken_by_another_grant_conflicts() -> None:
    cluster = FakeCluster()
    cluster.plant("prod", "BG-333333", "payments", None, name="breakglass-bg-222222")
    with pytest.raises(BindingConflict):
        cluster.apply_grant(spec())


def test_remove_grant_reports_whether_something_was_there() -> None:
    cluster = FakeCluster()
    cluster.apply_grant(spec())
    assert cluster.remove_grant("prod", RequestId("BG-222222"), "payments") is True
    assert cluster.remove_grant("prod", RequestId("BG-222222"), "payments") is False


def test_set_expiry_on_a_missing_binding_is_not_found() -> None:
    with pytest.raises(BindingNotFound):
        FakeCluster().set_expiry(spec())


def test_list_managed_reads_the_cluster_alone() -> None:
    cluster = FakeCluster()
    cluster.apply_grant(spec())
    cluster.apply_grant(spec("BG-333333", cluster="staging"))
    [binding] = cluster.list_managed("prod")
    assert (binding.request_id, binding.namespace, binding.expires_at) == (
        "BG-222222",
        "payments",
        T0 + timedelta(hours=1),
    )


def test_failures_hit_the_next_matching_calls_only() -> None:
    cluster = FakeCluster()
    cluster.fail_next(2, ClusterUnavailable, cluster="prod", operations=["apply_grant"])
    cluster.list_managed("prod")  # another operation: unaffected
    cluster.apply_grant(spec(cluster="staging"))  # another cluster: unaffected
    for _ in range(2):
        with pytest.raises(ClusterUnavailable):
            cluster.apply_grant(spec())
    cluster.apply_grant(spec())
    cluster.fail_next(1, ClusterRefused)
    with pytest.raises(ClusterRefused):
        cluster.list_managed("staging")
    with pytest.raises(UnknownCluster):
        cluster.list_managed("qa")


def test_recording_jobs_queue_an_equal_job_once_until_it_ran() -> None:
    jobs = RecordingJobs()
    at = T0 + timedelta(hours=1)
    assert jobs.revoke(RequestId("BG-222222"), at=at) is True
    assert jobs.revoke(RequestId("BG-222222"), at=at) is False
    assert jobs.revoke(RequestId("BG-222222"), at=at + timedelta(seconds=1)) is True  # another instant
    assert jobs.revoke(RequestId("BG-222222")) is True  # now is not the same job as at expiry
    jobs.done("revoke", "BG-222222")
    assert jobs.revoke(RequestId("BG-222222"), at=at) is True
    assert len(jobs.of("revoke")) == 5
    assert len(jobs.queued("revoke")) == 4


def test_recording_notifier_keeps_one_thread_per_request() -> None:
    notifier = RecordingNotifier()
    request = access_request()
    ts = notifier.publish(request, [])
    assert notifier.publish(request, []) == ts
    assert notifier.publish(access_request(id=RequestId("BG-333333")), []) != ts
    notifier.fail_next(1)
    with pytest.raises(TemporaryError):
        notifier.publish(request, [])
    assert notifier.threads[request.id].states == ["pending", "pending"]
