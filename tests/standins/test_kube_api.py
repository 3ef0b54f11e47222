# The client's models declare every field Optional; a test dereferencing one that is None fails anyway.
# mypy: disable-error-code="union-attr,index"
"""The Kubernetes API double, driven only through the official client over real HTTP.

Each behaviour asserted here is one kube-apiserver has; a test failing means the double would let an
adapter pass against something a real cluster would not do.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException

from bot.standins.kube import KubeApiServer, write_kubeconfig
from tests.conftest import FakeClock

RBAC = "rbac.authorization.k8s.io"

Connect = Callable[..., ApiClient]


def new_client(path: Path, context: str | None = None) -> ApiClient:
    """An ApiClient from a kubeconfig, without urllib3's own retries (they would sleep on Retry-After)."""
    configuration = client.Configuration()
    configuration.retries = False
    return config.new_client_from_config(
        config_file=str(path), context=context, persist_config=False, client_configuration=configuration
    )


@pytest.fixture
def kube(clock: FakeClock) -> Iterator[KubeApiServer]:
    with KubeApiServer(now=clock, namespaces=["payments", "staging"]) as server:
        yield server


@pytest.fixture
def connect(kube: KubeApiServer, tmp_path: Path) -> Iterator[Connect]:
    """An ApiClient for ``token`` (the admin's by default), configured from a kubeconfig file."""
    made: list[ApiClient] = []

    def _connect(token: str | None = None, server: KubeApiServer | None = None) -> ApiClient:
        path = (server or kube).write_kubeconfig(tmp_path / f"kubeconfig-{len(made)}", "double", token=token)
        api = new_client(path, "double")
        made.append(api)
        return api

    yield _connect
    for api in made:
        api.close()


@pytest.fixture
def admin(connect: Connect) -> ApiClient:
    return connect()


@pytest.fixture
def rbac(admin: ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(admin)


@pytest.fixture
def core(admin: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(admin)


def status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body or "null")
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def binding(
    name: str,
    *,
    role: str = "view",
    user: str | None = "alice@example.com",
    subjects: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    role_kind: str = "ClusterRole",
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": subjects if subjects is not None else [{"apiGroup": RBAC, "kind": "User", "name": user}],
    }


def model_from(body: dict[str, Any], kind: str) -> object:
    """The client's model for ``body``, built as the client builds one from an answer it reads."""
    answer = urllib3.HTTPResponse(body=json.dumps(body).encode(), status=200, preload_content=True)
    return ApiClient().deserialize(answer, kind)


def rb_from(body: dict[str, Any]) -> client.V1RoleBinding:
    return cast(client.V1RoleBinding, model_from(body, "V1RoleBinding"))


def crb_from(body: dict[str, Any]) -> client.V1ClusterRoleBinding:
    return cast(client.V1ClusterRoleBinding, model_from(body, "V1ClusterRoleBinding"))


def rb(name: str, **kwargs: Any) -> client.V1RoleBinding:
    return rb_from(binding(name, **kwargs))


def crb(name: str, **kwargs: Any) -> client.V1ClusterRoleBinding:
    return crb_from(binding(name, **kwargs))


def cluster_role(name: str, rules: list[dict[str, Any]]) -> client.V1ClusterRole:
    return cast(client.V1ClusterRole, model_from({"metadata": {"name": name}, "rules": rules}, "V1ClusterRole"))


def role(name: str, rules: list[dict[str, Any]]) -> client.V1Role:
    return cast(client.V1Role, model_from({"metadata": {"name": name}, "rules": rules}, "V1Role"))


def sa(name: str, labels: dict[str, str] | None = None) -> client.V1ServiceAccount:
    return client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name, labels=labels))


def may(
    api: ApiClient,
    verb: str,
    resource: str,
    *,
    user: str = "alice@example.com",
    groups: list[str] | None = None,
    namespace: str | None = None,
    group: str = "",
    name: str | None = None,
    subresource: str | None = None,
) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=groups,
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=resource, namespace=namespace, group=group, name=name, subresource=subresource
            ),
        )
    )
    return bool(client.AuthorizationV1Api(api).create_subject_access_review(review).status.allowed)


def service_account_token(core: client.CoreV1Api, namespace: str, name: str, seconds: int = 600) -> str:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    return str(core.create_namespaced_service_account_token(name, namespace, request).status.token)


# --- objects, Status bodies and metadata -------------------------------------------------------------


def test_created_binding_reads_back_with_uid_resource_version_and_creation_time(
    rbac: client.RbacAuthorizationV1Api, clock: FakeClock
) -> None:
    created = rbac.create_namespaced_role_binding("payments", rb("breakglass-bg-aaaaaa"))
    read = rbac.read_namespaced_role_binding("breakglass-bg-aaaaaa", "payments")
    assert read.metadata.uid == created.metadata.uid
    assert len(str(read.metadata.uid)) == 36
    assert read.metadata.resource_version == created.metadata.resource_version
    assert read.metadata.resource_version.isdigit()
    assert read.metadata.creation_timestamp == clock().replace(microsecond=0)
    assert read.role_ref.name == "view"
    assert read.subjects[0].name == "alice@example.com"


