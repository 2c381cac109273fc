"""Interactivity: the summary card's menus, the declare modal and the message shortcut.

Payloads have the shape Slack sends (see shared/slack/payloads-bolt-python and the Java SDK's
captured logs) and go through the bot's HTTP endpoint as signed `payload=` forms.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, EntrySource, Severity, Status
from bot.db.models import Incident, TimelineEntry
from bot.emulator import SlackEmulator
from bot.slack import blocks
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.usecases import ts_to_datetime
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.scrape import scrape
from tests.slack_schema import assert_all_calls_valid

ACK_LIMIT = 1.0
COMMAND_TRIGGER_ID = "1111.2222.abcdef"  # what tests.slack_requests.command_body sends


@pytest.fixture
async def announcing_bot(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    """The bot with INCIDENTS_CHANNEL set to a channel it is a member of."""
    announcements = emulator.add_channel("incidents", members=[emulator.bot_user_id])
    settings = make_settings(
        database_url=sqlite_url, api_url=emulator.url, INCIDENTS_CHANNEL=announcements
    )
    harness, runner = await start_bot(settings=settings, emulator=emulator, clock=clock)
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)


# -- helpers ------------------------------------------------------------------------------


async def incidents(bot: BotHarness) -> list[Incident]:
    async with bot.services.sessions() as session:
        query = select(Incident).order_by(col(Incident.number))
        return list((await session.execute(query)).scalars().all())


async def timeline(bot: BotHarness, incident_id: int | None) -> list[TimelineEntry]:
    async with bot.services.sessions() as session:
        query = (
            select(TimelineEntry)
            .where(TimelineEntry.incident_id == incident_id)
            .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
        )
        return list((await session.execute(query)).scalars().all())


async def declared(bot: BotHarness, user: str) -> Incident:
    reply = await bot.command("declare sev2 Checkout is down", user=user)
    assert reply.status == 200
    await bot.settle()
    (incident,) = await incidents(bot)
    assert incident.channel_id is not None and incident.card_ts is not None
    return incident


def user_of(user: str) -> dict[str, str]:
    return {"id": user, "username": "alice", "name": "alice", "team_id": "T0001"}


def card_menu(
    bot: BotHarness,
    *,
    action_id: ActionId,
    value: str,
    channel: str,
    user: str,
    block_id: str = "incident-actions:INC-1",
) -> dict[str, Any]:
    """A block_actions payload for a choice in one of the summary card's menus."""
    options = {
        ActionId.STATUS_SELECT: {s.value for s in Status},
        ActionId.SEVERITY_SELECT: {s.value for s in Severity},
    }
    assert value in options[action_id], "Slack only sends the options the card offered"
    return {
        "type": "block_actions",
        "user": user_of(user),
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "111.222.valid",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": channel, "name": "inc"},
        "response_url": bot.emulator.response_url(channel=channel, user=user),
        "actions": [
            {
                "action_id": action_id.value,
                "block_id": block_id,
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": value, "emoji": True},
                    "value": value,
                },
                "placeholder": {"type": "plain_text", "text": "Change", "emoji": True},
                "action_ts": "1700000000.000200",
            }
        ],
    }


def form_values(
    *,
    title: str,
    severity: str = "sev3",
    service: str | None = None,
    impact: str | None = None,
    private: bool = False,
) -> dict[str, Any]:
    """`view.state.values` of the declare modal, keyed by block id then action id."""
    option = {"text": {"type": "plain_text", "text": "Private incident"}, "value": "private"}
    return {
        BlockId.TITLE: {BlockId.TITLE: {"type": "plain_text_input", "value": title}},
        BlockId.SEVERITY: {
            BlockId.SEVERITY: {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": severity.upper()},
                    "value": severity,
                },
            }
        },
        BlockId.SERVICE: {BlockId.SERVICE: {"type": "plain_text_input", "value": service}},
        BlockId.IMPACT: {BlockId.IMPACT: {"type": "plain_text_input", "value": impact}},
        BlockId.PRIVATE: {
            BlockId.PRIVATE: {"type": "checkboxes", "selected_options": [option] if private else []}
        },
    }


