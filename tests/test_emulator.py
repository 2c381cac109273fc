"""The Slack emulator, driven over real HTTP by slack_sdk's AsyncWebClient."""

from __future__ import annotations

import filecmp
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import RecordedCall, SlackEmulator
from bot.emulator.validation import METHODS_DIR, check_blocks, check_view, vendored_methods
from tests.slack_schema import SHARED_METHODS_DIR, assert_all_calls_valid, assert_valid_call

TOKEN = "xoxb-test-token"
# Refusals that mean "the request itself was malformed": assert_valid_call must agree.
MALFORMED = {"invalid_arguments", "missing_argument", "invalid_blocks", "no_text", "msg_too_long"}


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(bot_token=TOKEN, team_id="T0001")
    await emulator.start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        await emulator.stop()
    # Every accepted call must satisfy the original schemas, every malformed one must not.
    assert_all_calls_valid(c for c in emulator.calls if c.ok)
    for call in emulator.calls:
        about_transport = "JSON body" in str(call.response.get("response_metadata"))
        if call.error in MALFORMED and call.method in vendored_methods() and not about_transport:
            with pytest.raises(AssertionError):
                assert_valid_call(call.method, call.args)


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emu.url)


@pytest.fixture
def alice(emu: SlackEmulator) -> str:
    return emu.add_user("alice", real_name="Alice Doe", email="alice@example.com")


async def refused(call: Any) -> SlackApiError:
    """Await a client call that must fail and return the error."""
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


def error_of(exc: SlackApiError) -> str:
    return str(exc.response["error"])


# -- auth, routing ---------------------------------------------------------------------------


