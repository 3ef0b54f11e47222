"""Rendering the kustomize overlays once per test session, for the deploy tests.

A renderer is required, not optional: ``kubectl kustomize`` when kubectl is on PATH, else a
standalone ``kustomize build``. With neither the tests fail (CI installs kubectl through
``.ci/deploy-checks.sh``); a silently skipped deploy test would let broken manifests land.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Every overlay in the tree, so a new one is rendered and schema-checked without editing this file.
OVERLAYS = tuple(sorted(path.parent.name for path in (DEPLOY / "overlays").glob("*/kustomization.yaml")))


@cache
def renderer() -> tuple[str, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        return (kubectl, "kustomize")
    kustomize = shutil.which("kustomize")
    if kustomize:
        return (kustomize, "build")
    pytest.fail(
        "no kustomize renderer: neither `kubectl` nor `kustomize` is on PATH. "
        "Run `bash .ci/deploy-checks.sh` (installs Debian's kubernetes-client) or install kubectl.",
        pytrace=False,
    )


@dataclass(frozen=True)
class Render:
    overlay: str
    objects: tuple[dict[str, Any], ...]

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


@cache
def render(path: Path) -> tuple[dict[str, Any], ...]:
    proc = subprocess.run([*renderer(), str(path)], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(renderer())} {path} failed ({proc.returncode}):\n{proc.stderr}", pytrace=False)
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Render:
    name = request.param
    return Render(name, render(DEPLOY / "overlays" / name))
