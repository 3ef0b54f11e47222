"""The same grant job run twice at once (two workers, a re-queued follow-up): the slower copy must not
leave its own expiry on the binding after the faster one recorded the grant (seen end-to-end in
``tests/e2e/test_several_workers.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bot.domain.audit import Event
from bot.domain.grants import BindingSpec, IssuedCredentials, format_instant
from bot.domain.lifecycle import State
from bot.roster_source import FixedRoster
from bot.services.grants import GrantService
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import FakeCluster, RecordingJobs, RecordingNotifier
from tests.services.conftest import Flows


class RacedCluster(FakeCluster):
    """The first create is held up; while it is, ``meanwhile`` runs (the other copy of the job)."""

    meanwhile: Callable[[], object] | None = None

    def apply_grant(self, spec: BindingSpec) -> IssuedCredentials | None:
        other, self.meanwhile = self.meanwhile, None
        if other is not None:
            assert self.clock is not None
            self.clock.advance(seconds=0.5)
            other()  # the fast copy makes the binding and records the grant
            self.clock.advance(seconds=1)  # then this slow create comes back: AlreadyExists, adopted
        return super().apply_grant(spec)


def test_slower_copy_of_a_grant_job_leaves_the_recorded_expiry_on_the_binding(
    store: RequestStore,
    roster: FixedRoster,
    jobs: RecordingJobs,
    notifier: RecordingNotifier,
    clock: FakeClock,
    flows: Flows,
) -> None:
    cluster = RacedCluster(clock=clock)
    grants = GrantService(store, roster, cluster, jobs, notifier, clock)
    request = flows.approved()
    cluster.meanwhile = lambda: grants.grant(request.id)

    grants.grant(request.id)

    active = store.get(request.id)
    assert active is not None
    assert active.state is State.ACTIVE
    assert active.expires_at == active.granted_at + timedelta(hours=1)  # type: ignore[operator]
    binding = cluster.binding("prod", request.id)
    assert binding is not None
    assert binding.annotations["breakglass.dev/expires-at"] == format_instant(active.expires_at)
    assert [e.event for e in store.audit.for_request(request.id)].count(Event.GRANTED) == 1
