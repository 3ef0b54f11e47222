"""The domain: rules of who may ask for what, for how long, and how a request moves.

Pure code only. Nothing here imports slack_bolt, slack_sdk, kubernetes, redis or rq, nor reads the
clock: callers pass ``now``. import-linter enforces this in CI.
"""
