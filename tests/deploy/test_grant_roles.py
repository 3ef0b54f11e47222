"""The ClusterRoles breakglass ships for grants (finding 8): upstream admin and edit without the powers
whose effect outlives the grant, the same in deploy/base and the Helm chart, and the example roster's
default. Proven against the Kubernetes stand-in's RBAC authorizer over HTTP (SubjectAccessReview), as
an API server answers for a user bound to them."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from bot.deploy_rbac import render_yaml
from bot.grant_roles import ADMIN_ROLE, EDIT_ROLE, OUTLIVING_POWERS, Power, grant_role_manifests
from bot.standins.kube import KubeApiServer
from bot.standins.kube.defaults import bootstrap_policy
from tests.deploy.conftest import DEPLOY, render
from tests.deploy.test_helm_chart import chart

GRANT_ROLES = DEPLOY / "base" / "grant-roles.yaml"


def _powers(role: dict[str, Any]) -> set[Power]:
    return {
        Power(group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def _committed() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(GRANT_ROLES.read_text()) if doc]


def test_base_grant_roles_are_what_bot_grant_roles_renders() -> None:
    assert _committed() == grant_role_manifests(), (
        "deploy/base/grant-roles.yaml drifted from bot/grant_roles.py: regenerate it with render_yaml(grant_role_manifests())"
    )
    assert render_yaml(grant_role_manifests()) in GRANT_ROLES.read_text()


def test_every_overlay_and_the_chart_install_the_same_grant_roles() -> None:
    expected = {role["metadata"]["name"]: role["rules"] for role in grant_role_manifests()}
    for overlay in ("dev", "prod"):
        rendered = render(DEPLOY / "overlays" / overlay)
        assert {name: rendered.get("ClusterRole", name)["rules"] for name in expected} == expected, overlay
    helm = chart()
    assert {name: helm.get("ClusterRole", name)["rules"] for name in expected} == expected
    for name in expected:
        assert helm.get("ClusterRole", name)["metadata"]["labels"]["app.kubernetes.io/component"] == "grant-roles"
    assert not [
        r for r in chart("--set", "grantRoles.create=false").of_kind("ClusterRole") if r["metadata"]["name"] in expected
    ]


@pytest.mark.parametrize(("ours", "upstream"), [(ADMIN_ROLE, "admin"), (EDIT_ROLE, "edit")])
def test_each_grant_role_is_its_upstream_role_minus_the_powers_that_outlive_a_grant(ours: str, upstream: str) -> None:
    (mine,) = [role for role in grant_role_manifests() if role["metadata"]["name"] == ours]
    (theirs,) = [role for role in bootstrap_policy() if role["metadata"]["name"] == upstream]
    mine_powers, their_powers = _powers(mine), _powers(theirs)
    assert mine_powers <= their_powers, f"{ours} grants more than {upstream}: {sorted(mine_powers - their_powers)}"
    assert not mine_powers & set(OUTLIVING_POWERS)
    taken = their_powers - mine_powers
    # Only what outlives a grant (and, for admin, Role writes, useless without RoleBindings) is taken.
    assert taken <= set(OUTLIVING_POWERS) | {Power("rbac.authorization.k8s.io", "roles", verb) for verb in
                                              ("create", "delete", "deletecollection", "patch", "update")}  # fmt: skip
    assert {
        Power("", "pods/exec", "create"),
        Power("apps", "deployments", "patch"),
        Power("", "secrets", "get"),
    } <= mine_powers
    for rule in mine["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"{ours}: a wildcard in {field}"


def test_the_example_roster_offers_breakglass_admin_not_upstream_admin() -> None:
    for roster in ("roster.example.yaml", "base/roster.yaml", "overlays/prod/roster.yaml"):
        roles = yaml.safe_load((DEPLOY / roster).read_text())["roles"]
        assert roles["admin"]["cluster_role"] == ADMIN_ROLE, roster
        assert not {role["cluster_role"] for role in roles.values()} & {"admin", "edit"}, roster


# --- what an API server says a holder may do ----------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[KubeApiServer]:
    with KubeApiServer(namespaces=("payments",)) as server:
        for role in _committed():
            server.seed(role)
        for role in (ADMIN_ROLE, EDIT_ROLE, "admin"):
            server.seed(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": f"breakglass-{role}", "namespace": "payments"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"{role}@example.com"}
                    ],
                }
            )
        yield server


def _may(cluster: KubeApiServer, user: str, verb: str, resource: str, group: str = "") -> bool:
    resource, _, subresource = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:authenticated"],
            "resourceAttributes": {"namespace": "payments", "verb": verb, "group": group, "resource": resource,
                                   "subresource": subresource},
        },
    }  # fmt: skip
    request = urllib.request.Request(  # noqa: S310 - the local stand-in
        f"{cluster.url}/apis/authorization.k8s.io/v1/subjectaccessreviews",
        data=json.dumps(review).encode(),
        headers={"Authorization": f"Bearer {cluster.admin_token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - the local stand-in
        return bool(json.load(reply)["status"]["allowed"])


@pytest.mark.parametrize("role", [ADMIN_ROLE, EDIT_ROLE])
def test_a_holder_can_fix_things_but_cannot_keep_access_after_the_grant(cluster: KubeApiServer, role: str) -> None:
    holder = f"{role}@example.com"
    for verb, resource, group in [
        ("create", "pods/exec", ""),
        ("delete", "pods", ""),
        ("patch", "deployments", "apps"),
        ("update", "deployments/scale", "apps"),
        ("get", "secrets", ""),
        ("get", "pods/log", ""),
    ]:
        assert _may(cluster, holder, verb, resource, group), f"{role} should allow {verb} {resource}"
    for verb, resource, group in [
        ("create", "rolebindings", "rbac.authorization.k8s.io"),
        ("patch", "rolebindings", "rbac.authorization.k8s.io"),
        ("create", "clusterrolebindings", "rbac.authorization.k8s.io"),
        ("bind", "clusterroles", "rbac.authorization.k8s.io"),
        ("escalate", "roles", "rbac.authorization.k8s.io"),
        ("create", "serviceaccounts/token", ""),
        ("impersonate", "serviceaccounts", ""),
    ]:
        assert not _may(cluster, holder, verb, resource, group), f"{role} must not allow {verb} {resource}"
    # Upstream admin, for contrast: the same API server says yes to what the narrower roles take away.
    assert _may(cluster, "admin@example.com", "create", "rolebindings", "rbac.authorization.k8s.io")
    assert _may(cluster, "admin@example.com", "create", "serviceaccounts/token")
    assert _may(cluster, "admin@example.com", "impersonate", "serviceaccounts")
