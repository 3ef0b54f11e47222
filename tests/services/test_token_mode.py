"""``credentials: token`` grants: an extension hands the holder a new token (the old one ends at the
old expiry), and the grant's end takes every kubeconfig it sent back out of the holder's DM."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.audit import Event
from bot.domain.ids import SlackUserId
from bot.roster_source import FixedRoster
from bot.services.grants import KUBECONFIG_FILE
from bot.store import RequestStore
from tests.conftest import FakeClock
from tests.fakes import BOB, FakeCluster, RecordingNotifier, roster_with
from tests.services.conftest import Flows

REASON = "INC-4411 still crash-looping after the rollback"


def token_mode(roster: FixedRoster) -> None:
    roster.roster = roster_with(clusters={"prod": {"credentials": "token"}})


def test_an_extension_in_token_mode_sends_a_new_token_valid_to_the_new_expiry(
    roster: FixedRoster, notifier: RecordingNotifier, store: RequestStore, flows: Flows
) -> None:
    # Finding 14: the extension moved the expiry but issued no token, so the holder lost access at
    # the old time.
    token_mode(roster)
    grant = flows.granted(duration=timedelta(minutes=30))
    assert grant.expires_at is not None
    extension = flows.access.extend(grant.id, grant.requester, timedelta(minutes=20), REASON)
    flows.access.approve(extension.id, SlackUserId(BOB))
    flows.grants.grant(extension.id)

    sent = [credentials for request_id, credentials in notifier.credentials if request_id == grant.id]
    assert len(sent) == 2
    assert sent[1].token_expires_at == grant.expires_at + timedelta(minutes=20)
    granted = [e for e in store.audit.for_request(extension.id) if e.event == Event.GRANTED][-1]
    assert granted.details["token_reissued"] is True
    assert granted.details[KUBECONFIG_FILE]


def test_no_new_token_for_an_extension_in_user_mode(notifier: RecordingNotifier, flows: Flows) -> None:
    grant = flows.granted(duration=timedelta(minutes=30))
    extension = flows.access.extend(grant.id, grant.requester, timedelta(minutes=20), REASON)
    flows.access.approve(extension.id, SlackUserId(BOB))
    flows.grants.grant(extension.id)
    assert notifier.credentials == []


def test_the_end_of_a_token_grant_deletes_every_kubeconfig_it_sent_from_the_dm(
    roster: FixedRoster, notifier: RecordingNotifier, cluster: FakeCluster, clock: FakeClock, flows: Flows
) -> None:
    # Finding 25: the kubeconfig stayed in the holder's DM after the grant ended.
    token_mode(roster)
    grant = flows.granted(duration=timedelta(minutes=30))
    extension = flows.access.extend(grant.id, grant.requester, timedelta(minutes=20), REASON)
    flows.access.approve(extension.id, SlackUserId(BOB))
    flows.grants.grant(extension.id)
    assert notifier.withdrawn == []

    clock.advance(minutes=51)
    flows.grants.revoke(grant.id)

    assert cluster.binding("prod", grant.id) is None
    assert sorted(notifier.withdrawn) == ["F00000001", "F00000002"]
