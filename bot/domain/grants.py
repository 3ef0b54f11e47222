"""What a grant puts into a cluster, described without any client library.

The Kubernetes adapter (``workers/kube.py``) turns a ``BindingSpec`` into a RoleBinding or
ClusterRoleBinding and reads managed bindings back as ``ManagedBinding``. Names, labels and
annotations are the external contract ("What lands in Kubernetes"): the cluster alone must be enough
to know what to revoke and when, so the expiry instant travels on the object itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from bot.domain.ids import RequestId, SlackUserId

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "breakglass"
REQUEST_ID_LABEL = "breakglass.dev/request-id"
REQUESTER_ANNOTATION = "breakglass.dev/requester"
APPROVERS_ANNOTATION = "breakglass.dev/approvers"
REASON_ANNOTATION = "breakglass.dev/reason"
EXPIRES_AT_ANNOTATION = "breakglass.dev/expires-at"
# On a ``credentials: token`` grant's binding: "<namespace>/<name>" of the ServiceAccount made for it,
# so the cluster alone says what a revoke or the sweep must delete besides the binding.
SERVICE_ACCOUNT_ANNOTATION = "breakglass.dev/service-account"
# Where the grant's request thread is (``<channel>/<root ts>``), so that a sweep that finds the binding
# after Redis lost the request can still tell that thread. Not part of the warrant: it only says where
# to post, and the sweep posts only to channels the roster allows requests in.
THREAD_ANNOTATION = "breakglass.dev/thread"
# Which installation of breakglass made it (BREAKGLASS_INSTALLATION): two installations sharing a
# cluster each sweep only their own bindings, and each one's admission policy requires the label.
INSTALLATION_LABEL = "breakglass.dev/installation"
DEFAULT_INSTALLATION = "default"
# Label values must be DNS-label-ish; the id is stored in its canonical upper-case form.
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
# Where the bot runs and per-grant ServiceAccounts live (the bot's Role for tokens is there).
SYSTEM_NAMESPACE = "breakglass-system"

Credentials = Literal["user", "token"]


def binding_name(request_id: RequestId) -> str:
    return f"breakglass-{request_id.lower()}"


def format_instant(at: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, whole seconds, as Kubernetes writes timestamps."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,20}")
_TS = re.compile(r"\d{1,12}\.\d{1,9}")


@dataclass(frozen=True)
class RequestThread:
    """A request's Slack thread: its channel and the root message's ts."""

    channel: str
    ts: str

    def annotation(self) -> str:
        return f"{self.channel}/{self.ts}"

    @classmethod
    def parse(cls, text: object) -> RequestThread | None:
        """The thread an annotation names, or None for anything that is not a channel id and a ts."""
        channel, _, ts = str(text or "").partition("/")
        if _CHANNEL.fullmatch(channel) is None or _TS.fullmatch(ts) is None:
            return None
        return cls(channel, ts)


@dataclass(frozen=True)
class BindingSpec:
    """One grant's binding. ``namespace`` None means cluster scope (a ClusterRoleBinding)."""

    request_id: RequestId
    cluster: str
    namespace: str | None
    cluster_role: str
    credentials: Credentials
    kube_user: str
    requester: SlackUserId
    approvers: tuple[SlackUserId, ...]
    reason: str
    expires_at: datetime
    thread: RequestThread | None = None  # the request's thread, once its root message is posted

    @property
    def name(self) -> str:
        return binding_name(self.request_id)

    def labels(self) -> dict[str, str]:
        return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, REQUEST_ID_LABEL: self.request_id}

    def annotations(self) -> dict[str, str]:
        annotations = {
            REQUESTER_ANNOTATION: self.requester,
            APPROVERS_ANNOTATION: ",".join(self.approvers),
            REASON_ANNOTATION: self.reason,
            EXPIRES_AT_ANNOTATION: format_instant(self.expires_at),
        }
        if self.thread is not None:
            annotations[THREAD_ANNOTATION] = self.thread.annotation()
        return annotations


@dataclass(frozen=True)
class ManagedBinding:
    """A binding found in a cluster carrying the managed-by label, as the sweep sees it."""

    cluster: str
    name: str
    namespace: str | None
    request_id: RequestId | None
    expires_at: datetime | None  # None: annotation missing or unreadable, which the sweep treats as expired
    service_account: tuple[str, str] | None = None  # (namespace, name) when credentials: token
    # Whether its warrant (bot.domain.warrant) verifies: signed by us over what it grants, as it is now.
    warranted: bool = False
    thread: RequestThread | None = None  # its THREAD_ANNOTATION, when it carries a readable one


@dataclass(frozen=True)
class ManagedServiceAccount:
    """A ServiceAccount found in a cluster's token namespace carrying the managed-by label."""

    cluster: str
    name: str
    namespace: str
    request_id: RequestId | None


@dataclass(frozen=True)
class IssuedCredentials:
    """What the holder needs to use a ``credentials: token`` grant."""

    kubeconfig: str
    token_expires_at: datetime
    outlives_grant: bool = field(default=False)
