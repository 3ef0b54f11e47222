"""The Helm chart (deploy/helm/breakglass), rendered by the pinned helm: valid strictly, as locked down
as the kustomize overlays, the bot's RBAC equal to bot/deploy_rbac.py's for the same roster, a bad value
refused with a clear message, every value documented, and the same objects as the overlays."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.deploy_rbac import bot_rbac_manifests
from bot.domain.roster import parse_roster
from tests.deploy.conftest import DEPLOY, Render, parse, render, run_tool, schema_problems, tool
from tests.deploy.test_bot_rbac import _grant_role
from tests.deploy.test_manifests import (
    AUDIT_SINK_SECRETS,
    INGRESS_CONTROLLER_ONLY,
    INTEGRATION_SECRETS,
    SECRETS_OF,
    web_ingress_peers,
)

CHART = DEPLOY / "helm" / "breakglass"
EXAMPLES = DEPLOY / "helm" / "examples"
NAMESPACE = "breakglass-system"
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# The same digest as overlays/prod's kustomization.yaml, so the two renders are of one configuration.
PROD_DIGEST = "sha256:" + "0" * 64


@cache
def chart(*args: str) -> Render:
    """``helm template breakglass`` of the chart in the overlays' namespace, with extra arguments."""
    proc = run_tool(
        [tool("helm"), "template", "breakglass", str(CHART), "--namespace", NAMESPACE, *args],
        f"helm template {' '.join(args)}",
    )
    return Render("chart " + (" ".join(args) or "default"), parse(proc.stdout), proc.stderr)


RENDERS = {"default": (), **{path.stem: ("--values", str(path)) for path in sorted(EXAMPLES.glob("*.yaml"))}}


@pytest.fixture(params=sorted(RENDERS))
def rendered_chart(request: pytest.FixtureRequest) -> Render:
    return chart(*RENDERS[request.param])


def _name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _pod(rendered: Render, deployment: str) -> dict[str, Any]:
    return rendered.get("Deployment", deployment)["spec"]["template"]["spec"]


def _env_sources(rendered: Render, deployment: str) -> dict[str, Any]:
    """Each env variable of the deployment's container: its value, or the (Secret, key, optional) it
    comes from."""
    (container,) = _pod(rendered, deployment)["containers"]
    sources: dict[str, Any] = {}
    for entry in container.get("env", []):
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            sources[entry["name"]] = (ref["name"], ref["key"], bool(ref.get("optional")))
        else:
            sources[entry["name"]] = entry["value"]
    return sources


def _without_helm_labels(obj: dict[str, Any]) -> dict[str, Any]:
    labels = {
        key: value
        for key, value in obj["metadata"].get("labels", {}).items()
        if key in ("app.kubernetes.io/name", "app.kubernetes.io/component")
    }
    return {**obj, "metadata": {**obj["metadata"], "labels": labels}}


def test_without_the_fetched_binaries_the_deploy_tests_fail_saying_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAKGLASS_K8S_TOOLS", str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as failed:
        tool.__wrapped__("helm")
    assert str(failed.value) == f"no helm at {tmp_path / 'helm'}: run `bash .ci/fetch-k8s-tools.sh` first"


# --- lint, schema, warnings ----------------------------------------------------------------------


@pytest.mark.slow
def test_chart_passes_helm_lint_strict_with_every_example() -> None:
    for args in RENDERS.values():
        proc = run_tool([tool("helm"), "lint", "--strict", str(CHART), *args], f"helm lint --strict {' '.join(args)}")
        assert "0 chart(s) failed" in proc.stdout


