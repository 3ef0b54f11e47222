"""The rendered overlays are valid Kubernetes and keep the security properties deploy/ promises."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import all_versions

from tests.deploy.conftest import DEPLOY, KUBERNETES_VERSION, OVERLAYS, Render, schema_problems


def _name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def _env(container: dict[str, Any], name: str) -> dict[str, Any]:
    found = [item for item in container.get("env", []) if item["name"] == name]
    assert found, f"container {container['name']} has no env {name}"
    return found[0]


def test_overlays_render_without_a_warning(rendered: Render) -> None:
    # Deprecated kustomize fields (`bases`, `patchesStrategicMerge`, …) warn on every render.
    assert rendered.warnings == "", rendered.warnings


def test_every_overlay_in_the_tree_is_checked() -> None:
    on_disk = {path.name for path in (DEPLOY / "overlays").iterdir() if path.is_dir()}
    assert set(OVERLAYS) == on_disk
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_every_object_is_valid_for_a_current_kubernetes_strictly(rendered: Render) -> None:
    assert KUBERNETES_VERSION in all_versions(), (
        f"kubernetes-validate {kubernetes_validate.__version__} has no {KUBERNETES_VERSION} schemas; upgrade it"
    )
    problems = schema_problems(rendered.objects)
    assert not problems, "\n".join(problems)


def test_everything_lands_in_the_breakglass_namespace(rendered: Render) -> None:
    cluster_scoped = {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for obj in rendered.objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") == "breakglass-system", _name(obj)
    namespace = rendered.get("Namespace", "breakglass-system")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_container_runs_non_root_read_only_without_capabilities(rendered: Render) -> None:
    workloads = rendered.workloads()
    assert workloads
    for workload in workloads:
        pod = _pod_spec(workload)
        pod_sc = pod.get("securityContext", {})
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", _name(workload)
        for container in _containers(workload):
            where = f"{_name(workload)} container {container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert type(uid) is int, f"{where}: runAsUser must be numeric"
            assert uid > 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged", False) is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind} cpu and memory"


def test_read_only_root_still_has_a_writable_tmp(rendered: Render) -> None:
    for workload in rendered.workloads():
        volumes = {v["name"]: v for v in _pod_spec(workload).get("volumes", [])}
        for container in _containers(workload):
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp, f"{_name(workload)} {container['name']} has no /tmp"
            assert "emptyDir" in volumes[tmp[0]["name"]]


def test_web_and_worker_run_two_replicas_with_a_disruption_budget(rendered: Render) -> None:
    for name in ("breakglass-web", "breakglass-worker"):
        deployment = rendered.get("Deployment", name)
        assert deployment["spec"]["replicas"] == 2, name
        selector = deployment["spec"]["selector"]["matchLabels"]
        budgets = [
            pdb for pdb in rendered.of_kind("PodDisruptionBudget") if pdb["spec"]["selector"]["matchLabels"] == selector
        ]
        assert len(budgets) == 1, name
        assert budgets[0]["spec"]["minAvailable"] == 1, name


def test_web_probes_healthz_for_liveness_and_readyz_for_readiness(rendered: Render) -> None:
    (web,) = _pod_spec(rendered.get("Deployment", "breakglass-web"))["containers"]
    port = web["ports"][0]
    assert port["containerPort"] == 3000
    assert _env(web, "PORT")["value"] == "3000"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert web[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    service = rendered.get("Service", "breakglass-web")
    assert (
        service["spec"]["selector"] == rendered.get("Deployment", "breakglass-web")["spec"]["selector"]["matchLabels"]
    )


def test_worker_runs_the_worker_command_from_the_same_image(rendered: Render) -> None:
    (web,) = _pod_spec(rendered.get("Deployment", "breakglass-web"))["containers"]
    (worker,) = _pod_spec(rendered.get("Deployment", "breakglass-worker"))["containers"]
    assert worker["image"] == web["image"]
    assert [*worker.get("command", []), *worker.get("args", [])] == ["breakglass", "worker"]


def test_images_are_pinned_and_prod_pins_by_digest(rendered: Render) -> None:
    for workload in rendered.workloads():
        for container in _containers(workload):
            image = container["image"]
            assert re.search(r"(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$", image.rsplit("/", 1)[-1]), image
            assert not image.endswith(":latest"), image
            if rendered.overlay == "prod":
                assert re.search(r"@sha256:[0-9a-f]{64}$", image), image


def test_no_secret_values_are_rendered(rendered: Render) -> None:
    secrets = rendered.of_kind("Secret")
    assert not [s for s in secrets if s.get("data") or s.get("stringData")], "Secrets with values in the render"


# The audit sink's settings and credentials: each optional (no Secret, no sink; a role, no keys).
AUDIT_SINK_SECRETS = {
    "BREAKGLASS_AUDIT_SINK",
    "BREAKGLASS_S3_ENDPOINT_URL",
    "BREAKGLASS_AUDIT_SINK_RETENTION",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
# PagerDuty's and Jira's settings and tokens (automated approvals): each optional, in both processes.
INTEGRATION_SECRETS = {
    "BREAKGLASS_PAGERDUTY_TOKEN",
    "BREAKGLASS_PAGERDUTY_API_URL",
    "BREAKGLASS_PAGERDUTY_FROM",
    "BREAKGLASS_JIRA_URL",
    "BREAKGLASS_JIRA_USER",
    "BREAKGLASS_JIRA_TOKEN",
}
# What each process is given from Secrets, and nothing more: the worker verifies no Slack request and
# reads no 2FA status, and the signing secret alone forges approvals (issue 10 finding 26).
SECRETS_OF = {
    "breakglass-web": {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_ADMIN_TOKEN",
        "BREAKGLASS_REDIS_URL",
        "BREAKGLASS_SIGNING_KEY",
        "BREAKGLASS_AUDIT_WEBHOOK_TOKEN",
        "BREAKGLASS_AUDIT_SINK",
    }
    | INTEGRATION_SECRETS,
    "breakglass-worker": {"SLACK_BOT_TOKEN", "BREAKGLASS_REDIS_URL", "BREAKGLASS_SIGNING_KEY"}
    | AUDIT_SINK_SECRETS
    | INTEGRATION_SECRETS,
}
REQUIRED_SECRETS = {"SLACK_BOT_TOKEN", "BREAKGLASS_REDIS_URL", "BREAKGLASS_SIGNING_KEY"}


def test_each_process_gets_only_the_secrets_it_needs_by_reference(rendered: Render) -> None:
    for name, expected in SECRETS_OF.items():
        (container,) = _pod_spec(rendered.get("Deployment", name))["containers"]
        from_secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        assert set(from_secrets) == expected, name
        assert not [e["name"] for e in container["env"] if e["name"] in expected and "value" in e], name
        for variable in REQUIRED_SECRETS:
            assert not from_secrets[variable].get("optional"), f"{name} {variable} is required"
    (worker,) = _pod_spec(rendered.get("Deployment", "breakglass-worker"))["containers"]
    assert not {"SLACK_SIGNING_SECRET", "SLACK_ADMIN_TOKEN"} & {e["name"] for e in worker["env"]}


def test_service_account_token_is_mounted_only_in_the_worker(rendered: Render) -> None:
    for account in rendered.of_kind("ServiceAccount"):
        assert account.get("automountServiceAccountToken") is False, _name(account)
    for workload in rendered.workloads():
        mounted = _pod_spec(workload).get("automountServiceAccountToken")
        assert mounted is (workload["metadata"]["name"] == "breakglass-worker"), _name(workload)
    assert _pod_spec(rendered.get("Deployment", "breakglass-worker"))["serviceAccountName"] == "breakglass"


def test_roster_config_map_is_mounted_where_breakglass_roster_points(rendered: Render) -> None:
    config_map = rendered.roster_config_map()
    assert "roster.yaml" in config_map["data"]
    for name in ("breakglass-web", "breakglass-worker"):
        pod = _pod_spec(rendered.get("Deployment", name))
        (container,) = pod["containers"]
        path = _env(container, "BREAKGLASS_ROSTER")["value"]
        directory, filename = path.rsplit("/", 1)
        (volume,) = [v for v in pod["volumes"] if v.get("configMap", {}).get("name") == config_map["metadata"]["name"]]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["mountPath"] == directory, name
        assert filename in config_map["data"], name
        assert mount.get("readOnly") is True


# Issue 10 finding 4: the web pods took connections from anywhere on 3000, so any pod in the cluster
# could post to /slack/events or /k8s/audit/ past the proxy's body limits and buffering, or read
# /metrics. Only the ingress controller's pods (both selectors in one peer: those pods, in that
# namespace) are let in.
INGRESS_CONTROLLER_ONLY = [
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
    }
]


def web_ingress_peers(rendered: Render) -> list[dict[str, Any]]:
    """Every peer any ingress rule of the web NetworkPolicy lets in; a rule without ``from`` lets in
    everyone, and is returned as the peer ``{}``."""
    web = rendered.get("NetworkPolicy", "breakglass-web")
    return [peer for rule in web["spec"]["ingress"] for peer in rule.get("from", [{}])]


def test_only_the_ingress_controller_reaches_the_web_pods(rendered: Render) -> None:
    assert web_ingress_peers(rendered) == INGRESS_CONTROLLER_ONLY
    no_policy_lets_in_more = [
        policy["metadata"]["name"]
        for policy in rendered.of_kind("NetworkPolicy")
        if policy["spec"].get("ingress") and policy["metadata"]["name"] not in ("breakglass-web", "breakglass-redis")
    ]
    assert not no_policy_lets_in_more


def test_namespace_denies_all_traffic_except_what_policies_allow(rendered: Render) -> None:
    deny = rendered.get("NetworkPolicy", "breakglass-default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    web = rendered.get("NetworkPolicy", "breakglass-web")
    assert [p["port"] for rule in web["spec"]["ingress"] for p in rule["ports"]] == [3000]
    assert web["spec"]["ingress"][0]["from"] == INGRESS_CONTROLLER_ONLY
    worker = rendered.get("NetworkPolicy", "breakglass-worker")
    assert "Ingress" in worker["spec"]["policyTypes"]
    assert not worker["spec"].get("ingress"), "nothing connects to the worker"
    egress_ports = {p["port"] for rule in worker["spec"]["egress"] for p in rule["ports"]}
    assert {53, 443, 6443} <= egress_ports
    to_redis = rendered.get("NetworkPolicy", "breakglass-to-redis")
    assert 6379 in {p["port"] for rule in to_redis["spec"]["egress"] for p in rule["ports"]}


def test_dev_runs_redis_with_aof_on_a_persistent_volume(rendered: Render) -> None:
    if rendered.overlay != "dev":
        assert not rendered.of_kind("StatefulSet"), "prod uses a managed Redis"
        return
    redis = rendered.get("StatefulSet", "breakglass-redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    (container,) = _pod_spec(redis)["containers"]
    script = " ".join([*container.get("command", []), *container.get("args", [])])
    assert "--appendonly yes" in script
    assert "--dir /data" in script
    assert any(m["name"] == "data" and m["mountPath"] == "/data" for m in container["volumeMounts"])
    assert "requirepass" in script
    assert "env" not in container, "the password comes from a mounted file, not the environment"


def test_every_checkov_skip_names_a_check_and_a_reason(rendered: Render) -> None:
    # checkov splits the value on "=" into (id, reason); a second "=" would crash it.
    for obj in rendered.objects:
        for key, value in obj["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                assert re.fullmatch(r"CKV2?_K8S_\d+=[^=]{20,}", value), f"{_name(obj)} {key}: {value}"


def test_prod_ingress_serves_tls_and_limits_bodies_per_route_with_buffering(rendered: Render) -> None:
    if rendered.overlay != "prod":
        assert not rendered.of_kind("Ingress")
        return
    limits = {}
    for ingress in rendered.of_kind("Ingress"):
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on", _name(ingress)
        assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"] for rule in ingress["spec"]["rules"]]
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] == "breakglass-web"
                limits[path["path"]] = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    # The web process's own limits: 1 MiB, and 16 MiB for the audit webhook. Nothing else is routed.
    assert limits == {"/slack/events": "1m", "/oidc/": "1m", "/k8s/audit/": "16m"}
