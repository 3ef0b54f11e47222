"""The ``breakglass`` command: run the processes, check a roster, export and verify the audit log."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis

from bot.domain.roster import RosterError, load_roster_file
from bot.operator_cli import add_roster_argument, count, read_roster
from bot.settings import (
    AuditSettings,
    Process,
    Settings,
    SettingsError,
    load_audit_settings,
    load_settings,
    url_without_password,
)
from bot.store import AuditLog, ChainKeyMissing, UnreadableEntry

EXIT_PROBLEM = 1
EXIT_USAGE = 2
# `audit verify`: 0 intact, EXIT_PROBLEM broken, EXIT_UNREADABLE when there was nothing it could check
# (a setting unusable, Redis unreachable, no audit log under that URL and prefix). A monitor must
# tell "someone altered the evidence" from "the check did not run".
EXIT_UNREADABLE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`breakglass doctor | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PROBLEM


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="breakglass",
        description="Emergency, time-boxed, approved and audited access to Kubernetes, from Slack.",
        epilog="Run `breakglass COMMAND --help` for what a command does and its options.",
    )
    parser.add_argument("--version", action="version", version=f"breakglass {_version()}")
    commands = parser.add_subparsers(metavar="COMMAND", title="commands")

    def command(parent: Any, name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        """A sub-command whose ``--help`` says what it does, not just its usage."""
        description = f"{summary[0].upper()}{summary[1:]}." + (f" {details}" if details else "")
        sub: argparse.ArgumentParser = parent.add_parser(name, help=summary, description=description)
        return sub

    def group(name: str, summary: str) -> Any:
        """A command with actions under it; alone, it prints its own help."""
        sub = command(commands, name, summary)
        sub.set_defaults(run=lambda _args: _usage(sub))
        return sub.add_subparsers(metavar="ACTION", title="actions")

    command(
        commands,
        "web",
        "the Slack-facing HTTP app under gunicorn on 0.0.0.0:$PORT (Procfile web:)",
        "With SLACK_APP_TOKEN set it runs in Socket Mode instead. Settings come from the environment "
        "(see the README); a missing or malformed one stops it with one line naming the variable.",
    ).set_defaults(run=_web)
    command(
        commands,
        "worker",
        "an RQ worker with its scheduler and the reconcile sweep (Procfile worker:)",
        "It runs the grant, revoke, remind and publish jobs. Any number of workers may run against one Redis.",
    ).set_defaults(run=_worker)
    command(
        commands,
        "serve",
        "web and worker from one command, for small installations and development",
        "Three processes in one group: this one runs the worker, its scheduler and the sweep, and a child "
        "runs the same gunicorn as `web` (one gthread worker). The worker runs whatever the web half does: "
        "a web server that dies is started again, after a pause that grows while it keeps dying. SIGTERM "
        "stops both and exits 0.",
    ).set_defaults(run=_serve)
    command(
        commands,
        "sweep",
        "ask a worker to run the reconcile sweep now",
        "Use it after an outage is fixed, rather than wait for the next BREAKGLASS_SWEEP_INTERVAL.",
    ).set_defaults(run=_sweep)

    roster = group("roster", "work with roster files")
    check = command(
        roster,
        "check",
        "validate a roster and print every problem with its line and place",
        "Exit status: 0 the roster passes, 1 it has problems.",
    )
    add_roster_argument(check)
    check.set_defaults(run=_roster_check)
    members = command(
        roster,
        "members",
        "print who is in each group now and where that came from",
        "Static groups are printed as the roster lists them (no network); Slack user groups and Okta groups "
        "are read now, with the processes' settings (SLACK_BOT_TOKEN, BREAKGLASS_OKTA_URL and _TOKEN). "
        "Each member is printed with their kube_user. Exit status: 0, or 1 when a group could not be read.",
    )
    members.add_argument("group", nargs="?", metavar="GROUP", help="only this group")
    members.add_argument("--roster", dest="roster", metavar="ROSTER",
                         help="the roster file (default: $BREAKGLASS_ROSTER, else roster.yaml)")  # fmt: skip
    members.set_defaults(run=_roster_members)

    audit = group("audit", "read and check the audit log")
    export = command(
        audit,
        "export",
        "print audit entries as JSON lines, oldest first",
        "Needs only BREAKGLASS_REDIS_URL (and BREAKGLASS_KEY_PREFIX), no Slack tokens.",
    )
    export.add_argument(
        "--since", help="RFC 3339 instant (2026-10-01T00:00:00Z), a date (2026-10-01, UTC), or a time ago (90d, 24h)"
    )
    export.add_argument("--request", metavar="ID", help="only this request's entries (BG-…)")
    export.set_defaults(run=_audit_export)
    verify = command(
        audit,
        "verify",
        "check the audit log's hash chain: exit 0 intact, 1 broken, 3 cannot read",
        "Checks every entry against the one before it and the head record, and, with BREAKGLASS_AUDIT_SINK "
        "set, Redis against the sink's copy (a Redis that lost entries the sink holds is broken). Exit "
        "status: 0 the chain is intact; 1 it is broken (the first bad entry is named); 3 it could not be "
        "read (a setting unusable, Redis or the sink unreachable, or no audit log there).",
    )
    verify.add_argument(
        "--sink",
        action="store_true",
        help="check the durable copy (BREAKGLASS_AUDIT_SINK) alone, without Redis: after Redis is lost it "
        "still proves the whole history (needs BREAKGLASS_SIGNING_KEY and the store's credentials)",
    )
    verify.set_defaults(run=_audit_verify)
    webhook = command(
        audit,
        "webhook-config",
        "print the API server's audit webhook kubeconfig for CLUSTER, holding that cluster's own token",
        "Needs only BREAKGLASS_AUDIT_WEBHOOK_TOKEN: each cluster's token is derived from it, and one "
        "cluster's token is refused at another's path. Give the output to kube-apiserver's "
        "--audit-webhook-config-file, readable by the API server only.",
    )
    webhook.add_argument("cluster", metavar="CLUSTER", help="the cluster's name in the roster")
    webhook.add_argument("--server", required=True, help="the web process's external base URL (https://…)")
    webhook.set_defaults(run=_audit_webhook_config)

    from bot.operator_cli import register_extra_commands
    from bot.reports import add_report_command

    add_report_command(commands)

    register_extra_commands(commands, command, group)
    completion = command(
        commands,
        "completion",
        "print the shell completion script for bash or zsh",
        'Load it with eval "$(breakglass completion bash)" in ~/.bashrc, or the same with zsh in ~/.zshrc.',
    )
    completion.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")
    completion.set_defaults(run=lambda args: _completion(parser, args.shell))
    return parser


def _completion(parser: argparse.ArgumentParser, shell: str) -> int:
    from bot.completion import bash_script, zsh_script

    sys.stdout.write(bash_script(parser) if shell == "bash" else zsh_script(parser))
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("breakglass")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def settings_or_exit(process: Process = "web") -> Settings:
    try:
        settings = load_settings(process=process)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    try:
        load_roster_file(settings.roster_path)
    except RosterError as exc:
        print(
            f"BREAKGLASS_ROSTER: {settings.roster_path} fails the check ({count(exc.problems, 'problem')})",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    return settings


def _web(args: argparse.Namespace) -> int:
    from bot.logs import configure
    from bot.serving import run_web, slack_refuses

    settings = settings_or_exit()
    if slack_refuses(settings):
        return EXIT_USAGE
    configure()
    run_web(settings)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bot.logs import configure
    from workers.main import run_worker

    settings = settings_or_exit("worker")
    configure()
    run_worker(settings)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from bot.logs import configure
    from bot.serving import run_all_in_one

    settings = settings_or_exit()
    configure()
    # Slack is not asked before starting, as web does: the worker must revoke on time while Slack is
    # unreachable or the token revoked. Only the web half waits for Slack (run_all_in_one).
    return run_all_in_one(settings)


def _sweep(args: argparse.Namespace) -> int:
    """After an outage is fixed, nobody should wait for the next interval to see bindings go."""
    from workers.queueing import RqJobQueue, rq_connection

    settings = settings_or_exit()
    try:
        queued = RqJobQueue(rq_connection(settings.redis_url), prefix=settings.key_prefix).reconcile()
    except redis.RedisError as exc:
        print(f"BREAKGLASS_REDIS_URL: cannot queue the sweep ({type(exc).__name__})", file=sys.stderr)
        return EXIT_PROBLEM
    print("sweep queued; a worker runs it next" if queued else "a sweep is already queued")
    return 0


def _roster_check(args: argparse.Namespace) -> int:
    name, roster = read_roster(args)
    if roster is None:
        return EXIT_PROBLEM
    print(f"{name}: ok: {roster.summary()}")
    return 0


def _roster_members(args: argparse.Namespace) -> int:
    """Who is in each group now, and where that came from. A roster whose groups are all static needs
    no settings and no network; one with Slack user groups or Okta groups reads them now, with the
    process's settings (the bot token, BREAKGLASS_OKTA_*)."""
    from bot.slack.usergroups import GroupReading

    name, roster = read_roster(args, problems=sys.stderr)
    if roster is None:
        return EXIT_PROBLEM
    if args.group is not None and args.group not in roster.groups:
        known = ", ".join(sorted(roster.groups))
        print(f"roster members: {name} has no group '{args.group}' (its groups: {known})", file=sys.stderr)
        return EXIT_USAGE
    readings: list[GroupReading]
    people = roster.people
    if not roster.group_sources:
        readings = [GroupReading(g, None, m, None, None) for g, m in roster.groups.items() if args.group in (None, g)]
    else:
        from bot.roster_source import FixedRoster
        from bot.slack.client import SlackApi
        from bot.slack.usergroups import UserGroupRoster
        from bot.wiring import okta_groups

        try:
            settings = load_settings(process="worker")
        except SettingsError as exc:
            print(f"roster members: {name} reads groups from Slack or Okta, which needs the settings: {exc}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        resolver = UserGroupRoster(
            FixedRoster(roster),
            SlackApi.connect(settings.slack_bot_token, settings.slack_api_url),
            lambda: datetime.now(UTC),
            okta=okta_groups(settings),
        )
        readings = resolver.readings(args.group)
        people = resolver().people  # the reads just made: kube_user from email where the roster says so
    failed = False
    for reading in readings:
        if reading.source is None:
            where = "static, in the roster"
        elif reading.read_at is None:
            where = f"{reading.source}, never read"
        else:
            where = f"{reading.source}, read {reading.read_at:%Y-%m-%d %H:%M:%S} UTC"
        size = len(reading.members)
        print(f"{reading.name} ({where}): {size} {'person' if size == 1 else 'people'}")
        if reading.problem is not None:
            failed = True
            print(
                f"  cannot be read now: {reading.problem}"
                + ("; the members above are the last read" if reading.members else "")
            )
        for member in reading.members:
            person = people.get(member)
            kube_user = person.kube_user if person else "no kube_user: refused (not under people:, no confirmed email)"
            print(f"  {member}  {kube_user}")
    return EXIT_PROBLEM if failed else 0


