"""A binding's warrant: its own signed proof of what it grants, to whom, and until when.

The warrant is an annotation on the binding, an HMAC (key derived from ``BREAKGLASS_SIGNING_KEY``
for this purpose alone) over the request id, cluster, namespace, roleRef, subject and expiry. With
it the cluster alone says whether a binding is one breakglass made: the sweep keeps a binding whose
warrant verifies until its signed expiry even when Redis has lost its request, and deletes at once a
managed binding whose warrant is missing or does not verify (an edited expiry, a relabelled,
re-pointed or hand-made binding). Whoever can write Redis cannot make one: the key never enters it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.domain.grants import binding_name, format_instant
from bot.domain.ids import RequestId
from bot.domain.keys import sign, signature_matches

WARRANT_ANNOTATION = "breakglass.dev/warrant"
_VERSION = "v1"


@dataclass(frozen=True)
class Subject:
    """A binding's subject as RBAC names it."""

    kind: str  # User | ServiceAccount
    name: str
    namespace: str = ""


@dataclass(frozen=True)
class Warranted:
    """What a warrant signs: everything that decides what access a binding gives, and until when."""

    request_id: RequestId
    cluster: str
    namespace: str | None
    role_ref: str  # the ClusterRole's name
    subject: Subject
    expires_at: datetime

    def message(self) -> bytes:
        fields = [
            _VERSION,
            self.request_id,
            self.cluster,
            self.namespace or "",
            self.role_ref,
            self.subject.kind,
            self.subject.name,
            self.subject.namespace,
            format_instant(self.expires_at),
        ]
        # JSON keeps the fields apart whatever they hold (a ',' or '/' in a kube_user).
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_warrant(key: bytes, what: Warranted) -> str:
    return f"{_VERSION}:{sign(key, what.message())}"


def warrant_verifies(key: bytes, warrant: str | None, name: str, what: Warranted) -> bool:
    """Whether ``warrant`` signs ``what`` under ``key``, on the binding ``name`` made for its request
    (a copy under another name gives no more access, but is not the grant's)."""
    if not warrant or name != binding_name(what.request_id):
        return False
    version, _, signature = warrant.partition(":")
    return version == _VERSION and signature_matches(key, what.message(), signature)
