"""Refusals a person sees. All user-facing wording of refusals is made in the domain's policy module
or here, never in listeners, so the same refusal reads the same in Slack, the CLI and the audit log."""

from __future__ import annotations

from bot.ports import Refused

__all__ = ["Refused", "no_such_request"]


def no_such_request(text: str) -> Refused:
    return Refused(f"There is no request {text}; /breakglass list shows yours.")