def test_every_rendered_object_is_valid_for_a_current_kubernetes_strictly(rendered_chart: Render) -> None:
    assert rendered_chart.warnings == "", rendered_chart.warnings
    problems = schema_problems(rendered_chart.objects)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("signingKey.value=too-short", "at '/signingKey/value'"),
        ("image.digest=sha256:abc", "at '/image/digest': 'sha256:abc' does not match pattern"),
        ("web.replica=3", "at '/web': additional properties 'replica' not allowed"),
    ],
)
def test_a_bad_value_is_refused_at_template_time_naming_it(setting: str, message: str) -> None:
    proc = subprocess.run(
        [tool("helm"), "template", "breakglass", str(CHART), "--set", setting],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_a_roster_role_whose_cluster_role_is_not_a_kubernetes_name_is_refused(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"roster": {"content": yaml.safe_dump({"roles": {"ops": {"cluster_role": "Admin"}}})}})
    )
    proc = subprocess.run(
        [tool("helm"), "template", "breakglass", str(CHART), "--values", str(values)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert 'cluster role "Admin" is not a valid Kubernetes name' in proc.stderr, proc.stderr


# --- what the pods get ------------------------------------------------------------------------------


def test_each_process_gets_only_the_secrets_it_needs(rendered_chart: Render) -> None:
    socket_mode = "socket-mode" in rendered_chart.overlay
    for deployment, expected in SECRETS_OF.items():
        from_secrets = {
            name for name, source in _env_sources(rendered_chart, deployment).items() if type(source) is tuple
        }
        if deployment == "breakglass-web" and socket_mode:
            expected = (expected - {"SLACK_SIGNING_SECRET"}) | {"SLACK_APP_TOKEN"}
        assert from_secrets == expected, deployment
    for name, (_, _, optional) in [
        (n, s) for n, s in _env_sources(rendered_chart, "breakglass-worker").items() if type(s) is tuple
    ]:
        optional_ones = AUDIT_SINK_SECRETS | INTEGRATION_SECRETS
        assert optional is (name in optional_ones), f"worker {name}: optional only for the audit sink and integrations"


def test_every_container_is_locked_down_as_in_the_overlays(rendered_chart: Render) -> None:
    for workload in rendered_chart.workloads():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is (workload["metadata"]["name"] == "breakglass-worker")
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    for account in rendered_chart.of_kind("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_a_roster_change_rolls_the_pods(tmp_path: Path) -> None:
    changed = tmp_path / "roster.yaml"
    changed.write_text(
        (DEPLOY / "roster.example.yaml").read_text().replace("request_timeout: 30m", "request_timeout: 20m")
    )
    before = chart()
    after = chart("--set-file", f"roster.content={changed}")
    assert after.roster_config_map()["data"]["roster.yaml"] == changed.read_text()
    for deployment in ("breakglass-web", "breakglass-worker"):
        old = before.get("Deployment", deployment)["spec"]["template"]["metadata"]["annotations"]
        new = after.get("Deployment", deployment)["spec"]["template"]["metadata"]["annotations"]
        assert old["checksum/roster"] != new["checksum/roster"]


def test_chart_renders_no_secret_values_unless_given() -> None:
    assert not chart().of_kind("Secret")
    given = chart("--set", "signingKey.value=" + "k" * 32, "--set", "slack.botToken=xoxb-1-example")
    assert {s["metadata"]["name"] for s in given.of_kind("Secret")} == {"breakglass-signing-key", "breakglass-slack"}
    web = _env_sources(given, "breakglass-web")
    assert web["BREAKGLASS_SIGNING_KEY"][:2] == ("breakglass-signing-key", "key")


# --- the bot's RBAC follows values.roster, as bot/deploy_rbac.py renders it ---------------------------------


@pytest.mark.parametrize("render_name", sorted(RENDERS))
def test_chart_rbac_is_what_bot_rbac_renders_for_its_roster(render_name: str) -> None:
    args = RENDERS[render_name]
    values = yaml.safe_load(Path(args[1]).read_text()) if args else {}
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    content = values.get("roster", {}).get("content", defaults["roster"]["content"])
    roster = parse_roster(content)
    expected = bot_rbac_manifests(
        sorted({role.cluster_role for role in roster.roles.values()}),
        grant_namespace=values.get("tokenNamespace") or NAMESPACE,
        service_account_tokens=any(cluster.credentials == "token" for cluster in roster.clusters.values()),
    )
    actual = [
        _without_helm_labels(obj) for obj in chart(*args).objects if obj["kind"] in RBAC_KINDS and not _grant_role(obj)
    ]
    assert sorted(actual, key=_name) == sorted(expected, key=_name), (
        "deploy/helm/breakglass/templates/rbac.yaml no longer renders what bot/deploy_rbac.py does for the same "
        "roster: whoever changes the bot's RBAC in bot/deploy_rbac.py changes the chart's template with it"
    )


def test_the_charts_default_roster_is_the_example_roster() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults["roster"]["content"] == (DEPLOY / "roster.example.yaml").read_text(), (
        "deploy/helm/breakglass/values.yaml's roster.content is a copy of deploy/roster.example.yaml: keep them equal"
    )


def test_a_roster_offering_no_roles_lets_the_bot_bind_nothing(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"roster": {"content": yaml.safe_dump({"roles": {}, "clusters": {}})}}))
    role = chart("--values", str(values)).get("ClusterRole", "breakglass")
    assert not [rule for rule in role["rules"] if "bind" in rule["verbs"]]


def test_an_existing_roster_config_map_takes_its_roles_from_rbac_values() -> None:
    rendered = chart(
        "--set",
        "roster.existingConfigMap=my-roster",
        "--set",
        "rbac.clusterRoles={view,edit}",
        "--set",
        "rbac.serviceAccountTokens=true",
    )
    assert [cm["metadata"]["name"] for cm in rendered.of_kind("ConfigMap")] == ["breakglass-redis-acl"]
    assert _pod(rendered, "breakglass-web")["volumes"][0]["configMap"]["name"] == "my-roster"
    role = rendered.get("ClusterRole", "breakglass")
    assert ["edit", "view"] in [rule.get("resourceNames") for rule in role["rules"]]
    assert rendered.get("Role", "breakglass-grants")


# --- the README lists every value ----------------------------------------------------------------------


def _value_paths(node: Any, prefix: str = "") -> list[str]:
    if (
        not isinstance(node, dict)
        or not node
        or prefix in ("roster.content", "env", "networkPolicy.ingressController.podLabels")
    ):
        return [prefix]
    return [
        path
        for key, value in node.items()
        for path in _value_paths(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    ]


def test_the_chart_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text().partition("\n## Values\n")[2]
    listed = set(re.findall(r"^\| `([\w.]+)` \|", readme, re.MULTILINE))
    paths = set(_value_paths(yaml.safe_load((CHART / "values.yaml").read_text())))
    # Resources are documented as one value each (web.resources), not per cpu/memory leaf.
    paths = {re.sub(r"\.resources\..*$", ".resources", path) for path in paths}
    assert paths - listed == set(), "values missing from deploy/helm/breakglass/README.md"
    assert listed - paths == set(), "README.md lists values the chart does not have"


# --- the chart and the overlays install the same objects ------------------------------------------------

# Each overlay, and the chart values that are the same configuration.
SAME_CONFIGURATION = {
    "prod": (
        "--set",
        f"image.digest={PROD_DIGEST}",
        "--set",
        "ingress.enabled=true",
        "--set-file",
        f"roster.content={DEPLOY / 'overlays' / 'prod' / 'roster.yaml'}",
    ),
    "dev": ("--set", "redis.inCluster.enabled=true", "--set", "image.tag=0.1.0"),
}
# Only kustomize renders the Namespace: Helm installs into one that exists (create it first, with
# deploy/base/namespace.yaml, so its Pod Security labels are there before anything runs in it).
ONLY_IN_KUSTOMIZE = {("Namespace", NAMESPACE)}
DRIFT = (
    "deploy/ and the Helm chart no longer install the same objects for the same configuration. "
    "Whoever adds, renames or removes an object in deploy/base or an overlay (a ValidatingAdmissionPolicy, "
    "narrower ClusterRoles, Redis ACL users, ...) adds, renames or removes it in "
    "deploy/helm/breakglass/templates too, in the same change (and the other way round)."
)


def _kinds_and_names(rendered: Render) -> set[tuple[str, str]]:
    # kustomize's generated ConfigMap carries a content hash (breakglass-roster-<hash>); the chart's
    # rolls the pods with a checksum annotation instead.
    return {
        (obj["kind"], re.sub(r"^(breakglass-roster)-[a-z0-9]{10}$", r"\1", obj["metadata"]["name"]))
        for obj in rendered.objects
    }


@pytest.mark.parametrize("overlay", sorted(SAME_CONFIGURATION))
def test_chart_and_overlay_install_the_same_kinds_and_names(overlay: str) -> None:
    kustomize = _kinds_and_names(render(DEPLOY / "overlays" / overlay)) - ONLY_IN_KUSTOMIZE
    helm = _kinds_and_names(chart(*SAME_CONFIGURATION[overlay]))
    assert kustomize == helm, (
        f"{DRIFT}\nonly in overlays/{overlay}: {sorted(kustomize - helm)}\nonly in the chart: {sorted(helm - kustomize)}"
    )


@pytest.mark.parametrize("overlay", sorted(SAME_CONFIGURATION))
def test_chart_and_overlay_give_the_pods_the_same_settings_and_secrets(overlay: str) -> None:
    kustomize = render(DEPLOY / "overlays" / overlay)
    helm = chart(*SAME_CONFIGURATION[overlay])
    for deployment in ("breakglass-web", "breakglass-worker"):
        assert _env_sources(kustomize, deployment) == _env_sources(helm, deployment), f"{DRIFT}\n{deployment} env"
        (k_container,) = _pod(kustomize, deployment)["containers"]
        (h_container,) = _pod(helm, deployment)["containers"]
        assert k_container["image"] == h_container["image"], deployment
        assert k_container["volumeMounts"] == h_container["volumeMounts"], f"{DRIFT}\n{deployment} mounts"


def test_chart_and_overlay_give_the_bot_the_same_rbac() -> None:
    kustomize = [obj for obj in render(DEPLOY / "overlays" / "prod").objects if obj["kind"] in RBAC_KINDS]
    helm = [
        _without_helm_labels(obj) for obj in chart(*SAME_CONFIGURATION["prod"]).objects if obj["kind"] in RBAC_KINDS
    ]
    assert sorted(kustomize, key=_name) == sorted(helm, key=_name)


def test_only_the_ingress_controller_reaches_the_web_pods_and_its_place_is_a_value(rendered_chart: Render) -> None:
    assert web_ingress_peers(rendered_chart) == INGRESS_CONTROLLER_ONLY
    elsewhere = chart(
        "--set",
        "networkPolicy.ingressController.namespace=traefik",
        "--set",
        "networkPolicy.ingressController.podLabels.app\\.kubernetes\\.io/name=traefik",
    )
    assert web_ingress_peers(elsewhere) == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
        }
    ]


def test_prometheus_is_let_in_to_the_web_port_only_when_named(tmp_path: Path) -> None:
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"networkPolicy": {"metricsFrom": [prometheus]}}))
    with_metrics = chart("--values", str(values))
    assert web_ingress_peers(with_metrics) == [*INGRESS_CONTROLLER_ONLY, prometheus]
    web = with_metrics.get("NetworkPolicy", "breakglass-web")
    assert [port["port"] for rule in web["spec"]["ingress"] for port in rule["ports"]] == [3000, 3000]
    assert not schema_problems(with_metrics.objects)


def test_chart_and_overlay_give_the_web_pods_the_same_network_policy() -> None:
    kustomize = render(DEPLOY / "overlays" / "prod").get("NetworkPolicy", "breakglass-web")
    helm = chart(*SAME_CONFIGURATION["prod"]).get("NetworkPolicy", "breakglass-web")
    assert kustomize["spec"]["ingress"] == helm["spec"]["ingress"], DRIFT
    assert kustomize["spec"]["egress"] == helm["spec"]["egress"], DRIFT
