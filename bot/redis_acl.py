"""Redis ACL users for the web and worker processes: the fewest commands and keys each needs.

Whoever holds a process's Redis password can do what that process can. Without ACL users that is
everything: ``FLUSHALL``, ``CONFIG SET dir`` (writing files on the Redis host), ``MODULE LOAD``, every
key of every installation sharing the Redis. With these users:

- both may run only data commands (``+@read +@write`` and the transaction, list-blocking, pub/sub and
  connection commands RQ and redis-py use), never ``@dangerous`` or ``@admin`` ones (``FLUSHALL``,
  ``CONFIG``, ``KEYS``, ``MODULE``, ``DEBUG``, ``SHUTDOWN``, ``MIGRATE``…), nor ``EVAL``/``FUNCTION``;
- each only on its installation's keys (``BREAKGLASS_KEY_PREFIX``) and RQ's for its queues;
- the web process, which answers people, gets no key of the worker's machinery: not RQ's worker
  records, scheduler locks, suspension flag or command channel (``rq:pubsub:*``), nor the sweep's
  lock, the publisher's progress or the overdue-revoke claims, so that its password cannot pose as a
  worker, stop or suspend workers, or stop the sweep. It still enqueues jobs and appends to the audit
  log, because asking for access does both (and RQ's job registries of its queues, which re-enqueueing
  a fixed job id touches). What it can enqueue is bounded by the worker, which runs only the project's
  own job functions (JSON, ``workers.queueing``) and re-checks every job against the roster; what it
  can append, by the chain's key, which Redis never sees.

The key patterns come from ``bot.store.keys`` (one place names every key) and RQ's own names
(``rq:job:<id>``, ``rq:queue:<name>``, ``rq:<registry>:<queue name>``, ``rq:worker(s)…``).
Pure: renders text; ``breakglass deploy redis-acl`` prints it, ``deploy/base/redis-acl.yaml`` ships it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.keys import Keys

# What both processes may run. @read/@write are data commands; @dangerous and @admin are removed
# after (Redis applies rules left to right), then the few connection commands redis-py and RQ send.
_COMMANDS = (
    "-@all +@read +@write +@transaction +@blocking +@pubsub +@connection +@keyspace -@dangerous -@admin "
    "+eval +evalsha +script|load +script|exists +ping +client|setname +client|getname +client|id +info"
)

# RQ's registries a job moves through (rq.registry): re-enqueueing a job id removes it from its last.
_JOB_REGISTRIES = ("wip", "finished", "failed", "deferred", "ready", "scheduled", "canceled")

# The users' names under the default prefix.
WEB_USER = "breakglass-web"
WORKER_USER = "breakglass-worker"

# Keys of bot.store.keys the web process never touches: the worker's machinery. Every other key is
# the web's too (asking, approving, the audit log, step-up, quotas). A key added to ``Keys`` is the
# web's until named here; tests/store/test_redis_acl.py makes whoever adds one decide.
WORKER_ONLY_KEYS = frozenset(
    {
        "sweep_running",  # the sweep's lock: the web could hold it and stop every sweep
        "sweep_due",
        "known_clusters",  # which clusters the sweep keeps sweeping after they leave the roster
        "revoking",  # claims on overdue grants being revoked
        "publishing",  # the publisher's lock, and what Slack has been shown
        "published",
        "audit_sink_shipping",
    }
)


@dataclass(frozen=True)
class AclUser:
    name: str
    keys: tuple[str, ...]  # key patterns (``~``)
    channels: tuple[str, ...]  # pub/sub channel patterns (``&``)

    def rules(self) -> str:
        """The user's rules as ``ACL SETUSER`` and an ACL file take them, without its password."""
        keys = " ".join(f"~{pattern}" for pattern in self.keys)
        channels = " ".join(f"&{pattern}" for pattern in self.channels)
        return " ".join(part for part in ("on resetkeys", keys, "resetchannels", channels, _COMMANDS) if part)

    def acl_file_line(self, password_sha256: str) -> str:
        """One line of a Redis ACL file (``aclfile``), the password given as its SHA-256 (hex)."""
        return f"user {self.name} #{password_sha256} {self.rules()}"


def key_patterns(keys: Keys) -> dict[str, str]:
    """Each key ``Keys`` names (by its member's name) as a pattern: ``*`` where it takes an id."""
    patterns = {}
    for name, member in vars(Keys).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            patterns[name] = member.fget(keys)  # type: ignore[misc]
        elif callable(member):
            patterns[name] = member(keys, "*")
    return patterns


def acl_users(prefix: str = "breakglass") -> tuple[AclUser, AclUser]:
    """The web and the worker user, for an installation's key prefix (its queues are named after it)."""
    queues = f"{prefix}-*"
    ours = key_patterns(Keys(prefix))
    web_keys = (
        *sorted(pattern for name, pattern in ours.items() if name not in WORKER_ONLY_KEYS),
        # Named by their stores rather than Keys: each request's audit index (AuditLog.by_request_key),
        # what the audit webhook records (bot.store.kube_actions), and each metric under Keys.metrics.
        f"{prefix}:audit:request:*",
        f"{prefix}:actions:*",
        f"{prefix}:metrics:*",
        # Enqueueing a job: the job's hash, its queue, the list of queues, and (a job id being fixed,
        # so that enqueueing twice is harmless) taking an earlier run of it out of its registry and
        # deleting it, its results (rq:results:<id>) with it.
        f"rq:queue:{queues}",
        "rq:queues",
        "rq:job:*",
        "rq:executions:*",
        "rq:results:*",
        *(f"rq:{registry}:{queues}" for registry in _JOB_REGISTRIES),
    )
    worker_keys = (f"{prefix}:*", "rq:*")  # RQ's workers, registries, scheduler locks and commands
    # Named after the prefix, so that installations sharing a Redis have users of their own.
    return AclUser(f"{prefix}-web", web_keys, ()), AclUser(f"{prefix}-worker", worker_keys, ("rq:*",))


def acl_file(prefix: str = "breakglass") -> str:
    """The two users as ACL file lines without passwords: add ``>password`` (or ``#<sha256>``) to
    each, or give each rule string to ``ACL SETUSER <name> >password …`` on a managed Redis."""
    return "".join(f"user {user.name} {user.rules()}\n" for user in acl_users(prefix))
