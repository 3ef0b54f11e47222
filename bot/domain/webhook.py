"""The audit webhook's per-cluster bearer tokens, derived from the one webhook secret.

Each cluster's API server holds only its own token, so one cluster (or whoever reads its API server's
configuration) cannot post events as another: the token for ``/k8s/audit/prod`` is refused at
``/k8s/audit/staging``. Deriving them (HMAC of the cluster name under ``BREAKGLASS_AUDIT_WEBHOOK_TOKEN``)
means no per-cluster secret to store, and a rotation of the one secret rotates them all.
"""

from __future__ import annotations

import hashlib
import hmac

_PURPOSE = b"breakglass audit webhook token\x00"


def cluster_webhook_token(secret: str, cluster: str) -> str:
    """The bearer token the API server of ``cluster`` presents at ``/k8s/audit/<cluster>``."""
    digest = hmac.new(secret.encode(), _PURPOSE + cluster.encode(), hashlib.sha256).hexdigest()
    return f"bgaw-{digest}"


def webhook_kubeconfig(cluster: str, server: str, secret: str) -> dict[str, object]:
    """The kubeconfig the API server of ``cluster`` reads with ``--audit-webhook-config-file``: it posts
    to ``<server>/k8s/audit/<cluster>`` with that cluster's token. ``server`` is the web process's
    external base URL; plain http is accepted for a loopback host only (the token would travel in clear)."""
    base = server.rstrip("/")
    loopback = base.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if not base.startswith("https://") and not loopback:
        raise ValueError("--server must be an https:// URL (http:// only for a loopback host)")
    if not cluster or "/" in cluster or not cluster.isprintable():
        raise ValueError(f"'{cluster[:64]}' is not a cluster name")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "breakglass", "cluster": {"server": f"{base}/k8s/audit/{cluster}"}}],
        "users": [{"name": "kube-apiserver", "user": {"token": cluster_webhook_token(secret, cluster)}}],
        "contexts": [{"name": "breakglass", "context": {"cluster": "breakglass", "user": "kube-apiserver"}}],
        "current-context": "breakglass",
    }