def test_each_write_gets_a_higher_resource_version(rbac: client.RbacAuthorizationV1Api) -> None:
    first = rbac.create_namespaced_role_binding("payments", rb("one"))
    second = rbac.create_namespaced_role_binding("payments", rb("two"))
    patched = rbac.patch_namespaced_role_binding("one", "payments", {"metadata": {"annotations": {"a": "b"}}})
    versions = [int(str(o.metadata.resource_version)) for o in (first, second, patched)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


def test_subject_api_group_is_defaulted_for_users(rbac: client.RbacAuthorizationV1Api) -> None:
    body = binding("defaulted", subjects=[{"kind": "User", "name": "alice@example.com"}])
    del body["roleRef"]["apiGroup"]
    created = rbac.create_namespaced_role_binding("payments", rb_from(body))
    assert created.subjects[0].api_group == RBAC
    assert created.role_ref.api_group == RBAC


def test_creating_an_existing_binding_answers_409_already_exists(rbac: client.RbacAuthorizationV1Api) -> None:
    rbac.create_namespaced_role_binding("payments", rb("breakglass-bg-aaaaaa"))
    with pytest.raises(ApiException) as caught:
        rbac.create_namespaced_role_binding("payments", rb("breakglass-bg-aaaaaa"))
    status = status_of(caught.value)
    assert caught.value.status == 409
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'rolebindings.rbac.authorization.k8s.io "breakglass-bg-aaaaaa" already exists'
    assert status["details"] == {"name": "breakglass-bg-aaaaaa", "group": RBAC, "kind": "rolebindings"}


def test_reading_a_missing_object_answers_404_not_found(
    rbac: client.RbacAuthorizationV1Api, core: client.CoreV1Api
) -> None:
    with pytest.raises(ApiException) as caught:
        rbac.read_cluster_role_binding("nope")
    status = status_of(caught.value)
    assert status["reason"] == "NotFound"
    assert status["details"]["kind"] == "clusterrolebindings"
    assert status["message"] == 'clusterrolebindings.rbac.authorization.k8s.io "nope" not found'
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_service_account("nope", "payments")
    assert status_of(caught.value)["message"] == 'serviceaccounts "nope" not found'


def test_binding_in_a_missing_namespace_answers_404_for_the_namespace(rbac: client.RbacAuthorizationV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        rbac.create_namespaced_role_binding("nowhere", rb("b"))
    status = status_of(caught.value)
    assert caught.value.status == 404
    assert status["message"] == 'namespaces "nowhere" not found'
    assert status["details"] == {"name": "nowhere", "kind": "namespaces"}


def test_deleting_a_binding_answers_status_success_naming_its_uid(rbac: client.RbacAuthorizationV1Api) -> None:
    created = rbac.create_cluster_role_binding(crb("breakglass-bg-aaaaaa"))
    # Read as the wire carries it: the client's own model of a delete's answer differs between its majors.
    answer = json.loads(rbac.delete_cluster_role_binding("breakglass-bg-aaaaaa", _preload_content=False).data)
    assert answer == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": "breakglass-bg-aaaaaa",
            "group": RBAC,
            "kind": "clusterrolebindings",
            "uid": created.metadata.uid,
        },
    }
    with pytest.raises(ApiException) as caught:
        rbac.delete_cluster_role_binding("breakglass-bg-aaaaaa")
    assert caught.value.status == 404


def test_deleting_a_service_account_answers_the_deleted_object(core: client.CoreV1Api) -> None:
    core.create_namespaced_service_account("payments", sa("bg"))
    deleted = core.delete_namespaced_service_account("bg", "payments")
    assert deleted.metadata.name == "bg"
    assert deleted.kind == "ServiceAccount"


def test_delete_with_another_uid_as_precondition_answers_409_conflict(rbac: client.RbacAuthorizationV1Api) -> None:
    rbac.create_namespaced_role_binding("payments", rb("b"))
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000"))
    with pytest.raises(ApiException) as caught:
        rbac.delete_namespaced_role_binding("b", "payments", body=options)
    assert caught.value.status == 409
    assert status_of(caught.value)["reason"] == "Conflict"
    assert "Precondition failed: UID in precondition" in status_of(caught.value)["message"]
    assert rbac.read_namespaced_role_binding("b", "payments")


def test_replace_with_a_stale_resource_version_answers_409_conflict(rbac: client.RbacAuthorizationV1Api) -> None:
    stale = rbac.create_namespaced_role_binding("payments", rb("b"))
    rbac.patch_namespaced_role_binding("b", "payments", {"metadata": {"annotations": {"first": "write"}}})
    stale.metadata.annotations = {"second": "write"}
    with pytest.raises(ApiException) as caught:
        rbac.replace_namespaced_role_binding("b", "payments", stale)
    status = status_of(caught.value)
    assert caught.value.status == 409
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]


def test_replace_without_resource_version_is_unconditional(rbac: client.RbacAuthorizationV1Api) -> None:
    rbac.create_namespaced_role_binding("payments", rb("b"))
    body = binding("b", labels={"x": "y"})
    replaced = rbac.replace_namespaced_role_binding("b", "payments", rb_from(body))
    assert replaced.metadata.labels == {"x": "y"}


def test_replacing_a_missing_binding_creates_it_as_rbac_kinds_allow(rbac: client.RbacAuthorizationV1Api) -> None:
    created = rbac.replace_namespaced_role_binding("fresh", "payments", rb("fresh"))
    assert created.metadata.uid
    assert rbac.read_namespaced_role_binding("fresh", "payments")


def test_no_op_update_keeps_the_resource_version(rbac: client.RbacAuthorizationV1Api) -> None:
    created = rbac.create_namespaced_role_binding("payments", rb("b", labels={"x": "y"}))
    again = rbac.patch_namespaced_role_binding("b", "payments", {"metadata": {"labels": {"x": "y"}}})
    assert again.metadata.resource_version == created.metadata.resource_version


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/strategic-merge-patch+json"])
def test_merge_patches_change_annotations_and_keep_the_rest(
    rbac: client.RbacAuthorizationV1Api, content_type: str
) -> None:
    body = binding("b")
    body["metadata"]["annotations"] = {"keep": "me", "drop": "me", "move": "old"}
    rbac.create_namespaced_role_binding("payments", rb_from(body))
    patch = {"metadata": {"annotations": {"drop": None, "move": "new"}}}
    patched = rbac.patch_namespaced_role_binding("b", "payments", patch, _content_type=content_type)
    assert patched.metadata.annotations == {"keep": "me", "move": "new"}
    assert patched.subjects[0].name == "alice@example.com"


