"""The operator commands of issue 5 (demo, doctor, deploy rbac), kept apart from the core CLI.

Each command's module is imported only when it runs: ``breakglass web`` must not pay for the demo's
stand-ins or the doctor's clients at start.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sized
from typing import TYPE_CHECKING, Any, TextIO

from bot.domain.grants import SYSTEM_NAMESPACE

if TYPE_CHECKING:
    from bot.domain.lifecycle import AccessRequest
    from bot.domain.roster import Roster
    from bot.wiring import Core


def add_roster_argument(parser: argparse.ArgumentParser) -> None:
    """The roster, taken the same way by every command that reads one: a path, ``-`` for standard
    input, or nothing for $BREAKGLASS_ROSTER (default roster.yaml, as the processes read it)."""
    parser.add_argument(
        "roster",
        nargs="?",
        metavar="ROSTER",
        help="the roster file, or - for standard input (default: $BREAKGLASS_ROSTER, else roster.yaml)",
    )


def read_roster(args: argparse.Namespace, problems: TextIO | None = None) -> tuple[str, Roster | None]:
    """(the roster's name for messages, the roster) — or, when it fails its check, None after every
    problem is printed on ``problems`` (default standard output), one line each, and a count on
    standard error."""
    from bot.domain.roster import RosterError, load_roster_file, parse_roster_bytes

    path = args.roster or os.environ.get("BREAKGLASS_ROSTER") or "roster.yaml"
    name = "(stdin)" if path == "-" else path
    try:
        roster = parse_roster_bytes(sys.stdin.buffer.read()) if path == "-" else load_roster_file(path)
    except RosterError as exc:
        for problem in exc.problems:
            print(f"{name}: {problem}", file=problems or sys.stdout)
        print(f"{name}: {count(exc.problems, 'problem')}", file=sys.stderr)
        return name, None
    return name, roster


def count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def register_extra_commands(commands: Any, command: Callable[..., Any], group: Callable[..., Any]) -> None:
    demo = command(
        commands,
        "demo",
        "walk requests through their whole life against local stand-ins (no Slack, no cluster)",
        "Starts the real web app and worker against local doubles of Slack and Kubernetes and a private "
        "redis-server, and prints the incident threads as Slack shows them. Leaves nothing running.",
    )
    demo.add_argument(
        "--redis-url", help="use this Redis (under a key prefix of its own) instead of a private redis-server"
    )
    demo.set_defaults(run=_demo)

    doctor = command(
        commands,
        "doctor",
        "check settings, roster, Redis, Slack and every cluster, and name each fix",
        "Reads the same environment as the processes. Exit status 0 only when every check passes.",
    )
    doctor.add_argument(
        "--worker",
        action="store_true",
        help="check the worker's environment, which needs no SLACK_SIGNING_SECRET "
        "(kubectl exec deploy/breakglass-worker -- breakglass doctor --worker)",
    )
    doctor.set_defaults(run=_doctor)

    grant = command(
        commands,
        "grant",
        "grant access from where the bot runs, for when Slack is down",
        "Run it in the worker's container (kubectl exec: only platform admins can). It goes through the "
        "same roster, policy and limits as /breakglass, is granted at once like self-service break-glass "
        "(the approvers are told and one owes a review), is recorded in the audit log with the operator "
        "named, and is posted to the incident channel when Slack answers again. A worker makes the binding.",
    )
    grant.add_argument("target", metavar="CLUSTER[/NAMESPACE]", help="where: prod/payments, or prod for a cluster role")
    grant.add_argument("role", help="a role of the roster")
    grant.add_argument("duration", help="how long: 90s, 15m, 2h, 1h30m, 60min, 1 hour")
    grant.add_argument("--for", dest="person", required=True, metavar="SLACK_USER_ID", help="who gets it (U…)")
    grant.add_argument("--reason", required=True, help="why, as a person would type it in /breakglass")
    grant.add_argument("--operator", help="who runs this (default: $USER)")
    grant.add_argument(
        "--wait", type=float, default=30.0, metavar="SECONDS", help="how long to wait for the binding (default 30)"
    )
    grant.set_defaults(run=_grant)

    revoke = command(
        commands,
        "revoke",
        "end a grant now from where the bot runs, for when Slack is down",
        "Recorded in the audit log with the operator named; the binding is removed by a worker and the "
        "thread told when Slack answers again.",
    )
    revoke.add_argument("request_id", metavar="ID", help="the grant's request id (BG-…)")
    revoke.add_argument("--reason", help="why, for the audit log and the thread")
    revoke.add_argument("--operator", help="who runs this (default: $USER)")
    revoke.set_defaults(run=_revoke)

    deploy = group("deploy", "deployment helpers")
    rbac = command(
        deploy,
        "rbac",
        "print the bot's own least-privilege RBAC for a roster, as YAML for kubectl apply",
        "A ClusterRole with bind limited to the roster's cluster roles, and a Role for token grants "
        "only where a cluster uses credentials: token.",
    )
    add_roster_argument(rbac)
    rbac.add_argument("--roster", dest="roster_option", metavar="ROSTER", help="the same as the ROSTER argument")
    rbac.add_argument(
        "--grant-namespace",
        default=SYSTEM_NAMESPACE,
        help="where token grants get their ServiceAccount (default: %(default)s)",
    )
    rbac.add_argument(
        "--cluster",
        help="render for this roster cluster alone (the Role for tokens only if it uses credentials: token)",
    )
    rbac.set_defaults(run=_deploy_rbac)
    acl = command(
        deploy,
        "redis-acl",
        "print the Redis ACL users for the web and worker processes, as ACL file lines without passwords",
        "Each gets the fewest commands and keys it needs (bot/redis_acl.py). Add a password to each line "
        "(>secret, or #sha256) and load it with aclfile, or give each rule string to ACL SETUSER.",
    )
    acl.add_argument(
        "--prefix",
        default="breakglass",
        help="the installation's BREAKGLASS_KEY_PREFIX (default: %(default)s)",
    )
    acl.set_defaults(run=_deploy_redis_acl)


def _demo(args: argparse.Namespace) -> int:
    # The stand-ins are not part of the product, and the production image leaves them out.
    try:
        from bot.standins.demo import run_demo
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("bot.standins"):
            raise
        print(
            "breakglass demo: not included in this installation (the production image leaves out the stand-ins it "
            "runs on); run it from a source checkout or `pip install breakglass`",
            file=sys.stderr,
        )
        return 1
    return run_demo(sys.stdout, redis_url=args.redis_url)


def _doctor(args: argparse.Namespace) -> int:
    from bot.doctor import run_doctor

    return run_doctor(sys.stdout, process="worker" if args.worker else "web")


def _deploy_rbac(args: argparse.Namespace) -> int:
    from bot.deploy_rbac import roster_rbac

    if args.roster_option is not None:
        if args.roster is not None:
            print("breakglass deploy rbac: name the roster once, as ROSTER or --roster", file=sys.stderr)
            return 2
        args.roster = args.roster_option
    name, roster = read_roster(args, problems=sys.stderr)  # standard output is YAML for kubectl
    if roster is None:
        return 1
    try:
        rendered = roster_rbac(roster, name, grant_namespace=args.grant_namespace, cluster=args.cluster)
    except ValueError as exc:  # a --grant-namespace or cluster role that is not a Kubernetes name, or --cluster
        print(f"breakglass deploy rbac: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(rendered)
    return 0


def _deploy_redis_acl(args: argparse.Namespace) -> int:
    import re

    from bot.redis_acl import acl_file

    # The prefix lands in key patterns: glob characters in it would widen what each user may touch.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", args.prefix):
        print(f"breakglass deploy redis-acl: --prefix '{args.prefix[:40]}' is not a key prefix", file=sys.stderr)
        return 2
    sys.stdout.write(acl_file(args.prefix))
    return 0


def _operator(args: argparse.Namespace, command: str) -> str | None:
    name = (args.operator or os.environ.get("USER") or os.environ.get("LOGNAME") or "").strip()
    if not name:
        print(f"breakglass {command}: name yourself with --operator (no $USER here)", file=sys.stderr)
        return None
    return name[:80]


def _as_operator(command: str, act: Callable[[Core], AccessRequest]) -> tuple[Core, AccessRequest] | None:
    """Record what an operator does, as ``breakglass grant`` and ``revoke`` both do: on the processes'
    own settings and Redis, with the request queued for its thread (the outbox) once Slack answers.
    None, said on standard error, when it was refused or Redis could not record it."""
    import redis

    from bot.cli import settings_or_exit
    from bot.services.errors import Refused
    from bot.wiring import build_core

    core = build_core(settings_or_exit())
    try:
        request = act(core)
        core.store.outbox.add(request.id)
    except Refused as exc:
        print(f"breakglass {command}: refused: {exc.reason}", file=sys.stderr)
        return None
    except redis.RedisError as exc:
        print(f"BREAKGLASS_REDIS_URL: cannot record the {command} ({type(exc).__name__})", file=sys.stderr)
        return None
    return core, request


def _grant(args: argparse.Namespace) -> int:
    """The operator path of the contract's "When Slack is down"."""
    import time

    from bot.domain.durations import DurationError, parse_duration
    from bot.domain.ids import SlackUserId, is_slack_user_id
    from bot.domain.lifecycle import State
    from bot.domain.policy import Ask

    operator = _operator(args, "grant")
    if operator is None:
        return 2
    if not is_slack_user_id(args.person):
        print(f"breakglass grant: --for '{args.person[:40]}' is not a Slack user id (U… or W…)", file=sys.stderr)
        return 2
    try:
        duration = parse_duration(args.duration)
    except DurationError as exc:
        print(f"breakglass grant: {exc}", file=sys.stderr)
        return 2
    cluster, _, namespace = args.target.partition("/")
    ask = Ask(SlackUserId(args.person), cluster, namespace or None, args.role, duration, args.reason)
    recorded = _as_operator("grant", lambda core: core.access.grant_by_operator(ask, operator))
    if recorded is None:
        return 1
    core, request = recorded
    print(
        f"{request.id}: {args.role} on {request.target} for {args.person}, recorded in the audit log as by {operator}"
    )
    deadline = time.monotonic() + max(args.wait, 0.0)
    while True:
        current = core.store.get(request.id) or request
        if current.state is State.ACTIVE and current.expires_at is not None:
            print(f"{request.id}: granted; the binding ends {current.expires_at:%Y-%m-%d %H:%M:%S} UTC")
            print(f"{request.id}: the incident channel is told when Slack answers")
            return 0
        if current.state is not State.APPROVED or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if current.state is State.APPROVED:
        print(f"{request.id}: queued, but no worker made the binding within {args.wait:.0f}s: is a worker running?")
    else:
        print(f"{request.id}: {current.state.label}{f': {current.note}' if current.note else ''}")
    return 1


def _revoke(args: argparse.Namespace) -> int:
    from bot.domain.ids import parse_request_id

    operator = _operator(args, "revoke")
    if operator is None:
        return 2
    request_id = parse_request_id(args.request_id)
    if request_id is None:
        print(f"breakglass revoke: '{args.request_id[:40]}' is not a request id like BG-7K2QXM", file=sys.stderr)
        return 2
    recorded = _as_operator("revoke", lambda core: core.access.revoke_by_operator(request_id, operator, args.reason))
    if recorded is None:
        return 1
    _, request = recorded
    print(f"{request.id}: revoked by {operator}; a worker removes the binding now (the sweep does if none does)")
    return 0
