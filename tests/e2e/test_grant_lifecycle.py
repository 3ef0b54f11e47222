"""A grant's whole life with real processes: asked and approved over Slack, in place in the cluster,
honoured by the API server's authorizer, and gone on time; several grants of one person kept apart;
token-mode credentials that work exactly as long as the grant."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client import ApiException

from bot.domain.audit import Event
from bot.domain.lifecycle import AccessRequest, State
from bot.standins.stack import ALICE, BOB, CAROL, INCIDENT_CHANNEL, LocalStack, wait_until
from bot.wiring import Core
from tests.e2e.conftest import BindingWatch, events, grant_now, may_edit
from workers.kube import KubeClusters

pytestmark = pytest.mark.slow

ON_TIME = timedelta(seconds=5)  # revoke lateness allowed when nothing fails
REASON_TEXT = "INC-4411 checkout pods crash-looping"


def test_approved_request_is_granted_honoured_and_removed_at_expiry(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch
) -> None:
    web = stack.start_web()
    stack.start_worker()
    stack.wait_for_workers(1)
    slack = stack.sender(web)

    asked = slack.slash_command(ALICE, f"prod/payments admin 6s {REASON_TEXT}", channel_id=INCIDENT_CHANNEL)
    assert asked.status == 200
    root = wait_until(lambda: stack.slack.messages(INCIDENT_CHANNEL), 60, "the request's root message")[-1]
    (request,) = core.store.recent()
    assert (request.requester, request.cluster, request.namespace, request.role) == (ALICE, "prod", "payments", "admin")
    assert not may_edit(kube), "alice must have no access before the approvals"

    assert slack.click(BOB, "approve", request.id, root.ts, INCIDENT_CHANNEL).status == 200
    halfway = wait_until(lambda: _with_approvals(core, request.id, 1), 60, "bob's approval to be counted")
    assert halfway.state is State.PENDING, "one approval of two must not approve the request"
    assert not may_edit(kube)
    second_approval_at = time.time()
    assert slack.click(CAROL, "approve", request.id, root.ts, INCIDENT_CHANNEL).status == 200

    wait_until(lambda: watch.present(request.id), 60, "the binding")
    seen = watch.of(request.id)
    # An order, not a speed: the watch polls all along, and first saw the binding after the second click.
    assert seen.first_seen >= second_approval_at, "access must come with the second approval, not before"
    assert may_edit(kube), "the API server's authorizer must honour the binding"

    gone = watch.wait_gone(request.id, timeout=6 + 15)
    assert not may_edit(kube), "access must end with the binding"
    watch.assert_ended_on_time(request.id, timedelta(seconds=6), ON_TIME)
    assert gone.gone_at is not None

    ended = core.store.get(request.id)
    assert ended is not None
    assert ended.state is State.EXPIRED
    story = events(core, request.id)
    assert story.count(Event.APPROVED) == 2
    assert story.count(Event.GRANTED) == 1
    assert story.index(Event.GRANTED) < story.index(Event.EXPIRED) < story.index(Event.BINDING_DELETED)
    assert core.audit.verify().ok


def test_revoking_one_of_two_overlapping_grants_leaves_the_other_working(
    stack: LocalStack, core: Core, kube: KubeClusters, watch: BindingWatch
) -> None:
    web = stack.start_web()
    stack.start_worker()
    stack.wait_for_workers(1)
    first = grant_now(core, 600)
    second = grant_now(core, 600)
    wait_until(lambda: watch.present(first.id) and watch.present(second.id), 60, "both bindings")
    assert may_edit(kube)

    revoked = stack.sender(web).slash_command(ALICE, f"revoke {first.id}")
    assert revoked.status == 200

    watch.wait_gone(first.id, timeout=10)
    assert watch.present(second.id), "revoking one grant must not touch another grant's binding"
    assert may_edit(kube), "the other grant must still give access"
    assert [b["metadata"]["name"] for b in stack.bindings("prod")] == [f"breakglass-{second.id.lower()}"]
    assert core.store.get(first.id).state is State.REVOKED  # type: ignore[union-attr]
    assert core.store.get(second.id).state is State.ACTIVE  # type: ignore[union-attr]
    assert Event.BINDING_DELETED in events(core, first.id)
    assert Event.BINDING_DELETED not in events(core, second.id)
    assert core.audit.verify().ok


def test_token_mode_kubeconfig_works_until_the_grant_ends_and_not_after(
    stack: LocalStack, core: Core, watch: BindingWatch, tmp_path: Path
) -> None:
    stack.start_worker()
    stack.wait_for_workers(1)
    request = grant_now(core, 6, cluster="staging")

    upload = wait_until(lambda: stack.slack.files(ALICE), 60, "the kubeconfig in alice's DM")
    (kubeconfig,) = upload
    path = tmp_path / "alice-kubeconfig.yaml"
    path.write_bytes(kubeconfig.content)
    pods = client.CoreV1Api(config.new_client_from_config(config_file=str(path), persist_config=False))
    assert pods.list_namespaced_pod("payments").items == []  # authenticated and authorized

    with pytest.raises(ApiException) as other_namespace:
        pods.list_namespaced_pod("checkout")
    assert other_namespace.value.status == 403, "the token must be good for the granted namespace only"

    watch.wait_gone(request.id, timeout=6 + 15)
    watch.assert_ended_on_time(request.id, timedelta(seconds=6), ON_TIME)
    # The revoke deletes the ServiceAccount in its next call after the binding's: waited for, as a
    # loaded machine can put seconds between the two.
    wait_until(
        lambda: stack.clusters["staging"].snapshot("app.kubernetes.io/managed-by=breakglass")["serviceaccounts"] == [],
        60,
        "the grant's ServiceAccount to be deleted",
    )
    with pytest.raises(ApiException) as after:
        pods.list_namespaced_pod("payments")
    assert after.value.status == 401, "the token must stop authenticating when the grant ends"
    assert core.audit.verify().ok


def _lists_pods(kubeconfig: bytes, path: Path) -> int:
    """The status the API server answers a kubeconfig's ``list pods`` in payments with."""
    path.write_bytes(kubeconfig)
    pods = client.CoreV1Api(config.new_client_from_config(config_file=str(path), persist_config=False))
    try:
        pods.list_namespaced_pod("payments")
    except ApiException as refused:
        return int(refused.status)
    return 200