def test_json_patch_applies_its_operations_in_order(rbac: client.RbacAuthorizationV1Api) -> None:
    rbac.create_namespaced_role_binding("payments", rb("b"))
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": "/metadata/annotations/breakglass.dev~1expires-at", "value": "2026-11-27T10:00:00Z"},
        {"op": "add", "path": "/subjects/-", "value": {"apiGroup": RBAC, "kind": "User", "name": "bob@example.com"}},
        {"op": "test", "path": "/subjects/0/name", "value": "alice@example.com"},
    ]
    patched = rbac.patch_namespaced_role_binding("b", "payments", ops)
    assert patched.metadata.annotations == {"breakglass.dev/expires-at": "2026-11-27T10:00:00Z"}
    assert [s.name for s in patched.subjects] == ["alice@example.com", "bob@example.com"]


def test_failed_json_patch_test_operation_changes_nothing(rbac: client.RbacAuthorizationV1Api) -> None:
    created = rbac.create_namespaced_role_binding("payments", rb("b"))
    ops: list[dict[str, Any]] = [
        {"op": "remove", "path": "/subjects/0"},
        {"op": "test", "path": "/metadata/name", "value": "other"},
    ]
    with pytest.raises(ApiException) as caught:
        rbac.patch_namespaced_role_binding("b", "payments", ops)
    assert caught.value.status == 422
    after = rbac.read_namespaced_role_binding("b", "payments")
    assert after.metadata.resource_version == created.metadata.resource_version
    assert after.subjects


@pytest.mark.parametrize(
    "change",
    [
        {"roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"}},
        {"roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "view"}},
    ],
)
def test_role_ref_cannot_change_after_creation(rbac: client.RbacAuthorizationV1Api, change: dict[str, Any]) -> None:
    rbac.create_namespaced_role_binding("payments", rb("b"))
    with pytest.raises(ApiException) as caught:
        rbac.patch_namespaced_role_binding("b", "payments", change, _content_type="application/merge-patch+json")
    status = status_of(caught.value)
    assert caught.value.status == 422
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('RoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef: Invalid value')
    assert status["message"].endswith("cannot change roleRef")
    assert status["details"]["kind"] == "RoleBinding"
    assert status["details"]["group"] == RBAC
    assert [c["field"] for c in status["details"]["causes"]] == ["roleRef"]


def test_replace_cannot_change_role_ref_either(rbac: client.RbacAuthorizationV1Api) -> None:
    rbac.create_cluster_role_binding(crb("b"))
    with pytest.raises(ApiException) as caught:
        rbac.replace_cluster_role_binding("b", crb("b", role="edit"))
    assert caught.value.status == 422
    assert "cannot change roleRef" in status_of(caught.value)["message"]


def _create(api: ApiClient, kind: str, name: str) -> None:
    rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    if kind == "RoleBinding":
        rbac.create_namespaced_role_binding("payments", rb(name))
    elif kind == "ClusterRole":
        rbac.create_cluster_role(cluster_role(name, []))
    elif kind == "ServiceAccount":
        core.create_namespaced_service_account("payments", sa(name))
    else:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("RoleBinding", "system:breakglass:Upper_Case"),  # RBAC names only need to be a path segment
        ("ClusterRole", "system:controller:x"),
        ("ServiceAccount", "breakglass-bg-7k2qxm"),
        ("ServiceAccount", "a.b"),  # a DNS-1123 subdomain may contain dots
        ("Namespace", "payments-eu"),
    ],
)
def test_names_valid_for_their_kind_are_accepted(admin: ApiClient, kind: str, name: str) -> None:
    _create(admin, kind, name)


@pytest.mark.parametrize(
    ("kind", "name", "complaint"),
    [
        ("RoleBinding", "a/b", "may not contain '/'"),
        ("RoleBinding", "..", "may not be '..'"),
        ("ServiceAccount", "Bad_Name", "a lowercase RFC 1123 subdomain must consist of"),
        ("Namespace", "a.b", "a lowercase RFC 1123 label must consist of"),
        ("Namespace", "x" * 64, "must be no more than 63 characters"),
    ],
)
def test_names_invalid_for_their_kind_answer_422_with_a_cause(
    admin: ApiClient, kind: str, name: str, complaint: str
) -> None:
    with pytest.raises(ApiException) as caught:
        _create(admin, kind, name)
    status = status_of(caught.value)
    assert caught.value.status == 422
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == kind
    assert status["details"]["name"] == name
    causes = [c for c in status["details"]["causes"] if c["field"] == "metadata.name"]
    assert causes
    assert all(c["reason"] == "FieldValueInvalid" for c in causes)
    assert any(complaint in c["message"] for c in causes)


