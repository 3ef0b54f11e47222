"""The example audit policy logs what grant holders do, never credential bodies, and little else.

kube-apiserver applies the first rule that matches; ``_level`` does the same for the fields the
policy uses (users, userGroups, verbs, resources), so these tests read the policy as the API server would.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY

POLICY = DEPLOY / "audit" / "policy.yaml"
GRANT_SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:breakglass-system", "system:authenticated")


def _matches(
    rule: dict[str, Any], user: str, groups: tuple[str, ...], verb: str, api_group: str, resource: str
) -> bool:
    if rule.get("users") and user not in rule["users"]:
        return False
    if rule.get("userGroups") and not set(groups) & set(rule["userGroups"]):
        return False
    if rule.get("verbs") and verb not in rule["verbs"]:
        return False
    if rule.get("resources"):
        return any(gr["group"] == api_group and resource in gr["resources"] for gr in rule["resources"])
    return True


def _level(user: str, verb: str, resource: str, api_group: str = "", groups: tuple[str, ...] = ()) -> str:
    policy = yaml.safe_load(POLICY.read_text())
    for rule in policy["rules"]:
        if _matches(rule, user, groups, verb, api_group, resource):
            return str(rule["level"])
    return "None"


@pytest.mark.parametrize(
    ("verb", "resource", "api_group", "level"),
    [
        ("get", "pods", "", "Metadata"),
        ("create", "pods/exec", "", "Metadata"),
        ("patch", "deployments", "apps", "Metadata"),
        ("get", "secrets", "", "Metadata"),
        ("list", "secrets", "", "Metadata"),
        ("create", "serviceaccounts/token", "", "Metadata"),
        ("create", "tokenreviews", "authentication.k8s.io", "Metadata"),
    ],
)
def test_grant_holders_are_logged_at_metadata_never_with_bodies(
    verb: str, resource: str, api_group: str, level: str
) -> None:
    assert _level("alice@example.com", verb, resource, api_group, ("oncall",)) == level
    grant_sa = "system:serviceaccount:breakglass-system:breakglass-bg-7k2qxm"
    assert _level(grant_sa, verb, resource, api_group, GRANT_SA_GROUPS) == level


def test_the_bot_itself_is_logged_for_writes_only() -> None:
    bot = "system:serviceaccount:breakglass-system:breakglass"
    assert _level(bot, "list", "rolebindings", "rbac.authorization.k8s.io", GRANT_SA_GROUPS) == "None"
    assert _level(bot, "create", "clusterrolebindings", "rbac.authorization.k8s.io", GRANT_SA_GROUPS) == "Metadata"
    assert _level(bot, "create", "serviceaccounts/token", "", GRANT_SA_GROUPS) == "Metadata"


def test_other_users_are_logged_only_when_they_change_bindings() -> None:
    assert _level("dave@example.com", "get", "pods") == "None"
    assert _level("dave@example.com", "get", "secrets") == "None"
    assert _level("dave@example.com", "delete", "clusterrolebindings", "rbac.authorization.k8s.io") == "Metadata"


def test_policy_names_every_person_of_the_example_roster() -> None:
    roster = yaml.safe_load((DEPLOY / "base" / "roster.yaml").read_text())
    kube_users = {person["kube_user"] for person in roster["people"].values()}
    for user in kube_users:
        assert _level(user, "get", "pods") == "Metadata", user


def test_webhook_kubeconfig_posts_to_the_audit_endpoint_of_a_roster_cluster() -> None:
    config = yaml.safe_load((DEPLOY / "audit" / "webhook-kubeconfig.yaml").read_text())
    roster = yaml.safe_load((DEPLOY / "base" / "roster.yaml").read_text())
    (cluster,) = config["clusters"]
    prefix, _, name = cluster["cluster"]["server"].rpartition("/k8s/audit/")
    assert prefix.startswith("https://")
    assert name in roster["clusters"]
    (user,) = config["users"]
    assert set(user["user"]) == {"token"}
