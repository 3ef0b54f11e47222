"""Kubeconfig files that point the official client at one or more running doubles (one context each)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml


class _HasURL(Protocol):
    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class ContextEntry:
    """One context: which double, which bearer token, and optionally a default namespace."""

    server: _HasURL
    token: str
    namespace: str | None = None


def kubeconfig_dict(contexts: Mapping[str, ContextEntry], current_context: str | None = None) -> dict[str, Any]:
    """A kubeconfig with a cluster, a user and a context per entry, all named after the context."""
    if not contexts:
        raise ValueError("a kubeconfig needs at least one context")
    clusters, users, ctxs = [], [], []
    for name, entry in contexts.items():
        clusters.append({"name": name, "cluster": {"server": entry.server.url}})
        users.append({"name": name, "user": {"token": entry.token}})
        context: dict[str, str] = {"cluster": name, "user": name}
        if entry.namespace:
            context["namespace"] = entry.namespace
        ctxs.append({"name": name, "context": context})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": clusters,
        "users": users,
        "contexts": ctxs,
        "current-context": current_context or next(iter(contexts)),
    }


def write_kubeconfig(
    path: Path | str, contexts: Mapping[str, ContextEntry], current_context: str | None = None
) -> Path:
    """Write one kubeconfig file for several doubles (several clusters); readable only by its owner."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kubeconfig_dict(contexts, current_context), sort_keys=False))
    target.chmod(0o600)  # it holds bearer tokens
    return target