def test_label_values_must_be_valid(rbac: client.RbacAuthorizationV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        rbac.create_namespaced_role_binding("payments", rb("b", labels={"breakglass.dev/request-id": "BG 7K2QXM"}))
    causes = status_of(caught.value)["details"]["causes"]
    assert [c["field"] for c in causes] == ["metadata.labels"]


def test_binding_subjects_and_role_ref_are_validated(rbac: client.RbacAuthorizationV1Api) -> None:
    body = binding("b", subjects=[{"kind": "ServiceAccount", "name": "bg"}, {"kind": "Robot", "name": "r2"}])
    body["roleRef"]["kind"] = "Role"
    with pytest.raises(ApiException) as caught:
        rbac.create_cluster_role_binding(crb_from(body))
    fields = sorted(c["field"] for c in status_of(caught.value)["details"]["causes"])
    assert fields == ["roleRef.kind", "subjects[0].namespace", "subjects[1].kind"]


def test_deleting_a_namespace_removes_what_was_in_it(
    rbac: client.RbacAuthorizationV1Api, core: client.CoreV1Api, kube: KubeApiServer
) -> None:
    rbac.create_namespaced_role_binding("staging", rb("b"))
    core.create_namespaced_service_account("staging", sa("sa"))
    gone = json.loads(core.delete_namespace("staging", _preload_content=False).data)  # the wire's object, not a Status
    assert gone["kind"] == "Namespace"
    assert gone["status"]["phase"] == "Terminating"
    assert kube.snapshot() == {
        "rolebindings": [],
        "clusterrolebindings": kube.snapshot()["clusterrolebindings"],
        "serviceaccounts": [],
    }
    with pytest.raises(ApiException):
        core.read_namespace("staging")


# --- lists and selectors ------------------------------------------------------------------------------


@pytest.fixture
def labelled(rbac: client.RbacAuthorizationV1Api) -> None:
    rbac.create_namespaced_role_binding("payments", rb("a", labels={"tier": "gold", "managed": "yes"}))
    rbac.create_namespaced_role_binding("staging", rb("b", labels={"tier": "silver", "managed": "yes"}))
    rbac.create_namespaced_role_binding("payments", rb("c", labels={"tier": "bronze"}))
    rbac.create_namespaced_role_binding("default", rb("d"))


@pytest.mark.usefixtures("labelled")
@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("", ["d", "a", "c", "b"]),
        ("managed=yes", ["a", "b"]),
        ("managed==yes", ["a", "b"]),
        ("tier!=gold", ["d", "c", "b"]),  # != also selects objects without the label
        ("managed", ["a", "b"]),
        ("!managed", ["d", "c"]),
        ("tier in (gold, bronze)", ["a", "c"]),
        ("tier notin (gold,bronze)", ["d", "b"]),
        ("managed=yes,tier=silver", ["b"]),
    ],
)
def test_listing_across_namespaces_filters_by_label_selector(
    rbac: client.RbacAuthorizationV1Api, selector: str, names: list[str]
) -> None:
    listed = rbac.list_role_binding_for_all_namespaces(label_selector=selector)
    assert [i.metadata.name for i in listed.items] == names
    assert listed.kind == "RoleBindingList"
    assert listed.metadata.resource_version.isdigit()


@pytest.mark.usefixtures("labelled")
def test_listing_one_namespace_sees_only_that_namespace(rbac: client.RbacAuthorizationV1Api) -> None:
    listed = rbac.list_namespaced_role_binding("payments", label_selector="managed")
    assert [i.metadata.name for i in listed.items] == ["a"]


@pytest.mark.usefixtures("labelled")
def test_list_items_carry_no_kind_and_pages_follow_continue(kube: KubeApiServer, admin: ApiClient) -> None:
    code, page = _get(kube, "/apis/rbac.authorization.k8s.io/v1/rolebindings?limit=3", kube.admin_token)
    assert code == 200
    assert len(page["items"]) == 3
    assert "kind" not in page["items"][0]
    assert "apiVersion" not in page["items"][0]
    assert page["metadata"]["remainingItemCount"] == 1
    rest = client.RbacAuthorizationV1Api(admin).list_role_binding_for_all_namespaces(
        limit=3, _continue=page["metadata"]["continue"]
    )
    assert [i.metadata.name for i in rest.items] == ["b"]
    assert rest.metadata._continue is None


@pytest.mark.parametrize("selector", ["tier in gold", "=x", "tier==a b", "a,,b"])
def test_malformed_label_selector_answers_400_bad_request(rbac: client.RbacAuthorizationV1Api, selector: str) -> None:
    with pytest.raises(ApiException) as caught:
        rbac.list_role_binding_for_all_namespaces(label_selector=selector)
    assert caught.value.status == 400
    assert status_of(caught.value)["reason"] == "BadRequest"


def test_field_selector_on_name_is_supported(rbac: client.RbacAuthorizationV1Api) -> None:
    rbac.create_namespaced_role_binding("payments", rb("a"))
    rbac.create_namespaced_role_binding("payments", rb("b"))
    listed = rbac.list_namespaced_role_binding("payments", field_selector="metadata.name=b")
    assert [i.metadata.name for i in listed.items] == ["b"]


# --- authentication and ServiceAccount tokens ----------------------------------------------------------


def _get(kube: KubeApiServer, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(kube.url + path)  # noqa: S310 - always http://127.0.0.1
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - always http://127.0.0.1
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_requests_without_a_valid_token_answer_401(kube: KubeApiServer, token: str | None) -> None:
    code, body = _get(kube, "/api/v1/namespaces", token)
    assert code == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


@pytest.fixture
def pod(kube: KubeApiServer) -> None:
    kube.seed(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "checkout-1", "namespace": "payments"},
            "spec": {"containers": [{"name": "app", "image": "checkout:1"}]},
        }
    )


@pytest.mark.usefixtures("pod")
def test_minted_token_authenticates_until_its_service_account_is_deleted(
    core: client.CoreV1Api, rbac: client.RbacAuthorizationV1Api, connect: Connect
) -> None:
    core.create_namespaced_service_account("payments", sa("bg"))
    token = service_account_token(core, "payments", "bg")
    holder = client.CoreV1Api(connect(token))
    with pytest.raises(ApiException) as caught:
        holder.list_namespaced_pod("payments")
    assert caught.value.status == 403
    assert status_of(caught.value)["message"] == (
        'pods is forbidden: User "system:serviceaccount:payments:bg" cannot list resource "pods" '
        'in API group "" in the namespace "payments"'
    )
    subject = {"kind": "ServiceAccount", "name": "bg", "namespace": "payments"}
    rbac.create_namespaced_role_binding("payments", rb("b", subjects=[subject]))
    assert [p.metadata.name for p in holder.list_namespaced_pod("payments").items] == ["checkout-1"]

    core.delete_namespaced_service_account("bg", "payments")
    with pytest.raises(ApiException) as caught:
        holder.list_namespaced_pod("payments")
    assert caught.value.status == 401
    assert status_of(caught.value)["reason"] == "Unauthorized"


