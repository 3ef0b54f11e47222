"""Refusals a person sees. All user-facing wording of refusals is made in the domain's policy module
or here, never in listeners, so the same refusal reads the same in Slack, the CLI and the audit log."""

from __future__ import annotations


class Refused(Exception):
    """The action was not taken; ``reason`` is one sentence that says why and what to do instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def no_such_request(text: str) -> Refused:
    return Refused(f"There is no request {text}; /breakglass list shows yours.")
