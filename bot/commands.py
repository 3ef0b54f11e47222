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

if TYPE_CHECKING:
    from bot.domain.roster import Roster


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
        default="breakglass-system",
        help="where token grants get their ServiceAccount (default: %(default)s)",
    )
    rbac.add_argument(
        "--cluster",
        help="render for this roster cluster alone (the Role for tokens only if it uses credentials: token)",
    )
    rbac.set_defaults(run=_deploy_rbac)


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
    from bot.rbac import roster_rbac

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