def test_minted_token_stops_authenticating_at_its_expiry(
    core: client.CoreV1Api, connect: Connect, clock: FakeClock
) -> None:
    core.create_namespaced_service_account("payments", sa("bg"))
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=900))
    answer = core.create_namespaced_service_account_token("bg", "payments", request)
    assert answer.status.expiration_timestamp == clock().replace(microsecond=0) + __import__("datetime").timedelta(
        seconds=900
    )
    holder = client.AuthenticationV1Api(connect(answer.status.token))
    review = client.V1SelfSubjectReview()
    clock.advance(seconds=899)
    assert holder.create_self_subject_review(review).status.user_info.username == "system:serviceaccount:payments:bg"
    clock.advance(seconds=1)
    with pytest.raises(ApiException) as caught:
        holder.create_self_subject_review(review)
    assert caught.value.status == 401


def test_token_of_a_recreated_service_account_no_longer_authenticates(core: client.CoreV1Api, connect: Connect) -> None:
    core.create_namespaced_service_account("payments", sa("bg"))
    token = service_account_token(core, "payments", "bg")
    core.delete_namespaced_service_account("bg", "payments")
    core.create_namespaced_service_account("payments", sa("bg"))
    with pytest.raises(ApiException) as caught:
        client.AuthenticationV1Api(connect(token)).create_self_subject_review(client.V1SelfSubjectReview())
    assert caught.value.status == 401


def test_token_for_another_audience_does_not_authenticate_to_the_api(core: client.CoreV1Api, connect: Connect) -> None:
    core.create_namespaced_service_account("payments", sa("bg"))
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["vault"], expiration_seconds=600)
    )
    token = core.create_namespaced_service_account_token("bg", "payments", request).status.token
    with pytest.raises(ApiException) as caught:
        client.AuthenticationV1Api(connect(token)).create_self_subject_review(client.V1SelfSubjectReview())
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("seconds", "complaint"),
    [(599, "may not specify a duration less than 10 minutes"), (2**32 + 1, "larger than 2^32 seconds")],
)
def test_token_request_outside_the_allowed_duration_is_invalid(
    core: client.CoreV1Api, seconds: int, complaint: str
) -> None:
    core.create_namespaced_service_account("payments", sa("bg"))
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service_account_token("bg", "payments", request)
    status = status_of(caught.value)
    assert caught.value.status == 422
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "spec.expirationSeconds"
    assert complaint in status["message"]


def test_token_request_for_a_missing_service_account_answers_404(core: client.CoreV1Api) -> None:
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service_account_token("ghost", "payments", request)
    assert status_of(caught.value)["message"] == 'serviceaccounts "ghost" not found'


def test_max_token_expiration_caps_what_the_server_issues(clock: FakeClock, tmp_path: Path) -> None:
    with KubeApiServer(now=clock, max_token_seconds=3600) as kube:
        path = kube.write_kubeconfig(tmp_path / "config")
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(path), persist_config=False))
        core.create_namespaced_service_account("default", sa("bg"))
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=86400)
        )
        answer = core.create_namespaced_service_account_token("bg", "default", request)
        assert answer.spec.expiration_seconds == 3600


# --- RBAC evaluation -------------------------------------------------------------------------------------


def test_role_binding_grants_its_cluster_role_only_in_its_namespace(
    rbac: client.RbacAuthorizationV1Api, admin: ApiClient
) -> None:
    rbac.create_namespaced_role_binding("payments", rb("b", role="view"))
    assert may(admin, "list", "pods", namespace="payments")
    assert not may(admin, "list", "pods", namespace="staging")
    assert not may(admin, "list", "pods")  # across all namespaces is cluster scope
    assert not may(admin, "delete", "pods", namespace="payments")


def test_cluster_role_binding_grants_everywhere(rbac: client.RbacAuthorizationV1Api, admin: ApiClient) -> None:
    rbac.create_cluster_role_binding(crb("b", role="view"))
    assert may(admin, "list", "pods", namespace="payments")
    assert may(admin, "list", "pods", namespace="staging")
    assert may(admin, "list", "pods")
    assert may(admin, "get", "deployments", group="apps", namespace="staging")


def test_view_cannot_read_secrets_and_edit_can_exec_into_pods(
    rbac: client.RbacAuthorizationV1Api, admin: ApiClient
) -> None:
    rbac.create_namespaced_role_binding("payments", rb("viewer", role="view", user="vera"))
    rbac.create_namespaced_role_binding("payments", rb("editor", role="edit", user="ed"))
    assert not may(admin, "get", "secrets", user="vera", namespace="payments")
    assert not may(admin, "create", "pods", subresource="exec", user="vera", namespace="payments")
    assert may(admin, "get", "secrets", user="ed", namespace="payments")
    assert may(admin, "create", "pods", subresource="exec", user="ed", namespace="payments")
    assert not may(admin, "create", "rolebindings", group=RBAC, user="ed", namespace="payments")


def test_admin_role_manages_role_bindings_in_its_namespace(
    rbac: client.RbacAuthorizationV1Api, admin: ApiClient
) -> None:
    rbac.create_namespaced_role_binding("payments", rb("b", role="admin"))
    assert may(admin, "create", "rolebindings", group=RBAC, namespace="payments")
    assert not may(admin, "create", "clusterrolebindings", group=RBAC)


