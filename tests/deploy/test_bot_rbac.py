"""The bot's own RBAC: least privilege, and the committed manifests never drift from bot/deploy_rbac.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.deploy_rbac import (
    REQUIRED_PERMISSIONS,
    Permission,
    admission_policy_manifests,
    bot_rbac_manifests,
    render_yaml,
    required_permissions,
    roster_rbac,
)
from bot.domain.roster import Roster, parse_roster
from tests.deploy.conftest import DEPLOY, Render

RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def _roster_cluster_roles(roster_text: str) -> list[str]:
    roster = yaml.safe_load(roster_text)
    return [role["cluster_role"] for role in roster["roles"].values()]


def _uses_tokens(roster_text: str) -> bool:
    return any(cluster["credentials"] == "token" for cluster in yaml.safe_load(roster_text)["clusters"].values())


def _grant_role(obj: dict[str, Any]) -> bool:
    """One of the ClusterRoles for grants (bot/grant_roles.py, tests/deploy/test_grant_roles.py), not the bot's own."""
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "grant-roles"


def _rules(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    (role,) = [m for m in manifests if m["kind"] == kind]
    return role["rules"]


def _covers(rule: dict[str, Any], permission: Permission) -> bool:
    return (
        permission.api_group in rule["apiGroups"]
        and permission.resource in rule["resources"]
        and permission.verb in rule["verbs"]
        and not rule.get("resourceNames")
    )


# --- the committed manifests -------------------------------------------------------------------


def test_base_admission_policy_is_what_bot_rbac_renders_for_the_example_roster_roles() -> None:
    roles = _roster_cluster_roles((DEPLOY / "base" / "roster.yaml").read_text())
    committed = list(yaml.safe_load_all((DEPLOY / "base" / "admission-policy.yaml").read_text()))
    assert committed == admission_policy_manifests(roles)


def test_the_admission_policy_limits_the_bot_to_its_own_bindings_and_the_rosters_roles() -> None:
    policy, binding = admission_policy_manifests(["view", "breakglass-admin"])
    spec = policy["spec"]
    assert spec["matchConditions"][0]["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:breakglass-system:breakglass'"
    )
    assert spec["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE", "UPDATE", "DELETE"]
    checks = " ".join(v["expression"] for v in spec["validations"])
    assert "startsWith('breakglass-')" in checks
    assert "'breakglass.dev/installation' in variables.labels" in checks
    assert "roleRef.name in ['breakglass-admin', 'view']" in checks
    assert binding["spec"] == {"policyName": "breakglass-bindings", "validationActions": ["Deny"]}


def test_base_rbac_is_what_bot_rbac_renders_for_the_example_roster_roles() -> None:
    roster = (DEPLOY / "base" / "roster.yaml").read_text()
    roles = _roster_cluster_roles(roster)
    assert sorted(roles) == ["breakglass-admin", "cluster-admin", "view"]
    committed = list(yaml.safe_load_all((DEPLOY / "base" / "rbac.yaml").read_text()))
    assert committed == bot_rbac_manifests(roles, service_account_tokens=_uses_tokens(roster)), (
        "deploy/base/rbac.yaml drifted from bot/deploy_rbac.py: regenerate it with "
        "`breakglass deploy rbac --roster deploy/base/roster.yaml`"
    )


def test_base_roster_is_the_example_roster() -> None:
    example = DEPLOY / "roster.example.yaml"
    assert yaml.safe_load((DEPLOY / "base" / "roster.yaml").read_text()) == yaml.safe_load(example.read_text())


@pytest.mark.parametrize("roster", ["base/roster.yaml", "overlays/prod/roster.yaml"])
def test_shipped_rosters_pass_the_roster_check(roster: str) -> None:
    roster_module = pytest.importorskip("bot.domain.roster")
    roster_module.parse_roster((DEPLOY / roster).read_text())


def test_each_overlay_binds_exactly_the_roles_its_roster_offers(rendered: Render) -> None:
    roster = rendered.roster_config_map()["data"]["roster.yaml"]
    expected = bot_rbac_manifests(_roster_cluster_roles(roster), service_account_tokens=_uses_tokens(roster))
    actual = [obj for obj in rendered.objects if obj["kind"] in RBAC_KINDS and not _grant_role(obj)]
    assert sorted(actual, key=lambda o: o["kind"]) == sorted(expected, key=lambda o: o["kind"]), (
        f"{rendered.overlay}: the bot's RBAC does not match the roster's roles; regenerate it with "
        "`breakglass deploy rbac --roster <the overlay's roster>`"
    )


def test_rendered_roles_grant_no_wildcards_and_bind_only_named_cluster_roles(rendered: Render) -> None:
    for role in [*rendered.of_kind("ClusterRole"), *rendered.of_kind("Role")]:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: {field} has *"
            if "bind" in rule["verbs"]:
                assert rule["resources"] == ["clusterroles"]
                assert rule["verbs"] == ["bind"]
                assert rule.get("resourceNames"), "bind without resourceNames would allow binding any role"


# --- bot_rbac_manifests ----------------------------------------------------------------------


def test_bind_is_limited_to_the_sorted_unique_roster_cluster_roles() -> None:
    rules = _rules(bot_rbac_manifests(["view", "admin", "view", "cluster-admin"]), "ClusterRole")
    (bind,) = [rule for rule in rules if "bind" in rule["verbs"]]
    assert bind == {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles"],
        "verbs": ["bind"],
        "resourceNames": ["admin", "cluster-admin", "view"],
    }


def test_a_roster_offering_no_roles_lets_the_bot_bind_nothing() -> None:
    # An empty resourceNames list would mean "every role" to the authorizer.
    rules = _rules(bot_rbac_manifests([]), "ClusterRole")
    assert not [rule for rule in rules if "bind" in rule["verbs"]]


@pytest.mark.parametrize("bad", ["*", "", "Admin", "view,admin", "a/b"])
def test_a_cluster_role_that_is_not_a_kubernetes_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid Kubernetes name"):
        bot_rbac_manifests(["view", bad])


def test_no_rule_grants_a_wildcard_or_an_escalating_verb() -> None:
    manifests = bot_rbac_manifests(["view", "admin", "cluster-admin"])
    for kind in ("ClusterRole", "Role"):
        for rule in _rules(manifests, kind):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, [])
            assert not {"escalate", "impersonate", "update", "deletecollection"} & set(rule["verbs"])
            assert not {"secrets", "pods", "pods/exec", "roles", "nodes"} & set(rule["resources"])
            if "clusterroles" in rule["resources"]:
                assert rule["verbs"] == ["bind"]


