"""The Slack adapter: the Web API client and its errors, identity checks, rendering, the Notifier and
the Bolt app factory.

Only this package (and ``bot.listeners``, which it wires) imports slack_sdk or slack_bolt. Rendering
(``text``, ``wording``, ``blocks``, ``forms``, ``slash_grammar``) is pure and decides nothing: who may do
what is the domain's question, asked through the services.
"""
