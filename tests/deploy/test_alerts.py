"""The optional alerting rule (deploy/components/alerts, the chart's ``prometheusRule``): it renders
with an overlay, the chart's is the same rule, and its expression names the web process's counter of
refused audit batches. That the web process really exposes that name is checked against a running
``breakglass web`` in tests/ops/test_web_edge.py."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from bot.metrics import REFUSED_BATCHES
from tests.deploy.conftest import DEPLOY, parse, run_tool, tool
from tests.deploy.test_helm_chart import chart

ALERTS = DEPLOY / "components" / "alerts"
ALERT = "BreakglassAuditBatchRefused"
# PromQL words the rule's expression uses that are not metric names: functions, aggregation,
# operators, modifiers and the labels it groups by.
PROMQL_WORDS = {"max", "by", "increase", "or", "unless", "offset", "cluster", "status"}


def rule_file() -> dict[str, Any]:
    (rule,) = parse((ALERTS / "prometheusrule.yaml").read_text())
    return rule


def alert(rule: dict[str, Any]) -> dict[str, Any]:
    (found,) = [r for group in rule["spec"]["groups"] for r in group["rules"] if r.get("alert") == ALERT]
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: its identifiers, less PromQL's own words, range
    and offset durations, and numbers."""
    bare = re.sub(r"\[[^\]]*\]|\boffset\s+\w+|\b\d+\b", " ", expr)
    return set(re.findall(r"[A-Za-z_:][\w:]*", bare)) - PROMQL_WORDS


def test_the_alert_reads_the_counter_of_refused_batches_and_nothing_else() -> None:
    expr = alert(rule_file())["expr"]
    assert metric_names(expr) == {REFUSED_BATCHES}
    # Every refusal status and cluster is its own alert, and a first refusal (a new series) is seen.
    assert "by (cluster, status)" in expr
    assert "unless" in expr


def test_the_component_renders_with_an_overlay_into_the_namespace(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(DEPLOY / 'overlays' / 'prod', tmp_path)}\n"
        f"components:\n  - {os.path.relpath(ALERTS, tmp_path)}\n"
    )
    proc = run_tool([tool("kubectl"), "kustomize", str(tmp_path)], "kubectl kustomize prod + alerts")
    assert proc.stderr == ""
    (rule,) = [obj for obj in parse(proc.stdout) if obj["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "breakglass-system"
    assert rule["spec"] == rule_file()["spec"]


def test_the_chart_renders_the_same_rule_only_when_asked_with_its_labels() -> None:
    assert not chart().of_kind("PrometheusRule")
    rendered = chart("--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=kps")
    (rule,) = rendered.of_kind("PrometheusRule")
    assert rule["spec"] == rule_file()["spec"], (
        "the chart's PrometheusRule and deploy/components/alerts/prometheusrule.yaml differ: change both"
    )
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["metadata"]["namespace"] == "breakglass-system"
    assert alert(rule)["annotations"]["summary"].count("{{ $labels.") == 2  # Prometheus's, not Helm's
