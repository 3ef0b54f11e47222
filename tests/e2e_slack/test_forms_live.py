"""The request form through the real web process: it follows the cluster and role chosen in it, its
submission is acknowledged at once, and the form then shows the request it made."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import yaml

from bot.slack import blocks
from bot.standins.slack_api import DEFAULT_BOT_TOKEN
from bot.standins.stack import ALICE, INCIDENT_CHANNEL, MANIFEST, wait_until
from tests.e2e_slack.conftest import DEADLINE, REQUEST_ID, Live

pytestmark = pytest.mark.slow  # real `breakglass web` and `breakglass worker` processes


def open_form(live: Live) -> dict[str, Any] | None:
    return next((v for v in live.slack.open_views(ALICE) if v.get("callback_id") == blocks.REQUEST_CALLBACK), None)


def select(view: dict[str, Any] | None, block_id: str) -> dict[str, Any]:
    assert view is not None
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]


def chosen(live: Live, block_id: str, value: str) -> bool:
    return (select(open_form(live), block_id).get("initial_option") or {}).get("value") == value


def test_the_form_follows_the_choice_acks_at_once_and_shows_the_request_it_made(live: Live) -> None:
    assert live.sender.slash_command(ALICE, "", channel_id=INCIDENT_CHANNEL).status == 200
    form = wait_until(lambda: open_form(live), DEADLINE, "the request form to open")
    assert "4h" in [o["value"] for o in select(form, "duration")["options"]]  # view's maximum, no role chosen yet

    live.sender.choose(ALICE, blocks.REQUEST_CALLBACK, "cluster", "prod")
    wait_until(lambda: chosen(live, "cluster", "prod"), DEADLINE, "the form to follow the cluster")
    live.sender.choose(ALICE, blocks.REQUEST_CALLBACK, "role", "admin")
    wait_until(lambda: chosen(live, "role", "admin"), DEADLINE, "the form to follow the role")
    assert [o["value"] for o in select(open_form(live), "duration")["options"]][-1] == "1h"  # admin's maximum

    reply = live.sender.submit_view(
        ALICE,
        blocks.REQUEST_CALLBACK,
        {
            "cluster": {"cluster": "prod"},
            "role": {"role": "admin"},
            "namespace": {"namespace": "payments"},
            "duration": {"duration": "30m"},
            "reason": {"reason": "INC-5300 payments pods crash-looping"},
            "channel": {"channel": INCIDENT_CHANNEL},
        },
    )
    assert reply.status == 200
    assert reply.json()["response_action"] == "update"

    def shown_id() -> str | None:
        views = live.slack.open_views(ALICE)
        found = REQUEST_ID.search(live.slack.render_text(views[-1]["blocks"])) if views else None
        return found.group(0) if found else None

    request_id = wait_until(shown_id, DEADLINE, "the form to show the request it made")
    live.wait_published(request_id)
    stored = live.request(request_id)
    assert (stored.requester, stored.cluster, stored.namespace, stored.role) == (ALICE, "prod", "payments", "admin")
    assert live.root(request_id)


def test_the_stacks_bot_token_holds_exactly_the_manifests_scopes(live: Live) -> None:
    # Every live test then proves the manifest is enough: a call needing more fails with missing_scope.
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    request = urllib.request.Request(  # noqa: S310 - the local Slack double
        live.slack.api_url + "auth.test", data=b"", headers={"Authorization": f"Bearer {DEFAULT_BOT_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        granted = answer.headers["x-oauth-scopes"].split(",")
    assert sorted(granted) == sorted(manifest["oauth_config"]["scopes"]["bot"])
    assert "im:read" not in granted
