"""Durable workflow state in Redis: requests, their indexes and the audit log.

Redis holds the workflow; the clusters hold the truth of what is granted (the reconcile sweep makes
them agree). Every change of a request and its audit entries are written in one MULTI/EXEC guarded by
WATCH on the request and on the audit head, so two approvers clicking in the same instant give one
transition, and no change lands without its audit entry. Keys share one prefix so several
deployments can share a Redis; every process of one deployment uses the same prefix.
"""

from bot.store.audit_log import AuditLog, AuditLogBroken, ChainKeyMissing, Draft, UnreadableEntry
from bot.store.requests import Change, RequestStore

__all__ = ["AuditLog", "AuditLogBroken", "ChainKeyMissing", "Change", "Draft", "RequestStore", "UnreadableEntry"]
