"""Use cases: what people and jobs can do, written against the ports, the store and the domain.

Services never import slack_bolt, slack_sdk, kubernetes or rq: listeners and jobs call them, and they
reach the outside only through ``bot.ports``.
"""