def test_resource_names_restrict_a_rule_to_those_objects(rbac: client.RbacAuthorizationV1Api, admin: ApiClient) -> None:
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["flags"], "verbs": ["get"]}]
    rbac.create_namespaced_role("payments", role("one-cm", rules))
    rbac.create_namespaced_role_binding("payments", rb("b", role="one-cm", role_kind="Role"))
    assert may(admin, "get", "configmaps", namespace="payments", name="flags")
    assert not may(admin, "get", "configmaps", namespace="payments", name="secrets-ish")
    assert not may(admin, "list", "configmaps", namespace="payments")  # a list names no object


def test_wildcards_and_subresource_wildcards_match(rbac: client.RbacAuthorizationV1Api, admin: ApiClient) -> None:
    rules = [
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]},
        {"apiGroups": ["batch"], "resources": ["*"], "verbs": ["*"]},
    ]
    rbac.create_cluster_role(cluster_role("scaler", rules))
    rbac.create_cluster_role_binding(crb("b", role="scaler"))
    assert may(admin, "update", "deployments", group="apps", subresource="scale", namespace="payments")
    assert not may(admin, "update", "deployments", group="apps", namespace="payments")
    assert may(admin, "deletecollection", "cronjobs", group="batch")


def test_service_account_and_group_subjects_match_the_serviceaccount_identity(
    rbac: client.RbacAuthorizationV1Api, admin: ApiClient
) -> None:
    sa_user, sa_groups = (
        "system:serviceaccount:payments:bot",
        ["system:serviceaccounts", "system:serviceaccounts:payments"],
    )
    # A RoleBinding subject without a namespace means a ServiceAccount in the binding's namespace.
    rbac.create_namespaced_role_binding("payments", rb("by-sa", subjects=[{"kind": "ServiceAccount", "name": "bot"}]))
    group = {"apiGroup": RBAC, "kind": "Group", "name": "system:serviceaccounts:payments"}
    rbac.create_namespaced_role_binding("staging", rb("by-group", subjects=[group]))
    assert may(admin, "list", "pods", user=sa_user, groups=sa_groups, namespace="payments")
    assert may(admin, "list", "pods", user=sa_user, groups=sa_groups, namespace="staging")
    assert not may(
        admin,
        "list",
        "pods",
        user="system:serviceaccount:staging:bot",
        groups=["system:serviceaccounts"],
        namespace="payments",
    )


def test_system_masters_may_do_anything(admin: ApiClient) -> None:
    assert may(admin, "escalate", "clusterroles", group=RBAC, user="root", groups=["system:masters"])


def test_allowed_review_names_the_binding_that_allowed_it(
    rbac: client.RbacAuthorizationV1Api, admin: ApiClient
) -> None:
    rbac.create_namespaced_role_binding("payments", rb("breakglass-bg-aaaaaa"))
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user="alice@example.com",
            resource_attributes=client.V1ResourceAttributes(verb="get", resource="pods", namespace="payments"),
        )
    )
    status = client.AuthorizationV1Api(admin).create_subject_access_review(review).status
    assert status.allowed
    assert (
        status.reason
        == 'RBAC: allowed by RoleBinding "breakglass-bg-aaaaaa/payments" of ClusterRole "view" to User "alice@example.com"'
    )


def test_non_resource_urls_are_matched_exactly_or_by_trailing_star(
    rbac: client.RbacAuthorizationV1Api, admin: ApiClient
) -> None:
    rbac.create_cluster_role(cluster_role("metrics", [{"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]}]))
    rbac.create_cluster_role_binding(crb("b", role="metrics"))
    api = client.AuthorizationV1Api(admin)

    def may_get(path: str) -> bool:
        spec = client.V1SubjectAccessReviewSpec(
            user="alice@example.com", non_resource_attributes=client.V1NonResourceAttributes(path=path, verb="get")
        )
        return bool(api.create_subject_access_review(client.V1SubjectAccessReview(spec=spec)).status.allowed)

    assert may_get("/metrics")
    assert may_get("/debug/pprof")
    assert not may_get("/metrics/x")
    assert not may_get("/api")


def test_review_needs_exactly_one_kind_of_attributes_and_a_subject(admin: ApiClient) -> None:
    api = client.AuthorizationV1Api(admin)
    with pytest.raises(ApiException) as caught:
        api.create_subject_access_review(client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec()))
    fields = [c["field"] for c in status_of(caught.value)["details"]["causes"]]
    assert caught.value.status == 422
    assert fields == ["spec.resourceAttributes", "spec.user"]


def test_self_reviews_answer_for_the_caller(
    kube: KubeApiServer, connect: Connect, rbac: client.RbacAuthorizationV1Api
) -> None:
    kube.add_identity("bot-token", "breakglass-bot", ["breakglass"])
    rbac.create_cluster_role_binding(
        crb("bot-view", subjects=[{"apiGroup": RBAC, "kind": "Group", "name": "breakglass"}])
    )
    bot = connect("bot-token")
    who = client.AuthenticationV1Api(bot).create_self_subject_review(client.V1SelfSubjectReview())
    assert who.status.user_info.username == "breakglass-bot"
    assert who.status.user_info.groups == ["breakglass", "system:authenticated"]
    authz = client.AuthorizationV1Api(bot)

    def can(verb: str, resource: str) -> bool:
        spec = client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace="payments")
        )
        return bool(authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(spec=spec)).status.allowed)

    assert can("list", "pods")
    assert not can("delete", "pods")