def test_token_mode_extension_sends_a_token_past_the_old_expiry_and_the_end_deletes_every_kubeconfig(
    stack: LocalStack, core: Core, watch: BindingWatch, tmp_path: Path
) -> None:
    """Findings 14 and 25: an extension moved the expiry but issued no token, so the holder lost access
    at the old time; and the kubeconfig stayed in the holder's DM after the grant ended."""
    web = stack.start_web()
    stack.start_worker()
    stack.wait_for_workers(1)
    slack = stack.sender(web)
    # Longer than a TokenRequest's ten-minute minimum, so the first token ends with the grant's first expiry.
    request = grant_now(core, 11 * 60, cluster="staging")
    (first,) = wait_until(lambda: stack.slack.files(ALICE), 60, "the kubeconfig in alice's DM")
    assert _lists_pods(first.content, tmp_path / "first.yaml") == 200
    # The kubeconfig is sent before the grant is committed: only an active grant can be extended.
    wait_until(lambda: (r := core.store.get(request.id)) is not None and r.state is State.ACTIVE, 60, "the grant")

    asked = slack.slash_command(ALICE, f"extend {request.id} 10m {REASON_TEXT}")
    assert asked.status == 200
    wait_until(lambda: len(stack.slack.files(ALICE)) == 2, 60, "a second kubeconfig in alice's DM")
    (second,) = [f for f in stack.slack.files(ALICE) if f.id != first.id]
    granted = wait_until(lambda: (r := core.store.get(request.id)) and r.extensions and r, 60, "the extension")
    assert granted.expires_at is not None
    assert granted.expires_at - request.created_at >= timedelta(minutes=21)

    # Past the first expiry, on the API server's clock: the first token has ended, the second has not.
    staging = stack.clusters["staging"]
    staging.shift_clock(timedelta(minutes=15))
    assert _lists_pods(first.content, tmp_path / "first.yaml") == 401
    assert _lists_pods(second.content, tmp_path / "second.yaml") == 200

    revoked = slack.slash_command(ALICE, f"revoke {request.id}")
    assert revoked.status == 200
    watch.wait_gone(request.id, timeout=60)
    wait_until(lambda: stack.slack.files(ALICE) == [], 60, "both kubeconfigs deleted from alice's DM")
    assert {c.params.get("file") for c in stack.slack.calls("files.delete") if c.ok} == {first.id, second.id}
    wait_until(
        lambda: staging.snapshot("app.kubernetes.io/managed-by=breakglass")["serviceaccounts"] == [],
        60,
        "the grant's ServiceAccount to be deleted",
    )
    assert _lists_pods(second.content, tmp_path / "second.yaml") == 401
    assert core.audit.verify().ok


def _with_approvals(core: Core, request_id: str, count: int) -> AccessRequest | None:
    request = core.store.get(request_id)
    return request if request is not None and len(request.approvals) >= count else None
