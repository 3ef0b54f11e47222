"""``breakglass report``: read the audit log through the store, verify its chain, render a report.

Only Redis is needed (as for ``audit export``): an auditor must not need the bot's Slack token.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bot.domain.audit import Verdict
from bot.domain.ids import parse_request_id
from bot.reporting import history_of, period_html, period_markdown, request_html, request_markdown, summarise
from bot.store import AuditLog
from bot.store.audit_log import ChainKeyMissing

EXIT_PROBLEM = 1
EXIT_USAGE = 2


def add_report_command(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="a post-incident report of one request (Markdown), or of a period with --since",
        description="Print a Markdown report of one request, or with --since of a period; --html FILE writes "
        "one self-contained page instead. The audit chain is verified first and the result is part of the report.",
    )
    report.add_argument("request", nargs="?", help="the request id (BG-…)")
    report.add_argument("--since", help="a period: a time ago (30d, 24h), a date (2026-10-01) or an RFC 3339 instant")
    report.add_argument("--html", metavar="FILE", help="write one self-contained HTML page to FILE")
    report.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from bot.cli import _audit_log, parse_since

    now = datetime.now(UTC)
    if (args.request is None) == (args.since is None):
        print(
            "breakglass report: give a request id (report BG-7K2QXM) or a period (report --since 30d)", file=sys.stderr
        )
        return EXIT_USAGE
    request_id = None
    since = None
    if args.request is not None:
        request_id = parse_request_id(args.request)
        if request_id is None:
            print(f"breakglass report: '{args.request}' is not a request id like BG-7K2QXM", file=sys.stderr)
            return EXIT_USAGE
    else:
        try:
            since = parse_since(args.since, now)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
    audit = _audit_log()
    try:
        verdict: Verdict | None = audit.verify()
    except ChainKeyMissing:
        verdict = None
        print("breakglass report: BREAKGLASS_SIGNING_KEY is unset, so the audit chain is not verified", file=sys.stderr)
    except redis.RedisError as exc:
        print(f"BREAKGLASS_REDIS_URL: cannot read the audit log ({type(exc).__name__})", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        if request_id is not None:
            text = _request_report(audit, request_id, verdict, now, html=args.html is not None)
            if text is None:
                print(f"breakglass report: the audit log holds nothing for {request_id}", file=sys.stderr)
                return EXIT_PROBLEM
        else:
            assert since is not None
            summary = summarise(audit.entries(since=since), since, now)
            text = period_html(summary, verdict) if args.html else period_markdown(summary, verdict)
    except redis.RedisError as exc:
        print(f"BREAKGLASS_REDIS_URL: cannot read the audit log ({type(exc).__name__})", file=sys.stderr)
        return EXIT_PROBLEM
    if args.html:
        Path(args.html).write_text(text, encoding="utf-8")
        print(f"report written to {args.html}")
    else:
        sys.stdout.write(text)
    if verdict is not None and not verdict.ok:
        print("breakglass report: the audit chain does not verify (see the report's last section)", file=sys.stderr)
        return EXIT_PROBLEM
    return 0


def _request_report(audit: AuditLog, request_id: str, verdict: Verdict | None, now: datetime, html: bool) -> str | None:
    entries = audit.for_request(request_id)
    if not entries:
        return None
    history = history_of(request_id, entries)
    return request_html(history, verdict, now) if html else request_markdown(history, verdict, now)
