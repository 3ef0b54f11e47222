"""Answers for the non-resource paths: version, health and API discovery for the kinds the double serves."""

from __future__ import annotations

from typing import Any

from bot.standins.kube import resources as kinds
from bot.standins.kube.status import path_not_found

JSON = dict[str, Any]


def answer(path: str, git_version: str) -> tuple[int, JSON | bytes]:
    """The body for a GET of ``path``; raises the API server's 404 for anything else."""
    path = path.rstrip("/") or "/"
    if path == "/version":
        return 200, {
            "major": "1",
            "minor": git_version.lstrip("v").split(".")[1],
            "gitVersion": git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2024-08-13T07:28:49Z",
            "goVersion": "go1.22.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
    if path in ("/healthz", "/livez", "/readyz"):
        return 200, b"ok"
    if path == "/api":
        return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        groups = [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
            }
            for g, v in kinds.SERVED_VERSIONS.items()
            if g
        ]
        return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    group_version = path.removeprefix("/api/").removeprefix("/apis/")
    for group, version in kinds.SERVED_VERSIONS.items():
        if group_version == (f"{group}/{version}" if group else version):
            return 200, _resource_list(group, version)
    raise path_not_found()


def _resource_list(group: str, version: str) -> JSON:
    entries: list[JSON] = []
    for rt in kinds.STORED:
        if rt.group != group:
            continue
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]
        entries.append(
            {
                "name": rt.plural,
                "singularName": rt.kind.lower(),
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": verbs,
                "shortNames": list(rt.short_names),
            }
        )
        if rt is kinds.SERVICE_ACCOUNTS:
            entries.append(
                {
                    "name": "serviceaccounts/token",
                    "singularName": "",
                    "namespaced": True,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"],
                }
            )
    for (review_group, plural), (kind, namespaced) in kinds.REVIEWS.items():
        if review_group == group:
            entries.append(
                {
                    "name": plural,
                    "singularName": kind.lower(),
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": ["create"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }
