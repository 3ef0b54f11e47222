"""Rendering the kustomize overlays (and, in test_helm_chart, the Helm chart) once per test session.

The renderers are the pinned kubectl and helm that ``.ci/fetch-k8s-tools.sh`` puts in its cache
(``.ci/run`` runs it before pytest). Without them the tests fail, with one line saying to run the
script: a silently skipped deploy test would let broken manifests land.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

# A current Kubernetes minor. Raise it with kubernetes-validate (pyproject's dev extra), which
# ships the schemas; strict schemas reject unknown fields, so a misspelt key fails here.
KUBERNETES_VERSION = "1.37.0"
REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
FETCH_SCRIPT = REPO / ".ci" / "fetch-k8s-tools.sh"
# Every overlay in the tree, so a new one is rendered and schema-checked without editing this file.
OVERLAYS = tuple(sorted(path.parent.name for path in (DEPLOY / "overlays").glob("*/kustomization.yaml")))


def tools_dir() -> Path:
    """Where the fetch script keeps helm and kubectl: $BREAKGLASS_K8S_TOOLS, or the cache directory
    named after the pinned package version (read from the script, so the two cannot disagree)."""
    if os.environ.get("BREAKGLASS_K8S_TOOLS"):
        return Path(os.environ["BREAKGLASS_K8S_TOOLS"])
    found = re.search(r'^VERSION="([^"]+)"$', FETCH_SCRIPT.read_text(), re.MULTILINE)
    assert found, f"{FETCH_SCRIPT} no longer sets VERSION"
    return Path(os.environ.get("HOME", "/root")) / ".cache" / "breakglass-ci" / "tools" / found.group(1)


@cache
def tool(name: str) -> str:
    path = tools_dir() / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"no {name} at {path}: run `bash .ci/fetch-k8s-tools.sh` first", pytrace=False)
    return str(path)


def run_tool(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stderr}", pytrace=False)
    return proc


@dataclass(frozen=True)
class Render:
    overlay: str
    objects: tuple[dict[str, Any], ...]
    warnings: str = ""

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def roster_config_map(self) -> dict[str, Any]:
        found = [cm for cm in self.of_kind("ConfigMap") if cm["metadata"]["name"].startswith("breakglass-roster")]
        assert len(found) == 1, f"{self.overlay}: expected one breakglass-roster ConfigMap, found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def parse(text: str) -> tuple[dict[str, Any], ...]:
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


@cache
def render(path: Path) -> Render:
    proc = run_tool([tool("kubectl"), "kustomize", str(path)], f"kubectl kustomize {path}")
    return Render(path.name, parse(proc.stdout), proc.stderr)


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Render:
    return render(DEPLOY / "overlays" / request.param)


def schema_problems(objects: tuple[dict[str, Any], ...]) -> list[str]:
    """Each object that is not valid for KUBERNETES_VERSION (strictly: no unknown fields), one line each."""
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {where}")
    return problems
