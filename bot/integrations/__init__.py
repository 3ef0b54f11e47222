"""Adapters to outside services other than Slack and Kubernetes: PagerDuty (on-call, incidents,
paging), Jira (tickets), Okta (groups) and the S3 audit sink.

Each module implements a port of ``bot.ports`` with the service's maintained client (``pagerduty``,
``jira``, ``okta``, ``boto3``) and translates that client's errors into ``LookupFailed`` (or the port's
own errors) at the boundary. Nothing above this package imports those clients; nothing here decides
policy (``bot.domain`` does) or knows Slack.
"""