def test_service_accounts_and_tokens_only_in_the_grant_namespace() -> None:
    manifests = bot_rbac_manifests(["view"], grant_namespace="grants", namespace="ops", service_account="bg")
    cluster_resources = {r for rule in _rules(manifests, "ClusterRole") for r in rule["resources"]}
    assert not {"serviceaccounts", "serviceaccounts/token"} & cluster_resources
    (role,) = [m for m in manifests if m["kind"] == "Role"]
    (binding,) = [m for m in manifests if m["kind"] == "RoleBinding"]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "grants"
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"serviceaccounts", "serviceaccounts/token"}
    token_rule = next(rule for rule in role["rules"] if rule["resources"] == ["serviceaccounts/token"])
    assert token_rule["verbs"] == ["create"]
    for bound in [m for m in manifests if m["kind"].endswith("Binding")]:
        assert bound["subjects"] == [{"kind": "ServiceAccount", "name": "bg", "namespace": "ops"}]


def test_binding_verbs_are_exactly_what_grant_extend_revoke_and_sweep_need() -> None:
    rules = _rules(bot_rbac_manifests(["view"]), "ClusterRole")
    (bindings,) = [rule for rule in rules if "rolebindings" in rule["resources"]]
    assert set(bindings["resources"]) == {"rolebindings", "clusterrolebindings"}
    assert set(bindings["verbs"]) == {"get", "list", "create", "patch", "delete"}


def test_required_permissions_are_all_granted_by_the_rendered_rules() -> None:
    manifests = bot_rbac_manifests(["view"], grant_namespace="grants")
    for permission in required_permissions("grants"):
        kind = "ClusterRole" if permission.namespace is None else "Role"
        assert any(_covers(rule, permission) for rule in _rules(manifests, kind)), permission
    assert ("create", "authorization.k8s.io", "selfsubjectaccessreviews", None) in REQUIRED_PERMISSIONS
    assert ("create", "", "serviceaccounts/token", "breakglass-system") in REQUIRED_PERMISSIONS
    assert all(len(p) == 4 for p in REQUIRED_PERMISSIONS)