async def test_auth_test_reports_the_bot(emu: SlackEmulator, client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response["user_id"] == emu.bot_user_id
    assert response["team_id"] == "T0001"
    assert emu.url.endswith("/api/")
    assert emu.calls_to("auth.test")[0].args == {}


async def test_wrong_token_is_invalid_auth(emu: SlackEmulator) -> None:
    exc = await refused(AsyncWebClient(token="xoxb-wrong", base_url=emu.url).auth_test())
    assert error_of(exc) == "invalid_auth"


async def test_missing_token_is_not_authed(emu: SlackEmulator) -> None:
    exc = await refused(AsyncWebClient(base_url=emu.url).conversations_list())
    assert error_of(exc) == "unknown_method"  # unknown beats auth, like Slack
    exc = await refused(AsyncWebClient(base_url=emu.url).auth_test())
    assert error_of(exc) == "not_authed"


async def test_api_test_needs_no_token_and_echoes(emu: SlackEmulator) -> None:
    response = await AsyncWebClient(base_url=emu.url).api_test(foo="bar")
    assert response["args"] == {"foo": "bar"}


async def test_unknown_method(client: AsyncWebClient) -> None:
    exc = await refused(client.api_call("chat.nonsense", params={"x": "1"}))
    assert exc.response.status_code == 200
    assert error_of(exc) == "unknown_method"


async def test_token_may_come_as_a_form_field(emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(emu.url + "auth.test", data={"token": TOKEN}) as response:
            assert (await response.json())["ok"] is True
    assert "token" not in emu.calls[-1].args


# -- channels --------------------------------------------------------------------------------


async def test_create_channel_and_name_rules(emu: SlackEmulator, client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-42-db_down", is_private=False)
    channel = created["channel"]
    assert channel["id"].startswith("C") and channel["name"] == "inc-42-db_down"
    assert emu.bot_user_id in emu.state.channels[channel["id"]].members
    cases = {
        "inc-42-db_down": "name_taken",
        "Has Caps": "invalid_name_specials",
        "a" * 81: "invalid_name_maxlength",
        "": "invalid_name_required",
    }
    for name, error in cases.items():
        assert error_of(await refused(client.conversations_create(name=name))) == error
    private = await client.conversations_create(name="secret", is_private=True)
    assert private["channel"]["is_private"] is True


async def test_missing_required_argument(client: AsyncWebClient) -> None:
    exc = await refused(client.api_call("conversations.create", params={}))
    assert error_of(exc) == "missing_argument"
    exc = await refused(client.api_call("conversations.info", params={}))
    assert error_of(exc) == "invalid_arguments"
    assert "channel" in exc.response["response_metadata"]["messages"][0]


async def test_wrong_type_is_invalid_arguments(client: AsyncWebClient) -> None:
    exc = await refused(
        client.api_call("conversations.create", params={"name": "x", "is_private": "maybe"})
    )
    assert error_of(exc) == "invalid_arguments"
    assert exc.response["response_metadata"]["messages"] == [
        "[ERROR] must provide a boolean [json-pointer:/is_private]"
    ]


async def test_json_body_refused_where_slack_ignores_it(client: AsyncWebClient) -> None:
    exc = await refused(client.api_call("users.info", json={"user": "U1"}))
    assert error_of(exc) == "invalid_arguments"


async def test_info_invite_kick_members(
    emu: SlackEmulator, client: AsyncWebClient, alice: str
) -> None:
    bob = emu.add_user("bob")
    channel = (await client.conversations_create(name="inc-1"))["channel"]["id"]
    await client.conversations_invite(channel=channel, users=[alice, bob])
    members = (await client.conversations_members(channel=channel))["members"]
    assert members == [emu.bot_user_id, alice, bob]
    info = await client.conversations_info(channel=channel, include_num_members=True)
    assert info["channel"]["num_members"] == 3 and info["channel"]["is_member"] is True

    assert error_of(await refused(client.conversations_invite(channel=channel, users=alice))) == (
        "already_in_channel"
    )
    bad = await refused(client.conversations_invite(channel=channel, users="U404"))
    assert error_of(bad) == "user_not_found"
    self_invite = client.conversations_invite(channel=channel, users=emu.bot_user_id)
    assert error_of(await refused(self_invite)) == "cant_invite_self"
    missing = client.conversations_info(channel="C404")
    assert error_of(await refused(missing)) == "channel_not_found"

    await client.conversations_kick(channel=channel, user=bob)
    assert bob not in emu.state.channels[channel].members
    kicked_again = client.conversations_kick(channel=channel, user=bob)
    assert error_of(await refused(kicked_again)) == "not_in_channel"


async def test_invite_needs_the_bot_in_the_channel(
    emu: SlackEmulator, client: AsyncWebClient, alice: str
) -> None:
    channel = emu.add_channel("general-ish", members=[alice])
    exc = await refused(client.conversations_invite(channel=channel, users=alice))
    assert error_of(exc) == "not_in_channel"
    joined = await client.conversations_join(channel=channel)
    assert joined["channel"]["is_member"] is True
    again = await client.conversations_join(channel=channel)
    assert again["warning"] == "already_in_channel"


async def test_set_topic_and_archive(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = (await client.conversations_create(name="inc-2"))["channel"]["id"]
    response = await client.conversations_setTopic(channel=channel, topic="SEV1 · db down")
    assert response["channel"]["topic"]["value"] == "SEV1 · db down"
    too_long = client.conversations_setTopic(channel=channel, topic="x" * 251)
    assert error_of(await refused(too_long)) == "too_long"
    await client.conversations_archive(channel=channel)
    assert emu.state.channels[channel].is_archived
    assert error_of(await refused(client.conversations_archive(channel=channel))) == (
        "already_archived"
    )
    post = client.chat_postMessage(channel=channel, text="late")
    assert error_of(await refused(post)) == "is_archived"


async def test_open_dm_and_post_to_it(
    emu: SlackEmulator, client: AsyncWebClient, alice: str
) -> None:
    opened = await client.conversations_open(users=alice)
    dm = opened["channel"]["id"]
    assert dm.startswith("D") and dm in emu.state.ims
    again = await client.conversations_open(users=[alice])
    assert again["channel"]["id"] == dm and again["already_open"] is True
    await client.chat_postMessage(channel=dm, text="you are paged")
    assert emu.state.ims[dm].messages[0].text == "you are paged"
    assert error_of(await refused(client.conversations_open(users="U404"))) == "user_not_found"


# -- messages --------------------------------------------------------------------------------


async def test_post_update_delete_permalink(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = (await client.conversations_create(name="inc-3"))["channel"]["id"]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* declared"}}]
    posted = await client.chat_postMessage(channel=channel, text="SEV1 declared", blocks=blocks)
    ts = posted["ts"]
    assert posted["message"]["blocks"] == blocks and posted["channel"] == channel
    stored = emu.state.channels[channel].messages[0]
    assert (stored.ts, stored.user, stored.blocks) == (ts, emu.bot_user_id, blocks)
    # The recorded args are what the client sent, in Slack's JSON body form.
    assert emu.calls_to("chat.postMessage")[0].args["blocks"] == blocks

    reply = await client.chat_postMessage(channel=channel, text="update", thread_ts=ts)
    assert float(reply["ts"]) > float(ts)
    replies = await client.conversations_replies(channel=channel, ts=ts)
    assert [m["text"] for m in replies["messages"]] == ["SEV1 declared", "update"]
    history = await client.conversations_history(channel=channel)
    assert [m["ts"] for m in history["messages"]] == [ts]
    assert history["messages"][0]["reply_count"] == 1

    updated = await client.chat_update(channel=channel, ts=ts, text="SEV2 now")
    assert updated["message"]["edited"]["user"] == emu.bot_user_id
    assert stored.text == "SEV2 now" and stored.edited is not None

    link = await client.chat_getPermalink(channel=channel, message_ts=ts)
    assert link["permalink"].endswith(f"/archives/{channel}/p{ts.replace('.', '')}")

    await client.chat_delete(channel=channel, ts=reply["ts"])
    gone = client.chat_delete(channel=channel, ts=reply["ts"])
    assert error_of(await refused(gone)) == "message_not_found"


async def test_ts_values_are_unique_and_increasing(emu: SlackEmulator) -> None:
    channel = emu.add_channel("busy")
    user = emu.add_user("carol")
    stamps = [emu.post_as_user(channel, user, f"m{i}") for i in range(200)]
    assert len(set(stamps)) == 200
    assert stamps == sorted(stamps, key=float)
    assert all(len(s.split(".")[1]) == 6 for s in stamps)


async def test_cannot_edit_someone_elses_message(
    emu: SlackEmulator, client: AsyncWebClient, alice: str
) -> None:
    channel = emu.add_channel("ops", members=[alice, emu.bot_user_id])
    ts = emu.post_as_user(channel, alice, "help")
    exc = await refused(client.chat_update(channel=channel, ts=ts, text="edited"))
    assert error_of(exc) == "cant_update_message"


async def test_post_errors(emu: SlackEmulator, client: AsyncWebClient, alice: str) -> None:
    exc = await refused(client.chat_postMessage(channel="C404", text="x"))
    assert error_of(exc) == "channel_not_found"
    private = emu.add_channel("hidden", is_private=True, members=[alice])
    exc = await refused(client.chat_postMessage(channel=private, text="x"))
    assert error_of(exc) == "not_in_channel"
    public = emu.add_channel("public", members=[alice])
    assert error_of(
        await refused(client.api_call("chat.postMessage", json={"channel": public}))
    ) == ("no_text")
    exc = await refused(client.chat_postMessage(channel=public, text="x" * 40_001))
    assert error_of(exc) == "msg_too_long"
    by_name = await client.chat_postMessage(channel="#public", text="by name")
    assert by_name["channel"] == public


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "divider"}] * 51,
        [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
        [
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x" * 76}}],
            }
        ],
        [{"type": "no_such_block"}],
        [{"type": "section"}],
    ],
    ids=["51-blocks", "section-3001", "header-151", "button-76", "unknown-type", "empty-section"],
)
async def test_blocks_over_limits_are_refused(
    emu: SlackEmulator, client: AsyncWebClient, blocks: list[dict[str, Any]]
) -> None:
    channel = emu.add_channel("limits", members=[emu.bot_user_id])
    exc = await refused(client.chat_postMessage(channel=channel, text="fallback", blocks=blocks))
    assert error_of(exc) == "invalid_blocks"
    assert exc.response["response_metadata"]["messages"]
    assert emu.state.channels[channel].messages == []


async def test_blocks_as_a_form_encoded_json_string(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    channel = emu.add_channel("form", members=[emu.bot_user_id])
    blocks = json.dumps([{"type": "divider"}])
    await client.api_call(
        "chat.postMessage", params={"channel": channel, "text": "t", "blocks": blocks}
    )
    assert emu.calls[-1].args["blocks"] == blocks
    exc = await refused(
        client.api_call(
            "chat.postMessage", params={"channel": channel, "text": "t", "blocks": "[{"}
        )
    )
    assert error_of(exc) == "invalid_blocks_format"


async def test_ephemeral_needs_the_user_in_the_channel(
    emu: SlackEmulator, client: AsyncWebClient, alice: str
) -> None:
    channel = emu.add_channel("eph", members=[emu.bot_user_id, alice])
    sent = await client.chat_postEphemeral(channel=channel, user=alice, text="only you")
    assert emu.state.ephemerals[0].ts == sent["message_ts"]
    outsider = emu.add_user("dave")
    exc = await refused(client.chat_postEphemeral(channel=channel, user=outsider, text="x"))
    assert error_of(exc) == "user_not_in_channel"


# -- pins, bookmarks, reactions --------------------------------------------------------------


async def test_pins_bookmarks_reactions(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = (await client.conversations_create(name="inc-4"))["channel"]["id"]
    ts = (await client.chat_postMessage(channel=channel, text="summary"))["ts"]
    await client.pins_add(channel=channel, timestamp=ts)
    assert error_of(await refused(client.pins_add(channel=channel, timestamp=ts))) == (
        "already_pinned"
    )
    items = (await client.pins_list(channel=channel))["items"]
    assert [item["message"]["ts"] for item in items] == [ts]
    await client.pins_remove(channel=channel, timestamp=ts)
    assert error_of(await refused(client.pins_remove(channel=channel, timestamp=ts))) == "no_pin"

    added = await client.bookmarks_add(
        channel_id=channel, title="Runbook", type="link", link="https://runbooks.example/db"
    )
    assert added["bookmark"]["title"] == "Runbook"
    listed = await client.bookmarks_list(channel_id=channel)
    assert [b["link"] for b in listed["bookmarks"]] == ["https://runbooks.example/db"]
    long_title = client.bookmarks_add(
        channel_id=channel, title="x" * 257, type="link", link="https://a.b"
    )
    assert error_of(await refused(long_title)) == "invalid_arguments"

    await client.reactions_add(channel=channel, timestamp=ts, name="eyes")
    assert emu.state.channels[channel].messages[0].reactions == {"eyes": [emu.bot_user_id]}
    again = client.reactions_add(channel=channel, timestamp=ts, name="eyes")
    assert error_of(await refused(again)) == "already_reacted"
    await client.reactions_remove(channel=channel, timestamp=ts, name="eyes")
    assert emu.state.channels[channel].messages[0].reactions == {}


# -- users -----------------------------------------------------------------------------------


async def test_users_and_groups(emu: SlackEmulator, client: AsyncWebClient, alice: str) -> None:
    info = await client.users_info(user=alice)
    assert info["user"]["real_name"] == "Alice Doe"
    assert info["user"]["tz"] == "America/Los_Angeles"
    assert info["user"]["tz_offset"] in (-8 * 3600, -7 * 3600)
    assert error_of(await refused(client.users_info(user="U404"))) == "user_not_found"
    found = await client.users_lookupByEmail(email="ALICE@example.com")
    assert found["user"]["id"] == alice
    missing = client.users_lookupByEmail(email="nobody@example.com")
    assert error_of(await refused(missing)) == "users_not_found"
    members = (await client.users_list())["members"]
    assert {m["id"] for m in members} == {emu.bot_user_id, alice}

    group = emu.add_usergroup("oncall-db", [alice], name="DB on-call")
    groups = (await client.usergroups_list(include_users=True))["usergroups"]
    assert groups[0]["handle"] == "oncall-db" and groups[0]["users"] == [alice]
    assert (await client.usergroups_users_list(usergroup=group))["users"] == [alice]
    unknown = client.usergroups_users_list(usergroup="S404")
    assert error_of(await refused(unknown)) == "no_such_subteam"


async def test_users_list_paginates(emu: SlackEmulator, client: AsyncWebClient) -> None:
    for i in range(5):
        emu.add_user(f"user{i}")
    first = await client.users_list(limit=4)
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.users_list(limit=4, cursor=cursor)
    assert len(first["members"]) == 4 and len(second["members"]) == 2
    assert second["response_metadata"]["next_cursor"] == ""


async def test_users_conversations_lists_what_the_user_is_in(
    emu: SlackEmulator, client: AsyncWebClient, alice: str
) -> None:
    public = (await client.conversations_create(name="inc-7"))["channel"]["id"]
    secret = (await client.conversations_create(name="inc-8", is_private=True))["channel"]["id"]
    emu.add_channel("alices-own", members=[alice])
    await client.conversations_archive(
        channel=(await client.conversations_create(name="old"))["channel"]["id"]
    )
    mine = await client.users_conversations(types="public_channel,private_channel")
    assert {c["name"] for c in mine["channels"]} == {"inc-7", "inc-8", "old"}
    assert all(c["creator"] == emu.bot_user_id for c in mine["channels"])
    assert [c["id"] for c in (await client.users_conversations())["channels"]][:1] == [public]
    page = await client.users_conversations(
        types="public_channel,private_channel", exclude_archived=True, limit=1
    )
    rest = await client.users_conversations(
        types="public_channel,private_channel",
        exclude_archived=True,
        limit=1,
        cursor=page["response_metadata"]["next_cursor"],
    )
    assert [c["id"] for c in [*page["channels"], *rest["channels"]]] == [public, secret]
    assert rest["response_metadata"]["next_cursor"] == ""
    assert error_of(await refused(client.users_conversations(types="rooms"))) == "invalid_types"


async def test_fail_next_with_the_answer_lost_still_does_the_call(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    emu.fail_next("conversations.create", status=503, answer_lost=True)
    exc = await refused(client.conversations_create(name="inc-9"))
    assert exc.response.status_code == 503
    assert [c.name for c in emu.state.channels.values()] == ["inc-9"]  # made all the same
    assert error_of(await refused(client.conversations_create(name="inc-9"))) == "name_taken"


# -- views -----------------------------------------------------------------------------------


def modal(title: str = "Declare incident", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Declare"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
        **extra,
    }


async def test_views_open_update_push(emu: SlackEmulator, client: AsyncWebClient) -> None:
    opened = await client.views_open(trigger_id="123.456.abc", view=modal())
    view = opened["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "declare"
    updated = await client.views_update(view_id=view["id"], view=modal("Step 2"), hash=view["hash"])
    assert updated["view"]["title"]["text"] == "Step 2"
    stale = client.views_update(view_id=view["id"], view=modal(), hash=view["hash"])
    assert error_of(await refused(stale)) == "hash_conflict"
    pushed = await client.views_push(trigger_id="123.456.def", view=modal("Details"))
    assert pushed["view"]["root_view_id"] == view["id"]
    unknown = client.views_update(view_id="V404", view=modal())
    assert error_of(await refused(unknown)) == "not_found"


@pytest.mark.parametrize(
    "view",
    [
        modal("x" * 25),
        modal(private_metadata="x" * 3001),
        {**modal(), "blocks": [{"type": "divider"}] * 101},
        {**modal(), "title": None},
        {**modal(), "blocks": [{"type": "no_such_block"}]},
    ],
    ids=["title-25", "metadata-3001", "101-blocks", "no-title", "unknown-block"],
)
async def test_invalid_view_is_refused(client: AsyncWebClient, view: dict[str, Any]) -> None:
    exc = await refused(client.views_open(trigger_id="1.2.3", view=view))
    assert error_of(exc) == "invalid_arguments"
    assert exc.response["response_metadata"]["messages"]


async def test_views_open_needs_a_trigger(client: AsyncWebClient) -> None:
    exc = await refused(client.views_open(trigger_id="", view=modal()))
    assert error_of(exc) == "invalid_arguments"


def test_validation_helpers_are_usable_directly() -> None:
    assert check_blocks([{"type": "divider"}]) == []
    assert check_blocks([{"type": "divider"}] * 51)
    assert check_view(modal()) == []
    assert check_view(modal("x" * 25))


# -- files -----------------------------------------------------------------------------------


async def test_files_upload_v2_round_trip(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = (await client.conversations_create(name="inc-5"))["channel"]["id"]
    content = b"timeline\n" * 100
    uploaded = await client.files_upload_v2(
        channel=channel,
        content=content,
        filename="timeline.txt",
        title="Timeline",
        initial_comment="Postmortem draft",
    )
    file_id = uploaded["files"][0]["id"]
    stored = emu.state.files[file_id]
    assert stored.content == content and stored.title == "Timeline"
    assert (
        emu.calls_to("files.getUploadURLExternal")[0]
        .response["upload_url"]
        .startswith(emu.url.removesuffix("api/"))
    )
    message = emu.state.channels[channel].messages[-1]
    assert message.files == [file_id] and message.text == "Postmortem draft"
    info = await client.files_info(file=file_id)
    assert info["file"]["size"] == len(content)


async def test_complete_upload_without_bytes_is_file_not_found(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    ticket = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    exc = await refused(client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}]))
    assert error_of(exc) == "file_not_found"
    zero = client.api_call("files.getUploadURLExternal", params={"filename": "a", "length": 0})
    assert error_of(await refused(zero)) == "invalid_arguments"


# -- failure injection and latency -----------------------------------------------------------


async def test_fail_next_429_is_retried_after_retry_after(emu: SlackEmulator) -> None:
    emu.fail_next("auth.test", status=429, retry_after=1)
    client = AsyncWebClient(
        token=TOKEN,
        base_url=emu.url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    response = await client.auth_test()
    assert response["ok"] is True
    first, second = emu.calls_to("auth.test")
    assert (first.status, first.response["error"]) == (429, "ratelimited")
    assert second.status == 200
    assert second.at - first.at >= 1.0


async def test_fail_next_429_without_retries(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.fail_next("chat.postMessage", status=429, retry_after=7)
    exc = await refused(client.chat_postMessage(channel="C404", text="x"))
    assert exc.response.status_code == 429
    assert exc.response.headers["Retry-After"] == "7"


async def test_fail_next_5xx_and_error_then_recover(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    emu.fail_next("conversations.create", status=503, times=2)
    emu.fail_next("conversations.create", status=200, error="restricted_action")
    for _ in range(2):
        exc = await refused(client.conversations_create(name="inc-6"))
        assert exc.response.status_code == 503
    exc = await refused(client.conversations_create(name="inc-6"))
    assert (exc.response.status_code, error_of(exc)) == (200, "restricted_action")
    assert emu.state.channels == {}  # failures never touch the workspace
    await client.conversations_create(name="inc-6")
    assert [c.status for c in emu.calls_to("conversations.create")] == [503, 503, 200, 200]


async def test_latency_delays_answers(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.set_latency(0.05, method="auth.test")
    started = time.perf_counter()
    await client.auth_test()
    assert time.perf_counter() - started >= 0.05
    started = time.perf_counter()
    await client.api_test()
    assert time.perf_counter() - started < 0.05


async def test_response_url_works_five_times(emu: SlackEmulator) -> None:
    channel = emu.add_channel("resp", members=[emu.bot_user_id])
    url = emu.response_url(channel=channel)
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(6):
            body = {"response_type": "in_channel", "text": "ack"}
            async with http.post(url, json=body) as response:
                statuses.append(response.status)
    assert statuses == [200] * 5 + [404]
    assert emu.responses[-1].error == "used_url"
    assert len(emu.state.channels[channel].messages) == 5


# -- schemas ---------------------------------------------------------------------------------


def test_vendored_schemas_match_the_shared_reference() -> None:
    if not SHARED_METHODS_DIR.is_dir():
        pytest.skip("shared Slack reference data not present")
    for method in vendored_methods():
        shared = SHARED_METHODS_DIR / f"{method}.json"
        assert filecmp.cmp(METHODS_DIR / f"{method}.json", shared, shallow=False), method
    assert (METHODS_DIR / "LICENSE").read_bytes() == (
        SHARED_METHODS_DIR.parent / "LICENSE.md"
    ).read_bytes()


def test_assert_valid_call_explains_the_refusal() -> None:
    assert_valid_call("chat.postMessage", {"channel": "C1", "text": "hi"})
    with pytest.raises(AssertionError, match="no_text"):
        assert_valid_call("chat.postMessage", {"channel": "C1"})
    with pytest.raises(AssertionError, match="missing required field: channel"):
        assert_valid_call("conversations.info", {})
    with pytest.raises(AssertionError, match="not a documented"):
        assert_valid_call("chat.nonsense", {})
    with pytest.raises(AssertionError, match="call #0"):
        assert_all_calls_valid([RecordedCall("users.info", {}, 200, {"ok": True}, 0.0)])
