"""The operator commands of issue 5 (demo, doctor, deploy rbac), kept apart from the core CLI.

Each command's module is imported only when it runs: ``breakglass web`` must not pay for the demo's
stand-ins or the doctor's clients at start.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register_extra_commands(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="walk one request through its whole life against local stand-ins (no Slack, no cluster)"
    )
    demo.add_argument(
        "--redis-url", help="use this Redis (under a key prefix of its own) instead of a private redis-server"
    )
    demo.set_defaults(run=_demo)

    doctor = commands.add_parser("doctor", help="check settings, roster, Redis, Slack and every cluster; name each fix")
    doctor.set_defaults(run=_doctor)

    deploy = commands.add_parser("deploy", help="deployment helpers").add_subparsers(metavar="ACTION")
    rbac = deploy.add_parser("rbac", help="print the bot's own least-privilege RBAC for a roster")
    rbac.add_argument("--roster", required=True)
    rbac.add_argument("--grant-namespace", default="breakglass-system")
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

    return run_doctor(sys.stdout)


def _deploy_rbac(args: argparse.Namespace) -> int:
    from bot.domain.roster import RosterError, load_roster_file
    from bot.rbac import roster_rbac

    try:
        roster = load_roster_file(args.roster)
    except RosterError as exc:
        for problem in exc.problems:
            print(f"{args.roster}: {problem}", file=sys.stderr)
        return 1
    try:
        rendered = roster_rbac(roster, args.roster, grant_namespace=args.grant_namespace, cluster=args.cluster)
    except ValueError as exc:  # a --grant-namespace or cluster role that is not a Kubernetes name, or --cluster
        print(f"breakglass deploy rbac: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(rendered)
    return 0
