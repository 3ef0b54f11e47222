"""The operator commands of issue 5 (demo, doctor, deploy rbac), kept apart from the core CLI."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register_extra_commands(commands: Any) -> None:
    deploy = commands.add_parser("deploy", help="deployment helpers").add_subparsers(metavar="ACTION")
    rbac = deploy.add_parser("rbac", help="print the bot's own least-privilege RBAC for a roster")
    rbac.add_argument("--roster", required=True)
    rbac.add_argument("--grant-namespace", default="breakglass-system")
    rbac.set_defaults(run=_deploy_rbac)


def _deploy_rbac(args: argparse.Namespace) -> int:
    from bot.domain.roster import RosterError, load_roster_file
    from bot.rbac import bot_rbac_manifests, render_yaml

    try:
        roster = load_roster_file(args.roster)
    except RosterError as exc:
        for problem in exc.problems:
            print(f"{args.roster}: {problem}", file=sys.stderr)
        return 1
    roles = sorted({role.cluster_role for role in roster.roles.values()})
    sys.stdout.write(render_yaml(bot_rbac_manifests(roles, grant_namespace=args.grant_namespace)))
    return 0
