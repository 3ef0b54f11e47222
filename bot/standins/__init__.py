"""Local stand-ins for Slack, Kubernetes and Redis, used by the tests and by `breakglass demo`."""