def submission(user: str, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A view_submission of `view` (as views.open returned it) with these values."""
    return {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "example"},
        "user": user_of(user),
        "api_app_id": "A0001",
        "token": "verification_token",
        "trigger_id": "222.333.valid",
        "view": {**view, "state": {"values": values}},
        "response_urls": [],
        "is_enterprise_install": False,
    }


def opened_view(bot: BotHarness) -> dict[str, Any]:
    """The view the bot opened last, as Slack answered views.open."""
    calls = [c for c in bot.emulator.calls_to("views.open") if c.ok]
    assert calls, "views.open was not called"
    view: dict[str, Any] = calls[-1].response["view"]
    return view


def sent_view(bot: BotHarness) -> dict[str, Any]:
    """The `view` argument of the last views.open call."""
    raw = bot.emulator.calls_to("views.open")[-1].args["view"]
    view: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    return view


def truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true")


# -- the summary card's menus -------------------------------------------------------------


async def test_the_status_menu_on_the_card_changes_the_status(bot: BotHarness) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    incident = await declared(bot, alice)
    channel = incident.channel_id or ""
    updates_before = len(emu.calls_to("chat.update"))

    payload = card_menu(
        bot, action_id=ActionId.STATUS_SELECT, value="monitoring", channel=channel, user=alice
    )
    reply = await bot.interact(payload)
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()

    (after,) = await incidents(bot)
    assert after.status is Status.MONITORING
    status_entries = [e for e in await timeline(bot, after.id) if e.kind == EntryKind.STATUS]
    assert len(status_entries) == 1 and status_entries[0].author == alice
    answer = emu.responses[-1].args
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "INC-1 is now *Monitoring*."
    # The card itself now shows the new status as the menu's current choice.
    update = emu.calls_to("chat.update")[updates_before:][-1]
    card = json.loads(update.args["blocks"]) if isinstance(update.args["blocks"], str) else None
    card = card or update.args["blocks"]
    actions = next(b for b in card if b.get("block_id") == blocks.card_block_id("INC-1"))
    assert actions["elements"][0]["initial_option"]["value"] == "monitoring"
    assert emu.channel(channel).topic.startswith("SEV2 · Monitoring")
    assert_all_calls_valid(emu.calls)


async def test_the_severity_menu_on_the_card_changes_the_severity(bot: BotHarness) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    incident = await declared(bot, alice)
    channel = incident.channel_id or ""

    reply = await bot.interact(
        card_menu(
            bot, action_id=ActionId.SEVERITY_SELECT, value="sev1", channel=channel, user=alice
        )
    )
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()

    (after,) = await incidents(bot)
    assert after.severity is Severity.SEV1
    assert [e.kind for e in await timeline(bot, after.id)].count(EntryKind.SEVERITY) == 1
    assert emu.responses[-1].args["text"] == "INC-1 is now *SEV1*."
    assert emu.channel(channel).topic.startswith("SEV1 · Investigating")
    assert_all_calls_valid(emu.calls)


async def test_both_card_menus_used_at_the_same_moment_both_hold(bot: BotHarness) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    incident = await declared(bot, alice)
    channel = incident.channel_id or ""

    replies = await asyncio.gather(
        bot.interact(
            card_menu(
                bot,
                action_id=ActionId.STATUS_SELECT,
                value="identified",
                channel=channel,
                user=alice,
            )
        ),
        bot.interact(
            card_menu(
                bot, action_id=ActionId.SEVERITY_SELECT, value="sev1", channel=channel, user=alice
            )
        ),
    )
    assert [r.status for r in replies] == [200, 200]
    await bot.settle()
    (after,) = await incidents(bot)
    assert (after.status, after.severity) == (Status.IDENTIFIED, Severity.SEV1)
    assert emu.channel(channel).topic.startswith("SEV1 · Identified")


async def test_a_card_menu_of_an_unknown_incident_is_explained(bot: BotHarness) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    incident = await declared(bot, alice)

    reply = await bot.interact(
        card_menu(
            bot,
            action_id=ActionId.STATUS_SELECT,
            value="resolved",
            channel=incident.channel_id or "",
            user=alice,
            block_id="incident-actions:INC-42",
        )
    )
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()
    answer = emu.responses[-1].args
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "There is no incident INC-42."
    (unchanged,) = await incidents(bot)
    assert unchanged.status is Status.INVESTIGATING


async def test_a_menu_on_a_block_that_is_not_a_card_is_acked_and_explained(
    bot: BotHarness,
) -> None:
    """An error found after the ack must not cost the ack (Bolt would answer 404 after 3 s)."""
    emu = bot.emulator
    alice = emu.add_user("alice")
    await bot.command("help", user=alice)

    reply = await bot.interact(
        card_menu(
            bot,
            action_id=ActionId.STATUS_SELECT,
            value="resolved",
            channel="C0GENERAL",
            user=alice,
            block_id="some-other-block",
        )
    )
    assert reply.status == 200
    assert reply.elapsed < ACK_LIMIT
    await bot.settle()
    answer = emu.responses[-1].args
    assert answer["response_type"] == "ephemeral"
    assert "does not belong to an incident card" in answer["text"]


# -- the declare modal --------------------------------------------------------------------


async def test_declare_without_a_title_opens_the_modal(bot: BotHarness) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")

    reply = await bot.command("declare", user=alice)
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()

    (call,) = emu.calls_to("views.open")
    assert call.ok, call.response
    assert call.args["trigger_id"] == COMMAND_TRIGGER_ID
    view = sent_view(bot)
    assert view["type"] == "modal"
    assert view["callback_id"] == CallbackId.DECLARE_MODAL
    assert [b["block_id"] for b in view["blocks"]] == [b.value for b in BlockId]
    severity = next(b for b in view["blocks"] if b["block_id"] == BlockId.SEVERITY)
    assert severity["element"]["initial_option"]["value"] == "sev3"
    assert await incidents(bot) == []  # nothing is declared until the form is submitted
    assert_all_calls_valid(emu.calls)


async def test_declare_with_only_a_severity_opens_the_modal_with_it_chosen(
    bot: BotHarness,
) -> None:
    alice = bot.emulator.add_user("alice")
    await bot.command("declare sev1", user=alice)
    await bot.settle()
    view = sent_view(bot)
    severity = next(b for b in view["blocks"] if b["block_id"] == BlockId.SEVERITY)
    assert severity["element"]["initial_option"]["value"] == "sev1"
    assert_all_calls_valid(bot.emulator.calls)


async def test_submitting_the_modal_declares_a_public_incident_and_announces_it(
    announcing_bot: BotHarness,
) -> None:
    bot = announcing_bot
    emu = bot.emulator
    alice = emu.add_user("alice")
    await bot.command("declare", user=alice)
    await bot.settle()

    values = form_values(
        title="Checkout latency over 5 s",
        severity="sev2",
        service="checkout-db",
        impact="EU customers cannot pay",
    )
    reply = await bot.interact(submission(alice, opened_view(bot), values))
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    assert reply.text == ""  # a plain ack closes the modal
    await bot.settle()

    (incident,) = await incidents(bot)
    assert (incident.title, incident.severity) == ("Checkout latency over 5 s", Severity.SEV2)
    assert (incident.service, incident.impact) == ("checkout-db", "EU customers cannot pay")
    assert incident.private is False and incident.declared_by == alice
    (create,) = emu.calls_to("conversations.create")
    assert not truthy(create.args.get("is_private", False))
    announcements = bot.services.settings.INCIDENTS_CHANNEL
    announced = [c for c in emu.calls_to("chat.postMessage") if c.args["channel"] == announcements]
    assert len(announced) == 1 and "INC-1" in announced[0].args["text"]
    # The form has no response_url: the declarer gets the channel's link by DM.
    (told,) = [c for c in emu.calls_to("chat.postMessage") if c.args["channel"] == alice]
    assert told.args["text"] == f"INC-1 declared: <#{incident.channel_id}>"
    metrics = await scrape(bot)
    assert metrics.value("incidents_declared_total", source="form") == 1
    assert metrics.value("slack_api_calls_total", method="views.open") == 1  # from the listener
    assert_all_calls_valid(emu.calls)


async def test_a_private_incident_from_the_modal_gets_a_private_channel_and_no_announcement(
    announcing_bot: BotHarness,
) -> None:
    bot = announcing_bot
    emu = bot.emulator
    alice = emu.add_user("alice")
    await bot.command("declare", user=alice)
    await bot.settle()

    values = form_values(title="Leaked credentials", severity="sev1", private=True)
    reply = await bot.interact(submission(alice, opened_view(bot), values))
    assert reply.status == 200
    await bot.settle()

    (incident,) = await incidents(bot)
    assert incident.private is True and incident.channel_id is not None
    (create,) = emu.calls_to("conversations.create")
    assert truthy(create.args["is_private"])
    assert emu.channel(incident.channel_id).is_private
    assert alice in emu.channel(incident.channel_id).members
    announcements = bot.services.settings.INCIDENTS_CHANNEL
    assert [c for c in emu.calls if c.args.get("channel") == announcements] == []
    assert emu.channel(announcements or "").messages == []
    assert_all_calls_valid(emu.calls)


@pytest.mark.parametrize("title", ["", "   "])
async def test_an_empty_title_is_refused_in_the_modal_itself(bot: BotHarness, title: str) -> None:
    emu = bot.emulator
    alice = emu.add_user("alice")
    await bot.command("declare", user=alice)
    await bot.settle()
    calls_before = len(emu.calls)

    reply = await bot.interact(submission(alice, opened_view(bot), form_values(title=title)))
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    assert reply.json() == {
        "response_action": "errors",
        "errors": {BlockId.TITLE.value: blocks.TITLE_MISSING},
    }
    await bot.settle()
    assert await incidents(bot) == []
    assert emu.calls[calls_before:] == []


# -- the message shortcut -----------------------------------------------------------------


async def test_the_message_shortcut_declares_with_the_message_as_first_entry(
    bot: BotHarness, clock: FakeClock
) -> None:
    emu = bot.emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    general = emu.add_channel("general", members=[alice, bob])
    text = "Checkout returns 502 for every EU request since the 10:05 deploy"
    ts = emu.post_as_user(general, bob, text)
    clock.set(ts_to_datetime(ts) + timedelta(minutes=7))  # declared a while after the report

    shortcut = {
        "type": "message_action",
        "token": "verification_token",
        "action_ts": ts,
        "team": {"id": "T0001", "domain": "example"},
        "user": user_of(alice),
        "channel": {"id": general, "name": "general"},
        "callback_id": CallbackId.DECLARE_SHORTCUT.value,
        "trigger_id": "333.444.shortcut",
        "message_ts": ts,
        "message": {
            "client_msg_id": "5c4f1b6e-0000-4000-8000-000000000001",
            "type": "message",
            "text": text,
            "user": bob,
            "ts": ts,
            "team": "T0001",
        },
        "response_url": emu.response_url(channel=general, user=alice),
    }
    reply = await bot.interact(shortcut)
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()

    (call,) = emu.calls_to("views.open")
    assert call.ok and call.args["trigger_id"] == "333.444.shortcut"
    view = opened_view(bot)
    title_block = next(b for b in sent_view(bot)["blocks"] if b["block_id"] == BlockId.TITLE)
    assert title_block["element"]["initial_value"] == text
    assert json.loads(view["private_metadata"])["ts"] == ts

    values = form_values(title="EU checkout 502s", severity="sev2")
    reply = await bot.interact(submission(alice, view, values))
    assert reply.status == 200 and reply.elapsed < ACK_LIMIT
    await bot.settle()

    (incident,) = await incidents(bot)
    assert incident.title == "EU checkout 502s" and incident.channel_id is not None
    first, *rest = await timeline(bot, incident.id)
    assert first.kind == EntryKind.PINNED and first.source == EntrySource.PINNED_MESSAGE
    assert first.occurred_at == ts_to_datetime(ts)
    assert (first.text, first.author) == (text, bob)
    assert (first.slack_channel, first.slack_ts) == (general, ts)
    assert [e.kind for e in rest] == [EntryKind.DECLARED]
    assert rest[0].occurred_at == clock.now()
    assert (await scrape(bot)).value("incidents_declared_total", source="shortcut") == 1
    assert_all_calls_valid(emu.calls)
