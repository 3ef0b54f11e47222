"""The Slack Web API double's old import path, kept so that ``from bot.standins.slack_api import X`` works.

The double lives in ``bot.standins.slack`` (split into Block Kit validation, rendering, workspace state,
methods and server).
"""

from bot.standins.slack import *  # noqa: F403 - the old path names exactly what the package exports
from bot.standins.slack import __all__ as __all__