def test_restricted_identity_is_forbidden_with_the_api_servers_message(kube: KubeApiServer, connect: Connect) -> None:
    kube.add_identity("nobody-token", "nobody")
    with pytest.raises(ApiException) as caught:
        client.RbacAuthorizationV1Api(connect("nobody-token")).read_cluster_role_binding("cluster-admin")
    status = status_of(caught.value)
    assert caught.value.status == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'clusterrolebindings.rbac.authorization.k8s.io "cluster-admin" is forbidden: User "nobody" cannot get '
        'resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope'
    )
    assert status["details"] == {"name": "cluster-admin", "group": RBAC, "kind": "clusterrolebindings"}


# --- escalation prevention ------------------------------------------------------------------------------


@pytest.fixture
def granter(
    kube: KubeApiServer, rbac: client.RbacAuthorizationV1Api, connect: Connect
) -> client.RbacAuthorizationV1Api:
    """An identity that may manage bindings (like the bot) but holds no other permission."""
    kube.add_identity("granter-token", "granter")
    writes = ["create", "get", "patch", "update", "delete"]
    rules = [{"apiGroups": [RBAC], "resources": ["rolebindings", "clusterrolebindings"], "verbs": writes}]
    rbac.create_cluster_role(cluster_role("binding-writer", rules))
    rbac.create_cluster_role_binding(crb("granter", role="binding-writer", user="granter"))
    return client.RbacAuthorizationV1Api(connect("granter-token"))


def test_binding_a_role_not_held_without_bind_is_forbidden(granter: client.RbacAuthorizationV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        granter.create_namespaced_role_binding("payments", rb("b", role="view"))
    status = status_of(caught.value)
    assert caught.value.status == 403
    assert status["reason"] == "Forbidden"
    assert status["message"].startswith(
        'rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "granter" (groups=["system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n{APIGroups:["
    )


def test_bind_verb_with_resource_names_permits_exactly_those_roles(
    granter: client.RbacAuthorizationV1Api, rbac: client.RbacAuthorizationV1Api
) -> None:
    rules = [{"apiGroups": [RBAC], "resources": ["clusterroles"], "resourceNames": ["view"], "verbs": ["bind"]}]
    rbac.create_cluster_role(cluster_role("bind-view", rules))
    rbac.create_cluster_role_binding(crb("granter-bind", role="bind-view", user="granter"))
    granter.create_namespaced_role_binding("payments", rb("ok", role="view"))
    granter.create_cluster_role_binding(crb("ok-cluster", role="view"))
    with pytest.raises(ApiException) as caught:
        granter.create_namespaced_role_binding("payments", rb("no", role="edit"))
    assert caught.value.status == 403


def test_bind_granted_in_one_namespace_does_not_reach_another(
    granter: client.RbacAuthorizationV1Api, rbac: client.RbacAuthorizationV1Api
) -> None:
    rbac.create_cluster_role(
        cluster_role("bind-any", [{"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"]}])
    )
    rbac.create_namespaced_role_binding("payments", rb("granter-bind", role="bind-any", user="granter"))
    granter.create_namespaced_role_binding("payments", rb("ok", role="admin"))
    with pytest.raises(ApiException) as caught:
        granter.create_namespaced_role_binding("staging", rb("no", role="admin"))
    assert caught.value.status == 403
    with pytest.raises(ApiException) as caught:
        granter.create_cluster_role_binding(crb("no", role="admin"))
    assert caught.value.status == 403


def test_holding_every_permission_of_a_role_permits_binding_it(
    granter: client.RbacAuthorizationV1Api, rbac: client.RbacAuthorizationV1Api
) -> None:
    rbac.create_namespaced_role_binding("payments", rb("granter-edit", role="edit", user="granter"))
    granter.create_namespaced_role_binding("payments", rb("ok", role="view"))  # edit covers view
    with pytest.raises(ApiException) as caught:
        granter.create_namespaced_role_binding("payments", rb("no", role="admin"))
    assert "is attempting to grant RBAC permissions not currently held" in status_of(caught.value)["message"]


def test_escalation_check_guards_updates_of_existing_bindings_too(
    granter: client.RbacAuthorizationV1Api, rbac: client.RbacAuthorizationV1Api
) -> None:
    rbac.create_cluster_role_binding(crb("breakglass-bg-aaaaaa", role="cluster-admin"))
    with pytest.raises(ApiException) as caught:
        granter.patch_cluster_role_binding(
            "breakglass-bg-aaaaaa", {"metadata": {"annotations": {"breakglass.dev/expires-at": "2030-01-01T00:00:00Z"}}}
        )
    assert caught.value.status == 403


