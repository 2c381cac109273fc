"""The Slack DM pager against the Slack emulator: the DM, its buttons, and the edits after."""

from __future__ import annotations

import dataclasses

import pytest

from bot.emulator import SlackEmulator
from bot.errors import PagerFailed
from bot.pagers import RetryPolicy, SlackDMPager
from bot.pagers.slack_dm import ACKNOWLEDGED, RESOLVED, channel_id_from_url
from bot.slack.ids import ActionId
from tests.pagers.conftest import RecordingSleep, make_request, slack_client


@pytest.fixture
def person(emulator: SlackEmulator) -> str:
    return emulator.add_user("dana", real_name="Dana On-call")


@pytest.fixture
def pager(emulator: SlackEmulator, person: str, retry: RetryPolicy) -> SlackDMPager:
    return SlackDMPager(client=slack_client(emulator), user_id=person, retry=retry)


async def test_the_page_is_a_dm_with_acknowledge_and_escalate(
    pager: SlackDMPager, emulator: SlackEmulator, person: str
) -> None:
    receipt = await pager.trigger(make_request(page_id=41))

    [call] = emulator.calls_to("chat.postMessage")
    assert call.ok
    assert call.args["channel"] == person
    dm = call.response["channel"]
    assert dm.startswith("D")
    assert receipt.external_id == f"{dm}:{call.response['ts']}"
    assert "INC-7" in call.args["text"]
    [message] = emulator.channel(dm).messages
    actions = [block for block in message.blocks or [] if block["type"] == "actions"]
    assert actions[0]["block_id"] == "page-actions:INC-7"
    buttons = {element["action_id"]: element for element in actions[0]["elements"]}
    assert set(buttons) == {ActionId.ACKNOWLEDGE_PAGE.value, ActionId.ESCALATE_PAGE.value}
    assert buttons[ActionId.ACKNOWLEDGE_PAGE.value]["text"]["text"] == "Acknowledge"
    assert buttons[ActionId.ESCALATE_PAGE.value]["text"]["text"] == "Escalate"
    assert {button["value"] for button in buttons.values()} == {"41"}
    assert any("<#C0INC7>" in str(block) for block in message.blocks or [])


async def test_acknowledge_replaces_the_buttons(
    pager: SlackDMPager, emulator: SlackEmulator
) -> None:
    request = make_request()
    receipt = await pager.trigger(request)

    await pager.acknowledge(dataclasses.replace(request, external_id=receipt.external_id))

    [update] = emulator.calls_to("chat.update")
    assert update.ok
    dm, ts = (receipt.external_id or "").split(":")
    [message] = emulator.channel(dm).messages
    assert message.ts == ts
    assert all(block["type"] != "actions" for block in message.blocks or [])
    assert ACKNOWLEDGED in str(message.blocks)


async def test_resolve_uses_the_receipt_kept_from_trigger(
    pager: SlackDMPager, emulator: SlackEmulator
) -> None:
    request = make_request()
    receipt = await pager.trigger(request)

    await pager.resolve(request)  # no external_id given: the same pager remembers its DM

    dm = (receipt.external_id or "").split(":")[0]
    assert RESOLVED in str(emulator.channel(dm).messages[0].blocks)


async def test_acknowledge_without_a_known_dm_does_nothing(
    emulator: SlackEmulator, person: str, retry: RetryPolicy
) -> None:
    fresh = SlackDMPager(client=slack_client(emulator), user_id=person, retry=retry)

    await fresh.acknowledge(make_request())

    assert emulator.calls_to("chat.update") == []


async def test_ratelimited_with_200_is_retryable(
    pager: SlackDMPager, emulator: SlackEmulator, sleep: RecordingSleep
) -> None:
    emulator.fail_next("chat.postMessage", status=200, error="ratelimited", times=4)

    with pytest.raises(PagerFailed) as caught:
        await pager.trigger(make_request())

    assert caught.value.retryable is True
    assert caught.value.reason.startswith("ratelimited")
    assert len(sleep.delays) == 3


async def test_the_default_policy_leaves_retries_to_the_slack_client(
    emulator: SlackEmulator, person: str
) -> None:
    emulator.fail_next("chat.postMessage", status=500)
    pager = SlackDMPager(client=slack_client(emulator), user_id=person)

    with pytest.raises(PagerFailed) as caught:
        await pager.trigger(make_request())

    assert caught.value.retryable is True
    assert len(emulator.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.slack.com/archives/C0INC7", "C0INC7"),
        ("https://acme.slack.com/archives/G0PRIV/p1700000000000100", "G0PRIV"),
        ("slack://channel?team=T0001&id=C0INC7", "C0INC7"),
        ("https://example.com/incidents/7", None),
        (None, None),
    ],
)
def test_channel_id_from_url(url: str | None, expected: str | None) -> None:
    assert channel_id_from_url(url) == expected
