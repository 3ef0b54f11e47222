"""The ack-latency baseline of ``bench_scale``: a Bolt app that acks ``/breakglass`` and does nothing else.

Served by gunicorn with the web process's settings; verifies Slack's signature as the product does.
"""

from __future__ import annotations

import os

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

bolt = App(
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    # The Slack double, as the product's app is given (Bolt's authorization asks auth.test once).
    client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["BREAKGLASS_SLACK_API_URL"]),
    token_verification_enabled=False,
)


@bolt.command("/breakglass")
def breakglass(ack: Ack) -> None:
    ack()


app = SlackRequestHandler(bolt)