def _audit_log() -> AuditLog:
    """Only Redis is needed to read the log; Slack settings are not required for these commands
    (an auditor exporting evidence must not need the bot token). Exits naming a bad variable."""
    try:
        settings = load_audit_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    return AuditLog(client, lambda: datetime.now(UTC), prefix=settings.key_prefix, key=settings.chain_key())


_AGO = re.compile(r"(?:(?P<d>\d{1,5})d)?(?:(?P<h>\d{1,6})h)?(?:(?P<m>\d{1,8})m)?(?:(?P<s>\d{1,9})s)?")


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: a time ago (``90d``, ``24h``, ``1d12h``), a date (``2026-10-01``, midnight UTC)
    or an RFC 3339 instant. Not the grant duration parser: evidence for a quarter is ``90d``, far
    past the week any grant may last. Raises ValueError saying what it accepts."""
    raw = text.strip()
    match = _AGO.fullmatch(raw.lower())
    if raw and match is not None and any(match.groupdict().values()):
        parts = {unit: int(value or 0) for unit, value in match.groupdict().items()}
        return now - timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC)
        at = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since: '{text}' is not a time ago like 90d or 24h, a date like 2026-10-01, "
            "or an RFC 3339 instant like 2026-10-01T00:00:00Z"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _audit_export(args: argparse.Namespace) -> int:
    from bot.domain.ids import parse_request_id

    request_id = None
    if args.request:
        request_id = parse_request_id(args.request)
        if request_id is None:
            print(f"--request: '{args.request}' is not a request id like BG-7K2QXM", file=sys.stderr)
            return EXIT_USAGE
    since = None
    if args.since is not None:
        try:
            since = parse_since(args.since, datetime.now(UTC))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
    unreadable: list[UnreadableEntry] = []

    def skip(entry: UnreadableEntry) -> None:
        # Print all the evidence there is; the entry that cannot be read is named, not hidden.
        unreadable.append(entry)
        print(f"audit export: {entry}; skipped", file=sys.stderr)

    out = sys.stdout
    try:
        for entry in _audit_log().entries(since=since, request_id=request_id, unreadable=skip):
            out.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")
    except redis.RedisError as exc:
        print(f"BREAKGLASS_REDIS_URL: cannot read the audit log ({type(exc).__name__})", file=sys.stderr)
        return EXIT_PROBLEM
    if unreadable:
        count = len(unreadable)
        print(
            f"audit export: {count} entr{'ies' if count != 1 else 'y'} could not be read; run breakglass audit verify",
            file=sys.stderr,
        )
        return EXIT_PROBLEM
    return 0


def _audit_webhook_config(args: argparse.Namespace) -> int:
    """Only BREAKGLASS_AUDIT_WEBHOOK_TOKEN is needed: the cluster's token is derived from it."""
    import yaml

    from bot.domain.webhook import webhook_kubeconfig
    from bot.settings import load_webhook_secret

    try:
        secret = load_webhook_secret()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        config = webhook_kubeconfig(args.cluster, args.server, secret.get_secret_value())
    except ValueError as exc:
        print(f"audit webhook-config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        "# kube-apiserver --audit-webhook-config-file; it holds this cluster's token: readable by the API server only"
    )
    print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    try:
        settings = load_audit_settings()
    except SettingsError as exc:
        print(f"audit verify: cannot read the audit log: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.sink:
        return _verify_sink(settings)
    where = f"{url_without_password(settings.redis_url)} (key prefix '{settings.key_prefix}')"
    log = _audit_log()
    try:
        verdict = log.verify()
    except ChainKeyMissing:
        print(
            "BREAKGLASS_SIGNING_KEY: is required to verify the audit log (the chain is keyed with it)",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    except redis.RedisError as exc:
        print(f"audit verify: cannot read the audit log at {where}: {type(exc).__name__}", file=sys.stderr)
        return EXIT_UNREADABLE
    if not verdict.ok:
        at = f" at entry {verdict.bad_seq}" if verdict.bad_seq is not None else ""
        print(f"audit log broken{at}: {verdict.problem}")
        return EXIT_PROBLEM
    copy = ""
    if settings.audit_sink:
        compared = _compare_with_sink(settings, log)
        if isinstance(compared, int):
            return compared
        copy = compared
    if verdict.checked == 0:
        print(
            f"audit verify: no audit log at {where}; check BREAKGLASS_REDIS_URL and BREAKGLASS_KEY_PREFIX",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    print(f"audit log intact: {verdict.checked} entries verified{copy}")
    return 0


def _compare_with_sink(settings: AuditSettings, log: AuditLog) -> str | int:
    """A clause on the sink's copy for the verdict line, or the exit status when Redis disagrees with
    it (EXIT_PROBLEM) or the sink cannot be read (EXIT_UNREADABLE)."""
    from bot.integrations.s3_audit_sink import sink_from_settings
    from bot.ports import SinkRefused, SinkUnavailable
    from bot.services.audit_sink import compare_with_sink

    sink = sink_from_settings(settings)
    assert sink is not None
    try:
        problem, head = compare_with_sink(log, sink)
    except (SinkUnavailable, SinkRefused) as exc:
        print(f"audit verify: cannot compare with the sink: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except redis.RedisError as exc:
        print(f"audit verify: cannot read the audit log: {type(exc).__name__}", file=sys.stderr)
        return EXIT_UNREADABLE
    if problem:
        print(f"audit log broken: {problem}")
        return EXIT_PROBLEM
    if head is None:
        return f"; the sink ({sink.describe()}) holds no copy yet"
    behind = log.head()[0] - head.seq
    if behind < 0 or log.entry(head.seq) is None:
        return f"; the sink ({sink.describe()}) has not copied this chain yet (Redis began it anew)"
    waiting = f", {behind} not yet copied" if behind else ""
    return f"; the sink ({sink.describe()}) agrees up to entry {head.seq}{waiting}"


def _verify_sink(settings: AuditSettings) -> int:
    """``audit verify --sink``: the copy alone, no Redis."""
    from bot.integrations.s3_audit_sink import sink_from_settings
    from bot.ports import SinkRefused, SinkUnavailable
    from bot.services.audit_sink import verify_sink

    sink = sink_from_settings(settings)
    if sink is None:
        print("BREAKGLASS_AUDIT_SINK: is required to check the sink (s3://bucket/prefix)", file=sys.stderr)
        return EXIT_UNREADABLE
    key = settings.chain_key()
    if key is None:
        print(
            "BREAKGLASS_SIGNING_KEY: is required to verify the audit log (the chain is keyed with it)",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    try:
        verdict = verify_sink(sink, key)
    except (SinkUnavailable, SinkRefused) as exc:
        print(f"audit verify: cannot read the sink: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if not verdict.ok:
        print(f"audit log broken in the sink ({sink.describe()}): {verdict.problem}")
        return EXIT_PROBLEM
    if verdict.checked == 0:
        print(f"audit verify: no audit log in the sink at {sink.describe()}", file=sys.stderr)
        return EXIT_UNREADABLE
    chains = len(verdict.chains)
    print(
        f"audit log intact in the sink ({sink.describe()}): {verdict.checked} entries verified"
        + (f" in {chains} chains" if chains > 1 else "")
    )
    for restart in verdict.restarts:
        print(f"  {restart} (Redis lost its data then; the sink kept everything before it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
