"""The Slack Web API double answers the real ``slack_sdk.WebClient`` as Slack does, over real HTTP."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.standins.slack_api import SlackApiDouble
from bot.standins.stack import wait_until
from tests.conftest import FakeClock

ADMIN_TOKEN = "xoxp-admin-double"
ALICE = "U000000ALICE"
BOB = "U0000000BOB"
CAROL = "U00000CAROL"
INCIDENTS = "C0000INCIDENT"
TS = re.compile(r"^\d{10}\.\d{6}$")


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str, action_id: str, value: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id, "value": value}


def modal(blocks: list[dict[str, Any]], title: str = "Break glass") -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": blocks}


def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call()
    return dict(caught.value.response.data)


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackApiDouble]:
    with SlackApiDouble(admin_token=ADMIN_TOKEN, clock=clock) as double:
        double.add_user(ALICE, name="alice", real_name="Alice Adams", has_2fa=True, tz="America/New_York")
        double.add_user(BOB, name="bob", has_2fa=False)
        double.add_user(CAROL, name="carol")
        double.add_channel(INCIDENTS, "incidents", members=[ALICE, BOB])
        yield double


@pytest.fixture
def client(slack: SlackApiDouble) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url)


@pytest.fixture
def admin(slack: SlackApiDouble) -> WebClient:
    return WebClient(token=ADMIN_TOKEN, base_url=slack.api_url)


# -- messages, updates, threads, DMs, ephemerals -----------------------------------------------------


def test_api_url_ends_with_api_slash_on_loopback(slack: SlackApiDouble) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/", slack.api_url)


def test_posted_message_is_read_back_as_the_channel_shows_it(slack: SlackApiDouble, client: WebClient) -> None:
    answer = client.chat_postMessage(channel=INCIDENTS, text="fallback", blocks=[section("Access request")])

    assert answer["channel"] == INCIDENTS
    assert TS.match(answer["ts"])
    assert answer["message"]["bot_id"] == slack.bot_id
    [shown] = slack.messages(INCIDENTS)
    assert (shown.ts, shown.text, shown.blocks[0]["text"]["text"]) == (answer["ts"], "fallback", "Access request")
    assert slack.messages("#incidents") == [shown]


def test_message_ts_values_are_unique_and_increasing_while_the_clock_stands_still(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel=INCIDENTS, text=str(n))["ts"] for n in range(5)]

    assert all(TS.match(ts) for ts in stamps)
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 5


def test_update_shows_the_latest_content_and_keeps_the_edit_history(
    slack: SlackApiDouble, client: WebClient, clock: FakeClock
) -> None:
    ts = client.chat_postMessage(channel=INCIDENTS, text="pending", blocks=[section("Pending")])["ts"]
    clock.advance(seconds=5)
    client.chat_update(channel=INCIDENTS, ts=ts, text="approved", blocks=[section("Approved")])

    [shown] = slack.messages(INCIDENTS)
    assert (shown.text, shown.blocks[0]["text"]["text"]) == ("approved", "Approved")
    assert [(e.text, e.blocks[0]["text"]["text"]) for e in shown.edits] == [("pending", "Pending")]
    assert float(shown.edits[0].edited_ts) >= float(ts) + 5


def test_update_without_blocks_keeps_them_and_an_empty_list_removes_them(
    slack: SlackApiDouble, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=INCIDENTS, text="a", blocks=[section("A")])["ts"]

    client.chat_update(channel=INCIDENTS, ts=ts, text="b")
    assert slack.messages(INCIDENTS)[0].blocks[0]["text"]["text"] == "A"
    client.chat_update(channel=INCIDENTS, ts=ts, text="c", blocks=[])
    assert slack.messages(INCIDENTS)[0].blocks == ()


def test_update_of_an_unknown_ts_is_message_not_found(client: WebClient) -> None:
    answer = refusal(lambda: client.chat_update(channel=INCIDENTS, ts="1700000000.000100", text="x"))
    assert answer == {"ok": False, "error": "message_not_found"}


def test_replies_are_read_in_order_under_their_root_and_not_in_the_channel(
    slack: SlackApiDouble, client: WebClient
) -> None:
    root = client.chat_postMessage(channel=INCIDENTS, text="root")["ts"]
    for text in ("requested", "approved by bob", "granted"):
        client.chat_postMessage(channel=INCIDENTS, text=text, thread_ts=root)

    assert [m.text for m in slack.thread(INCIDENTS, root)] == ["requested", "approved by bob", "granted"]
    assert [m.text for m in slack.messages(INCIDENTS)] == ["root"]


def test_reply_to_a_thread_ts_that_names_no_message_is_accepted_and_seen_nowhere(
    slack: SlackApiDouble, client: WebClient
) -> None:
    root = client.chat_postMessage(channel=INCIDENTS, text="root")["ts"]
    # A float that lost its trailing zero is the classic way to get here.
    answer = client.chat_postMessage(channel=INCIDENTS, text="lost", thread_ts=str(float(root) + 0.5))

    assert answer["ok"] is True
    assert slack.thread(INCIDENTS, root) == []
    assert [m.text for m in slack.messages(INCIDENTS)] == ["root"]
    assert [m.text for m in slack.lost_replies(INCIDENTS)] == ["lost"]


def test_posting_to_a_user_id_lands_in_their_dm_under_a_stable_d_id(slack: SlackApiDouble, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=ALICE, text="your grant ends in 10 minutes")
    opened = client.conversations_open(users=ALICE)
    again = client.conversations_open(users=ALICE)

    assert posted["channel"] == opened["channel"]["id"] == slack.dm_channel_id(ALICE)
    assert posted["channel"].startswith("D")
    assert again["already_open"] is True
    client.chat_postMessage(channel=opened["channel"]["id"], text="second")
    assert [m.text for m in slack.dm(ALICE)] == ["your grant ends in 10 minutes", "second"]


@pytest.mark.parametrize(
    ("channel", "error"),
    [("C0000MISSING", "channel_not_found"), ("C00000QUIET", "not_in_channel"), ("G0000SECRET", "channel_not_found")],
)
def test_posting_where_the_bot_cannot_post_is_refused_like_slack(
    slack: SlackApiDouble, client: WebClient, channel: str, error: str
) -> None:
    slack.add_channel("C00000QUIET", "quiet", members=[ALICE], bot_is_member=False)
    slack.add_channel("G0000SECRET", "secret", members=[ALICE], is_private=True, bot_is_member=False)

    assert refusal(lambda: client.chat_postMessage(channel=channel, text="hi"))["error"] == error


def test_chat_write_public_lets_the_bot_post_to_a_public_channel_it_is_not_in(
    slack: SlackApiDouble, client: WebClient
) -> None:
    slack.add_channel("C00000QUIET", "quiet", bot_is_member=False)
    slack.set_scopes(["chat:write", "chat:write.public"])

    assert client.chat_postMessage(channel="C00000QUIET", text="hi")["ok"] is True


def test_archived_channel_refuses_posts_with_is_archived(slack: SlackApiDouble, client: WebClient) -> None:
    slack.add_channel("C000ARCHIVE", "old", is_archived=True)
    assert refusal(lambda: client.chat_postMessage(channel="C000ARCHIVE", text="x"))["error"] == "is_archived"


def test_ephemeral_is_seen_only_by_its_user(slack: SlackApiDouble, client: WebClient) -> None:
    answer = client.chat_postEphemeral(channel=INCIDENTS, user=ALICE, text="only you can see this")

    assert TS.match(answer["message_ts"])
    [seen] = slack.ephemerals(ALICE)
    assert (seen.channel, seen.text, seen.via) == (INCIDENTS, "only you can see this", "chat.postEphemeral")
    assert slack.ephemerals(BOB) == []
    assert slack.messages(INCIDENTS) == []


def test_ephemeral_to_someone_outside_the_channel_is_user_not_in_channel(client: WebClient) -> None:
    answer = refusal(lambda: client.chat_postEphemeral(channel=INCIDENTS, user=CAROL, text="x"))
    assert answer["error"] == "user_not_in_channel"


def test_permalink_names_the_channel_and_ts(slack: SlackApiDouble, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=INCIDENTS, text="root")["ts"]
    link = client.chat_getPermalink(channel=INCIDENTS, message_ts=ts)["permalink"]

    assert link == f"https://{slack.team_domain}.slack.com/archives/{INCIDENTS}/p{ts.replace('.', '')}"
    missing = refusal(lambda: client.chat_getPermalink(channel=INCIDENTS, message_ts="1.000001"))
    assert missing["error"] == "message_not_found"


def test_conversations_info_describes_the_channel_as_slack_does(client: WebClient) -> None:
    channel = client.conversations_info(channel=INCIDENTS)["channel"]

    assert (channel["id"], channel["name"], channel["is_member"], channel["is_private"]) == (
        INCIDENTS,
        "incidents",
        True,
        False,
    )
    assert refusal(lambda: client.conversations_info(channel="C0NOPE"))["error"] == "channel_not_found"


# -- files_upload_v2 -----------------------------------------------------------------------------------


def test_files_upload_v2_puts_the_bytes_in_the_thread_with_the_comment(
    slack: SlackApiDouble, client: WebClient
) -> None:
    root = client.chat_postMessage(channel=INCIDENTS, text="root")["ts"]
    answer = client.files_upload_v2(
        channel=INCIDENTS,
        content=b"apiVersion: v1\nkind: Config\n",
        filename="kubeconfig-bg-7k2qxm.yaml",
        title="kubeconfig",
        initial_comment="Your credentials",
        thread_ts=root,
    )

    assert answer["file"]["id"].startswith("F")
    [uploaded] = slack.files(INCIDENTS)
    assert (uploaded.name, uploaded.title, uploaded.content) == (
        "kubeconfig-bg-7k2qxm.yaml",
        "kubeconfig",
        b"apiVersion: v1\nkind: Config\n",
    )
    [reply] = slack.thread(INCIDENTS, root)
    assert reply.text == "Your credentials"
    assert reply.files == (uploaded.id,)
    assert [c.method for c in slack.calls()][-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


def test_files_upload_v2_to_a_user_lands_in_their_dm(slack: SlackApiDouble, client: WebClient) -> None:
    dm = client.conversations_open(users=ALICE)["channel"]["id"]
    client.files_upload_v2(channel=dm, content="token", filename="token.txt")

    assert [f.content for f in slack.files(ALICE)] == [b"token"]


def test_completing_an_upload_whose_bytes_never_arrived_is_file_not_found(client: WebClient) -> None:
    started = client.files_getUploadURLExternal(filename="x.txt", length=3)
    answer = refusal(
        lambda: client.files_completeUploadExternal(files=[{"id": started["file_id"]}], channel_id=INCIDENTS)
    )
    assert answer["error"] == "file_not_found"


# -- Slack's limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section(f"{n}") for n in range(51)], "no more than 50 items allowed [json-pointer:/blocks]"),
        ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "actions", "elements": [button("b" * 76, "approve", "BG-1")]}],
            "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        ),
        (
            [{"type": "actions", "elements": [button("Approve", "approve", "v" * 2001)]}],
            "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
        ),
        (
            [{"type": "actions", "elements": [button("Approve", "a" * 256, "BG-1")]}],
            "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
        ),
        ([section("x", block_id="b" * 256)], "must be less than 256 characters [json-pointer:/blocks/0/block_id]"),
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}],
            "must be less than 3001 characters [json-pointer:/blocks/0/elements/0/text]",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "no more than 10 items allowed [json-pointer:/blocks/0/fields]",
        ),
        ([{"type": "no_such_block"}], "failed to match all allowed schemas [json-pointer:/blocks/0]"),
    ],
    ids=[
        "51-blocks",
        "section-text",
        "header",
        "button-text",
        "button-value",
        "action-id",
        "block-id",
        "context",
        "fields",
        "unknown-type",
    ],
)
def test_blocks_over_slacks_limits_are_invalid_blocks_with_json_pointers(
    client: WebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    answer = refusal(lambda: client.chat_postMessage(channel=INCIDENTS, text="t", blocks=blocks))

    assert answer["error"] == "invalid_blocks"
    assert f"[ERROR] {pointer}" in answer["response_metadata"]["messages"]


def test_section_text_over_the_limit_also_fails_the_text_object_schema_as_slack_reports(
    client: WebClient,
) -> None:
    answer = refusal(lambda: client.chat_postMessage(channel=INCIDENTS, text="t", blocks=[section("x" * 3001)]))
    assert answer["response_metadata"]["messages"][0] == (
        "[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/text]"
    )


def test_content_exactly_at_each_limit_is_accepted(client: WebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("x" * 3000, block_id="b" * 255),
        {"type": "actions", "elements": [button("b" * 75, "a" * 255, "v" * 2000)]},
        *[{"type": "divider"}] * 47,
    ]
    assert client.chat_postMessage(channel=INCIDENTS, text="t" * 40_000, blocks=blocks)["ok"] is True


def test_text_over_40000_characters_is_msg_too_long(client: WebClient) -> None:
    answer = refusal(lambda: client.chat_postMessage(channel=INCIDENTS, text="x" * 40_001))
    assert answer == {"ok": False, "error": "msg_too_long"}


def test_a_message_with_neither_text_nor_blocks_is_no_text(client: WebClient) -> None:
    assert refusal(lambda: client.chat_postMessage(channel=INCIDENTS, text=""))["error"] == "no_text"


def test_blocks_sent_form_encoded_as_a_json_string_are_read_like_json_blocks(
    slack: SlackApiDouble, client: WebClient
) -> None:
    answer = client.api_call("chat.postMessage", params={"channel": INCIDENTS, "blocks": json.dumps([section("form")])})
    assert answer["ok"]
    assert slack.messages(INCIDENTS)[0].blocks[0]["text"]["text"] == "form"
    broken = refusal(lambda: client.api_call("chat.postMessage", params={"channel": INCIDENTS, "blocks": "[{"}))
    assert broken["error"] == "invalid_blocks_format"


# -- modals, triggers, the Home tab --------------------------------------------------------------------


def test_a_trigger_id_opens_one_modal_and_is_then_exchanged(slack: SlackApiDouble, client: WebClient) -> None:
    trigger = slack.mint_trigger_id(ALICE)
    opened = client.views_open(trigger_id=trigger, view=modal([section("Request access")]))

    assert opened["view"]["id"].startswith("V")
    assert opened["view"]["hash"]
    again = refusal(lambda: client.views_open(trigger_id=trigger, view=modal([section("again")])))
    assert again["error"] == "exchanged_trigger_id"
    [seen] = slack.views_opened()
    assert (seen.user, seen.via, seen.is_open) == (ALICE, "views.open", True)


def test_a_trigger_id_expires_after_three_seconds_of_the_clock(
    slack: SlackApiDouble, client: WebClient, clock: FakeClock
) -> None:
    fresh, stale = slack.mint_trigger_id(ALICE), slack.mint_trigger_id(ALICE)
    clock.advance(seconds=2.9)
    assert client.views_open(trigger_id=fresh, view=modal([section("ok")]))["ok"] is True
    clock.advance(seconds=0.2)
    assert refusal(lambda: client.views_open(trigger_id=stale, view=modal([section("late")])))["error"] == (
        "expired_trigger_id"
    )


def test_an_unknown_trigger_id_is_invalid_trigger_id(client: WebClient) -> None:
    answer = refusal(lambda: client.views_open(trigger_id="123.456.abc", view=modal([section("x")])))
    assert answer["error"] == "invalid_trigger_id"


@pytest.mark.parametrize(
    ("view", "message"),
    [
        (modal([section("x")] * 101), "no more than 100 items allowed [json-pointer:/view/blocks]"),
        (modal([section("x")], title="t" * 25), "must be less than 25 characters [json-pointer:/view/title/text]"),
        (
            {**modal([section("x")]), "private_metadata": "m" * 3001},
            "must be less than 3001 characters [json-pointer:/view/private_metadata]",
        ),
    ],
    ids=["101-blocks", "title", "private-metadata"],
)
def test_modal_over_slacks_limits_is_invalid_arguments(
    slack: SlackApiDouble, client: WebClient, view: dict[str, Any], message: str
) -> None:
    answer = refusal(lambda: client.views_open(trigger_id=slack.mint_trigger_id(ALICE), view=view))

    assert answer["error"] == "invalid_arguments"
    assert f"[ERROR] {message}" in answer["response_metadata"]["messages"]


def test_views_update_with_a_stale_hash_is_hash_conflict(slack: SlackApiDouble, client: WebClient) -> None:
    view = client.views_open(trigger_id=slack.mint_trigger_id(ALICE), view=modal([section("1")]))["view"]
    client.views_update(view_id=view["id"], hash=view["hash"], view=modal([section("2")]))

    stale = refusal(lambda: client.views_update(view_id=view["id"], hash=view["hash"], view=modal([section("3")])))
    assert stale["error"] == "hash_conflict"
    assert slack.views_opened()[0].view["blocks"][0]["text"]["text"] == "2"


def test_views_push_stacks_up_to_three_modals(slack: SlackApiDouble, client: WebClient) -> None:
    client.views_open(trigger_id=slack.mint_trigger_id(ALICE), view=modal([section("1")]))
    for n in (2, 3):
        client.views_push(trigger_id=slack.mint_trigger_id(ALICE), view=modal([section(str(n))]))

    over = refusal(lambda: client.views_push(trigger_id=slack.mint_trigger_id(ALICE), view=modal([section("4")])))
    assert over["error"] == "push_limit_reached"
    assert len(slack.open_views(ALICE)) == 3


def test_views_publish_sets_the_users_home_tab(slack: SlackApiDouble, client: WebClient) -> None:
    client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [section("Your grants")]})

    home = slack.home_view(ALICE)
    assert home is not None
    assert home["blocks"][0]["text"]["text"] == "Your grants"
    assert slack.home_view(BOB) is None
    assert slack.views_opened() == []


# -- users.info ---------------------------------------------------------------------------------------


def test_users_info_is_shaped_like_slacks(client: WebClient) -> None:
    user = client.users_info(user=ALICE)["user"]

    assert (user["id"], user["team_id"], user["name"], user["real_name"]) == (
        ALICE,
        "T0000000001",
        "alice",
        "Alice Adams",
    )
    assert user["profile"]["display_name"] == "alice"
    assert user["profile"]["real_name"] == "Alice Adams"
    assert user["tz"] == "America/New_York"
    assert user["tz_label"] == "Eastern Standard Time"
    assert user["tz_offset"] == -5 * 3600  # the fake clock stands in November
    assert user["is_bot"] is False
    assert user["deleted"] is False
    assert "is_invited_user" not in user
    assert "locale" not in user
    assert client.users_info(user=ALICE, include_locale=True)["user"]["locale"] == "en-US"


def test_a_bot_token_never_sees_has_2fa(client: WebClient) -> None:
    assert all("has_2fa" not in client.users_info(user=u)["user"] for u in (ALICE, BOB, CAROL))


def test_the_admin_token_sees_has_2fa_as_configured(admin: WebClient) -> None:
    shown = {u: admin.users_info(user=u)["user"].get("has_2fa", "absent") for u in (ALICE, BOB, CAROL)}
    assert shown == {ALICE: True, BOB: False, CAROL: "absent"}


def test_users_info_reports_guest_bot_deleted_and_invited_flags(slack: SlackApiDouble, client: WebClient) -> None:
    slack.add_user("U0000GUEST", is_restricted=True, is_ultra_restricted=True, is_invited_user=True)
    slack.add_user("U00000GONE", deleted=True)
    slack.add_user("U00000ROBO", is_bot=True, is_app_user=True)

    guest, gone, robo = (client.users_info(user=u)["user"] for u in ("U0000GUEST", "U00000GONE", "U00000ROBO"))
    assert guest["is_restricted"]
    assert guest["is_ultra_restricted"]
    assert guest["is_invited_user"]
    assert gone["deleted"] is True
    assert robo["is_bot"]
    assert robo["is_app_user"]


def test_a_grid_user_carries_enterprise_user(slack: SlackApiDouble, client: WebClient) -> None:
    slack.add_user("W0000GRID", team_id="T0000000002", enterprise_id="E0000001")

    user = client.users_info(user="W0000GRID")["user"]
    assert user["team_id"] == "T0000000002"
    assert user["enterprise_user"]["enterprise_id"] == "E0000001"
    assert user["enterprise_user"]["teams"] == ["T0000000002"]


def test_users_info_of_an_unknown_user_is_user_not_found(client: WebClient) -> None:
    assert refusal(lambda: client.users_info(user="U0NOBODY"))["error"] == "user_not_found"


# -- tokens and scopes ---------------------------------------------------------------------------------


def test_every_authenticated_answer_carries_the_granted_scopes(slack: SlackApiDouble, client: WebClient) -> None:
    slack.set_scopes(["chat:write", "users:read", "commands"])

    assert client.auth_test().headers["x-oauth-scopes"] == "chat:write,users:read,commands"
    assert client.users_info(user=ALICE).headers["x-oauth-scopes"] == "chat:write,users:read,commands"
    info = client.api_call("apps.permissions.info")
    assert info["info"]["team"]["scopes"] == ["chat:write", "users:read", "commands"]


def test_auth_test_names_the_bot_and_the_admin(slack: SlackApiDouble, client: WebClient, admin: WebClient) -> None:
    bot = client.auth_test()
    assert (bot["user_id"], bot["bot_id"], bot["team_id"]) == (slack.bot_user_id, slack.bot_id, slack.team_id)
    assert admin.auth_test()["user_id"] == slack.admin_user_id
    assert "bot_id" not in admin.auth_test().data


def test_a_method_outside_the_granted_scopes_is_missing_scope(slack: SlackApiDouble, client: WebClient) -> None:
    slack.set_scopes(["chat:write"])

    answer = refusal(lambda: client.users_info(user=ALICE))
    assert (answer["error"], answer["needed"], answer["provided"]) == ("missing_scope", "users:read", "chat:write")


@pytest.mark.parametrize(
    ("token", "error"),
    [(None, "not_authed"), ("xoxb-not-a-real-token", "invalid_auth"), ("revoked", "token_revoked")],
)
def test_bad_tokens_are_refused_as_slack_refuses_them(slack: SlackApiDouble, token: str | None, error: str) -> None:
    if token == "revoked":
        token = slack.bot_token
        slack.revoke(token)
    answer = refusal(lambda: WebClient(token=token, base_url=slack.api_url).auth_test())

    assert answer == {"ok": False, "error": error}
    assert slack.calls("auth.test")[-1].token_kind in ("none", "unknown", "revoked")


def test_a_token_inside_a_json_body_is_ignored_as_slack_ignores_it(slack: SlackApiDouble) -> None:
    body = json.dumps({"token": slack.bot_token, "channel": INCIDENTS, "text": "x"}).encode()
    request = urllib.request.Request(  # noqa: S310 - the local double
        slack.api_url + "chat.postMessage",
        data=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - the local double
        assert json.loads(response.read()) == {"ok": False, "error": "not_authed"}


def test_an_unknown_method_is_unknown_method(client: WebClient) -> None:
    assert refusal(lambda: client.api_call("conversations.kick"))["error"] == "unknown_method"


def test_calls_record_params_but_never_the_token(slack: SlackApiDouble, client: WebClient) -> None:
    client.chat_postMessage(channel=INCIDENTS, text="hello")
    form = f"token={slack.bot_token}&channel={INCIDENTS}&text=form".encode()  # a form token works too
    with urllib.request.urlopen(slack.api_url + "chat.postMessage", data=form) as response:  # noqa: S310
        assert json.loads(response.read())["ok"] is True

    by_header, by_form = slack.calls("chat.postMessage")
    assert (by_header.params["channel"], by_header.params["text"], by_header.token_kind) == (INCIDENTS, "hello", "bot")
    assert by_form.params == {"token": "[redacted]", "channel": INCIDENTS, "text": "form"}
    assert slack.bot_token not in repr(slack.calls())


# -- fault injection -----------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_and_ratelimited(slack: SlackApiDouble, client: WebClient) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=7)

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=INCIDENTS, text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel=INCIDENTS, text="x")["ok"] is True


def test_rate_limit_retry_handler_waits_retry_after_and_recovers(
    slack: SlackApiDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []
    monkeypatch.setattr(builtin_handlers.time, "sleep", waited.append)
    slack.rate_limit("chat.postMessage", times=2, retry_after=3)
    client = WebClient(
        token=slack.bot_token, base_url=slack.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)]
    )

    assert client.chat_postMessage(channel=INCIDENTS, text="eventually")["ok"] is True
    assert len(waited) == 2
    assert all(3 <= w < 4 for w in waited)
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 429, 200]
    assert [m.text for m in slack.messages(INCIDENTS)] == ["eventually"]


def test_fail_answers_the_given_error_the_given_number_of_times(slack: SlackApiDouble, client: WebClient) -> None:
    slack.fail("users.info", "internal_error", times=2)
    slack.fail("auth.test", "service_unavailable", status=503)

    assert [refusal(lambda: client.users_info(user=ALICE))["error"] for _ in range(2)] == ["internal_error"] * 2
    assert client.users_info(user=ALICE)["ok"] is True
    with pytest.raises(SlackApiError) as caught:
        client.auth_test()
    assert caught.value.response.status_code == 503


def test_latency_delays_the_answer(slack: SlackApiDouble, client: WebClient) -> None:
    slack.latency(3.0, "auth.test")
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 3.0
    slack.latency(120.0, "auth.test")
    started = time.monotonic()
    client.users_info(user=ALICE)
    assert time.monotonic() - started < 120.0  # not delayed: no loaded machine's answer takes that long


# -- reading it as a person ----------------------------------------------------------------------------


def test_render_text_shows_block_kit_as_a_person_reads_it(slack: SlackApiDouble) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Access request BG-7K2QXM"}},
        section("<@U000000ALICE> asks for *admin* on prod/payments"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*For*\n1h"}]},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "typed: &lt;!channel&gt; &amp; more"}]},
        {"type": "actions", "elements": [button("Approve", "approve", "BG-7K2QXM"), button("Deny", "deny", "x")]},
    ]
    assert slack.render_text(blocks) == "\n".join(
        [
            "Access request BG-7K2QXM",
            "@alice asks for *admin* on prod/payments",
            "*For*",
            "1h",
            "─" * 24,
            "typed: <!channel> & more",
            "[Approve] [Deny]",
        ]
    )


def test_render_thread_prints_the_root_and_each_reply_with_its_time(
    slack: SlackApiDouble, client: WebClient, clock: FakeClock
) -> None:
    root = client.chat_postMessage(channel=INCIDENTS, text="r", blocks=[section("Request BG-7K2QXM")])["ts"]
    clock.advance(seconds=61)
    client.chat_postMessage(channel=INCIDENTS, text="Approved by <@U0000000BOB>", thread_ts=root)

    assert slack.render_thread(INCIDENTS, root) == "\n".join(
        [
            "#incidents · 2026-11-27 09:00:00 UTC",
            "    Request BG-7K2QXM",
            "  ↳ 09:01:01  Approved by @bob",
        ]
    )


def test_the_double_serves_many_threads_at_once(slack: SlackApiDouble, client: WebClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        stamps = list(pool.map(lambda n: client.chat_postMessage(channel=INCIDENTS, text=str(n))["ts"], range(40)))

    assert len(set(stamps)) == 40
    assert len(slack.messages(INCIDENTS)) == 40


def test_a_path_outside_the_api_is_404(slack: SlackApiDouble) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(slack.base_url + "/nowhere")  # noqa: S310 - the local double
    assert caught.value.code == 404


def test_a_held_method_waits_unanswered_until_released_while_others_answer(
    slack: SlackApiDouble, client: WebClient
) -> None:
    held = slack.hold("auth.test")
    answered = threading.Event()
    caller = threading.Thread(target=lambda: (client.auth_test(), answered.set()))
    caller.start()
    wait_until(lambda: held.arrived == 1, 60, "auth.test to reach the double")
    assert client.users_info(user=ALICE)["ok"] is True  # another method answers meanwhile
    assert (answered.is_set(), held.answered) == (False, 0)
    slack.clear_faults()  # releases it
    caller.join(timeout=60)
    assert (answered.is_set(), held.answered) == (True, 1)