def test_render_yaml_is_stable_and_round_trips() -> None:
    manifests = bot_rbac_manifests(["view", "admin"])
    text = render_yaml(manifests)
    assert text == render_yaml(bot_rbac_manifests(["admin", "view"]))
    assert list(yaml.safe_load_all(text)) == manifests
    first = text.split("---\n")[1]
    assert first.startswith("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:")


def test_cluster_role_names_with_colons_are_real_names_and_accepted() -> None:
    rules = _rules(bot_rbac_manifests(["system:aggregate-to-view"]), "ClusterRole")
    assert ["system:aggregate-to-view"] in [rule.get("resourceNames") for rule in rules]


# --- least privilege follows the roster's credentials ---------------------------------------------


def _roster(credentials: dict[str, str]) -> Roster:
    document = yaml.safe_load((DEPLOY / "roster.example.yaml").read_text())
    document["clusters"] = {name: {"context": name, "credentials": mode} for name, mode in credentials.items()}
    for entitlement in document["entitlements"]:
        entitlement["clusters"] = list(credentials)
    return parse_roster(yaml.safe_dump(document))


def _kinds(rendered: str) -> list[str]:
    return [doc["kind"] for doc in yaml.safe_load_all(rendered) if doc]


def test_a_roster_of_user_clusters_gets_no_rights_on_service_accounts() -> None:
    rendered = roster_rbac(_roster({"prod": "user", "staging": "user"}), "roster.yaml")
    assert _kinds(rendered) == ["ClusterRole", "ClusterRoleBinding"]
    assert "serviceaccounts" not in rendered
    assert "# No cluster here uses credentials: token" in rendered
    assert "apply them to every roster cluster (prod, staging)" in rendered
    assert required_permissions(service_account_tokens=False) == tuple(
        p for p in REQUIRED_PERMISSIONS if p.namespace is None
    )


def test_a_mixed_roster_renders_the_token_role_and_says_which_clusters_need_it() -> None:
    roster = _roster({"prod": "user", "staging": "token"})
    rendered = roster_rbac(roster, "roster.yaml", grant_namespace="grants")
    assert _kinds(rendered) == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    header = rendered[: rendered.index("---\n")]
    assert "The ClusterRole and its binding are shared" in header
    assert "only for\n# the credentials: token clusters (staging)" in header
    assert header.startswith(
        "# The bot's own RBAC: `breakglass deploy rbac --roster roster.yaml --grant-namespace grants`"
    )

    # Rendered per cluster, the user cluster gets no Role and the token cluster does.
    assert _kinds(roster_rbac(roster, "roster.yaml", cluster="prod")) == ["ClusterRole", "ClusterRoleBinding"]
    staging = roster_rbac(roster, "roster.yaml", grant_namespace="grants", cluster="staging")
    assert _kinds(staging) == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    assert "--cluster staging`\n# for cluster staging (credentials: token)." in staging


def test_deploy_rbac_command_follows_the_roster_and_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    roster_path = tmp_path / "roster.yaml"
    document = yaml.safe_load((DEPLOY / "roster.example.yaml").read_text())
    document["clusters"]["staging"]["credentials"] = "token"
    roster_path.write_text(yaml.safe_dump(document))

    assert main(["deploy", "rbac", "--roster", str(roster_path), "--cluster", "prod"]) == 0
    assert _kinds(capsys.readouterr().out) == ["ClusterRole", "ClusterRoleBinding"]
    assert main(["deploy", "rbac", "--roster", str(roster_path)]) == 0
    assert "Role" in _kinds(capsys.readouterr().out)

    assert main(["deploy", "rbac", "--roster", str(roster_path), "--grant-namespace", "Bad_NS"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "breakglass deploy rbac: grant namespace 'Bad_NS' is not a valid Kubernetes name\n"
    assert main(["deploy", "rbac", "--roster", str(roster_path), "--cluster", "nowhere"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
