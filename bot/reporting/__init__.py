"""Reports for auditors, read from the audit log alone: one request's post-incident report, or a
period's summary, as Markdown or one self-contained HTML page.

Everything here is pure: it takes audit entries (and the chain's verdict) already read through the
store, and returns text. It imports no Redis, Slack or Kubernetes library and does no I/O, so the same
entries always give the same report.
"""

from bot.reporting.history import RequestHistory, histories, history_of
from bot.reporting.html import period_html, request_html
from bot.reporting.markdown import period_markdown, request_markdown
from bot.reporting.period import PeriodSummary, summarise

__all__ = [
    "PeriodSummary",
    "RequestHistory",
    "histories",
    "history_of",
    "period_html",
    "period_markdown",
    "request_html",
    "request_markdown",
    "summarise",
]