def test_binding_a_missing_role_without_bind_answers_404_for_the_role(granter: client.RbacAuthorizationV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        granter.create_namespaced_role_binding("payments", rb("b", role="no-such-role"))
    assert status_of(caught.value)["message"] == 'clusterroles.rbac.authorization.k8s.io "no-such-role" not found'


def test_creating_a_role_with_permissions_not_held_needs_escalate(
    kube: KubeApiServer, rbac: client.RbacAuthorizationV1Api, connect: Connect
) -> None:
    kube.add_identity("role-writer-token", "role-writer")
    create_roles = [{"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["create"]}]
    rbac.create_cluster_role(cluster_role("role-writer", create_roles))
    rbac.create_cluster_role_binding(crb("role-writer", role="role-writer", user="role-writer"))
    writer = client.RbacAuthorizationV1Api(connect("role-writer-token"))
    with pytest.raises(ApiException) as caught:
        writer.create_namespaced_role(
            "payments", role("r", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])
        )
    assert caught.value.status == 403
    writer.create_namespaced_role("payments", role("r", create_roles))  # holding a permission is enough to grant it


# --- faults ------------------------------------------------------------------------------------------------


def test_injected_503_answers_with_a_status_then_recovers(kube: KubeApiServer, core: client.CoreV1Api) -> None:
    kube.fail_requests(503, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            core.list_namespace()
        assert caught.value.status == 503
        assert status_of(caught.value)["reason"] == "ServiceUnavailable"
    assert core.list_namespace().items


def test_injected_429_carries_retry_after(kube: KubeApiServer, core: client.CoreV1Api) -> None:
    kube.fail_requests(429, retry_after=7, times=1)
    with pytest.raises(ApiException) as caught:
        core.list_namespace()
    assert caught.value.status == 429
    assert (caught.value.headers or {})["Retry-After"] == "7"
    status = status_of(caught.value)
    assert status["reason"] == "TooManyRequests"
    assert status["details"]["retryAfterSeconds"] == 7


def test_injected_500_is_an_internal_error(kube: KubeApiServer, core: client.CoreV1Api) -> None:
    kube.fail_requests(500)
    with pytest.raises(ApiException) as caught:
        core.list_namespace()
    assert caught.value.status == 500
    assert status_of(caught.value)["reason"] == "InternalError"
    kube.clear_faults()
    assert core.list_namespace().items


def test_faults_can_target_a_path_prefix_and_a_method(
    kube: KubeApiServer, core: client.CoreV1Api, rbac: client.RbacAuthorizationV1Api
) -> None:
    kube.fail_requests(503, path_prefix="/apis/rbac.authorization.k8s.io/", method="POST")
    assert core.list_namespace().items
    assert rbac.list_cluster_role_binding().items
    with pytest.raises(ApiException) as caught:
        rbac.create_cluster_role_binding(crb("b"))
    assert caught.value.status == 503


def test_fault_for_a_duration_ends_when_the_clock_moves_past_it(
    kube: KubeApiServer, core: client.CoreV1Api, clock: FakeClock
) -> None:
    kube.fail_requests(503, for_seconds=30)
    clock.advance(seconds=29)
    with pytest.raises(ApiException):
        core.list_namespace()
    clock.advance(seconds=1)
    assert core.list_namespace().items


def test_hung_request_runs_into_the_clients_read_timeout(kube: KubeApiServer, core: client.CoreV1Api) -> None:
    kube.hang_requests(30, times=1)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.list_namespace(_request_timeout=(1, 0.3))
    assert time.monotonic() - started < 30  # the client's timeout ended it, not the hang
    assert core.list_namespace(_request_timeout=(1, 2)).items  # times=1: the next one is answered


def test_clear_faults_releases_requests_hanging_now(kube: KubeApiServer, core: client.CoreV1Api) -> None:
    kube.hang_requests(30)
    kube.clear_faults()
    assert core.list_namespace(_request_timeout=(1, 2)).items


def test_latency_delays_every_answer(kube: KubeApiServer, core: client.CoreV1Api) -> None:
    kube.add_latency(0.2, times=1)
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started >= 0.2


def test_stopped_double_refuses_connections(clock: FakeClock, tmp_path: Path) -> None:
    kube = KubeApiServer(now=clock)
    kube.start()
    core = client.CoreV1Api(new_client(kube.write_kubeconfig(tmp_path / "config")))
    assert core.list_namespace().items  # a kept-alive connection now exists
    kube.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespace(_request_timeout=(1, 1))


# --- helpers for callers -----------------------------------------------------------------------------------


def test_one_kubeconfig_reaches_several_doubles_by_context_name(clock: FakeClock, tmp_path: Path) -> None:
    with KubeApiServer(now=clock, namespaces=["payments"]) as prod, KubeApiServer(now=clock) as staging:
        path = write_kubeconfig(tmp_path / "config", {"prod": prod.context(), "staging": staging.context()})
        contexts, current = config.list_kube_config_contexts(str(path))
        assert [c["name"] for c in contexts] == ["prod", "staging"]
        assert current["name"] == "prod"
        prod_api = config.new_client_from_config(config_file=str(path), context="prod", persist_config=False)
        staging_api = config.new_client_from_config(config_file=str(path), context="staging", persist_config=False)
        client.CoreV1Api(prod_api).read_namespace("payments")
        with pytest.raises(ApiException):
            client.CoreV1Api(staging_api).read_namespace("payments")


def test_snapshot_shows_bindings_and_service_accounts_as_plain_dicts(
    kube: KubeApiServer, rbac: client.RbacAuthorizationV1Api, core: client.CoreV1Api
) -> None:
    managed = {"app.kubernetes.io/managed-by": "breakglass"}
    rbac.create_namespaced_role_binding("payments", rb("breakglass-bg-aaaaaa", labels=managed))
    core.create_namespaced_service_account("payments", sa("breakglass-bg-aaaaaa", labels=managed))
    snap = kube.snapshot("app.kubernetes.io/managed-by=breakglass")
    assert [b["metadata"]["name"] for b in snap["rolebindings"]] == ["breakglass-bg-aaaaaa"]
    assert snap["rolebindings"][0]["kind"] == "RoleBinding"
    assert snap["clusterrolebindings"] == []
    assert [s["metadata"]["namespace"] for s in snap["serviceaccounts"]] == ["payments"]
    json.dumps(snap)  # plain data, printable by the demo


def test_version_and_discovery_answer(admin: ApiClient, kube: KubeApiServer) -> None:
    assert client.VersionApi(admin).get_code().git_version == "v1.31.0"
    groups = client.ApisApi(admin).get_api_versions()
    assert RBAC in [g.name for g in groups.groups]
    resources = client.RbacAuthorizationV1Api(admin).get_api_resources()
    assert {"rolebindings", "clusterrolebindings"} <= {r.name for r in resources.resources}
    assert kube.requests[-1].user == "kubernetes-admin"
    assert kube.requests[-1].code == 200
