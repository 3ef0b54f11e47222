"""Local stand-ins for Slack, Kubernetes and Redis, used by the tests and by ``breakglass demo``.

Not part of the product: no product module imports this package (an import-linter contract in
pyproject.toml says so; the one exception is ``breakglass demo``, which imports ``bot.standins.demo``
only when it runs), and the production image leaves it out (.dockerignore). It ships in the
distribution only so that ``pip install breakglass`` can run the demo.
"""
